"""The bot end to end: the real discord.py client against the local Discord-compatible test server.

Each test starts a fresh server and the real ``QuoteBot`` (or ``python -m bot`` as a subprocess) with a
tiny checkpoint whose vocabulary also knows ``@``, ``<``, ``>`` and digits, so mentions can be seeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.app import QuoteBot, ShardedQuoteBot, create_bot, friendly_error, unwrap
from bot.cogs import reply
from bot.errors import BusyError, CooldownError, QuotebotError
from bot.settings import load_settings
from tests.discord.helpers import ask, bot_settings, running
from tests.discord_server import DiscordServer
from tests.helpers import REPO

pytestmark = pytest.mark.discord


async def test_prefix_quote_replies_with_the_seed(server_and_bot):
    server, _bot = server_and_bot
    sent, reply = await ask(server, "!quote Hey,")
    assert reply.content.startswith("Hey,")
    assert len(reply.content) <= 2000
    assert reply.message_reference["message_id"] == str(sent.id)
    # Sent even if the user deletes their message meanwhile.
    (post,) = server.calls("POST", "/channels/{channel_id}/messages")
    assert post.json["message_reference"]["fail_if_not_exists"] is False
    assert not reply.pings()  # not even the replied-to author
    assert server.calls("POST", "/channels/{channel_id}/typing")  # typing while generating


async def test_slash_quote_through_an_interaction(server_and_bot):
    server, _bot = server_and_bot
    record = await server.run_slash_command(server.member, "quote", {"seed": "Hey,", "length": 60})
    reply = await server.wait_for_message(timeout=10)
    assert reply.content.startswith("Hey,")
    assert len(reply.content) <= 61
    assert record.response_type == 5  # deferred: the "thinking" state while the model writes
    assert reply in record.messages


async def test_slash_quote_errors_answer_the_interaction(server_and_bot):
    server, _bot = server_and_bot
    record = await server.run_slash_command(server.member, "quote", {"seed": "Hey \u2603"})
    reply = await server.wait_for_message(timeout=10)
    assert "snowman" in reply.content
    assert reply in record.messages
    # Checked before deferring: the error is the interaction's only, private, message.
    assert record.response_type == 4 and reply.ephemeral and record.private


async def test_mentions_in_a_seed_ping_nobody(server_and_bot):
    server, _bot = server_and_bot
    seed = f"@everyone and <@{server.admin.id}> listen"
    _sent, reply = await ask(server, f"!quote {seed}")
    assert reply.content.startswith(seed)
    assert reply.allowed_mentions is not None
    assert reply.allowed_mentions.get("parse") == []
    assert not reply.pings()


async def test_cooldown_says_how_long_to_wait(server_and_bot):
    server, _bot = server_and_bot
    _sent, first = await ask(server, "!quote Hi")
    assert first.content.startswith("Hi")
    _sent, second = await ask(server, "!quote Hi again")
    assert "slow down" in second.content and "seconds" in second.content
    # Another member is not held up by the first one's cooldown.
    _sent, other = await ask(server, "!quote Hi", user=server.admin)
    assert other.content.startswith("Hi")


async def test_unknown_characters_named_in_the_reply(server_and_bot):
    server, _bot = server_and_bot
    _sent, reply = await ask(server, "!quote Hey \u2603")
    assert "\u2603" in reply.content and "snowman" in reply.content


async def test_over_long_seed_refused(server_and_bot):
    server, _bot = server_and_bot
    _sent, reply = await ask(server, "!quote " + "a" * 61)
    assert "61 characters" in reply.content and "60" in reply.content


async def test_bad_option_named_in_the_reply(server_and_bot):
    server, _bot = server_and_bot
    _sent, reply = await ask(server, "!quote Hi --temp nan")
    assert "--temp" in reply.content and "'nan'" in reply.content
    # A refused request does not start the cooldown.
    _sent, reply = await ask(server, "!quote Hi")
    assert reply.content.startswith("Hi")


async def test_a_bug_is_logged_with_the_id_the_reply_shows(
    server_and_bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    server, bot = server_and_bot

    async def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in the service")

    monkeypatch.setattr(bot.service, "write", broken)  # the one way to cause a bug on purpose
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        _sent, reply = await ask(server, "!quote Hi")
    assert "Something went wrong" in reply.content and "a bug" not in reply.content
    error_id = reply.content.split("`")[1]
    (record,) = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info and "a bug in the service" in str(record.exc_info[1])


async def test_help_shows_the_command_docs(server_and_bot):
    server, _bot = server_and_bot
    _sent, listing = await ask(server, "!help")
    assert "quote" in listing.content
    _sent, details = await ask(server, "!help quote")
    assert "--temp" in details.content and "--len" in details.content


async def test_other_prefixed_text_is_ignored(server_and_bot):
    server, _bot = server_and_bot
    await server.user_sends(server.member, "!dance")
    _sent, reply = await ask(server, "!quote Hi")
    assert reply.content.startswith("Hi")  # the first bot message is the quote: nothing answered !dance


async def test_dropped_connection_is_resumed_and_the_bot_still_answers(server_and_bot):
    server, _bot = server_and_bot
    _sent, first = await ask(server, "!quote Hey,")
    assert first.content.startswith("Hey,")
    async with server.outage():  # sent while the bot is cut off: it must come back by RESUME replay
        await server.user_sends(server.admin, "!quote Back")
    reply = await server.wait_for_message(server.channel, timeout=15)
    assert reply.content.startswith("Back")
    assert server.gateway.resumes
    assert len(server.gateway.identifies) == 1  # resumed, not a new session


async def test_commands_are_synced_only_when_asked(discord_server: DiscordServer, mention_checkpoint: Path):
    settings = bot_settings(discord_server, mention_checkpoint, SYNC_COMMANDS="false")
    async with running(settings):
        pass
    assert not discord_server.calls("PUT", "/applications/{application_id}/commands")


async def test_close_finishes_the_reply_in_flight_then_closes_the_host(server_and_bot):
    server, bot = server_and_bot
    await server.user_sends(server.member, "!quote Hi --len 120")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    # The command has started (typing, generating or sending). The typing call, not the count alone: the
    # schedule loop's first tick is counted in flight too, and closing during it would refuse the command.
    typing = "/channels/{channel_id}/typing"
    while bot.service.in_flight == 0 or not server.calls("POST", typing):
        assert loop.time() < deadline, "the quote command never started"
        await asyncio.sleep(0.001)
    await bot.close()
    assert bot.is_closed()
    assert not bot.host.started
    reply = await server.wait_for_message(server.channel, timeout=1)  # sent before the bot closed
    assert reply.content.startswith("Hi")


async def test_sharded_bot_when_shard_count_is_set(discord_server: DiscordServer, mention_checkpoint: Path):
    settings = bot_settings(discord_server, mention_checkpoint, SHARD_COUNT="1")
    async with running(settings) as bot:
        assert isinstance(bot, ShardedQuoteBot)
        _sent, reply = await ask(discord_server, "!quote Hey,")
        assert reply.content.startswith("Hey,")


def subprocess_env(server: DiscordServer, checkpoint: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    env.update(server.env())
    env.update({"PYTHONPATH": str(REPO), "MODEL_PATH": str(checkpoint), "DEVICE": "cpu", **extra})
    return env


async def run_bot_process(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.slow
async def test_wrong_token_ends_with_a_clear_message(
    discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path
):
    wrong = "MTIz.wrong-token.ZZZ_not_this_one"
    env = subprocess_env(discord_server, mention_checkpoint, DISCORD_TOKEN=wrong, LOG_LEVEL="DEBUG")
    proc = await run_bot_process(env, tmp_path)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = (out + err).decode()
    assert proc.returncode == 2  # configuration: a supervisor should not restart it
    assert "Discord refused the token in DISCORD_TOKEN" in text
    assert wrong not in text and "wrong-token" not in text  # not in any log line, even at DEBUG
    assert "Traceback" not in text


@pytest.mark.slow
async def test_a_damaged_database_file_ends_with_one_clear_line(
    discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path
):
    damaged = tmp_path / "quotes.db"
    damaged.write_text("this is not an SQLite database, just words " * 20)
    env = subprocess_env(discord_server, mention_checkpoint, DB_PATH=str(damaged))
    proc = await run_bot_process(env, tmp_path)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, err.decode()
    assert "Traceback" not in err.decode()
    error_lines = [line for line in err.decode().splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "quotes.db" in error_lines[0] and "not a database" in error_lines[0]
    assert damaged.read_text().startswith("this is not an SQLite database")  # left as it was


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "ctrl-c"])
async def test_python_m_bot_answers_and_stops_cleanly_on_a_signal(
    discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path, stop: signal.Signals
):
    # DEBUG: discord.py logs every gateway event, and still the token must appear nowhere.
    env = subprocess_env(discord_server, mention_checkpoint, LOG_LEVEL="DEBUG")
    proc = await run_bot_process(env, tmp_path)
    try:
        await discord_server.wait_for_session(timeout=60)
        _sent, reply = await ask(discord_server, "!quote Hey,")
        assert reply.content.startswith("Hey,")
        assert len(discord_server.gateway.connections) == 1
        proc.send_signal(stop)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    assert "finishing replies in flight" in err.decode()
    assert discord_server.gateway.connections == []  # it closed its gateway connection
    assert discord_server.token not in (out + err).decode()


def test_friendly_error_for_each_typed_error():
    assert "try again shortly" in friendly_error(BusyError())
    wrapped = commands.CommandInvokeError(CooldownError(4.2))
    assert "5 seconds" in friendly_error(wrapped)

    async def callback(interaction: discord.Interaction) -> None:
        pass

    command = app_commands.Command(name="quote", description="a quote", callback=callback)
    hybrid = commands.HybridCommandError(app_commands.CommandInvokeError(command, BusyError()))
    assert isinstance(unwrap(hybrid), BusyError)
    assert friendly_error(commands.CommandInvokeError(RuntimeError("bug"))) is None
    missing = commands.BadArgument("that is not a number")
    assert "that is not a number" in friendly_error(missing, "?") and "?help" in friendly_error(missing, "?")


def test_whole_bot_mentions_off_and_message_content_on(tmp_path: Path, tiny_checkpoint: Path):
    bot = create_bot(load_settings({"MODEL_PATH": str(tiny_checkpoint)}, env_file=None))
    assert isinstance(bot, QuoteBot)
    assert bot.intents.message_content and bot.intents.guilds
    assert bot.allowed_mentions is not None
    assert bot.allowed_mentions.to_dict() == discord.AllowedMentions.none().to_dict()


async def test_every_reply_fits_discord_even_a_long_error(server_and_bot):
    # Discord refuses a message over 2,000 characters (the test server too: 400), and the member would
    # hear nothing. Every answer goes through bot.cogs.reply; errors too, through the one error handler.
    server, bot = server_and_bot

    @commands.command(name="longanswer")
    async def long_answer(ctx: commands.Context) -> None:
        await reply(ctx, "x" * 3000)

    @commands.command(name="longerror")
    async def long_error(ctx: commands.Context) -> None:
        raise QuotebotError("that went wrong: " + "y" * 3000)

    bot.add_command(long_answer)
    bot.add_command(long_error)
    for command, letter in (("!longanswer", "x"), ("!longerror", "y")):
        _sent, answer = await ask(server, command)
        assert len(answer.content) == 2000 and answer.content.endswith("…")
        assert answer.content.count(letter) > 1900
    # And a real command's error about a long bad option and about many strange characters.
    _sent, answer = await ask(server, "!quote Hey --" + "z" * 1900)
    assert "I don't know this option" in answer.content and len(answer.content) < 300
    _sent, answer = await ask(server, "!quote " + "".join(chr(0x4E00 + i) for i in range(50)))
    assert "50 different characters in all" in answer.content
    assert not [r for r in server.requests if r.status == 400]


GUILD_ONLY = [
    "!top",
    "!addquote Mondays are a rumour.",
    "!setstar ⭐",
    "!setrole adder",
    "!schedule #general every 6h",
    "!schedules",
    "!unschedule 1",
    "!resume 1",
    "!retrain",
    "!retrain status",
    "!retrain cancel",
    "!model",
    "!rollback",
]


@pytest.mark.parametrize("command", GUILD_ONLY)
async def test_guild_only_commands_refuse_a_direct_message_clearly(
    server_and_bot, command: str, caplog: pytest.LogCaptureFixture
):
    server, _bot = server_and_bot
    dm = server.world.dm_channel(server.admin)
    with caplog.at_level(logging.ERROR):
        await server.user_sends(server.admin, command, channel=dm)
        answer = await server.wait_for_message(dm, timeout=10)
    assert "only in a server" in answer.content, answer.content
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback, no error id
