"""What people read about retrains and models: the status message of a run, and ``!model``'s answer.

Plain functions of plain values, so the Discord cog and any other front end say the same things.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.storage.model_versions import ModelVersion, RetrainRun

if TYPE_CHECKING:
    from bot.retrain.retrainer import RetrainConfig
    from bot.serving.guild_models import Serving

KEEPS_SERVING = "The model that served before keeps serving."


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def started_text(run: RetrainRun, counts: dict[str, int], config: RetrainConfig) -> str:
    """The status message's first words."""
    origin = "this server's current model" if run.parent_version_id else "the bundled model"
    return (
        f"Retrain #{run.id} started from {origin}: {counts['favoured']} favoured and {counts['source']} "
        f"added quotes, training for up to {config.minutes:g} min."
    )


def queued_text(position: int, waiting: int) -> str:
    """The status message of a request waiting for a free slot."""
    return (
        f"Retrain queued: position {position} of {waiting}. Other servers' retrains are using the machine; "
        "this one starts by itself when a slot is free (`retrain cancel` leaves the queue)."
    )


def progress_text(run: RetrainRun, phase: str, event: dict[str, Any]) -> str:
    """One line for a progress or validation event of the training, or the scoring phase."""
    if phase == "scoring":
        return f"Retrain #{run.id}: training done; scoring the new model against the current one..."
    parts = [f"Retrain #{run.id} training: step {event.get('step', 0)}"]
    if "train_nats" in event:
        parts.append(f"loss {event['train_nats']:.3f} nats/char")
    if "best_nats" in event:
        parts.append(f"best validation {event['best_nats']:.3f}")
    if "seconds_left" in event:
        parts.append(f"about {_minutes(event['seconds_left'])} left")
    return ", ".join(parts) + "."


def _scores(figures: dict[str, Any]) -> str:
    """``base text 1.52 (now 1.55), this server's quotes 1.80 (now 2.10); loops on 4% of 24 seeds``."""
    parts = []
    for key, name in (("base", "base text"), ("guild", "this server's quotes")):
        new, old = figures.get(f"{key}_candidate_nats"), figures.get(f"{key}_current_nats")
        if new is not None and old is not None:
            parts.append(f"{name} {new:.3f} (before {old:.3f})")
    text = ", ".join(parts) + " nats/char" if parts else "no held-out text"
    if figures.get("base_text"):
        text += f" (base text: {figures['base_text']})"
    if "loop_candidate" in figures:
        text += f"; loops on {figures['loop_candidate']:.0%} of {figures.get('loop_seeds', 0)} seeds"
    return text


def finished_text(
    run: RetrainRun,
    status: str,
    figures: dict[str, Any],
    version: ModelVersion | None,
    reason: str = "",
) -> str:
    """The status message's last words, by how the run ended."""
    head = f"Retrain #{run.id}"
    if status == "promoted" and version is not None:
        return (
            f"{head} done: version {version.number} now serves this server. {_scores(figures)}. "
            "`rollback` goes back to the previous version."
        )
    if status == "rejected":
        return f"{head} rejected, nothing changed: {reason}. {KEEPS_SERVING}"
    if status == "cancelled":
        return f"{head} cancelled. {KEEPS_SERVING}"
    return f"{head} failed: {reason}. {KEEPS_SERVING}"


def interrupted_text(run: RetrainRun) -> str:
    """For the status message of a run that was running when the bot stopped."""
    return f"Retrain #{run.id} was interrupted: the bot restarted while it ran. {KEEPS_SERVING}"


def model_text(serving: Serving, parent: ModelVersion | None, bundled_name: str) -> str:
    """``!model``: the version, its parent, what it learnt from, its scores, and any bad file passed over."""
    lines = []
    version = serving.version
    if version is None:
        lines.append(f"This server uses the bundled model ({bundled_name}); no retrain has been promoted.")
    else:
        origin = f"version {parent.number}" if parent else "the bundled model"
        when = version.created_at.strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"This server's model: version {version.number}, fine-tuned from {origin} ({when}).")
        trained = version.trained_on
        learnt = f"{trained.get('favoured', 0)} favoured and {trained.get('source', 0)} added quotes"
        if trained.get("replayed"):
            if trained.get("replay_source") == "samples":
                learnt += f", replaying {trained['replayed']} of the previous model's own samples"
                learnt += " (its base corpus is not on this machine)"
            else:
                learnt += f", replaying {trained['replayed']} quotes of the base corpus"
        if trained.get("new_chars"):
            learnt += f", learning the new characters {trained['new_chars']}"
        if trained.get("steps"):
            learnt += f", {trained['steps']} steps"
        lines.append(f"Trained on {learnt}.")
        lines.append(f"Scores (nats per character, lower is better): {_scores(version.scores)}.")
    for bad, why in serving.skipped:
        lines.append(f"Version {bad.number} could not be loaded ({why}), so an earlier model serves.")
    return "\n".join(lines)
