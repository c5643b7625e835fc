"""The bot's Prometheus series, all named ``quotebot_*``, in one registry of their own.

    from bot.ops import metrics
    metrics.quote_refused(exc)                 # the service, when a request gets no quote
    metrics.GENERATION_SECONDS.observe(0.4)    # the model host, per completed request
    text = metrics.render(live)                # /metrics: live gauges read now, then every series

Counters and histograms move where things happen (a handful of one-line calls in the service, the model
host, the scheduler and the retrainer). What is a level rather than an event (queue depth, loaded
models, gateway latency, event-loop lag) is read when Prometheus scrapes, from a ``LiveReadings``
callback the health server supplies. Free of discord.py. The registry is per process, like the process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.errors import QuotebotError

REGISTRY = CollectorRegistry()
CONTENT_TYPE = CONTENT_TYPE_LATEST
ProcessCollector(namespace="quotebot", registry=REGISTRY)  # CPU seconds, resident memory, open files

QUOTES_SERVED = Counter("quotebot_quotes_served", "Quotes written and returned.", registry=REGISTRY)
QUOTES_REFUSED = Counter(
    "quotebot_quotes_refused",
    "Quote requests answered without a quote, by reason (busy, cooldown, bad_option, ..., error).",
    ["reason"],
    registry=REGISTRY,
)
GENERATION_SECONDS = Histogram(
    "quotebot_generation_seconds",
    "Time from queueing a request at the model host to its completion.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
    registry=REGISTRY,
)
BATCH_FILL = Histogram(
    "quotebot_batch_fill_ratio",
    "Per finished batch: characters generated / (steps x the most rows at once).",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    registry=REGISTRY,
)
RETRAIN_RUNS = Counter(
    "quotebot_retrain_runs", "Finished retrain runs, by outcome.", ["outcome"], registry=REGISTRY
)
SCHEDULED_POSTS = Counter(
    "quotebot_scheduled_posts",
    "Due scheduled posts handled, by outcome (posted, paused, failed, waiting, superseded).",
    ["outcome"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge("quotebot_generation_queue_depth", "Requests waiting for the model.", registry=REGISTRY)
LOADED_MODELS = Gauge("quotebot_loaded_models", "Models loaded in the model host.", registry=REGISTRY)
GATEWAY_LATENCY = Gauge(
    "quotebot_gateway_latency_seconds", "Discord gateway heartbeat latency.", registry=REGISTRY
)
LOOP_LAG = Gauge(
    "quotebot_event_loop_lag_seconds", "How late the event loop ran a timer, last second.", registry=REGISTRY
)
READY = Gauge("quotebot_ready", "1 when /healthz answers 200, else 0.", registry=REGISTRY)


def refusal_reason(error: BaseException) -> str:
    """``BusyError`` -> ``busy``, ``SeedTooLongError`` -> ``seed_too_long``; ``error`` for a bug."""
    if not isinstance(error, QuotebotError):
        return "error"
    name = type(error).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_") or "refused"


def quote_refused(error: BaseException) -> None:
    QUOTES_REFUSED.labels(refusal_reason(error)).inc()


def count_scheduled(outcomes: dict[str, list[int]]) -> None:
    """One scheduler tick's report: schedule ids by outcome."""
    for outcome, ids in outcomes.items():
        if ids:
            SCHEDULED_POSTS.labels(outcome).inc(len(ids))


@dataclass
class LiveReadings:
    """The levels read at scrape time; ``None`` where there is nothing to read (no host yet)."""

    queue_depth: int | None = None
    loaded_models: int | None = None
    gateway_latency_s: float | None = None
    loop_lag_s: float | None = None
    ready: bool = False


def render(read: Callable[[], LiveReadings] | None = None) -> bytes:
    """Every series in Prometheus' text format, the live gauges read just now."""
    live = read() if read is not None else LiveReadings()
    for gauge, value in (
        (QUEUE_DEPTH, live.queue_depth),
        (LOADED_MODELS, live.loaded_models),
        (GATEWAY_LATENCY, live.gateway_latency_s),
        (LOOP_LAG, live.loop_lag_s),
    ):
        gauge.set(value if value is not None and value == value else 0)  # NaN (no heartbeat yet) -> 0
    READY.set(1 if live.ready else 0)
    return generate_latest(REGISTRY)
