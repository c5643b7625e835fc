"""Run quotebot: on Discord when a token is configured, else as the offline console.

    python -m bot                 # Discord if DISCORD_TOKEN is set, the console otherwise
    python -m bot --console       # the console, even with a token
    python -m bot --sync          # also publish the slash commands (/quote) to Discord
    printf '!quote Hey,\\n' | python -m bot --console
    python -m bot export --db quotebot.db --out favoured.jsonl   # the stored quotes a retrain learns from

Installed, ``quotebot`` is the same command (``quotebot --console``, ``quotebot --sync``).

Exit status: 0 after a clean stop (end of input, quit, Ctrl-C, SIGTERM); 2 for configuration a restart
cannot fix (wrong settings, a bad model or database file, a token Discord refuses, a missing intent);
1 for any other failure (Discord unreachable, a shutdown cut short by a second SIGTERM or by
``SHUTDOWN_TIMEOUT_SECONDS``), which a supervisor may retry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import discord

from bot.console import run_console
from bot.logging_setup import setup_logging
from bot.ops.health import HealthServerError
from bot.ops.shutdown import CLOSE_GRACE_S, ShutdownGuard
from bot.settings import Settings, SettingsError, load_settings
from bot.storage.migrations import MigrationError
from bot.storage.records import StoreError
from model.checkpoint import CheckpointError
from model.device import DeviceError

_log = logging.getLogger("bot")


def build_parser() -> argparse.ArgumentParser:
    prog = "quotebot" if Path(sys.argv[0]).name == "quotebot" else "python -m bot"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--console", action="store_true", help="read commands from standard input")
    parser.add_argument("--sync", action="store_true", help="publish the slash commands on start")
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    return parser


def install_stop_signals(stop: Callable[[str], None]) -> Callable[[], None]:
    """Call ``stop(name)`` on SIGINT and SIGTERM; returns a function that removes the handlers."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows' loop
            loop.add_signal_handler(sig, stop, sig.name)
            installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


async def run_bot(settings: Settings) -> int:
    """Connect to Discord and serve until a signal or ``close()``; errors propagate to ``main``."""
    from bot.app import create_bot  # here, so the console never imports the Discord side

    assert settings.token is not None
    bot = create_bot(settings)
    closing: set[asyncio.Task[None]] = set()
    guard = ShutdownGuard(settings.shutdown_timeout_seconds + CLOSE_GRACE_S)

    def stop(name: str) -> None:
        if not guard.first(name):
            return
        _log.info("received %s; finishing replies in flight, then closing", name)
        task = asyncio.create_task(bot.close())
        closing.add(task)  # a reference, so the task is not collected mid-way

    remove = install_stop_signals(stop)
    try:
        async with bot:
            await bot.start(settings.token.get())
    finally:
        guard.cancel()
        remove()
    return 0


async def run_offline(settings: Settings) -> int:
    """The console, stopped cleanly (model host closed) by Ctrl-C or SIGTERM."""
    task = asyncio.create_task(run_console(settings, sys.stdin, sys.stdout))
    remove = install_stop_signals(lambda _name: task.cancel())
    try:
        return await task
    except asyncio.CancelledError:
        return 0
    finally:
        remove()


def run(main: Coroutine[Any, Any, int], settings: Settings) -> int:
    """Run ``main`` and turn the ways it can fail into one clear line and an exit status."""
    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        return 0
    except (CheckpointError, DeviceError, StoreError, MigrationError, HealthServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except discord.LoginFailure:
        print(
            "error: Discord refused the token in DISCORD_TOKEN (wrong, or reset since). Copy a new one "
            "from the developer portal: your application -> Bot -> Reset Token.",
            file=sys.stderr,
        )
        return 2
    except discord.PrivilegedIntentsRequired:
        print(
            "error: the Message Content intent is not enabled for this bot. Turn on 'Message Content "
            "Intent' in the developer portal: your application -> Bot -> Privileged Gateway Intents.",
            file=sys.stderr,
        )
        return 2
    except (aiohttp.ClientConnectionError, discord.GatewayNotFound) as exc:
        print(
            f"error: cannot reach Discord at {settings.api_base} / {settings.gateway_url}: {exc}",
            file=sys.stderr,
        )
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        from bot.export import main as export_main

        return export_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(env_file=args.env_file)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.sync:
        settings = dataclasses.replace(settings, sync_commands=True)
    setup_logging(settings.log_level, secrets=[settings.token], fmt=settings.log_format)
    if args.console or not settings.has_token:
        if not args.console:
            print(
                "No DISCORD_TOKEN is configured, so quotebot runs as an offline console "
                "(set DISCORD_TOKEN in .env to connect to Discord).",
                file=sys.stderr,
            )
        return run(run_offline(settings), settings)
    return run(run_bot(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
