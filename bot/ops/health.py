"""The health and metrics endpoint: ``/healthz`` and ``/metrics`` over HTTP with aiohttp, when
``HEALTH_PORT`` is set (off by default), on ``HEALTH_HOST`` (127.0.0.1 by default).

    server = HealthServer.for_bot(bot, "127.0.0.1", 8080)
    await server.start()       # in setup_hook, first, so a starting bot answers 503 "model not loaded"
    await server.stop()        # last thing in close()

``/healthz`` answers 200 ``ok`` when the gateway is connected, the model is loaded and the database
answers a query, else 503 with one line per reason; Docker's ``HEALTHCHECK`` and a load balancer read
it. ``/metrics`` is Prometheus' text format (``bot.ops.metrics``). A timer task measures the event loop's
lag (how late a 0.5 s sleep wakes), the worst of the last second read at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.ops import metrics
from bot.storage.db import fetch_one

DB_TIMEOUT_S = 2.0  # a database that takes longer to answer SELECT 1 is not healthy
LAG_INTERVAL_S = 0.5
Problems = Callable[[], Awaitable[list[str]]]
_log = logging.getLogger(__name__)


class HealthServerError(Exception):
    """The endpoint cannot listen where the settings say (the port is taken, the address is not ours)."""


class LoopLag:
    """How late the event loop wakes from a short sleep: a blocked loop shows here first."""

    def __init__(self, interval: float = LAG_INTERVAL_S):
        self.interval = interval
        self.worst = 0.0  # since the last read
        self.last = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._measure(), name="quotebot-loop-lag")

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.last = max(0.0, loop.time() - before - self.interval)
            self.worst = max(self.worst, self.last)

    def read(self) -> float:
        """The worst lag since the previous read (or the last one, if nothing was measured since)."""
        worst, self.worst = max(self.worst, self.last), 0.0
        return worst

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def bot_problems(bot: Any) -> Problems:
    """What keeps ``bot`` (a ``QuoteBot``) from serving: gateway, model, database; empty when healthy."""

    async def problems() -> list[str]:
        found = []
        if bot.is_closed():
            found.append("gateway: the bot is closing")
        elif not bot.is_ready():
            found.append("gateway: not connected (or not ready yet)")
        host = bot.host
        if host is None or not host.started:
            found.append("model: not loaded yet")
        store = bot.store
        if store is None:
            found.append("database: not open yet")
        else:
            try:
                await asyncio.wait_for(store.read(lambda db: fetch_one(db, "SELECT 1")), DB_TIMEOUT_S)
            except Exception as exc:  # any failure is the answer, not a crash of the endpoint
                found.append(f"database: {type(exc).__name__}: {exc}"[:200])
        return found

    return problems


def bot_readings(bot: Any, lag: LoopLag) -> Callable[[], metrics.LiveReadings]:
    """The live gauges of ``bot``, read at scrape time."""

    def read() -> metrics.LiveReadings:
        host = bot.host
        return metrics.LiveReadings(
            queue_depth=host.waiting if host is not None else None,
            loaded_models=host.loaded_count if host is not None else None,
            gateway_latency_s=bot.latency if bot.is_ready() else None,
            loop_lag_s=lag.read(),
        )

    return read


class HealthServer:
    """An aiohttp server for ``/healthz`` and ``/metrics`` (nothing else; GET only)."""

    def __init__(
        self,
        host: str,
        port: int,
        problems: Problems,
        readings: Callable[[], metrics.LiveReadings],
        lag: LoopLag | None = None,
    ):
        self.host, self.port = host, port
        self.problems = problems
        self.readings = readings
        self.lag = lag
        self._runner: web.AppRunner | None = None

    @classmethod
    def for_bot(cls, bot: Any, host: str, port: int) -> HealthServer:
        lag = LoopLag()
        return cls(host, port, bot_problems(bot), bot_readings(bot, lag), lag)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None)  # a scrape every few seconds is not news
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise HealthServerError(
                f"HEALTH_HOST/HEALTH_PORT: cannot listen on {self.host}:{self.port} ({exc.strerror or exc})"
            ) from None
        self._runner = runner
        if self.lag is not None:
            self.lag.start()
        _log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self.lag is not None:
            await self.lag.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, _request: web.Request) -> web.Response:
        found = await self.problems()
        if found:
            return web.Response(status=503, text="\n".join(found) + "\n")
        return web.Response(text="ok\n")

    async def metrics(self, _request: web.Request) -> web.Response:
        found = await self.problems()
        live = self.readings()
        live.ready = not found
        body = metrics.render(lambda: live)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})
