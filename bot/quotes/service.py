"""The rules of a quote request, shared by the Discord cogs, the offline console and the scheduler.

    service = QuoteService.from_settings(settings, host)
    result = await service.write(QuoteRequest("Hey,", QuoteOptions(temperature=0.7), user_id=42))
    result = await service.write(service.parse("Hey, --temp 0.7 --len 150", user_id=42))  # the text form
    result.reply        # "Hey, ..." : the seed exactly as typed, then the model's words

No discord.py objects here: ids and strings in, a ``QuoteResult`` or a typed ``QuotebotError`` out.
``write`` is the one way to write a quote: it checks the seed's length, picks the server's model, applies
the unknown-character policy to what the model is fed (the reply still shows the user's own seed), owns
the per-user cooldown, asks the model host, and stores the quote (``result.quote_id``). A store that fails
(busy, broken) never costs the user the reply: the quote is still returned, with no id, and logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.errors import BadOptionError, CooldownError, SeedTooLongError, ShuttingDownError, UnknownCharsError
from bot.ops import metrics
from bot.quotes.in_flight import InFlight
from bot.quotes.options import (
    CUT_MARK,
    DEFAULT_TEMPERATURE,
    MIN_LENGTH,
    RNG_LIMIT,
    TEMPERATURE_RANGE,
    QuoteOptions,
    check_options,
    fit_message,
    parse_options,
    split_options,
)
from bot.quotes.quote_log import QuoteLog, quote_settings
from bot.quotes.safe_text import escape_markdown, strip_controls
from bot.serving.guild_models import GuildModels
from bot.serving.host import DEFAULT_MODEL_ID, GenerationRequest, ModelHost
from bot.settings import Settings
from bot.storage.store import Store
from model.generate import STOP_END, Completion
from model.sampling import SamplingConfig
from model.vocab import UnknownCharactersError, UnknownPolicy


@dataclass(frozen=True)
class QuoteRequest:
    """One quote to write: the seed as typed, its options, and who asked where."""

    seed: str = ""
    options: QuoteOptions = field(default_factory=QuoteOptions)
    user_id: int | None = None  # None: no one asked (a scheduled post), so no cooldown applies
    guild_id: int | None = None
    channel_id: int | None = None


@dataclass(frozen=True)
class CheckedRequest:
    """A request that passed every check and holds its requester's cooldown turn; ``write`` it next, or
    ``release`` it if it will not be written (so the turn is not spent)."""

    request: QuoteRequest
    model_id: str
    model_seed: str  # what the model is fed, after the unknown-character policy
    cap: int  # most characters in the whole quote
    cooled: bool  # whether a cooldown turn was claimed (and must be refunded if nothing is written)
    asked_at: float  # time.monotonic() when checked: a !forgetme from then on covers this request too


@dataclass(frozen=True)
class QuoteResult:
    """A finished quote: the reply to send, and what it was made from."""

    reply: str
    seed: str  # as the user typed it
    model_seed: str  # what the model was fed, after the unknown-character policy
    completion: Completion
    options: QuoteOptions
    model_id: str
    quote_id: int | None = None  # its id in the store; None when it was not stored (no store, or it failed)
    settings: dict[str, Any] = field(default_factory=dict)  # what was stored as its settings
    model_version: str = ""  # the version name stored with it

    @property
    def text(self) -> str:
        """The whole quote as stored and trained on: the seed and every generated character, uncut."""
        return self.seed + self.completion.generated


class Cooldown:
    """A per-key cooldown: after a claim, the same key must wait ``seconds`` before the next one."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._until: dict[int, float] = {}

    def claim(self, key: int) -> None:
        """Start the key's cooldown, or raise ``CooldownError`` with the seconds left."""
        if self.seconds <= 0:
            return
        now = self.clock()
        left = self._until.get(key, 0.0) - now
        if left > 0:
            raise CooldownError(left)
        if len(self._until) > 10_000:  # forget users whose cooldown ended long ago
            self._until = {k: t for k, t in self._until.items() if t > now}
        self._until[key] = now + self.seconds

    def refund(self, key: int) -> None:
        """Undo a claim whose request was not served (busy, shutting down, an error)."""
        self._until.pop(key, None)


