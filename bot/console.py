"""The offline console: the bot's commands on standard input, no Discord needed.

    python -m bot --console
    printf '!quote Hey,\\n' | python -m bot --console     # prints a quote, exits at end of input

Each line is a command, with or without the command prefix (``!quote Hey,`` or ``quote Hey,``).
Lines go through the same ``QuoteService`` as the Discord cog, so every rule (options, seed
checks, unknown characters) is the same; the console's own user is an owner, so it has no cooldown.
Replies go to standard output, logs to standard error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import TextIO

from bot.errors import QuotebotError
from bot.logging_setup import log_unexpected
from bot.model_host import ModelHost
from bot.service import QuoteService
from bot.settings import Settings

CONSOLE_USER_ID = 0  # not a Discord id; the person at the terminal
_log = logging.getLogger(__name__)


class StopConsole(Exception):
    """The user asked to leave."""


class Console:
    """Turns one line of input into one reply, through the service."""

    def __init__(self, service: QuoteService, prefix: str = "!"):
        self.service = service
        self.prefix = prefix

    def help_text(self, command: str = "") -> str:
        """The list of commands, or one command's full help."""
        command = command.strip().lower().removeprefix(self.prefix)
        if command == "quote":
            return self.service.quote_help(self.prefix)
        if command in ("help", "quit", "exit"):
            return {
                "help": "help [command]: the list of commands, or one command's help.",
                "quit": "quit: leave the console (end of input does the same).",
                "exit": "exit: leave the console (end of input does the same).",
            }[command]
        unknown = f"There is no command {command!r}.\n\n" if command else ""
        return unknown + (
            "Commands (with or without the prefix):\n"
            f"  {self.prefix}quote [seed] [--temp T] [--len N] [--rng S]   write a quote (help quote: more)\n"
            f"  {self.prefix}help [command]   this list, or one command's help\n"
            "  quit   leave the console (or end the input, Ctrl-D)"
        )

    async def handle(self, line: str) -> str | None:
        """The reply to one line of input (``None`` for a blank line); ``StopConsole`` on quit."""
        line = line.strip()
        if not line:
            return None
        if line.startswith(self.prefix):
            line = line[len(self.prefix) :]
        elif line.startswith("/"):  # people type the slash-command form too
            line = line[1:]
        name, _, rest = line.partition(" ")
        name = name.lower()
        if name in ("quit", "exit"):
            raise StopConsole()
        if name == "help":
            return self.help_text(rest)
        if name != "quote":
            return f"I don't know the command {name!r}; type help for the list."
        try:
            result = await self.service.quote(user_id=CONSOLE_USER_ID, text=rest)
        except QuotebotError as exc:
            return str(exc)
        except Exception as exc:  # a bug: the log gets the traceback, the user the id
            error_id = log_unexpected(_log, exc, f"console command {name!r}")
            return f"Something went wrong on my side (error id {error_id}); the log has the details."
        return result.reply

    async def run(self, lines: AsyncIterator[str], out: TextIO, interactive: bool = False) -> None:
        """Answer every line until the input ends or the user quits."""
        if interactive:
            print("quotebot console: type help for the commands, quit or Ctrl-D to leave.", file=out)
        async for line in lines:
            try:
                reply = await self.handle(line)
            except StopConsole:
                return
            if reply is not None:
                print(reply, file=out, flush=True)


async def read_lines(stream: TextIO) -> AsyncIterator[str]:
    """Lines of ``stream``, read in a daemon thread so a pending read never holds up exit."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        try:
            for line in iter(stream.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:
            return  # the loop is closed (the user quit): nobody is reading anymore
        except (ValueError, OSError):
            pass  # the stream was closed under us: treat it as the end of input
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="console-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


async def run_console(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    """Load the model, answer commands from ``stdin`` until it ends, close everything; the exit status."""
    host = ModelHost.from_settings(settings)
    _log.info("loading the model from %s", settings.model_path)
    await host.start()
    service = QuoteService.from_settings(settings, host, owner_ids=settings.owner_ids | {CONSOLE_USER_ID})
    try:
        await Console(service, settings.command_prefix).run(read_lines(stdin), stdout, stdin.isatty())
    finally:
        await service.close()
        await host.close()
    return 0
