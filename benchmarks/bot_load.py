"""The real bot under load: many users' ``!quote`` commands at once, against the Discord test server.

    python benchmarks/bot_load.py                          # 200 commands from 50 users, three setups
    python benchmarks/bot_load.py --setup 256:32 --commands 400 --users 100

Each setup (``QUEUE:BATCH``: GENERATION_QUEUE_SIZE and GENERATION_BATCH_SIZE) starts a fresh Discord
test server (tests/discord_server) with ``--users`` members, and the real ``QuoteBot`` (bot/app.py) on
the bundled model with a temporary DB_PATH and QUOTE_COOLDOWN_SECONDS=0, so that every user may send all
their commands at once (``--commands`` in all, each user's share back to back, all posted together).

The server runs on its own event loop in a second thread: its work is not the bot's (on Discord it
runs elsewhere), though it shares this process's GIL and cores. Measured, per setup: every command's
reply latency (the server's clock from the user's message to the bot's reply), quotes per second (from
the first command to the last reply), the bot's event-loop lag p99 (a task in the bot's loop sleeping
1 ms), the process's peak memory (ru_maxrss, reset per setup: torch, the bot and the server), and how
each command was answered: a quote, a polite "busy", another error reply, or nothing at all (silence,
which must not happen).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import (
    LagSampler,
    machine_line,
    markdown_table,
    peak_rss_mib,
    percentile,
    reset_peak_rss,
)
from bot.app import create_bot
from bot.serving.host import default_threads
from bot.settings import load_settings
from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from tests.discord_server import DiscordServer

T = TypeVar("T")
SEEDS = ["", "The", "I", "What", "My lord,", "Now", "O", "Good"]  # each command adds --rng for repeatability
BUSY_MARK = "try again shortly"


class ServerThread:
    """A ``DiscordServer`` serving from its own event loop in a daemon thread."""

    def __init__(self, server: DiscordServer):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="discord-test-server", daemon=True)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and await its result from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@dataclass
class Outcome:
    """What one setup did with its commands."""

    setup: str
    commands: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"quote": [], "busy": [], "error": []})
    quote_chars: list[int] = field(default_factory=list)
    seconds: float = 0.0  # first command to last reply
    lag_p99_ms: float = 0.0
    peak_rss_mib: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)
    batch_fill: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def _when(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


async def _post_all(server: DiscordServer, users: list, texts: list[str]) -> list[tuple[int, str]]:
    """On the server's loop: every user's commands posted at once; (message id, created_at) of each."""
    sent = await asyncio.gather(*(server.user_sends(u, t) for u, t in zip(users, texts, strict=True)))
    return [(m.id, m.created_at) for m in sent]


async def _replies(server: DiscordServer, command_ids: set[int]) -> dict[int, tuple[str, str]]:
    """On the server's loop: the bot's first reply to each command, as (content, created_at)."""
    found: dict[int, tuple[str, str]] = {}
    for message in list(server.store.messages.values()):
        if message.author_id != server.bot_user.id or not message.message_reference:
            continue
        ref = int(message.message_reference.get("message_id", 0))
        if ref in command_ids and ref not in found:
            found[ref] = (message.content, message.created_at)
    return found


async def run_setup(args: argparse.Namespace, queue: int, batch: int) -> Outcome:
    """One fresh server and bot; all commands at once; wait for every reply (or ``args.timeout``)."""
    reset_peak_rss()  # each setup's own peak: its model load, its bot and its load
    server = DiscordServer()
    users = [server.world.add_user(f"user{i:03d}") for i in range(args.users)]
    for user in users:
        server.world.add_member(server.guild, user)
    threaded = ServerThread(server)
    threaded.start()
    outcome = Outcome(f"queue {queue}, batch {batch}", args.commands)
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **server.env(),
            "MODEL_PATH": str(args.checkpoint),
            "DEVICE": "cpu",
            "DB_PATH": str(Path(tmp) / "load.db"),
            "QUOTE_COOLDOWN_SECONDS": "0",
            "GENERATION_QUEUE_SIZE": str(queue),
            "GENERATION_BATCH_SIZE": str(batch),
            "GENERATION_BATCH_WAIT_MS": str(args.batch_wait_ms),
            "GENERATION_THREADS": str(args.threads),
            "LOG_LEVEL": "WARNING",
        }
        settings = load_settings(env, env_file=None)
        bot = create_bot(settings, guild_ready_timeout=0.1)
        task = asyncio.create_task(bot.start(server.token))
        try:
            await _wait_ready(bot, task)
            await _drive(args, threaded, bot, users, outcome)
        finally:
            await bot.close()
            await asyncio.wait_for(task, 60)
            threaded.stop()
    return outcome


async def _wait_ready(bot, task: asyncio.Task, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not bot.is_ready():
        if task.done():
            task.result()
            raise RuntimeError("the bot stopped before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bot was not ready within {timeout:.0f} s")
        await asyncio.sleep(0.02)


async def _drive(
    args: argparse.Namespace, threaded: ServerThread, bot, users: list, outcome: Outcome
) -> None:
    """Post every command at once, then collect the replies while sampling the bot's event loop."""
    server = threaded.server
    senders = [users[(i // args.per_user) % len(users)] for i in range(args.commands)]
    texts = [f"!quote {SEEDS[i % len(SEEDS)]} --rng {i}".replace("  ", " ") for i in range(args.commands)]
    async with LagSampler() as lag:
        sent = await threaded.call(_post_all(server, senders, texts))
        ids = {message_id for message_id, _ in sent}
        deadline = time.monotonic() + args.timeout
        replies: dict[int, tuple[str, str]] = {}
        while len(replies) < len(ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            replies = await threaded.call(_replies(server, ids))
    outcome.lag_p99_ms = lag.percentile_ms(99)
    outcome.peak_rss_mib = peak_rss_mib()
    outcome.batch_sizes = list(bot.host.batch_sizes)
    outcome.batch_fill = list(bot.host.batch_fill)
    first = min(_when(created) for _, created in sent)
    last = first
    for message_id, created in sent:
        if message_id not in replies:
            continue
        content, replied = replies[message_id]
        last = max(last, _when(replied))
        kind = (
            "busy" if BUSY_MARK in content else "error" if content.startswith("Something went") else "quote"
        )
        outcome.latencies[kind].append(_when(replied) - _when(created))
        if kind == "quote":
            outcome.quote_chars.append(len(content))
    outcome.seconds = last - first


def outcome_table(outcomes: list[Outcome]) -> str:
    rows = []
    for o in outcomes:
        quotes = o.latencies["quote"]
        mean_batch = sum(o.batch_sizes) / len(o.batch_sizes) if o.batch_sizes else 0.0
        fill = sum(o.batch_fill) / len(o.batch_fill) if o.batch_fill else 0.0
        rows.append(
            [
                o.setup,
                o.commands,
                o.answered,
                len(quotes),
                len(o.latencies["busy"]),
                len(o.latencies["error"]),
                o.commands - o.answered,
                *(f"{percentile(quotes, q):.2f}" for q in (50, 95, 99)),
                f"{len(quotes) / o.seconds:.1f}" if o.seconds > 0 else "-",
                f"{sum(o.quote_chars) / max(1, len(o.quote_chars)):.0f}",
                f"{mean_batch:.1f}",
                f"{fill:.0%}",
                f"{o.lag_p99_ms:.1f}",
                f"{o.peak_rss_mib:.0f}",
            ]
        )
    header = ["setup", "commands", "answered", "quotes", "busy", "errors", "silent"]
    header += ["p50 s", "p95 s", "p99 s", "quotes/s", "chars/quote", "mean batch", "batch fill"]
    header += ["loop lag p99 ms"]
    return markdown_table([*header, "peak RSS MiB"], rows)


def _setup(text: str) -> tuple[int, int]:
    try:
        queue, batch = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not QUEUE:BATCH, e.g. 256:32") from None
    if queue < 1 or batch < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: both sizes must be at least 1")
    return queue, batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument(
        "--setup", type=_setup, action="append", help="QUEUE:BATCH (default: 32:8, 128:32 and 256:32)"
    )
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="GENERATION_THREADS (0: every core but one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the last reply")
    args = parser.parse_args(argv)
    if args.users < 1 or args.commands < 1:
        parser.error("--users and --commands must be at least 1")
    args.per_user = -(-args.commands // args.users)
    setups = args.setup or [(32, 8), (128, 32), (256, 32)]
    threads = args.threads or default_threads()
    cfg = load_checkpoint(args.checkpoint).model.config
    print(f"machine: {machine_line(threads)}")
    print(
        f"bot: QuoteBot on {args.checkpoint.name} ({cfg.num_layers}x{cfg.hidden_size} LSTM), "
        f"GENERATION_BATCH_WAIT_MS={args.batch_wait_ms:g}, GENERATION_THREADS={threads}, "
        f"QUOTE_COOLDOWN_SECONDS=0, MAX_QUOTE_CHARS default"
    )
    print(
        f"load: {args.commands} `!quote` commands from {args.users} users "
        f"({args.per_user} each, back to back), "
        "all posted at once; latency and quotes/s count quotes only"
    )
    torch.set_num_threads(threads)
    outcomes = [asyncio.run(run_setup(args, queue, batch)) for queue, batch in setups]
    print(outcome_table(outcomes))
    silent = sum(o.commands - o.answered for o in outcomes)
    print(f"every command answered: {'yes' if silent == 0 else f'NO, {silent} left in silence'}")
    return 0 if silent == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
