"""Two bot processes on different shards sharing one PostgreSQL, end to end through the Discord test server.

Each process is a real ``python -m bot`` with ``SHARD_COUNT=2`` and its own ``SHARD_IDS``; the test server
sends each guild's events only to the connection that identified for its shard. What must hold: each
process answers only its own guild, a schedule posts exactly once, votes reaching either process land in
the one store, and restarting one process leaves the other's retrain running to its end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.schedules.rhythm import parse_schedule
from bot.schedules.store import ScheduleStore
from bot.storage.model_versions import ModelVersions, owner_name
from bot.storage.shards import shard_of
from bot.storage.store import Store
from model.checkpoint import save_checkpoint
from model.vocab import Vocab
from tests.discord_server import DiscordServer
from tests.helpers import fill_store, make_tiny_model

pytestmark = [pytest.mark.discord, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def base_checkpoint(tmp_path: Path, sample_vocab: Vocab) -> Path:
    """A tiny model that names the sample corpus as its own: the base text a retrain is judged on."""
    meta = {"corpus": "data/sample_quotes.txt", "val_fraction": 0.1}
    return save_checkpoint(tmp_path / "base.pt", make_tiny_model(sample_vocab, layers=1), sample_vocab, meta)


@dataclass
class BotProcess:
    """One ``python -m bot`` running some shards; its output goes to a file (a full pipe would stall it)."""

    shard: int
    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=self.log.parent, env=self.env, stdout=out, stderr=out
            )

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode or 0


async def answered(server: DiscordServer, content: str, channel) -> list:
    """A member asks in ``channel``; every bot message that answers it (one, if only one process heard)."""
    sent = await server.user_sends(server.member, content, channel)
    await server.wait_for_message(channel, lambda m: m.id > sent.id, timeout=30)
    await asyncio.sleep(1.0)  # a second process that heard it too would have answered by now
    return [m for m in server.bot_messages(channel) if m.id > sent.id]


async def test_two_processes_on_two_shards_share_one_postgresql(
    discord_server: DiscordServer,
    postgres_url: str,
    base_checkpoint: Path,
    tmp_path: Path,
    sample_quotes: list[str],
):
    server = discord_server
    first = server.guild
    first_shard = shard_of(first.id, 2)
    other_shard = 1 - first_shard
    second, second_channel = server.world.add_guild_like_the_first("Second", shard=(other_shard, 2))
    channels = {first_shard: server.channel, other_shard: second_channel}
    async with await Store.open(postgres_url) as store:
        await fill_store(store, sample_quotes, guild=second.id)  # enough favoured quotes to retrain
    shared = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DATABASE_URL", "SHARD_"))},
        **server.env(),
        "PYTHONPATH": str(REPO),
        "MODEL_PATH": str(base_checkpoint),
        "DEVICE": "cpu",
        "DATABASE_URL": postgres_url,
        "SHARD_COUNT": "2",
        "MODELS_DIR": str(tmp_path / "models"),  # one models folder, as on a shared volume
        "QUOTE_COOLDOWN_SECONDS": "0",
        "SCHEDULE_CHECK_SECONDS": "0.2",
        "MAX_QUOTE_CHARS": "120",
        "MAX_SEED_CHARS": "60",
        "RETRAIN_MIN_QUOTES": "5",
        "RETRAIN_MINUTES": "0.4",  # long enough to outlive the other process's restart
        "RETRAIN_TIME_LIMIT_MINUTES": "3",
        "RETRAIN_SCORE_MARGIN": "1",
        "RETRAIN_LOOP_TARGET": "1",
        "GENERATION_THREADS": "1",
    }
    bots = {}
    for shard in (first_shard, other_shard):
        folder = tmp_path / f"process-{shard}"
        folder.mkdir()
        bots[shard] = BotProcess(shard, {**shared, "SHARD_IDS": str(shard)}, folder / "bot.log")
    try:
        for bot in bots.values():
            await bot.start()
        await server.wait_for_session(count=2, timeout=90)
        assert sorted(s.shard for s in server.gateway.identifies) == [(0, 2), (1, 2)]

        # Each process answers only its own guild: one reply per question, never two.
        replies = {}
        for shard, channel in channels.items():
            found = await answered(server, "!quote Hey,", channel)
            assert len(found) == 1, [m.content for m in found]
            replies[shard] = found[0]

        # Votes reaching either process land in the one store.
        for reply in replies.values():
            await server.add_reaction(server.admin, reply, "⭐")
        async with await Store.open(postgres_url) as store:

            async def votes_landed() -> bool:
                quotes = [await store.quote_by_message(r.id) for r in replies.values()]
                return all(q is not None and q.votes == 1 for q in quotes)

            for _ in range(200):
                if await votes_landed():
                    break
                await asyncio.sleep(0.05)
            assert await votes_landed()

            # A due schedule in each guild posts exactly once, by the process of its shard.
            schedules = ScheduleStore(store)
            past = datetime.now(timezone.utc) - timedelta(hours=2)
            rhythm, seed = parse_schedule("every 1h Hey,", past)
            made = [
                await schedules.add(
                    guild_id=guild.id,
                    channel_id=channel.id,
                    created_by=server.admin.id,
                    rhythm=rhythm,
                    seed=seed,
                    now=past,
                )
                for guild, channel in ((first, server.channel), (second, second_channel))
            ]
            before = {shard: len(server.bot_messages(channel)) for shard, channel in channels.items()}
            for schedule in made:
                await server.wait_for(
                    lambda s=schedule: (
                        s.id
                        if len(server.bot_messages(s.channel_id)) > before[shard_of(s.guild_id, 2)]
                        else None
                    ),
                    timeout=30,
                    what=f"schedule {schedule.id}'s post",
                )
            await asyncio.sleep(2.0)  # ten more ticks of each process: no second post
            after = {shard: len(server.bot_messages(channel)) for shard, channel in channels.items()}
            assert after == {shard: count + 1 for shard, count in before.items()}

            # A retrain in the second guild runs in its process; the first process restarts meanwhile.
            versions = ModelVersions(store, tmp_path / "models")
            status_before = len(server.bot_messages(second_channel))
            await server.user_sends(server.admin, "!retrain", second_channel)
            await server.wait_for(
                lambda: len(server.bot_messages(second_channel)) > status_before or None,
                timeout=30,
                what="the retrain's status message",
            )
            status = server.bot_messages(second_channel)[-1]
            for _ in range(100):  # the status message goes out first, then the run is recorded
                run = await versions.latest_run(second.id)
                if run is not None:
                    break
                await asyncio.sleep(0.1)
            assert run is not None and run.status == "running", status.content
            assert await store.read(lambda db: _owner(db, run.id)) == owner_name((other_shard,))
            assert await bots[first_shard].stop() == 0
            await bots[first_shard].start()
            await server.wait_for_session(count=3, timeout=90)  # the first process is back
            assert len(await answered(server, "!quote Hey,", server.channel)) == 1  # and answering
            assert (await versions.run(run.id)).status in ("running", "promoted")  # never 'interrupted'
            ends = ("now serves", "failed", "rejected", "interrupted")
            await server.wait_for(
                lambda: any(end in status.content for end in ends) or None, timeout=150, what="the run's end"
            )
            assert "now serves" in status.content, status.content
            assert (await versions.run(run.id)).status == "promoted"
    finally:
        codes = [await bot.stop() for bot in bots.values() if bot.proc is not None]
        logs = "\n".join(bot.log.read_text(errors="replace")[-3000:] for bot in bots.values())
        assert server.token not in logs and postgres_url not in logs  # no secret in any log line
    assert codes == [0, 0], logs


async def _owner(db, run_id: int) -> str | None:
    async with db.execute("SELECT owner FROM retrain_runs WHERE id = ?", (run_id,)) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None
