"""The quote service with a real tiny model: options, seed rules, cooldowns, replies, closing."""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.errors import (
    BadOptionError,
    BusyError,
    CooldownError,
    SeedTooLongError,
    ShuttingDownError,
    UnknownCharsError,
)
from bot.quotes.favourites import Favourites
from bot.quotes.options import (
    CUT_MARK,
    DEFAULT_TEMPERATURE,
    DISCORD_MESSAGE_LIMIT,
    fit_message,
    parse_options,
    split_options,
)
from bot.quotes.service import QuoteService
from bot.serving.host import ModelHost
from bot.settings import load_settings
from bot.storage.store import Store
from model.generate import STOP_END, STOP_LENGTH, Completion
from model.sampling import SamplingConfig
from model.vocab import UnknownPolicy
from tests.helpers import cells_holding, write_quote


class FakeClock:
    """A clock the test moves by hand, so cooldown tests need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def host(tiny_checkpoint: Path):
    host = ModelHost(tiny_checkpoint, device="cpu", queue_size=8, batch_size=4)
    await host.start()
    yield host
    await host.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(host: ModelHost, clock: FakeClock) -> QuoteService:
    return QuoteService(
        host, max_seed_chars=40, max_quote_chars=120, cooldown_seconds=10, owner_ids={7}, clock=clock
    )


@pytest.mark.parametrize(
    ("text", "seed", "options"),
    [
        ("Hey,", "Hey,", {}),
        ("  Hey, you  ", "Hey, you", {}),
        ("Hey, --temp 0.7 --len 150", "Hey,", {"temp": "0.7", "len": "150"}),
        ("Hey, --temperature=0.5 --length=90 --rng 3", "Hey,", {"temp": "0.5", "len": "90", "rng": "3"}),
        ("Hey, -t 1", "Hey, -t 1", {}),
        ("Hey, --t 1", "Hey,", {"temp": "1"}),
        ("--len 50", "", {"len": "50"}),
        ("wait -- what? well--no", "wait -- what? well--no", {}),
        ("", "", {}),
    ],
)
def test_split_options(text: str, seed: str, options: dict[str, str]):
    assert split_options(text) == (seed, options)


@pytest.mark.parametrize(
    ("text", "option", "words"),
    [
        ("Hey --colour red", "--colour", "I know --temp, --len, --rng"),
        ("Hey --temp", "--temp", "needs a value, e.g. --temp 0.7"),
        ("Hey --temp --len 20", "--temp", "needs a value"),
        ("Hey --len 20 --length 30", "--len", "given twice"),
        ("Hey --len 20 more words", "more", "options go after the seed"),
    ],
)
def test_split_options_errors_name_the_option(text: str, option: str, words: str):
    with pytest.raises(BadOptionError) as caught:
        split_options(text)
    assert caught.value.option == option
    assert words in str(caught.value)


def test_parse_options_defaults_and_values():
    assert parse_options({}, 120).temperature == DEFAULT_TEMPERATURE
    options = parse_options({"temp": "0.5", "len": "60", "rng": "99"}, 120)
    assert (options.temperature, options.length, options.rng_seed) == (0.5, 60, 99)


@pytest.mark.parametrize(
    ("raw", "option"),
    [
        ({"temp": "nan"}, "--temp"),
        ({"temp": "NaN"}, "--temp"),
        ({"temp": "inf"}, "--temp"),
        ({"temp": "hot"}, "--temp"),
        ({"temp": "0.05"}, "--temp"),
        ({"temp": "2.5"}, "--temp"),
        ({"len": "5"}, "--len"),
        ({"len": "121"}, "--len"),
        ({"len": "1.5"}, "--len"),
        ({"rng": "-1"}, "--rng"),
        ({"rng": str(2**63)}, "--rng"),
        ({"rng": "abc"}, "--rng"),
    ],
)
def test_out_of_range_options_refused_by_name(raw: dict[str, str], option: str):
    with pytest.raises(BadOptionError) as caught:
        parse_options(raw, 120)
    assert caught.value.option == option
    assert repr(next(iter(raw.values()))) in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "Hey --" + "x" * 1950,  # an unknown option with a very long name
        "Hey --temp " + "9" * 1950,  # a very long bad value
        "Hey --len " + "\u202e" * 30 + "y" * 1950,
        "Hey --temp 0.5 " + "-" * 1950,
    ],
)
def test_errors_name_a_long_bad_option_briefly(service: QuoteService, text: str):
    with pytest.raises(BadOptionError) as info:
        service.parse(text)
    message = str(info.value)
    assert len(message) < 250 and "\u202e" not in message


async def test_a_seed_of_many_unknown_characters_gets_a_short_answer(host: ModelHost):
    service = QuoteService(host, max_seed_chars=2000, cooldown_seconds=0)
    seed = "".join(chr(0x4E00 + i) for i in range(300))
    with pytest.raises(UnknownCharsError) as info:
        await write_quote(service, user_id=1, text=seed)
    assert len(str(info.value)) < 350 and "300 different characters in all" in str(info.value)


async def test_reply_starts_with_the_seed(service: QuoteService):
    result = await write_quote(service, user_id=1, text="Hey, --temp 0.7 --len 80")
    assert result.reply.startswith("Hey,")
    assert result.options.temperature == 0.7
    assert len(result.completion.text) <= 80
    assert len(result.reply) <= 80 + len(CUT_MARK)


async def test_reply_keeps_the_seed_as_typed_while_the_model_gets_stand_ins(service: QuoteService):
    result = await write_quote(service, user_id=1, text="\u201cWell\u201d \u2026 I --rng 3")
    assert result.model_seed == '"Well" ... I'
    assert result.completion.text.startswith(result.model_seed)
    assert result.reply.startswith("\u201cWell\u201d \u2026 I")
    # After the typed seed comes exactly what the model wrote (a cut quote ends with the mark instead).
    rest = result.reply.removeprefix(result.seed).removesuffix(CUT_MARK)
    assert rest.rstrip() == result.completion.generated.rstrip()


async def test_no_seed_writes_a_whole_quote(service: QuoteService):
    result = await write_quote(service, user_id=1, text="--rng 5")
    assert result.seed == "" and result.reply


async def test_same_rng_gives_the_same_quote(service: QuoteService):
    first = await write_quote(service, user_id=1, text="The --rng 77 --temp 1.2")
    second = await write_quote(service, user_id=2, text="The --rng 77 --temp 1.2")
    assert first.reply == second.reply


async def test_unknown_characters_refused_with_their_names(service: QuoteService):
    with pytest.raises(UnknownCharsError) as caught:
        await write_quote(service, user_id=1, text="Hey \u2603 there")
    assert "\u2603" in str(caught.value) and "snowman" in str(caught.value)
    assert caught.value.chars == ["\u2603"]


async def test_drop_policy_drops_unknown_characters(host: ModelHost):
    service = QuoteService(host, unknown_policy=UnknownPolicy.DROP, cooldown_seconds=0)
    result = await write_quote(service, user_id=1, text="Hey \u2603")
    assert result.model_seed == "Hey "
    assert result.reply.startswith("Hey \u2603")


async def test_seed_too_long(service: QuoteService):
    with pytest.raises(SeedTooLongError) as caught:
        await write_quote(service, user_id=1, text="a" * 41)
    assert "41 characters" in str(caught.value) and "40" in str(caught.value)


async def test_length_option_must_leave_room_after_the_seed(service: QuoteService):
    with pytest.raises(BadOptionError) as caught:
        await write_quote(service, user_id=1, text="a" * 30 + " --len 20")
    assert caught.value.option == "--len"


async def test_cooldown_per_user_with_seconds_left(service: QuoteService, clock: FakeClock):
    await write_quote(service, user_id=1, text="Hi")
    clock.now += 3.2
    with pytest.raises(CooldownError) as caught:
        await write_quote(service, user_id=1, text="Hi")
    assert math.isclose(caught.value.retry_after, 6.8)
    assert "7 seconds" in str(caught.value)
    await write_quote(service, user_id=2, text="Hi")  # another user is not held up
    clock.now += 7
    await write_quote(service, user_id=1, text="Hi")


async def test_owners_skip_the_cooldown(service: QuoteService):
    await write_quote(service, user_id=7, text="Hi")
    await write_quote(service, user_id=7, text="Hi")


async def test_a_refused_request_does_not_start_the_cooldown(service: QuoteService):
    with pytest.raises(BadOptionError):
        await write_quote(service, user_id=1, text="Hi --temp 9")
    with pytest.raises(UnknownCharsError):
        await write_quote(service, user_id=1, text="Hi \u2603")
    await write_quote(service, user_id=1, text="Hi")


async def test_busy_says_so_and_refunds_the_cooldown(tiny_checkpoint: Path, clock: FakeClock):
    host = ModelHost(tiny_checkpoint, device="cpu", queue_size=1, batch_size=1)
    await host.start()
    try:
        service = QuoteService(host, cooldown_seconds=60, clock=clock)
        outcomes = await asyncio.gather(
            *(write_quote(service, user_id=user, text="Hi") for user in range(1, 5)), return_exceptions=True
        )
        busy_users = [user for user, o in zip(range(1, 5), outcomes, strict=True) if isinstance(o, BusyError)]
        assert busy_users
        # No quote was written for them, so they may ask again at once.
        result = await write_quote(service, user_id=busy_users[0], text="Hi")
        assert result.reply.startswith("Hi")
    finally:
        await host.close()


def test_format_reply_fits_discord_and_marks_cut_quotes(service: QuoteService):
    long = Completion(seed="a", text="a" + "b" * 2500, stopped=STOP_LENGTH)
    reply = service.format_reply("A", long)
    assert len(reply) == DISCORD_MESSAGE_LIMIT and reply.startswith("Ab") and reply.endswith(CUT_MARK)
    ended = Completion(seed="Hi", text="Hi there.", stopped=STOP_END)
    assert service.format_reply("Hi", ended) == "Hi there."
    cut = Completion(seed="Hi", text="Hi there ", stopped=STOP_LENGTH)
    assert service.format_reply("Hi", cut) == "Hi there" + CUT_MARK
    assert "nothing to say" in service.format_reply("", Completion(seed="", text="", stopped=STOP_END))
    hidden = Completion(seed="\u200b", text="\u200b\u202e", stopped=STOP_END)
    assert "nothing to say" in service.format_reply("\u200b", hidden)  # only invisible characters


HOSTILE = [
    ("# Big heading", "\\# Big heading"),
    ("[free nitro](https://evil.example/x)", "\\[free nitro](https://evil.example/x)"),
    ("```py\nopen fence", "\\`\\`\\`py\nopen fence"),
    (
        "**bold** ||spoiler|| ~~gone~~ __under__",
        "\\*\\*bold\\*\\* \\|\\|spoiler\\|\\| \\~\\~gone\\~\\~ \\_\\_under\\_\\_",
    ),
    ("> quoted\n- listed", "\\> quoted\n\\- listed"),
    ("abc\u202edef\u200bghi\u2066jkl\x1b[31mred\x00\tend", "abcdefghijkl[31mredend"),
]


@pytest.mark.parametrize(("typed", "shown"), HOSTILE)
def test_echoed_seed_and_generated_text_are_escaped_and_stripped(
    service: QuoteService, typed: str, shown: str
):
    # As the seed (echoed) and as generated text (the model may write anything its vocabulary holds).
    assert service.format_reply(typed, Completion(seed=typed, text=typed, stopped=STOP_END)) == shown
    written = Completion(seed="", text=typed, stopped=STOP_END)
    assert service.format_reply("", written) == shown
    # Newlines stay; a link outside a mask is left whole so it still works.
    plain = Completion(seed="", text="a_b\nsee https://example.com/a_b", stopped=STOP_END)
    assert service.format_reply("", plain) == "a\\_b\nsee https://example.com/a_b"


def test_the_console_strips_but_does_not_escape(host: ModelHost):
    console = QuoteService(host, markdown=False)
    typed = "# **Hi**\u202e there"
    assert (
        console.format_reply(typed, Completion(seed=typed, text=typed, stopped=STOP_END)) == "# **Hi** there"
    )


def test_escaping_agrees_with_discord_py():
    import discord.utils

    from bot.quotes.safe_text import escape_markdown

    samples = [t for t, _ in HOSTILE] + ["a_b https://x.com/a_b*c <https://y.org/_> `x` \\ ###h", "-a\n  - b"]
    for text in samples:
        assert escape_markdown(text) == discord.utils.escape_markdown(text), text


def test_fit_message():
    assert fit_message("short") == "short"
    assert fit_message("x" * 10, limit=5) == "xxxx" + CUT_MARK


async def test_close_waits_for_quotes_in_flight_then_refuses(service: QuoteService):
    task = asyncio.create_task(write_quote(service, user_id=1, text="Hi --len 100"))
    await asyncio.sleep(0)
    assert service.in_flight == 1
    assert await service.close(timeout=10)
    assert task.done() and task.result().reply.startswith("Hi")
    with pytest.raises(ShuttingDownError):
        await write_quote(service, user_id=2, text="Hi")


def test_help_names_the_options_and_limits(host: ModelHost):
    service = QuoteService(host, max_seed_chars=40, max_quote_chars=120)
    text = service.quote_help("?")
    for words in ("?quote [seed]", "--temp", "--len", "10 to 120", "--rng", "40 characters", "/quote"):
        assert words in text


def test_from_settings(host: ModelHost, tiny_checkpoint: Path):
    settings = load_settings(
        {"MAX_SEED_CHARS": "30", "QUOTE_COOLDOWN_SECONDS": "3", "OWNER_IDS": "5", "UNKNOWN_CHARS": "refuse"},
        env_file=None,
    )
    service = QuoteService.from_settings(settings, host)
    assert service.max_seed_chars == 30
    assert service.cooldown.seconds == 3
    assert service.owner_ids == {5}
    assert service.unknown_policy is UnknownPolicy.REFUSE


async def test_a_request_begun_before_close_is_finished_not_refused(service: QuoteService):
    go_on = asyncio.Event()

    async def cog_request():  # as the cog does: tracked from the start, the quote asked for later
        async with service.track():
            await go_on.wait()
            return await write_quote(service, user_id=1, text="Hi")

    request = asyncio.create_task(cog_request())
    await asyncio.sleep(0)
    closing = asyncio.create_task(service.close(timeout=10))
    await asyncio.sleep(0)
    with pytest.raises(ShuttingDownError):  # a new request is refused...
        await write_quote(service, user_id=2, text="Hi")
    go_on.set()
    assert (await request).reply.startswith("Hi")  # ...the one in flight is served
    assert await closing


# -- storing every quote --


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "quotes.db", busy_timeout=0.3) as store:
        yield store


async def test_every_quote_is_stored_with_its_seed_settings_and_model(host: ModelHost, store: Store):
    service = QuoteService(host, max_quote_chars=120, cooldown_seconds=0, store=store)
    result = await write_quote(
        service, user_id=3, text="\u201cWell\u201d I --temp 0.6 --len 90", guild_id=1, channel_id=2
    )
    assert result.quote_id is not None
    stored = await store.get_quote(result.quote_id)
    assert stored is not None
    assert (stored.guild_id, stored.channel_id, stored.requester_id) == (1, 2, 3)
    assert stored.message_id is None  # the cog records it once the reply is sent
    assert stored.seed == "\u201cWell\u201d I"  # as typed, not the model's stand-ins
    assert stored.text == stored.seed + result.completion.generated  # whole: no cut mark
    assert stored.model_version == "default"
    assert stored.settings["temperature"] == 0.6 and stored.settings["max_chars"] == 90
    assert stored.settings["stopped"] == result.completion.stopped
    assert stored.settings["no_repeat_ngram"] == SamplingConfig().no_repeat_ngram  # every knob, not a few
    # No --rng was given: the service drew one and stored it, and it writes the same quote again.
    rng = stored.settings["rng_seed"]
    again = await write_quote(service, user_id=4, text=f"\u201cWell\u201d I --temp 0.6 --len 90 --rng {rng}")
    assert again.completion.text == result.completion.text


async def test_the_message_id_is_recorded_on_the_stored_quote(host: ModelHost, store: Store):
    service = QuoteService(host, cooldown_seconds=0, store=store)
    result = await write_quote(service, user_id=3, text="Hi", guild_id=1, channel_id=2)
    assert await service.record_message(result.quote_id, channel_id=2, message_id=99)
    stored = await store.quote_by_message(99)
    assert stored is not None and stored.id == result.quote_id
    assert not await service.record_message(None, channel_id=2, message_id=100)  # an unstored quote
    assert not await service.record_message(result.quote_id + 1000, channel_id=2, message_id=101)


async def test_a_busy_store_still_returns_the_quote_and_logs_the_loss(
    host: ModelHost, store: Store, caplog: pytest.LogCaptureFixture
):
    service = QuoteService(host, cooldown_seconds=0, store=store)
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the retry window
    try:
        with caplog.at_level(logging.WARNING, logger="bot.quotes.quote_log"):
            result = await write_quote(service, user_id=3, text="Hi", guild_id=1, channel_id=2)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert result.reply.startswith("Hi") and result.quote_id is None
    (record,) = [r for r in caplog.records if "not stored" in r.getMessage()]
    assert "busy" in record.getMessage() and record.levelno == logging.WARNING
    assert not await service.record_message(result.quote_id, channel_id=2, message_id=5)
    assert await store.top_quotes(1) == []


async def test_without_a_store_quotes_are_not_stored(host: ModelHost):
    result = await write_quote(QuoteService(host, cooldown_seconds=0), user_id=3, text="Hi")
    assert result.quote_id is None and result.settings["rng_seed"] >= 0


async def test_forgetme_covers_a_quote_still_being_written(host: ModelHost, store: Store, tmp_path: Path):
    service = QuoteService(host, cooldown_seconds=0, store=store)
    gate = threading.Event()
    host._executor.submit(gate.wait)  # the model is busy elsewhere: the quote stays in flight
    try:
        task = asyncio.create_task(
            write_quote(service, user_id=3, text="My secret", guild_id=1, channel_id=2)
        )
        other = asyncio.create_task(write_quote(service, user_id=4, text="Hey", guild_id=1, channel_id=2))
        await asyncio.sleep(0.05)
        assert not task.done()
        await Favourites(store).forget(3)  # !forgetme, while the quote is being written
    finally:
        gate.set()
    result, kept = await task, await other
    assert result.reply.startswith("My secret")  # the requester still gets the reply...
    assert result.quote_id is None  # ...but nothing of it is stored
    assert cells_holding(store.path, 3) == [] and cells_holding(store.path, "My secret") == []
    assert kept.quote_id is not None  # another member's quote of the same moment is stored as usual
