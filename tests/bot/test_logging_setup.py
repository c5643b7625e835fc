"""The redacting log formatter: each kind of secret is logged, then looked for in the output.

These tests exercise the formatter itself: discord.py never logs the bot token on its own, so an
end-to-end "the token is not in the output" test passes even with no redaction at all.
"""

from __future__ import annotations

import logging
import sys

import pytest

from bot.logging_setup import REDACTED, RedactingFormatter, setup_logging

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
