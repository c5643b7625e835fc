"""bot.logging_setup: text and JSON lines, with the bot token and interaction tokens redacted, and the
error id, guild id and command on JSON lines where known."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from bot import logging_setup
from bot.errors import log_unexpected
from bot.log_context import bind_log_fields, current_log_fields
from bot.logging_setup import REDACTED, RedactingFormatter, setup_logging
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


BOT_TOKEN = "MTIzNDU2Nzg5.Gabcde.bot-token-secret_part"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzOmludGVyYWN0aW9uLXNlY3JldA"


def formatted(message: str, *args: object, exc: BaseException | None = None) -> str:
    formatter = RedactingFormatter(logging.Formatter("%(levelname)s %(message)s"), [BOT_TOKEN])
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("discord.http", logging.DEBUG, __file__, 1, message, args, exc_info)
    return formatter.format(record)


def test_the_bot_token_in_a_message_or_its_arguments_is_redacted():
    assert BOT_TOKEN not in formatted(f"token is {BOT_TOKEN}")
    text = formatted("Authorization: Bot %s", BOT_TOKEN)
    assert BOT_TOKEN not in text and REDACTED in text


def test_the_bot_token_in_a_traceback_is_redacted():
    try:
        raise RuntimeError(f"login failed with {BOT_TOKEN}")
    except RuntimeError as exc:
        text = formatted("unexpected error", exc=exc)
    assert "Traceback" in text and "login failed" in text
    assert BOT_TOKEN not in text


@pytest.mark.parametrize(
    "line",
    [
        # discord.http at DEBUG: the interaction callback and the followup/original-response webhooks.
        f"POST https://discord.com/api/v10/interactions/1234567890/{INTERACTION_TOKEN}/callback with "
        "{'type': 5} has returned 204",
        f"PATCH https://discord.com/api/v10/webhooks/99887766/{INTERACTION_TOKEN}/messages/@original "
        "has returned 200",
        f"POST https://discord.com/api/v10/webhooks/99887766/{INTERACTION_TOKEN}?wait=1 has returned 200",
        f"DELETE http://127.0.0.1:5000/api/v10/webhooks/1/{INTERACTION_TOKEN} has returned 204",
        # discord.gateway at DEBUG: every event, INTERACTION_CREATE's token included (as a dict or JSON).
        f"For Shard ID None: WebSocket Event: {{'t': 'INTERACTION_CREATE', 'd': {{'id': '1', "
        f"'token': '{INTERACTION_TOKEN}', 'type': 2}}}}",
        f'{{"t": "INTERACTION_CREATE", "d": {{"token": "{INTERACTION_TOKEN}", "type": 2}}}}',
    ],
)
def test_interaction_tokens_are_redacted(line: str):
    text = formatted(line)
    assert INTERACTION_TOKEN not in text
    assert REDACTED in text
    assert "interactions/1234567890/" in text or "webhooks/" in text or "INTERACTION_CREATE" in text


def test_an_interaction_token_passed_as_an_argument_is_redacted():
    text = formatted("%s %s has returned %s", "POST", f"/interactions/1/{INTERACTION_TOKEN}/callback", 204)
    assert INTERACTION_TOKEN not in text and "/interactions/1/" in text


def test_ordinary_lines_are_left_alone():
    line = "POST https://discord.com/api/v10/channels/1/messages has returned 200; tokens: 3"
    assert formatted(line) == f"DEBUG {line}"


def test_setup_logging_installs_the_redaction_on_discord_py_formatter(capsys):
    handler = setup_logging("DEBUG", secrets=[BOT_TOKEN])
    try:
        assert handler.stream is sys.stderr
        logging.getLogger("discord.http").debug(
            "POST /interactions/5/%s/callback with token %s", INTERACTION_TOKEN, BOT_TOKEN
        )
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    assert "/interactions/5/" in err
    assert INTERACTION_TOKEN not in err and BOT_TOKEN not in err
