"""Logging for the bot and the console: discord.py's formatter (``LOG_FORMAT=text``) or one JSON object
per line (``LOG_FORMAT=json``) on stderr, with secrets redacted either way.

    setup_logging("INFO", secrets=[settings.token], fmt="json")

Every line is redacted (``RedactingFormatter``, or ``JsonFormatter`` field by field): each secret
(the bot token) and every interaction token (in webhook and interaction URLs, and in gateway payloads
logged at DEBUG) wherever it appears: in the message, its arguments, or a traceback. A JSON line holds
``time``, ``level``, ``logger``, ``message``, ``exception`` when there is one, and ``error_id``,
``guild_id`` and ``command`` when known (``bot.log_context``). (``bot.errors.log_unexpected`` gives an
unexpected error its id; it lives there so that the discord-free packages can use it.)
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

import discord

from bot.log_context import LOG_FIELDS, current_log_fields
from bot.settings import Secret

REDACTED = "[redacted]"
LOG_FORMATS = ("text", "json")
# An interaction token is a bearer secret for 15 minutes: it is in the URL of every interaction reply
# (/interactions/<id>/<token>/callback, /webhooks/<application id>/<token>/...) and in the
# INTERACTION_CREATE payload that discord.py logs at DEBUG.
INTERACTION_TOKENS = (
    re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s?'\"]+"),
    re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+"""),
)
_installed: list[logging.Handler] = []  # ours, so a second setup replaces it instead of doubling lines


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` without the given secrets and without any interaction token."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in INTERACTION_TOKENS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for log collectors (Loki, CloudWatch, journald's JSON output). The
    text is redacted before it is encoded: JSON escapes the quotes the interaction-token pattern needs."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), self.secrets),
        }
        fields = current_log_fields()
        fields.update({k: getattr(record, k) for k in LOG_FIELDS if getattr(record, k, None) is not None})
        line.update({k: fields[k] for k in LOG_FIELDS if k in fields})
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info), self.secrets)
        elif record.exc_text:
            line["exception"] = redact(record.exc_text, self.secrets)
        return json.dumps(line, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, then removes every secret from the finished text."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]):
        super().__init__()
        self.inner = inner
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record), self.secrets)


def setup_logging(
    level: str = "INFO", secrets: Iterable[Secret | str | None] = (), fmt: str = "text"
) -> logging.Handler:
    """Log to stderr at ``level`` as ``fmt`` (text or json); returns the handler it installed."""
    root = logging.getLogger()
    while _installed:
        root.removeHandler(_installed.pop())
    handler = logging.StreamHandler(sys.stderr)
    # discord.py picks its coloured formatter when stderr is a terminal, a plain one otherwise.
    discord.utils.setup_logging(handler=handler, level=getattr(logging, level.upper()), root=True)
    plain = [s.get() if isinstance(s, Secret) else s for s in secrets if s is not None]
    if fmt == "json":
        handler.setFormatter(JsonFormatter(plain))
    else:
        assert handler.formatter is not None
        handler.setFormatter(RedactingFormatter(handler.formatter, plain))
    _installed.append(handler)
    return handler
