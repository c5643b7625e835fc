"""What a retrain needs to know, filled from the bot's settings (``RetrainConfig.from_settings``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings


@dataclass(frozen=True)
class RetrainConfig:
    """What a retrain needs to know; ``from_settings`` fills it from the bot's settings."""

    models_dir: Path
    db_path: Path | str  # the SQLite file, or the PostgreSQL URL (DATABASE_URL)
    bundled_model: Path
    min_votes: int = 1
    min_quotes: int = 20
    minutes: float = 10.0  # the training budget handed to finetune
    time_limit_s: float = 1200.0  # the whole run, both children; killed past it
    max_concurrent: int = 1
    score_margin: float = 0.02
    loop_target: float = 0.1
    base_corpus: Path | None = None
    replay_samples: int = 2000  # drawn from the current model when its base corpus is not here
    cooldown_minutes: float = 0.0  # per server, from the start of its last run
    keep_versions: int = 1000  # model files kept per server
    max_quote_chars: int = 400  # the loop test's length cap: what the bot serves
    progress_every_s: float = 5.0
    heartbeat_s: float = 30.0  # how often a live run says so in the store (other processes read it)
    stale_after_s: float = 180.0  # another process's run with no heartbeat for this long died with it
    finetune_args: tuple[str, ...] = ()  # extra finetune options (tests: a small batch)
    python: str = sys.executable

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> RetrainConfig:
        values = {
            "models_dir": settings.models_dir,
            "db_path": settings.store_target,
            "bundled_model": settings.model_path,
            "min_votes": settings.retrain_min_votes,
            "min_quotes": settings.retrain_min_quotes,
            "minutes": settings.retrain_minutes,
            "time_limit_s": settings.retrain_time_limit_minutes * 60.0,
            "max_concurrent": settings.retrain_max_concurrent,
            "score_margin": settings.retrain_score_margin,
            "loop_target": settings.retrain_loop_target,
            "base_corpus": settings.retrain_base_corpus,
            "replay_samples": settings.retrain_replay_samples,
            "cooldown_minutes": settings.retrain_cooldown_minutes,
            "keep_versions": settings.retrain_keep_versions,
            "max_quote_chars": settings.max_quote_chars,
            **overrides,
        }
        return cls(**values)
