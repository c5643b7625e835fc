"""Favourites: reactions as votes, the guild's top quotes, a quote's details, added quotes, forgetting a user.

The rules of the favourites commands, free of discord.py objects (ids and strings in, replies out), so the
Discord cog (``bot/cogs/favourites.py``) and the offline console share them:

    favourites = Favourites(store)
    await favourites.reaction(guild_id=1, message_id=4, user_id=5, emoji_id=None, emoji_name="⭐",
                              by_bot=False, added=True)            # VoteChange.ADDED
    print(await favourites.top(guild_id=1, n=5, can_read=lambda channel_id: True))

Who may add source quotes: members with Manage Server, or with the server's quote-adder role, chosen by
id with ``!setrole adder @Role`` (a name would let anyone with Manage Roles make the role and take it).
Errors are typed ``QuotebotError``s.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.errors import QuotebotError
from bot.quotes.safe_text import escape_markdown, strip_controls
from bot.storage.store import DEFAULT_EMOJI, ForgetResult, Quote, Store
from training.corpus import normalise

SETROLE_HINT = "!setrole adder @Role"  # how admins choose the quote-adder role
TOP_DEFAULT = 5
TOP_MAX = 10
TOP_CANDIDATES = 100  # most favoured quotes read, of which the first TOP_MAX readable ones are listed
# can_read(channel_id): whether the reader may read that channel of the guild (the cog asks Discord).
CanRead = Callable[[int], bool]
MESSAGE_LIMIT = 2000
_JUMP = "https://discord.com/channels/{guild}/{channel}/{message}"
_VARIATION_SELECTOR = "\ufe0f"  # "⭐" and "⭐️" are the same emoji; Discord may send either


class FavouritesError(QuotebotError):
    """A favourites command cannot do what was asked; the message says why."""


class OwnQuoteError(FavouritesError):
    """A requester pressed ⭐ on their own quote: favoured means favoured by others."""

    def __init__(self) -> None:
        super().__init__("that quote was written for you: a star from you is not a vote.")


@dataclass(frozen=True)
class AddQuoteLimits:
    """``!addquote``'s limits: quotes per server, seconds between two adds by one member, characters."""

    max_per_server: int | None = None
    cooldown_seconds: float = 0.0
    max_chars: int = 1900

    @classmethod
    def from_settings(cls, settings) -> AddQuoteLimits:  # bot.settings.Settings
        return cls(
            settings.addquote_max_per_server, settings.addquote_cooldown_seconds, settings.addquote_max_chars
        )


class NotAQuoteError(FavouritesError):
    """The message asked about is not one of the bot's stored quotes (here)."""

    def __init__(self) -> None:
        super().__init__("that message is not one of my quotes in this place, so I know nothing about it.")


class NotAllowedError(FavouritesError):
    """The caller lacks the permission or role a command needs."""


class VoteChange(enum.Enum):
    """What a reaction did to the votes."""

    ADDED = "added"
    REMOVED = "removed"
    UNCHANGED = "unchanged"  # the vote was already there (or already gone)
    IGNORED = "ignored"  # by a bot, another emoji, or not on a stored quote


def jump_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """The link that opens a message in Discord, or None when the quote's message is unknown."""
    if channel_id is None or message_id is None:
        return None
    return _JUMP.format(
        guild=guild_id if guild_id is not None else "@me", channel=channel_id, message=message_id
    )


def emoji_matches(stored: str, emoji_id: int | None, emoji_name: str | None) -> bool:
    """Whether a reaction's emoji is the stored favourite: custom emoji by id (names can change),
    Unicode emoji by their characters (ignoring the variation selector)."""
    if ":" in stored:  # custom, stored as name:id
        return emoji_id is not None and emoji_id == int(stored.rsplit(":", 1)[1])
    if emoji_id is not None or emoji_name is None:
        return False
    return emoji_name.replace(_VARIATION_SELECTOR, "") == stored.replace(_VARIATION_SELECTOR, "")


def show_emoji(stored: str) -> str:
    """The stored form as Discord shows it in a message: ``name:id`` becomes ``<:name:id>``."""
    return f"<:{stored}>" if ":" in stored else stored


