"""The bot's settings: read from the environment and ``.env`` into one frozen, validated object.

    settings = load_settings()                 # os.environ over ./.env
    settings = load_settings({"DISCORD_TOKEN": "..."}, env_file=None)   # tests

Every wrong value is reported with the variable's name (all of them at once, one per line). The
token is wrapped in ``Secret``, whose repr and str never show it, and no error message quotes it.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from model.checkpoint import DEFAULT_CHECKPOINT
from model.device import DeviceError, resolve_device
from model.vocab import UnknownPolicy

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """One or more settings are wrong; ``problems`` maps each variable to what is wrong with it."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        lines = [f"{name}: {problem}" for name, problem in self.problems.items()]
        super().__init__("invalid settings:\n  " + "\n  ".join(lines))


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


@dataclass(frozen=True)
class Settings:
    """Everything the bot and the console read from their environment."""

    token: Secret | None = field(default=None, repr=False)
    command_prefix: str = "!"
    model_path: Path = DEFAULT_CHECKPOINT
    device: str = "auto"
    db_path: Path = Path("quotebot.db")
    max_seed_chars: int = 200
    max_quote_chars: int = 1100  # the bundled corpus's 99th-percentile quote length, rounded up
    cooldown_seconds: float = 10.0
    queue_size: int = 256  # benchmarks/bot_load.py: 200 commands at once all served, p99 2.2 s
    batch_size: int = 32  # benchmarks/bot_load.py: 90 quotes/s against 48 at batch 8
    batch_wait_ms: float = 5.0
    generation_threads: int = 0  # 0: every core but one (see bot.serving.host.default_threads)
    owner_ids: frozenset[int] = frozenset()
    shard_count: int | None = None
    log_level: str = "INFO"
    api_base: str = DEFAULT_API_BASE
    gateway_url: str = DEFAULT_GATEWAY_URL
    unknown_chars: UnknownPolicy = UnknownPolicy.REPLACE
    sync_commands: bool = False
    # Per-server models and retraining (bot/retrain/retrainer.py, bot/storage/model_versions.py).
    models_dir: Path = Path("models")
    max_loaded_models: int = 8  # server models kept in memory besides the bundled one (LRU)
    retrain_min_votes: int = 1
    retrain_min_quotes: int = 20
    retrain_minutes: float = 10.0  # the training budget of one run
    retrain_time_limit_minutes: float = 20.0  # the whole run (training and scoring) is killed after this
    retrain_max_concurrent: int = 1
    retrain_score_margin: float = 0.1  # nats per character; benchmarks/retrain.py (README, Retraining)
    retrain_loop_target: float = 0.1
    retrain_base_corpus: Path | None = None  # None: the corpus the serving checkpoint names
    retrain_replay_samples: int = 2000  # the current model's samples when its base corpus is not here
    retrain_cooldown_minutes: float = 60.0  # per server, from the start of its last run
    retrain_keep_versions: int = 5  # model files kept per server (the serving one and its parent always)
    addquote_max_per_server: int = 1000
    addquote_cooldown_seconds: float = 5.0  # per member
    addquote_max_chars: int = 500
    schedule_check_seconds: float = 30.0  # how often the scheduler looks for due schedules
    max_schedules_per_server: int = 10

    @property
    def has_token(self) -> bool:
        return self.token is not None


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
    "MAX_SEED_CHARS": ("max_seed_chars", _int(1, 1000)),
    "MAX_QUOTE_CHARS": ("max_quote_chars", _int(10, 1900)),
    "QUOTE_COOLDOWN_SECONDS": ("cooldown_seconds", _number("seconds", 0)),
    "GENERATION_QUEUE_SIZE": ("queue_size", _int(1, 10_000)),
    "GENERATION_BATCH_SIZE": ("batch_size", _int(1, 512)),
    "GENERATION_BATCH_WAIT_MS": ("batch_wait_ms", _number("milliseconds", 0, 1000)),
    "GENERATION_THREADS": ("generation_threads", _int(0, 256)),
    "OWNER_IDS": ("owner_ids", _owner_ids),
    "SHARD_COUNT": ("shard_count", _int(1, 10_000)),
    "LOG_LEVEL": ("log_level", _log_level),
    "DISCORD_API_BASE": ("api_base", _api_base),
    "DISCORD_GATEWAY_URL": ("gateway_url", _gateway),
    "UNKNOWN_CHARS": ("unknown_chars", _unknown),
    "SYNC_COMMANDS": ("sync_commands", _bool),
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
}


def read_environment(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> dict[str, str]:
    """The raw variables: ``environ`` (default ``os.environ``) over the ``env_file``, if it exists."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Build and validate the settings; raises ``SettingsError`` naming every wrong variable."""
    raw = read_environment(environ, env_file)
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, (attr, parse) in PARSERS.items():
        text = raw.get(name, "").strip()
        if not text:
            continue
        try:
            values[attr] = parse(text)
        except ValueError as exc:
            problems[name] = str(exc)
    settings = Settings(**values)
    if not problems and settings.max_seed_chars >= settings.max_quote_chars:
        problems["MAX_SEED_CHARS"] = (
            f"must be below MAX_QUOTE_CHARS ({settings.max_quote_chars}), got {settings.max_seed_chars}"
        )
    if not problems and settings.retrain_time_limit_minutes <= settings.retrain_minutes:
        problems["RETRAIN_TIME_LIMIT_MINUTES"] = (
            f"must be above RETRAIN_MINUTES ({settings.retrain_minutes:g}), the training budget inside it; "
            f"got {settings.retrain_time_limit_minutes:g}"
        )
    if problems:
        raise SettingsError(problems)
    return settings
