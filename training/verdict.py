"""The promotion rule of a retrain, pure and small, so the bot can apply it without loading the trainer.

verdict = decide(figures, margin=0.02, loop_target=0.01)   # figures: what ``training.judge`` measured
verdict.promote, verdict.reasons
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """Whether to promote, and why, one reason per check."""

    promote: bool
    reasons: list[str] = field(default_factory=list)


def decide(figures: dict, margin: float, loop_target: float) -> Verdict:
    """Promote only if the base text is not worse than ``margin`` and the loop rate stays in its target."""
    reasons = []
    ok = True
    current, candidate = figures.get("base_current_nats"), figures.get("base_candidate_nats")
    if current is None or candidate is None:
        ok = False
        reasons.append("no base text was scored, so forgetting could not be checked")
    else:
        worse = not candidate <= current + margin  # also false for NaN: a broken score never passes
        ok &= not worse
        verb = "worse than" if worse else "within"
        reasons.append(
            f"base text: {candidate:.3f} nats/char against {current:.3f} now ({verb} the margin {margin:g})"
        )
    loops, before = figures["loop_candidate"], figures["loop_current"]
    allowed = max(loop_target, before)  # a current model above the target must at least not get worse
    too_loopy = not loops <= allowed
    ok &= not too_loopy
    reasons.append(
        f"loops on {loops:.0%} of {figures['loop_seeds']} seeds (now {before:.0%}, target {loop_target:.0%})"
        + (": too many" if too_loopy else "")
    )
    return Verdict(ok, reasons)
