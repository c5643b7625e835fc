"""How each setting's text becomes a value: one parser per kind, and which variable uses which.

A parser takes the raw text of one variable and returns the value, or raises ``ValueError`` whose text
says what is wrong (``bot.settings`` adds the variable's name). ``Secret`` wraps the token and the
database URL so that neither shows in a repr, a log line or an error.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from model.device import DeviceError, resolve_device
from model.vocab import UnknownPolicy

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class Secret:
    """A string that never shows itself in a repr, str, log line or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get(self) -> str:
        """The secret value itself; pass it only to the API that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url(secure: str, plain: str) -> Callable[[str], str]:
    """A parser for a URL whose scheme is ``secure``, or ``plain`` for a loopback host only."""

    def parse(raw: str) -> str:
        parts = urlsplit(raw)
        if not parts.hostname:
            raise ValueError(f"{raw!r} is not a URL with a host (expected {secure}://...)")
        if parts.scheme == plain and not _is_loopback(parts.hostname):
            raise ValueError(
                f"{plain}:// is accepted only for a loopback address (127.0.0.1, localhost, ::1); "
                f"use {secure}:// for {parts.hostname}"
            )
        if parts.scheme not in (secure, plain):
            raise ValueError(f"{raw!r} must start with {secure}:// (or {plain}:// on a loopback address)")
        return raw

    return parse


def _api_base(raw: str) -> str:
    # discord.py appends paths that start with "/" to Route.BASE.
    return _url("https", "http")(raw).rstrip("/")


def _gateway(raw: str) -> str:
    return _url("wss", "ws")(raw)


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ValueError(f"must be {span}, got {value}")
        return value

    return parse


def _number(
    unit: str = "", low: float = 0.0, high: float | None = None, *, above: bool = False
) -> Callable[[str], float]:
    """A parser of one finite number (of ``unit``) from ``low`` (exclusive with ``above``) to ``high``."""
    of_unit = f" of {unit}" if unit else ""
    if high is None:
        allowed = f"above {low:g}" if above else f"{low:g} or more"
    else:
        allowed = f"above {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number{of_unit}") from None
        too_low = value <= low if above else value < low
        if not math.isfinite(value) or too_low or (high is not None and value > high):
            raise ValueError(f"must be a finite number{of_unit}, {allowed}; got {raw!r}")
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not one of true/false, yes/no, on/off, 1/0")


def _owner_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in raw.replace(" ", ",").split(","):
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"{part!r} is not a Discord user id (a positive whole number)")
        ids.add(int(part))
    return frozenset(ids)


def _shard_ids(raw: str) -> tuple[int, ...]:
    """``0,1``, ``0-3`` or a mix (``0-1,4``): the shards this process runs, sorted; no id twice."""
    ids: list[int] = []
    for part in raw.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"{part!r} is not a shard id or a range such as 0-3")
        span = range(int(low), int(high if dash else low) + 1)
        if not span:
            raise ValueError(f"the range {part!r} is empty (write the lower id first)")
        ids += span
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"shard {', '.join(map(str, twice))} is listed more than once")
    return tuple(sorted(ids))


def _database_url(raw: str) -> Secret:
    # The URL may hold a password: the message never repeats it.
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a postgresql:// URL (leave it empty to use SQLite at DB_PATH)")
    return Secret(raw)


def _token(raw: str) -> Secret:
    # Never quote the value: a near-miss token is still most of a secret.
    if raw.lower().startswith("bot "):
        raise ValueError("give the bare token, without the 'Bot ' prefix")
    if any(c.isspace() for c in raw) or not raw.isascii() or not raw.isprintable():
        raise ValueError("the token holds spaces or characters no Discord token has; copy it again")
    return Secret(raw)


def _prefix(raw: str) -> str:
    if any(c.isspace() for c in raw):
        raise ValueError(f"{raw!r} holds a space; a command prefix is a few characters like '!'")
    if len(raw) > 10:
        raise ValueError(f"{raw!r} is longer than 10 characters")
    return raw


def _device(raw: str) -> str:
    try:
        resolve_device(raw)
    except DeviceError as exc:
        raise ValueError(str(exc)) from None
    return raw.strip().lower()


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{raw!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(raw: str) -> str:
    fmt = raw.strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"{raw!r} is not one of {', '.join(LOG_FORMATS)}")
    return fmt


def _host(raw: str) -> str:
    host = raw.strip()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"{raw!r} is not an IP address or a host name") from None
    return host


def _unknown(raw: str) -> UnknownPolicy:
    try:
        return UnknownPolicy(raw.strip().lower())
    except ValueError:
        raise ValueError(f"{raw!r} is not one of {', '.join(p.value for p in UnknownPolicy)}") from None


def _corpus_path(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"no corpus file at {path}")
    return path


def _folder(raw: str) -> Path:
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; give a folder (it is created if missing)")
    return path


def _model_path(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"no model file at {path}")
    return path


# Variable -> (Settings field, parser). An unset or empty variable keeps the field's default.
PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "DISCORD_TOKEN": ("token", _token),
    "COMMAND_PREFIX": ("command_prefix", _prefix),
    "MODEL_PATH": ("model_path", _model_path),
    "DEVICE": ("device", _device),
    "DB_PATH": ("db_path", lambda raw: Path(raw).expanduser()),
    "DATABASE_URL": ("database_url", _database_url),
    "MAX_SEED_CHARS": ("max_seed_chars", _int(1, 1000)),
    "MAX_QUOTE_CHARS": ("max_quote_chars", _int(10, 1900)),
    "QUOTE_COOLDOWN_SECONDS": ("cooldown_seconds", _number("seconds", 0)),
    "GENERATION_QUEUE_SIZE": ("queue_size", _int(1, 10_000)),
    "GENERATION_BATCH_SIZE": ("batch_size", _int(1, 512)),
    "GENERATION_BATCH_WAIT_MS": ("batch_wait_ms", _number("milliseconds", 0, 1000)),
    "GENERATION_THREADS": ("generation_threads", _int(0, 256)),
    "OWNER_IDS": ("owner_ids", _owner_ids),
    "SHARD_COUNT": ("shard_count", _int(1, 10_000)),
    "SHARD_IDS": ("shard_ids", _shard_ids),
    "LOG_LEVEL": ("log_level", _log_level),
    "DISCORD_API_BASE": ("api_base", _api_base),
    "DISCORD_GATEWAY_URL": ("gateway_url", _gateway),
    "UNKNOWN_CHARS": ("unknown_chars", _unknown),
    "SYNC_COMMANDS": ("sync_commands", _bool),
    "MESSAGE_CONTENT_INTENT": ("message_content_intent", _bool),
    "SCHEDULE_CHECK_SECONDS": ("schedule_check_seconds", _number("seconds", 0.01, 600)),
    "MAX_SCHEDULES_PER_SERVER": ("max_schedules_per_server", _int(1, 1000)),
    "MODELS_DIR": ("models_dir", _folder),
    "MAX_LOADED_MODELS": ("max_loaded_models", _int(1, 1000)),
    "RETRAIN_MIN_VOTES": ("retrain_min_votes", _int(1, 1_000_000)),
    "RETRAIN_MIN_QUOTES": ("retrain_min_quotes", _int(2, 1_000_000)),
    "RETRAIN_MINUTES": ("retrain_minutes", _number("minutes", 0, 24 * 60, above=True)),
    "RETRAIN_TIME_LIMIT_MINUTES": ("retrain_time_limit_minutes", _number("minutes", 0, 24 * 60, above=True)),
    "RETRAIN_MAX_CONCURRENT": ("retrain_max_concurrent", _int(1, 64)),
    "RETRAIN_SCORE_MARGIN": ("retrain_score_margin", _number("", 0, 1)),
    "RETRAIN_LOOP_TARGET": ("retrain_loop_target", _number("", 0, 1)),
    "RETRAIN_BASE_CORPUS": ("retrain_base_corpus", _corpus_path),
    "RETRAIN_REPLAY_SAMPLES": ("retrain_replay_samples", _int(20, 100_000)),
    "RETRAIN_COOLDOWN_MINUTES": ("retrain_cooldown_minutes", _number("minutes", 0, 7 * 24 * 60)),
    "RETRAIN_KEEP_VERSIONS": ("retrain_keep_versions", _int(2, 1000)),
    "ADDQUOTE_MAX_PER_SERVER": ("addquote_max_per_server", _int(1, 1_000_000)),
    "ADDQUOTE_COOLDOWN_SECONDS": ("addquote_cooldown_seconds", _number("seconds", 0, 3600)),
    "ADDQUOTE_MAX_CHARS": ("addquote_max_chars", _int(10, 1900)),
    "LOG_FORMAT": ("log_format", _log_format),
    "HEALTH_HOST": ("health_host", _host),
    "HEALTH_PORT": ("health_port", _int(1, 65535)),
    "SHUTDOWN_TIMEOUT_SECONDS": ("shutdown_timeout_seconds", _number("seconds", 0, 3600)),
}
