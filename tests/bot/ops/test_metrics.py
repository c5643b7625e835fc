"""bot.ops.metrics: refusal reasons, scheduler reports, and a render where every series is quotebot_*."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.errors import BadOptionError, BusyError, CooldownError, SeedTooLongError, ShuttingDownError
from bot.ops import metrics


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_each_refusal_has_a_short_reason_and_a_bug_is_an_error():
    reasons = [
        metrics.refusal_reason(e)
        for e in (BusyError(), CooldownError(3), SeedTooLongError(300, 200), ShuttingDownError())
    ]
    assert reasons == ["busy", "cooldown", "seed_too_long", "shutting_down"]
    assert metrics.refusal_reason(BadOptionError("--len", "too long")) == "bad_option"
    assert metrics.refusal_reason(KeyError("bug")) == "error"


def test_counts_move_and_live_readings_show_at_render():
    before = metrics.render().decode()
    metrics.quote_refused(BusyError())
    metrics.count_scheduled({"posted": [1, 2], "paused": [3], "failed": []})
    live = metrics.LiveReadings(queue_depth=7, loaded_models=2, gateway_latency_s=float("nan"), ready=True)
    after = metrics.render(lambda: live).decode()
    assert (
        value(after, "quotebot_quotes_refused_total", reason="busy")
        - value(before, "quotebot_quotes_refused_total", reason="busy")
        == 1
    )
    posted = "quotebot_scheduled_posts_total"
    assert value(after, posted, outcome="posted") - value(before, posted, outcome="posted") == 2
    assert value(after, posted, outcome="failed") == value(before, posted, outcome="failed")
    assert value(after, "quotebot_generation_queue_depth") == 7
    assert value(after, "quotebot_loaded_models") == 2
    assert value(after, "quotebot_gateway_latency_seconds") == 0  # no heartbeat yet: 0, not NaN
    assert value(after, "quotebot_ready") == 1
    names = {s.name for f in text_string_to_metric_families(after) for s in f.samples}
    assert names and all(name.startswith("quotebot_") for name in names)
