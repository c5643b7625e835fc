"""Logging for the bot and the console: discord.py's formatter on stderr, with secrets redacted.

    setup_logging("INFO", secrets=[settings.token])

Every line goes through ``RedactingFormatter``, which formats with discord.py's own formatter and
then replaces each secret (the token) wherever it appears: in the message, its arguments, or a
traceback. Interaction tokens are secrets too (whoever holds one can answer as the bot for 15 minutes):
at DEBUG discord.py logs request URLs (``/interactions/{id}/{token}/callback``,
``/webhooks/{application_id}/{token}/...``) and gateway events (``"token": "..."``), so those are
redacted by pattern, whatever their value. (``bot.errors.log_unexpected`` gives an unexpected error
its id; it lives there so that the discord-free packages can use it without loading discord.py
through this module.)
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

import discord

from bot.settings import Secret

REDACTED = "[redacted]"
# The secret part of an interaction or webhook URL (the path segment after the id), and a JSON or
# Python-repr "token" field, as discord.py logs them at DEBUG.
_TOKEN_PATTERNS = (
    re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s?#'\"]+"),
    re.compile(r"""((["'])token\2\s*:\s*(["']))[^"']+"""),
)
_installed: list[logging.Handler] = []  # ours, so a second setup replaces it instead of doubling lines


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, then removes every secret from the finished text."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]):
        super().__init__()
        self.inner = inner
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return redact_tokens(text)


def redact_tokens(text: str) -> str:
    """``text`` with every interaction or webhook token (in a URL or a ``"token"`` field) replaced."""
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def setup_logging(level: str = "INFO", secrets: Iterable[Secret | str | None] = ()) -> logging.Handler:
    """Log to stderr at ``level`` with discord.py's formatter; returns the handler it installed."""
    root = logging.getLogger()
    while _installed:
        root.removeHandler(_installed.pop())
    handler = logging.StreamHandler(sys.stderr)
    # discord.py picks its coloured formatter when stderr is a terminal, a plain one otherwise.
    discord.utils.setup_logging(handler=handler, level=getattr(logging, level.upper()), root=True)
    plain = [s.get() if isinstance(s, Secret) else s for s in secrets if s is not None]
    assert handler.formatter is not None
    handler.setFormatter(RedactingFormatter(handler.formatter, plain))
    _installed.append(handler)
    return handler
