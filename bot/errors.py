"""Typed errors whose message is written for the user; one handler turns them into friendly replies.

The service and the model host raise these; the Discord error handler and the console show
``str(error)`` as it is. Anything that is not a ``QuotebotError`` is a bug: ``log_unexpected`` logs it
with a short id, and the user sees only that id.
"""

from __future__ import annotations

import logging
import math
import secrets
import unicodedata

SHOWN_CHARS = 40  # the most of a user's own text an error message echoes


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """A user's text as an error echoes it: no control or format characters, at most ``limit``
    characters, with a mark where it was cut."""
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class QuotebotError(Exception):
    """An expected problem with a request; ``str(error)`` is the friendly reply."""


class BadOptionError(QuotebotError):
    """An option of a command is unknown, malformed or out of range; ``option`` names it."""

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(f"{clip(option)}: {problem}")


class SeedTooLongError(QuotebotError):
    """The seed is longer than the configured limit."""

    def __init__(self, length: int, limit: int):
        self.length = length
        self.limit = limit
        super().__init__(f"that seed is {length} characters long; the most I take is {limit}.")


class UnknownCharsError(QuotebotError):
    """The seed holds characters the model has never seen (and the policy refuses them)."""

    def __init__(self, chars: list[str], detail: str):
        self.chars = chars
        super().__init__(f"{detail}. Try the seed without them.")


class CooldownError(QuotebotError):
    """The user asked again before their cooldown ended; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        seconds = max(1, math.ceil(retry_after))
        unit = "second" if seconds == 1 else "seconds"
        super().__init__(f"slow down a little: you can ask for another quote in {seconds} {unit}.")


class BusyError(QuotebotError):
    """The generation queue is full."""

    def __init__(self) -> None:
        super().__init__("I'm busy writing other quotes; try again shortly.")


class ShuttingDownError(QuotebotError):
    """The bot is closing and takes no new requests."""

    QUOTE = "I'm shutting down and can't start a new quote; try again in a minute."
    VOTE = "I'm shutting down and couldn't count that vote; press ⭐ again in a minute."
    OTHER = "I'm shutting down; try that again in a minute."

    def __init__(self, text: str = QUOTE) -> None:
        super().__init__(text)


def new_error_id() -> str:
    """A short id for one unexpected error, easy to read out and to find in the log."""
    return secrets.token_hex(4)


def log_unexpected(logger: logging.Logger, error: BaseException, context: str) -> str:
    """Log an unexpected error with its traceback and a fresh id (also a field of a JSON log line);
    returns the id."""
    error_id = new_error_id()
    logger.error("unexpected error %s in %s", error_id, context, exc_info=error, extra={"error_id": error_id})
    return error_id
