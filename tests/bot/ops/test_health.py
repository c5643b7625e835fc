"""bot.ops.health: what /healthz says about a bot that is not ready, and about its database; the loop-lag
timer. (The endpoint against a running bot is tests/discord/test_health.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from bot.app import create_bot
from bot.ops.health import HealthServer, HealthServerError, LoopLag, bot_problems
from bot.ops.metrics import LiveReadings
from bot.settings import load_settings
from bot.storage.store import Store
from tests.helpers import free_port


async def test_problems_name_the_gateway_the_model_and_the_database(tmp_path: Path):
    settings = load_settings({"DISCORD_TOKEN": "x.y.z", "DB_PATH": str(tmp_path / "q.db")}, env_file=None)
    bot = create_bot(settings)
    problems = bot_problems(bot)
    found = await problems()
    assert any(p.startswith("gateway:") for p in found)
    assert "model: not loaded yet" in found and "database: not open yet" in found

    bot.store = await Store.open(tmp_path / "q.db")
    assert not any(p.startswith("database") for p in await problems())  # it answers SELECT 1
    await bot.store.close()
    (database,) = [p for p in await problems() if p.startswith("database")]
    assert len(database) <= 200  # a closed connection: the reason, short


async def test_the_endpoint_answers_503_with_reasons_and_only_two_pages():
    async def problems() -> list[str]:
        return ["model: not loaded yet"]

    port = free_port()
    server = HealthServer("127.0.0.1", port, problems, LiveReadings)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 503 and await response.text() == "model: not loaded yet\n"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200 and "quotebot_ready 0.0" in await response.text()
            async with http.get(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 404
            async with http.post(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 405
    finally:
        await server.stop()


async def test_loop_lag_sees_a_blocked_loop():
    lag = LoopLag(interval=0.05)
    lag.start()
    await asyncio.sleep(0.12)
    quiet = lag.read()
    time.sleep(0.3)  # blocks the event loop, as a torch op run on it would
    await asyncio.sleep(0.12)
    blocked = lag.read()
    await lag.stop()
    assert quiet < 0.1 and blocked >= 0.2


async def test_a_taken_port_is_a_clear_configuration_error():
    port = free_port()
    first = HealthServer("127.0.0.1", port, bot_problems, LiveReadings)
    await first.start()
    try:
        with pytest.raises(
            HealthServerError, match=f"HEALTH_HOST/HEALTH_PORT: cannot listen on 127.0.0.1:{port}"
        ):
            await HealthServer("127.0.0.1", port, bot_problems, LiveReadings).start()
    finally:
        await first.stop()
