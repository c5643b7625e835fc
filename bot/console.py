"""The offline console: the bot's commands on standard input, no Discord needed.

    python -m bot --console
    printf '!quote Hey,\\n' | python -m bot --console     # prints a quote, exits at end of input

Each line is a command, with or without the command prefix (``!quote Hey,`` or ``quote Hey,``).
Lines go through the same ``QuoteService`` as the Discord cog, so every rule (options, seed
checks, unknown characters) is the same; the console's own user is an owner, so it has no cooldown.
Quotes are stored in ``DB_PATH`` like the bot's (no server, requester ``CONSOLE_USER_ID``), and the
operator can list a server's favourites (``top SERVER_ID [n]``) and delete a person's data on request
(``forget USER_ID``), through the same ``bot.quotes.favourites`` rules as ``!top`` and ``!forgetme``.
Replies go to standard output, logs to standard error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator
from typing import TextIO

from bot.errors import QuotebotError, log_unexpected
from bot.quotes.favourites import TOP_DEFAULT, AddQuoteLimits, Favourites, FavouritesError
from bot.quotes.service import QuoteService
from bot.serving.host import ModelHost
from bot.settings import Settings
from bot.storage.store import Store, StoreError

CONSOLE_USER_ID = 0  # not a Discord id; the person at the terminal
_log = logging.getLogger(__name__)


class StopConsole(Exception):
    """The user asked to leave."""


class Console:
    """Turns one line of input into one reply, through the service."""

    def __init__(self, service: QuoteService, prefix: str = "!", favourites: Favourites | None = None):
        self.service = service
        self.prefix = prefix
        self.favourites = favourites  # None: no store, so no top or forget

    def help_text(self, command: str = "") -> str:
        """The list of commands, or one command's full help."""
        command = command.strip().lower().removeprefix(self.prefix)
        if command == "quote":
            return self.service.quote_help(self.prefix)
        details = {
            "help": "help [command]: the list of commands, or one command's help.",
            "quit": "quit: leave the console (end of input does the same).",
            "exit": "exit: leave the console (end of input does the same).",
            "top": f"top SERVER_ID [n]: a server's {TOP_DEFAULT} (or n, at most 10) most favoured quotes.",
            "forget": "forget USER_ID: delete a person's data as their !forgetme would (votes, added "
            "quotes, seeds), for a request made outside Discord.",
        }
        if command in details:
            return details[command]
        unknown = f"There is no command {command!r}.\n\n" if command else ""
        return unknown + (
            "Commands (with or without the prefix):\n"
            f"  {self.prefix}quote [seed] [--temp T] [--len N] [--rng S]   write a quote (help quote: more)\n"
            f"  {self.prefix}top SERVER_ID [n]   a server's most favoured quotes\n"
            f"  {self.prefix}forget USER_ID   delete a person's data (as their !forgetme)\n"
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
        if name not in ("quote", "top", "forget"):
            return f"I don't know the command {name!r}; type help for the list."
        try:
            if name == "quote":
                return (await self.service.write(self.service.parse(rest, user_id=CONSOLE_USER_ID))).reply
            return await self._favourites_command(name, rest.split())
        except QuotebotError as exc:
            return str(exc)
        except Exception as exc:  # a bug: the log gets the traceback, the user the id
            error_id = log_unexpected(_log, exc, f"console command {name!r}")
            return f"Something went wrong on my side (error id {error_id}); the log has the details."

    async def _favourites_command(self, name: str, words: list[str]) -> str:
        """``top SERVER_ID [n]`` or ``forget USER_ID``."""
        if self.favourites is None:
            return "There is no quote database in this console, so there are no favourites."
        numbers = [int(word) for word in words if word.isdigit()]
        if len(numbers) != len(words) or not 1 <= len(words) <= (2 if name == "top" else 1):
            raise FavouritesError(f"usage: {self.help_text(name).split(':')[0]} (whole numbers)")
        if name == "top":
            return await self.favourites.top(*numbers)
        return await self.favourites.forget(numbers[0])

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
    """Open the store, load the model, answer commands from ``stdin`` until it ends, close everything;
    the exit status (2 when the database cannot be opened)."""
    try:
        store = await Store.open(settings.store_target)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        host = ModelHost.from_settings(settings)
        _log.info("loading the model from %s", settings.model_path)
        await host.start()
        owners = settings.owner_ids | {CONSOLE_USER_ID}
        # A terminal shows no Markdown, so replies are not escaped (control characters are still stripped).
        service = QuoteService.from_settings(settings, host, store, owner_ids=owners, markdown=False)
        console = Console(
            service, settings.command_prefix, Favourites(store, AddQuoteLimits.from_settings(settings))
        )
        try:
            await console.run(read_lines(stdin), stdout, stdin.isatty())
        finally:
            await service.close()
            await host.close()
    finally:
        await store.close()
    return 0
