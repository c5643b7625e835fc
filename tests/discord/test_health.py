"""/healthz and /metrics of the real bot against the Discord test server: 503 before the gateway is
ready, 200 after; the quotebot_* series move when a quote is served and when one is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import create_bot
from tests.discord.helpers import ask, bot_settings
from tests.discord_server import DiscordServer
from tests.helpers import free_port

pytestmark = pytest.mark.discord


async def get(session: aiohttp.ClientSession, url: str, timeout: float = 15.0) -> tuple[int, str]:
    """GET ``url``, retrying while nothing listens yet (the endpoint starts with the bot's setup)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            async with session.get(url) as response:
                return response.status, await response.text()
        except aiohttp.ClientConnectionError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_healthz_and_metrics_follow_the_bot(discord_server: DiscordServer, mention_checkpoint: Path):
    port = free_port()
    settings = bot_settings(discord_server, mention_checkpoint, HEALTH_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    bot = create_bot(settings, guild_ready_timeout=0.1)
    async with aiohttp.ClientSession() as http:
        # The gateway holds every connection: the bot logs in and sets up, but is never ready.
        async with discord_server.outage():
            task = asyncio.create_task(bot.start(settings.token.get()))
            status, body = await get(http, f"{base}/healthz")
            while "model" in body or "database" in body:  # setup is still loading them
                status, body = await get(http, f"{base}/healthz")
            assert status == 503 and "gateway: not connected" in body
            status, metrics_text = await get(http, f"{base}/metrics")
            assert status == 200 and samples(metrics_text)[("quotebot_ready", ())] == 0
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while not bot.is_ready():
                assert loop.time() < deadline and not task.done()
                await asyncio.sleep(0.01)
            status, body = await get(http, f"{base}/healthz")
            assert (status, body) == (200, "ok\n")

            before = samples((await get(http, f"{base}/metrics"))[1])
            _sent, reply = await ask(discord_server, "!quote Hey,")
            assert reply.content.startswith("Hey,")
            _sent, refused = await ask(discord_server, "!quote Again")  # within QUOTE_COOLDOWN_SECONDS
            assert "slow down" in refused.content
            status, text = await get(http, f"{base}/metrics")
            after = samples(text)
        finally:
            await bot.close()
            await asyncio.wait_for(task, 15)
        # Closed: nothing listens any more.
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(http, f"{base}/healthz", timeout=0)

    def moved(name: str, labels: tuple = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert status == 200
    assert all(name.startswith("quotebot_") for name, _labels in after)
    assert moved("quotebot_quotes_served_total") == 1
    assert moved("quotebot_quotes_refused_total", (("reason", "cooldown"),)) == 1
    assert moved("quotebot_generation_seconds_count") == 1
    assert moved("quotebot_batch_fill_ratio_count") >= 1
    assert after[("quotebot_loaded_models", ())] == 1
    assert after[("quotebot_generation_queue_depth", ())] == 0
    assert after[("quotebot_ready", ())] == 1
    assert after[("quotebot_gateway_latency_seconds", ())] >= 0
    assert ("quotebot_event_loop_lag_seconds", ()) in after
    for name in ("quotebot_retrain_runs_total", "quotebot_scheduled_posts_total"):
        assert f"# TYPE {name} counter" in text  # labelled series: declared, a sample once one happens
