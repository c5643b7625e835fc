"""The offline console: commands through the real service, and ``python -m bot`` in a pipe."""

from __future__ import annotations

import io
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.console import CONSOLE_USER_ID, Console, StopConsole, read_lines
from bot.quotes.favourites import Favourites
from bot.quotes.service import QuoteService
from bot.serving.host import ModelHost
from bot.storage.store import Store
from tests.helpers import REPO


@pytest.fixture
async def console(tiny_checkpoint: Path):
    host = ModelHost(tiny_checkpoint, device="cpu")
    await host.start()
    service = QuoteService(host, max_seed_chars=30, max_quote_chars=100, owner_ids={CONSOLE_USER_ID})
    yield Console(service, prefix="!")
    await host.close()


async def test_quote_with_or_without_prefix(console: Console):
    for line in ("!quote Hey,", "quote Hey,", "/quote Hey,", "  QUOTE Hey,  \n"):
        reply = await console.handle(line)
        assert reply is not None and reply.startswith("Hey,")


async def test_console_user_has_no_cooldown(console: Console):
    first = await console.handle("!quote Hi --rng 1")
    second = await console.handle("!quote Hi --rng 1")
    assert first == second and first.startswith("Hi")


async def test_help_lists_commands_and_shows_quote_help(console: Console):
    listing = await console.handle("help")
    for words in ("!quote [seed]", "!help", "quit"):
        assert words in listing
    details = await console.handle("!help quote")
    assert "--temp" in details and "--len" in details and "10 to 100" in details
    assert "no command 'dance'" in await console.handle("help dance")


async def test_errors_are_friendly_replies(console: Console):
    assert "--temp" in await console.handle("!quote Hi --temp nan")
    assert "snowman" in await console.handle("!quote Hi \u2603")
    assert "31 characters" in await console.handle("!quote " + "a" * 31)
    assert "type help" in await console.handle("!dance")


async def test_blank_lines_and_quit(console: Console):
    assert await console.handle("   \n") is None
    with pytest.raises(StopConsole):
        await console.handle("quit")


async def test_unexpected_error_shows_an_id_that_the_log_has(
    console: Console, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    # The one way to make the real service hit a bug on purpose.
    monkeypatch.setattr(console.service, "write", broken)
    with caplog.at_level(logging.ERROR):
        reply = await console.handle("!quote Hi")
    error_id = reply.split("error id ")[1].split(")")[0]
    assert len(error_id) == 8
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_run_answers_each_line_and_stops_at_quit(console: Console):
    out = io.StringIO()
    stream = io.StringIO("!quote Hey,\n\nhelp\nquit\n!quote never\n")
    await console.run(read_lines(stream), out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Hey,")
    assert "never" not in out.getvalue()


@pytest.fixture
async def stored_console(tiny_checkpoint: Path, tmp_path: Path):
    host = ModelHost(tiny_checkpoint, device="cpu")
    await host.start()
    async with await Store.open(tmp_path / "console.db") as store:
        service = QuoteService(host, owner_ids={CONSOLE_USER_ID}, store=store)
        yield Console(service, prefix="!", favourites=Favourites(store)), store
    await host.close()


async def test_console_quotes_are_stored_and_top_and_forget_work(stored_console):
    console, store = stored_console
    reply = await console.handle("!quote Hey, --rng 4")
    stored = await store.get_quote(1)
    assert stored is not None and reply.startswith(stored.text.rstrip()[:10])
    assert (stored.guild_id, stored.channel_id, stored.requester_id, stored.seed) == (None, None, 0, "Hey,")
    # A server's favourites, from a database the bot shares: a quote posted on Discord with a vote.
    posted = await store.add_quote(
        guild_id=5, channel_id=6, requester_id=7, seed="Hi", text="Hi there.", settings={}, model_version="v1"
    )
    await store.set_quote_message(posted, 6, 8)
    await store.add_vote(posted, 9)
    top = await console.handle("top 5")
    # The console cannot tell a private channel from a public one, so it shows no server's quotes.
    assert "Hi there" not in top and "channels/5/6" not in top and "I list no server's quotes" in top
    assert "No favourites yet" in await console.handle("!top 6 3")
    assert "deleted 1 vote" in await console.handle("forget 9")
    assert "No favourites yet" in await console.handle("top 5")
    assert "usage: top SERVER_ID [n]" in await console.handle("top")
    assert "usage: forget USER_ID" in await console.handle("forget bob")
    assert "1 to 10" in await console.handle("top 5 50")
    assert "forget USER_ID" in await console.handle("help") and "request" in await console.handle(
        "help forget"
    )


async def test_a_console_without_a_store_says_so(console: Console):
    assert "no quote database" in await console.handle("top 5")


def bot_process(env: dict[str, str], cwd: Path, *args: str, **popen) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DISCORD_")}
    full_env.update({"PYTHONPATH": str(REPO), "DEVICE": "cpu", **env})
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=full_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


@pytest.mark.slow
def test_console_in_a_pipe(tmp_path: Path, tiny_checkpoint: Path):
    proc = bot_process({"MODEL_PATH": str(tiny_checkpoint)}, tmp_path, "--console", stdin=subprocess.PIPE)
    out, err = proc.communicate("!quote Hey,\n!quote Hi --len 30\n", timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Hey,") and lines[1].startswith("Hi")
    assert "No DISCORD_TOKEN" not in err


@pytest.mark.slow
def test_without_a_token_the_console_starts_and_says_so(tmp_path: Path, tiny_checkpoint: Path):
    proc = bot_process({"MODEL_PATH": str(tiny_checkpoint)}, tmp_path, stdin=subprocess.PIPE)
    out, err = proc.communicate("help\n", timeout=60)
    assert proc.returncode == 0, err
    assert "No DISCORD_TOKEN is configured" in err and "offline console" in err
    assert "!quote [seed]" in out


@pytest.mark.slow
def test_wrong_settings_exit_2_naming_the_variable(tmp_path: Path):
    (tmp_path / ".env").write_text("MAX_SEED_CHARS=lots\n", encoding="utf-8")
    proc = bot_process({}, tmp_path, "--console", stdin=subprocess.DEVNULL)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "MAX_SEED_CHARS" in err and "not a whole number" in err


@pytest.mark.slow
def test_sigterm_stops_a_waiting_console_cleanly(tmp_path: Path, tiny_checkpoint: Path):
    proc = bot_process({"MODEL_PATH": str(tiny_checkpoint)}, tmp_path, "--console", stdin=subprocess.PIPE)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while "loaded model" not in proc.stderr.readline():  # the console is up and waiting for input
        assert time.monotonic() < deadline and proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_console_stores_in_db_path_and_a_bad_one_exits_2(tmp_path: Path, tiny_checkpoint: Path):
    db = tmp_path / "data" / "quotes.db"
    env = {"MODEL_PATH": str(tiny_checkpoint), "DB_PATH": str(db)}
    proc = bot_process(env, tmp_path, "--console", stdin=subprocess.PIPE)
    out, err = proc.communicate("!quote Hey, --rng 1\n", timeout=60)
    assert out.startswith("Hey,")
    assert proc.returncode == 0, err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT seed, requester_id FROM quotes").fetchall() == [("Hey,", CONSOLE_USER_ID)]
    folder = tmp_path / "a-folder"
    folder.mkdir()
    proc = bot_process({**env, "DB_PATH": str(folder)}, tmp_path, "--console", stdin=subprocess.PIPE)
    _out, err = proc.communicate("!quote Hey,\n", timeout=60)
    assert proc.returncode == 2
    assert "is a folder" in err and "Traceback" not in err
