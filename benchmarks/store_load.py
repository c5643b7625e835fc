"""The store under several writer processes: quotes and votes per second on SQLite and on PostgreSQL.

    python benchmarks/store_load.py                                  # 4 writers, both backends
    python benchmarks/store_load.py --writers 8 --quotes 500 --votes 2000
    python benchmarks/store_load.py --postgres postgresql://bot:PASSWORD@db/quotes_bench   # a real server

Each writer is its own process (as each bot process would be) with its own ``Store``: SQLite opens the
same file (WAL, one writer at a time, lock retries); PostgreSQL opens a pool to the same database
(SERIALIZABLE writes, retried on conflicts). All writers start together; each stores ``--quotes`` quotes
(``Store.add_quote``, ``--concurrency`` at once, as a bot's tasks would), then casts ``--votes`` votes
(``Store.add_vote``) on every writer's quotes from distinct users, 10% of them sent a second time (a
doubled reaction event: counted once). Throughput is the operations of all writers over the phase's wall
time (first start to last finish). Afterwards the store is counted: every quote and every distinct vote
must be there, none lost and none doubled. Without ``--postgres``, a throwaway PostgreSQL is started with
pgserver (the dev extra), and its run is skipped, saying so, if that is not possible.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.storage.db import fetch_one
from bot.storage.store import Store

GUILD, CHANNEL = 700_000_000_000_000_001, 710_000_000_000_000_001


@dataclass(frozen=True)
class Plan:
    writers: int
    quotes: int  # per writer
    votes: int  # distinct votes per writer
    concurrency: int  # operations in flight per writer


@dataclass(frozen=True)
class Result:
    backend: str
    quotes_per_s: float
    votes_per_s: float
    quotes_stored: int
    votes_stored: int
    quotes_expected: int
    votes_expected: int
    busy_errors: int

    @property
    def lossless(self) -> bool:
        return (self.quotes_stored, self.votes_stored) == (self.quotes_expected, self.votes_expected)


async def _bounded(concurrency: int, jobs: list[Any]) -> list[Any]:
    slots = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> Any:
        async with slots:
            try:
                return await job()
            except Exception as exc:  # counted, so a lost write shows in the table rather than a crash
                return exc

    return await asyncio.gather(*(one(job) for job in jobs))


async def _writer(target: str, index: int, plan: Plan, start: Any, quotes_done: Any, out: Any) -> None:
    store = await Store.open(target, busy_timeout=60)
    try:
        start.wait()  # every writer's store is open: go together
        began = time.time()
        jobs = [
            lambda i=i: store.add_quote(guild_id=GUILD, channel_id=CHANNEL, requester_id=index + 1,
                                        seed="Hey,", text=f"Hey, writer {index} quote {i}",
                                        settings={"temperature": 0.8}, model_version="default")
            for i in range(plan.quotes)
        ]  # fmt: skip
        results = await _bounded(plan.concurrency, jobs)
        quotes_end = time.time()
        errors = sum(isinstance(r, Exception) for r in results)
        quotes_done.wait()  # votes go on everyone's quotes: wait until all are stored
        ids = await store.read(lambda db: _all_ids(db))
        rng = random.Random(index)
        pairs = [(rng.choice(ids), 1_000_000 * (index + 1) + n) for n in range(plan.votes)]
        pairs += rng.sample(pairs, plan.votes // 10)  # doubled reaction events
        rng.shuffle(pairs)
        votes_began = time.time()
        voted = await _bounded(plan.concurrency, [lambda p=p: store.add_vote(*p) for p in pairs])
        votes_end = time.time()
        errors += sum(isinstance(r, Exception) for r in voted)
        out.put((began, quotes_end, votes_began, votes_end, errors))
    finally:
        await store.close()


async def _all_ids(db: Any) -> list[int]:
    async with db.execute("SELECT id FROM quotes") as cursor:
        return [row[0] for row in await cursor.fetchall()]


def _writer_process(target: str, index: int, plan: Plan, start: Any, quotes_done: Any, out: Any) -> None:
    asyncio.run(_writer(target, index, plan, start, quotes_done, out))


async def _count(target: str) -> tuple[int, int]:
    async with await Store.open(target) as store:
        quotes = (await store.read(lambda db: fetch_one(db, "SELECT COUNT(*) FROM quotes")))[0]
        votes = (await store.read(lambda db: fetch_one(db, "SELECT COUNT(*) FROM votes")))[0]
    return int(quotes), int(votes)


def run(backend: str, target: str, plan: Plan) -> Result:
    """Run the writers against ``target`` (a fresh store) and count what landed."""
    asyncio.run(_count(target))  # create and migrate it once, before the clock starts
    ctx = mp.get_context("spawn")  # a clean interpreter per writer, as separate bot processes are
    start, quotes_done = ctx.Barrier(plan.writers), ctx.Barrier(plan.writers)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_writer_process, args=(target, i, plan, start, quotes_done, out))
        for i in range(plan.writers)
    ]
    for proc in procs:
        proc.start()
    timings = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(60)
    quotes, votes = asyncio.run(_count(target))
    quote_wall = max(t[1] for t in timings) - min(t[0] for t in timings)
    vote_wall = max(t[3] for t in timings) - min(t[2] for t in timings)
    total_quotes, total_votes = plan.writers * plan.quotes, plan.writers * plan.votes
    return Result(
        backend, total_quotes / quote_wall, total_votes * 1.1 / vote_wall, quotes, votes,
        total_quotes, total_votes, sum(t[4] for t in timings),
    )  # fmt: skip


def _postgres(url: str | None, folder: Path) -> tuple[str | None, Any, str]:
    """(URL, server to stop or None, why not) for the PostgreSQL run."""
    if url:
        return url, None, ""
    try:
        import pgserver
    except ImportError:
        return None, None, "pgserver is not installed (pip install -e '.[dev]') and no --postgres URL given"
    try:
        server = pgserver.get_server(folder, cleanup_mode="stop")
    except Exception as exc:
        return None, None, f"PostgreSQL could not start here ({type(exc).__name__}: {exc})"
    return server.get_uri(), server, ""


def main(argv: list[str] | None = None) -> int:
    # Here, not at the top: measure.py loads torch, which each spawned writer would load again for nothing.
    from benchmarks.measure import cores, markdown_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4, help="writer processes (default 4)")
    parser.add_argument("--quotes", type=int, default=300, help="quotes per writer")
    parser.add_argument("--votes", type=int, default=1200, help="distinct votes per writer")
    parser.add_argument("--concurrency", type=int, default=8, help="operations in flight per writer")
    parser.add_argument("--postgres", default=None, help="a postgresql:// URL of an empty database")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"), default=None)
    args = parser.parse_args(argv)
    plan = Plan(args.writers, args.quotes, args.votes, args.concurrency)
    results: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="store-load-") as tmp:
        for backend in args.backend or ["sqlite", "postgresql"]:
            if backend == "sqlite":
                results.append(run("SQLite (WAL file)", str(Path(tmp) / "load.db"), plan))
                continue
            url, server, why = _postgres(args.postgres, Path(tmp) / "pg")
            if url is None:
                notes.append(f"PostgreSQL skipped: {why}")
                continue
            try:
                results.append(run("PostgreSQL (pool of 10 per writer)", url, plan))
            finally:
                if server is not None:
                    server.cleanup()
    print(f"{plan.writers} writer processes x ({plan.quotes} quotes, then {plan.votes} votes + 10% doubled), "
          f"{plan.concurrency} in flight each; {cores()} cores")  # fmt: skip
    rows = [
        [r.backend, f"{r.quotes_per_s:,.0f}", f"{r.votes_per_s:,.0f}",
         f"{r.quotes_stored}/{r.quotes_expected}", f"{r.votes_stored}/{r.votes_expected}", r.busy_errors]
        for r in results
    ]  # fmt: skip
    header = ["store", "quotes/s", "vote events/s", "quotes stored", "votes stored", "errors"]
    print(markdown_table(header, rows))
    for note in notes:
        print(note)
    lossless = all(r.lossless and r.busy_errors == 0 for r in results)
    print(f"none lost: {'yes' if lossless else 'NO'}")
    return 0 if lossless else 1


if __name__ == "__main__":
    raise SystemExit(main())