def readable(quote: Quote, can_read: CanRead | None) -> bool:
    """Whether a reader may see a quote: a direct-message quote (its channel checked by the caller), or a
    server quote in a channel ``can_read`` says the reader can read; never one with no known channel."""
    if quote.guild_id is None:
        return True
    return can_read is not None and quote.channel_id is not None and can_read(quote.channel_id)


def can_add_quotes(manages_guild: bool, role_ids: Iterable[int], adder_role_id: int | None) -> bool:
    """The rule of ``!addquote``: Manage Server, or the server's quote-adder role (by id; None: no role)."""
    return manages_guild or (adder_role_id is not None and adder_role_id in set(role_ids))


def _short(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, controls stripped and Markdown escaped."""
    text = " ".join(strip_controls(text).split())  # one line per quote in a list
    keep = len(text)
    while True:
        cut = text if keep >= len(text) else text[: max(1, keep - 1)].rstrip() + "…"
        escaped = escape_markdown(cut)
        if len(escaped) <= limit or keep <= 1:
            return escaped
        keep -= max(1, len(escaped) - limit)  # escapes grow it: cut more and try again


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class Favourites:
    """The favourites rules over one store; the favourite emoji is cached per guild (only this sets it)."""

    def __init__(
        self, store: Store, limits: AddQuoteLimits | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.store = store
        self.limits = limits or AddQuoteLimits()
        self._clock = clock
        self._last_add: dict[tuple[int, int], float] = {}  # (guild, member) -> when they last added one
        self._emoji: dict[int, str] = {}

    async def favourite_emoji(self, guild_id: int | None) -> str:
        """The guild's vote emoji in its stored form (⭐ in direct messages)."""
        if guild_id is None:
            return DEFAULT_EMOJI
        if guild_id not in self._emoji:
            self._emoji[guild_id] = await self.store.get_favourite_emoji(guild_id)
        return self._emoji[guild_id]

    async def set_favourite_emoji(self, guild_id: int, emoji: str) -> str:
        """``!setstar``: store the guild's vote emoji; the reply to show."""
        stored = await self.store.set_favourite_emoji(guild_id, emoji)
        self._emoji[guild_id] = stored
        shown = show_emoji(stored)
        return (
            f"Votes are now {shown} reactions on my quotes. Votes given with the old emoji still count; "
            f"removing an old-emoji reaction no longer removes a vote."
        )

    async def reaction(
        self,
        *,
        guild_id: int | None,
        message_id: int,
        user_id: int,
        emoji_id: int | None,
        emoji_name: str | None,
        by_bot: bool,
        added: bool,
    ) -> VoteChange:
        """A reaction was added or removed: a vote or an unvote when it is the favourite emoji, by a person
        other than the quote's requester, on one of the bot's stored quotes (of this guild); anything else
        is ignored. (Removing a reaction always removes that person's vote, if there is one.)"""
        if by_bot:
            return VoteChange.IGNORED
        if not emoji_matches(await self.favourite_emoji(guild_id), emoji_id, emoji_name):
            return VoteChange.IGNORED
        quote = await self.store.quote_by_message(message_id)
        if quote is None or quote.guild_id != guild_id:
            return VoteChange.IGNORED
        if added and quote.requester_id == user_id:
            return VoteChange.IGNORED  # a requester's own star is not a vote: favoured means by others
        if added:
            changed = await self.store.add_vote(quote.id, user_id)
            return VoteChange.ADDED if changed else VoteChange.UNCHANGED
        changed = await self.store.remove_vote(quote.id, user_id)
        return VoteChange.REMOVED if changed else VoteChange.UNCHANGED

    async def quote_here(
        self, quote_id: int, guild_id: int | None, channel_id: int | None, can_read: CanRead | None = None
    ) -> Quote:
        """The stored quote ``quote_id`` if it belongs here (its guild, to a reader of its channel, or its
        own DM channel), else ``NotAQuoteError``: a button or menu never shows or changes another server's
        quote, nor one of a channel the presser cannot read."""
        quote = await self.store.get_quote(quote_id)
        if (
            quote is None
            or quote.guild_id != guild_id
            or (guild_id is None and quote.channel_id != channel_id)
            or not readable(quote, can_read)
        ):
            raise NotAQuoteError()
        return quote

    async def toggle_vote(
        self,
        quote_id: int,
        guild_id: int | None,
        channel_id: int | None,
        user_id: int,
        can_read: CanRead | None = None,
    ) -> tuple[bool, int]:
        """The ⭐ button: a vote, or its removal when the user had voted (by button or reaction; it is
        the same vote). Returns (whether the user's vote is now there, the quote's votes). The quote's
        requester gets ``OwnQuoteError``: their own star is not a vote."""
        quote = await self.quote_here(quote_id, guild_id, channel_id, can_read)
        if quote.requester_id == user_id:
            raise OwnQuoteError()
        voted = await self.store.add_vote(quote.id, user_id)
        if not voted:
            await self.store.remove_vote(quote.id, user_id)
        return voted, await self.store.vote_count(quote.id)

    async def info_of(
        self, quote_id: int, guild_id: int | None, channel_id: int | None, can_read: CanRead | None = None
    ) -> str:
        """The Info button: ``!quoteinfo``'s text for the stored quote ``quote_id``."""
        quote = await self.quote_here(quote_id, guild_id, channel_id, can_read)
        return self.describe(quote, await self.favourite_emoji(guild_id))

    async def top(self, guild_id: int, n: int = TOP_DEFAULT, can_read: CanRead | None = None) -> str:
        """``!top [n]``: the guild's ``n`` most favoured quotes with their votes and links, among those
        posted in channels the reader can read (``can_read(channel_id)``; None: a reader who can read
        no channel of the guild, such as the console, which cannot see Discord's permissions)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= TOP_MAX:
            raise FavouritesError(f"I can list 1 to {TOP_MAX} quotes, not {n!r}.")
        emoji = show_emoji(await self.favourite_emoji(guild_id))
        candidates = await self.store.top_quotes(guild_id, TOP_CANDIDATES)
        quotes = [q for q in candidates if readable(q, can_read)][:n]
        if not quotes and candidates and can_read is None:
            return (
                "Here I cannot see who may read which channel, so I list no server's quotes; "
                "ask with !top on Discord."
            )
        if not quotes:
            return f"No favourites yet: react with {emoji} on one of my quotes to vote for it."
        header = f"Most favoured quotes ({emoji} votes):"
        # Every entry gets an equal share of the message, so n long quotes still fit Discord's limit.
        budget = (MESSAGE_LIMIT - len(header)) // len(quotes) - 1
        return "\n".join([header, *(self._top_line(rank, q, budget) for rank, q in enumerate(quotes, 1))])

    @staticmethod
    def _top_line(rank: int, quote: Quote, budget: int) -> str:
        link = jump_link(quote.guild_id, quote.channel_id, quote.message_id)
        head = f"{rank}. **{quote.votes}** "
        tail = f" {link}" if link else ""
        return head + _short(quote.text, budget - len(head) - len(tail)) + tail

    async def info(
        self, message_id: int, guild_id: int | None, channel_id: int | None, can_read: CanRead | None = None
    ) -> str:
        """``!quoteinfo``: seed, settings, model version and votes of the quote posted as ``message_id``.

        Only in the quote's own guild, to a reader who can read its channel (``can_read``), or in its own
        direct-message channel: a seed is not shown elsewhere. An unreadable quote is "not a quote", so
        the answer does not even confirm that it exists.
        """
        quote = await self.store.quote_by_message(message_id)
        if quote is None:
            raise NotAQuoteError()
        return await self.info_of(quote.id, guild_id, channel_id, can_read)

    @staticmethod
    def describe(quote: Quote, emoji: str = DEFAULT_EMOJI) -> str:
        """A stored quote's details, as ``!quoteinfo`` shows them."""
        settings = dict(quote.settings)
        if quote.seed is None:
            seed = "(removed: the person who asked for it had their data deleted)"
        else:
            seed = f'"{_short(quote.seed, 600)}"' if quote.seed else "(none: a whole new quote)"
        main = [
            f"temperature {settings.pop('temperature', '?')}",
            f"up to {settings.pop('max_chars', '?')} characters",
        ]
        rng = settings.pop("rng_seed", None)
        if rng is not None:
            main.append(f"rng {rng} (--rng {rng} writes it again, with the same seed and model)")
        stopped = settings.pop("stopped", None)
        settings.pop("penalty_exempt", None)  # a long list of characters; not worth a line
        others = ", ".join(f"{key} {value}" for key, value in sorted(settings.items()))
        lines = [
            f"Quote #{quote.id}: {_plural(quote.votes, 'vote')} ({show_emoji(emoji)})",
            f"Seed: {seed}",
            "Settings: " + ", ".join(main),
        ]
        if others:
            lines.append(f"Sampling: {others}")
        lines.append(f"Model: {quote.model_version}")
        ended = f", ended by {stopped}" if stopped else ""
        lines.append(f"Written: {quote.created_at:%Y-%m-%d %H:%M} UTC{ended}")
        return "\n".join(lines)[:MESSAGE_LIMIT]

    async def may_add_quotes(self, guild_id: int, manages_guild: bool, role_ids: Iterable[int]) -> bool:
        """Whether a member (Manage Server or not, with these role ids) may ``!addquote`` here."""
        return can_add_quotes(manages_guild, role_ids, await self.store.get_adder_role(guild_id))

    async def set_adder_role(self, guild_id: int, role_id: int | None, role_name: str = "") -> str:
        """``!setrole adder``: choose (or, with None, clear) the quote-adder role; the reply to show."""
        await self.store.set_adder_role(guild_id, role_id)
        if role_id is None:
            return "No quote-adder role now: only members with Manage Server can add quotes."
        shown = escape_markdown(strip_controls(role_name)) or f"role {role_id}"
        return (
            f"Members with the {shown} role can now add quotes with !addquote. It is kept by id, so "
            "renaming it, or another role taking its name, changes nothing."
        )

    async def add_source_quote(self, guild_id: int, user_id: int, text: str, *, allowed: bool) -> str:
        """``!addquote``: store an admin-added quote for the guild's training; the reply to show.

        Refused when too long, when nothing is left once links and markup are taken out (training drops
        them), within the member's cooldown, and past the server's cap (``AddQuoteLimits``).
        """
        if not allowed:
            raise NotAllowedError(
                "only members with Manage Server, or with this server's quote-adder role (admins choose it "
                f"with {SETROLE_HINT}), can add quotes for training."
            )
        limits = self.limits
        text = text.strip()
        if len(text) > limits.max_chars:
            raise FavouritesError(
                f"a quote may be at most {limits.max_chars} characters long; this one has {len(text)}."
            )
        if not normalise(text):
            raise FavouritesError("nothing would be left to learn from: training drops links and ids.")
        key = (guild_id, user_id)
        waited = self._clock() - self._last_add.get(key, -float("inf"))
        if waited < limits.cooldown_seconds:
            left = limits.cooldown_seconds - waited
            plural = "s" if round(left) != 1 else ""
            raise FavouritesError(f"wait {left:.0f} more second{plural} before adding another quote.")
        source_id = await self.store.add_source_quote(guild_id, user_id, text, limits.max_per_server)
        self._last_add[key] = self._clock()
        undo = f"`retrain exclude a{source_id}` leaves it out"
        return f"Added quote a{source_id}; the next retrain learns from it ({undo})."

    async def forget(self, user_id: int) -> str:
        """``!forgetme``: delete what the store holds about the user; the reply with the counts."""
        return self.forget_reply(await self.store.forget_user(user_id))

    @staticmethod
    def forget_reply(result: ForgetResult) -> str:
        """The counts of ``Store.forget_user`` in words."""
        if result.total == 0:
            return "I hold no data about you: nothing to delete."
        parts = [
            f"deleted {_plural(result.votes_deleted, 'vote')}",
            f"deleted {_plural(result.source_quotes_deleted, 'added quote')}",
            f"deleted {_plural(result.quotes_deleted, 'quote')} you asked for that nobody favoured",
            f"removed your seed from {_plural(result.seeds_blanked, 'quote')} you asked for",
            f"unlinked you from {_plural(result.quotes_unlinked, 'quote')} you asked for",
        ]
        if result.retrains_unlinked:
            parts.append(f"unlinked you from {_plural(result.retrains_unlinked, 'retrain')}")
        if result.schedules_unlinked:
            parts.append(f"unlinked you from {_plural(result.schedules_unlinked, 'schedule')}")
        return (
            "Done: I " + ", ".join(parts) + ". Quotes that others favoured stay as they were posted (opening "
            "words included) with their votes, but nothing links them to you any more."
        )
