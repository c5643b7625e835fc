"""bot.logging_setup: text and JSON lines, with the bot token and interaction tokens redacted, and the
error id, guild id and command on JSON lines where known."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from bot import logging_setup
from bot.errors import log_unexpected
from bot.log_context import bind_log_fields, current_log_fields
from bot.logging_setup import REDACTED, setup_logging
from bot.settings import Secret

TOKEN = "MTIzNDU2Nzg5.GhIjKl.bot-token-that-must-never-show"
INTERACTION = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OnNlY3JldA-interaction-token"


@pytest.fixture
def root_logger():
    """setup_logging changes the root logger: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    while logging_setup._installed:
        root.removeHandler(logging_setup._installed.pop())
    root.handlers[:] = handlers
    root.setLevel(level)


def log_every_kind_of_secret(logger: logging.Logger) -> str:
    """Lines as discord.py and the bot write them, each holding a secret; returns the error id."""
    logger.debug("POST https://discord.com/api/v10/interactions/123/%s/callback: 204", INTERACTION)
    logger.debug("PATCH https://discord.com/api/v10/webhooks/456/%s/messages/@original", INTERACTION)
    logger.debug("WebSocket Event: %s", {"t": "INTERACTION_CREATE", "d": {"id": "1", "token": INTERACTION}})
    logger.info('{"token": "%s"} and Bot %s', INTERACTION, TOKEN)
    try:
        raise RuntimeError(f"login with {TOKEN} failed")
    except RuntimeError as exc:
        return log_unexpected(logger, exc, "command quote")


def test_json_lines_parse_carry_the_context_and_hold_no_secret(root_logger, capsys):
    setup_logging("DEBUG", secrets=[Secret(TOKEN)], fmt="json")
    logger = logging.getLogger("bot.test")

    async def request() -> str:  # one request's task: its fields stay in it
        bind_log_fields(guild_id=111, command="quote")
        return log_every_kind_of_secret(logger)

    error_id = asyncio.run(request())
    assert current_log_fields() == {}  # nothing leaked out of the request's task
    err = capsys.readouterr().err
    assert TOKEN not in err and INTERACTION not in err and "bot-token" not in err
    every = [json.loads(line) for line in err.splitlines()]  # every line parses, asyncio's too
    lines = [line for line in every if line["logger"] == "bot.test"]
    assert len(lines) == 5 and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(line["guild_id"] == 111 and line["command"] == "quote" for line in lines)
    assert f"/interactions/123/{REDACTED}/callback" in lines[0]["message"]
    assert f"/webhooks/456/{REDACTED}/messages" in lines[1]["message"]
    assert f"'token': '{REDACTED}'" in lines[2]["message"]
    error = lines[-1]
    assert error["error_id"] == error_id and error["level"] == "ERROR"
    assert "RuntimeError" in error["exception"] and REDACTED in error["exception"]


def test_text_lines_redact_the_same(root_logger, capsys):
    setup_logging("DEBUG", secrets=[Secret(TOKEN)], fmt="text")
    log_every_kind_of_secret(logging.getLogger("bot.test"))
    err = capsys.readouterr().err
    assert TOKEN not in err and INTERACTION not in err
    assert err.count(REDACTED) >= 6
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])