class QuoteService:
    """Validates quote requests, applies the cooldown and asks the model host."""

    def __init__(
        self,
        host: ModelHost,
        *,
        max_seed_chars: int = 200,
        max_quote_chars: int = 400,
        cooldown_seconds: float = 10.0,
        owner_ids: Iterable[int] = (),
        unknown_policy: UnknownPolicy = UnknownPolicy.REPLACE,
        clock: Callable[[], float] = time.monotonic,
        store: Store | None = None,
        guild_models: GuildModels | None = None,
        markdown: bool = True,
        in_flight: InFlight | None = None,
    ):
        self.host = host
        self.markdown = markdown  # replies are Discord messages: escape Markdown (the console says no)
        # Each server's own promoted model (bot/serving/guild_models.py); None: the default model everywhere.
        self.guild_models = guild_models
        self.quote_log = QuoteLog(store) if store is not None else None
        self.max_seed_chars = max_seed_chars
        self.max_quote_chars = max_quote_chars
        self.owner_ids = frozenset(owner_ids)
        self.unknown_policy = unknown_policy
        self.cooldown = Cooldown(cooldown_seconds, clock)
        # The bot's work in flight (shared with the cogs, which track commands, buttons and votes with it).
        self.work = in_flight if in_flight is not None else InFlight()

    @classmethod
    def from_settings(
        cls, settings: Settings, host: ModelHost, store: Store | None = None, **overrides
    ) -> QuoteService:
        values = {
            "max_seed_chars": settings.max_seed_chars,
            "max_quote_chars": settings.max_quote_chars,
            "cooldown_seconds": settings.cooldown_seconds,
            "owner_ids": settings.owner_ids,
            "unknown_policy": settings.unknown_chars,
            "store": store,
            **overrides,
        }
        return cls(host, **values)

    def quote_help(self, prefix: str = "!") -> str:
        """The quote command's help text, with this bot's prefix and limits."""
        low, high = TEMPERATURE_RANGE
        return (
            "Write a quote in the character's voice, starting with your words.\n\n"
            f"{prefix}quote [seed] [--temp T] [--len N] [--rng S]\n"
            "  seed     how the quote begins; leave it out for a whole new quote\n"
            f"  --temp   {low} to {high}, default {DEFAULT_TEMPERATURE}: lower is tamer, higher is wilder\n"
            f"  --len    most characters in the whole quote, {MIN_LENGTH} to {self.max_quote_chars}"
            f" (the default)\n"
            "  --rng    any whole number, to get the same quote again\n\n"
            f"Example: {prefix}quote Hey, --temp 0.7 --len 150\n"
            f"A seed may be up to {self.max_seed_chars} characters. As a slash command, with typed options:\n"
            "/quote seed: Hey, temperature: 0.7 length: 150"
        )

    async def model_for(self, guild_id: int | None) -> str:
        """Which model answers in a guild: its own promoted version (loaded if needed), else the default."""
        if self.guild_models is None or guild_id is None:
            return DEFAULT_MODEL_ID
        return await self.guild_models.model_id(guild_id)

    def parse(
        self,
        text: str,
        user_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> QuoteRequest:
        """The text form (``"Hey, --temp 0.7 --len 150"``) as a request; ``BadOptionError`` names a bad
        option."""
        seed, raw_options = split_options(text)
        options = parse_options(raw_options, self.max_quote_chars)
        return QuoteRequest(seed, options, user_id=user_id, guild_id=guild_id, channel_id=channel_id)

    async def prepare_seed(self, seed: str, guild_id: int | None) -> tuple[str, str]:
        """The model that writes in this server and the seed as that model is fed it; a ``QuotebotError``
        naming the problem if the seed cannot be used (too long, characters the policy refuses)."""
        if len(seed) > self.max_seed_chars:
            raise SeedTooLongError(len(seed), self.max_seed_chars)
        model_id = await self.model_for(guild_id)
        try:
            model_seed = self.host.vocab(model_id).prepare_seed(seed, self.unknown_policy)
        except UnknownCharactersError as exc:
            raise UnknownCharsError(exc.chars, str(exc)) from None
        return model_id, model_seed

    async def check(self, request: QuoteRequest) -> CheckedRequest:
        """Every check of a request without writing it: options in range, the seed's length and
        characters, room left under the length cap, then the requester's cooldown (claimed here).

        A slash command checks before it defers, so its errors can be private; ``write`` the result."""
        try:
            return await self._check(request)
        except Exception as exc:
            metrics.quote_refused(exc)
            raise

    async def _check(self, request: QuoteRequest) -> CheckedRequest:
        asked_at = time.monotonic()
        if self.work.refuses():  # a request already in flight is finished
            raise ShuttingDownError()
        options = request.options
        check_options(options, self.max_quote_chars)
        model_id, model_seed = await self.prepare_seed(request.seed, request.guild_id)
        cap = options.length or self.max_quote_chars
        if len(model_seed) >= cap:
            raise BadOptionError("--len", f"{cap} leaves no room after a {len(model_seed)}-character seed")
        user_id = request.user_id
        cooled = user_id is not None and user_id not in self.owner_ids
        if cooled:
            self.cooldown.claim(user_id)
        return CheckedRequest(request, model_id, model_seed, cap, cooled, asked_at)

    def release(self, checked: CheckedRequest) -> None:
        """Give back the cooldown turn of a checked request that will not be written."""
        if checked.cooled and checked.request.user_id is not None:
            self.cooldown.refund(checked.request.user_id)

    async def write(self, request: QuoteRequest | CheckedRequest, *, remember: bool = True) -> QuoteResult:
        """Write one quote: check it (unless ``check`` already did), complete the seed, and (``remember``)
        store it. A scheduled post passes ``remember=False``: its store records it with the next run."""
        checked = request if isinstance(request, CheckedRequest) else await self.check(request)
        try:
            async with self.track():
                result = await self._write(checked, remember)
        except BaseException as exc:
            self.release(checked)  # the user got nothing, so the turn is not spent
            if isinstance(exc, Exception):
                metrics.quote_refused(exc)
            raise
        metrics.QUOTES_SERVED.inc()
        return result

    async def _write(self, checked: CheckedRequest, remember: bool) -> QuoteResult:
        request, model_id, model_seed = checked.request, checked.model_id, checked.model_seed
        cap = checked.cap
        seed, options, user_id = request.seed, request.options, request.user_id
        # Without --rng the service draws the seed itself, so every stored quote can be written again.
        rng_seed = options.rng_seed if options.rng_seed is not None else secrets.randbelow(RNG_LIMIT)
        generation = GenerationRequest(
            seed=model_seed,
            max_chars=cap,
            sampling=SamplingConfig(temperature=options.temperature),
            rng_seed=rng_seed,
            model_id=model_id,
        )
        completion = await self.host.complete(generation)
        result = QuoteResult(
            reply=self.format_reply(seed, completion),
            seed=seed,
            model_seed=model_seed,
            completion=completion,
            options=options,
            model_id=model_id,
            settings=quote_settings(generation.sampling, cap, rng_seed, completion.stopped),
            model_version=self.model_version(model_id),
        )
        if remember and self.quote_log is not None and user_id is not None:
            quote_id = await self.quote_log.remember(
                guild_id=request.guild_id,
                channel_id=request.channel_id,
                user_id=user_id,
                seed=seed,
                text=result.text,  # the whole quote: not cut to a message, no cut mark
                settings=result.settings,
                model_version=result.model_version,
                asked_at=checked.asked_at,
            )
            result = dataclasses.replace(result, quote_id=quote_id)
        return result

    def model_version(self, model_id: str) -> str:
        """The version name stored with a quote written by ``model_id``."""
        return model_id

    async def record_message(self, quote_id: int | None, channel_id: int, message_id: int) -> bool:
        """Note where a stored quote was posted, so reactions on it become votes; False if not (logged)."""
        return self.quote_log is not None and await self.quote_log.record_message(
            quote_id, channel_id, message_id
        )

    def format_reply(self, seed: str, completion: Completion) -> str:
        """The user's seed as typed, then the generated characters, within Discord's limit.

        Control and format characters are stripped and (``markdown``: the reply is a Discord message)
        Markdown is escaped, in the seed and the generated text alike: the reply shows the words as
        typed, never a heading, a masked link, an open code block or reordered text.
        """
        text = strip_controls(seed + completion.generated)
        if completion.stopped != STOP_END:
            text = text.rstrip() + CUT_MARK
        if not text.strip():
            return "(the model had nothing to say this time; try again)"
        return fit_message(escape_markdown(text) if self.markdown else text)

    @property
    def in_flight(self) -> int:
        return self.work.count

    def track(self, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[None]:
        """Count a request as in flight, so ``close`` waits for it; ``ShuttingDownError`` once closing
        (``InFlight.track``: ``vote=True`` for a vote, ``refusal`` for the text of a refusal).

        A cog wraps its whole reply in this; the ``quote`` inside it is then part of the same request,
        so a request that started before ``close`` is finished, not refused half-way.
        """
        return self.work.track(**kwargs)

    async def close(self, timeout: float = 30.0) -> bool:
        """Refuse new quotes and wait for the work in flight; False if some was still running."""
        return await self.work.drain(timeout)
