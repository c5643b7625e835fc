"""The bot's settings: read from the environment and ``.env`` into one frozen, validated object.

    settings = load_settings()                 # os.environ over ./.env
    settings = load_settings({"DISCORD_TOKEN": "..."}, env_file=None)   # tests

Every wrong value is reported with the variable's name (all of them at once, one per line). The
token is wrapped in ``Secret``, whose repr and str never show it, and no error message quotes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.setting_values import DEFAULT_API_BASE, DEFAULT_GATEWAY_URL, PARSERS, Secret
from model.checkpoint import DEFAULT_CHECKPOINT
from model.vocab import UnknownPolicy

__all__ = [
    "DEFAULT_API_BASE",
    "DEFAULT_GATEWAY_URL",
    "PARSERS",
    "Secret",
    "Settings",
    "SettingsError",
    "load_settings",
    "read_environment",
]


class SettingsError(ValueError):
    """One or more settings are wrong; ``problems`` maps each variable to what is wrong with it."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        lines = [f"{name}: {problem}" for name, problem in self.problems.items()]
        super().__init__("invalid settings:\n  " + "\n  ".join(lines))


@dataclass(frozen=True)
class Settings:
    """Everything the bot and the console read from their environment."""

    token: Secret | None = field(default=None, repr=False)
    command_prefix: str = "!"
    model_path: Path = DEFAULT_CHECKPOINT
    device: str = "auto"
    db_path: Path = Path("quotebot.db")
    database_url: Secret | None = field(default=None, repr=False)  # PostgreSQL instead of db_path
    max_seed_chars: int = 200
    max_quote_chars: int = 1100  # the bundled corpus's 99th-percentile quote length, rounded up
    cooldown_seconds: float = 10.0
    queue_size: int = 256  # benchmarks/bot_load.py: 200 commands at once all served, p99 2.2 s
    batch_size: int = 32  # benchmarks/bot_load.py: 90 quotes/s against 48 at batch 8
    batch_wait_ms: float = 5.0
    generation_threads: int = 0  # 0: every core but one (see bot.serving.host.default_threads)
    owner_ids: frozenset[int] = frozenset()
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None  # None: every shard of shard_count runs in this process
    log_level: str = "INFO"
    api_base: str = DEFAULT_API_BASE
    gateway_url: str = DEFAULT_GATEWAY_URL
    unknown_chars: UnknownPolicy = UnknownPolicy.REPLACE
    sync_commands: bool = False
    # The privileged Message Content intent: off, the bot runs on slash commands, buttons, context menus
    # and commands that mention it (@QuoteBot quote Hey,).
    message_content_intent: bool = True
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
    # Operations (bot/ops): structured logs, the health and metrics endpoint, the shutdown bound.
    log_format: str = "text"
    health_host: str = "127.0.0.1"
    health_port: int | None = None  # None: no HTTP endpoint
    shutdown_timeout_seconds: float = 30.0  # how long SIGTERM waits for replies in flight

    @property
    def has_token(self) -> bool:
        return self.token is not None

    @property
    def store_target(self) -> str | Path:
        """What ``Store.open`` opens: the PostgreSQL URL if ``DATABASE_URL`` is set, else the SQLite file."""
        return self.database_url.get() if self.database_url is not None else self.db_path


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
    if not problems and settings.shard_ids is not None:
        if settings.shard_count is None:
            problems["SHARD_IDS"] = "needs SHARD_COUNT, the number of shards across every process"
        elif settings.shard_ids[-1] >= settings.shard_count:
            count = settings.shard_count
            problems["SHARD_IDS"] = (
                f"shard ids run from 0 to {count - 1} (SHARD_COUNT is {count}); got {settings.shard_ids[-1]}"
            )
    if problems:
        raise SettingsError(problems)
    return settings
