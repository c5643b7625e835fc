"""What a log line is about: the guild and command of the request being handled, for every line logged
while it runs (structured logs carry them as fields; see ``bot.logging_setup``).

    bind_log_fields(guild_id=123, command="quote")   # in the request's task; later lines carry both
    current_log_fields()                               # {"guild_id": 123, "command": "quote"}

A ``ContextVar``: each discord.py event runs in its own task with a copy of the context, so one
request's fields never leak into another's. Free of discord.py, so any package may bind fields.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

LOG_FIELDS = ("error_id", "guild_id", "command")
"""The fields a structured log line carries when they are known (from the context or ``extra``)."""

_fields: ContextVar[dict[str, Any] | None] = ContextVar("quotebot_log_fields", default=None)


def bind_log_fields(**fields: Any) -> None:
    """Add ``fields`` (``None`` values are skipped) to every line logged later in this task."""
    known = {k: v for k, v in fields.items() if v is not None}
    _fields.set({**(_fields.get() or {}), **known})


def current_log_fields() -> dict[str, Any]:
    """The fields bound in this task so far."""
    return dict(_fields.get() or {})
