"""``/help``: the slash commands with their options, read from the bot's own command tree.

The ``!help`` of discord.py stays for the prefix commands; ``/help`` lists what a member can run as slash
commands (subcommands and options included) and the message menus, from the tree itself, so it never
goes stale. Its answer is private.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.quotes.options import fit_message

if TYPE_CHECKING:
    from bot.app import QuoteBotMixin


def command_lines(command: app_commands.Command | app_commands.Group, parent: str = "") -> Iterator[str]:
    """``/schedule add rhythm interval? …: description`` for a command and each of its subcommands."""
    name = f"{parent} {command.name}".strip()
    if isinstance(command, app_commands.Group):
        for sub in command.commands:
            yield from command_lines(sub, name)
        return
    options = " ".join(p.name if p.required else f"[{p.name}]" for p in command.parameters)
    yield f"`/{name}{' ' + options if options else ''}`: {command.description}"


def help_text(tree: app_commands.CommandTree, prefix: str) -> str:
    """Every slash command and message menu of the tree, one line each."""
    lines = ["**Slash commands** (options in [brackets] are optional):"]
    for command in sorted(tree.get_commands(type=discord.AppCommandType.chat_input), key=lambda c: c.name):
        lines.extend(command_lines(command))  # type: ignore[arg-type]
    menus = sorted(m.name for m in tree.get_commands(type=discord.AppCommandType.message))
    if menus:
        lines.append("**On a message** (right-click it, Apps): " + ", ".join(menus))
    lines.append(
        f"**Buttons** under every quote: Another, ⭐ (a vote), Info. Every command also works as "
        f"`{prefix}command` or `@me command` (`{prefix}help` lists them)."
    )
    return fit_message("\n".join(lines))


class Help(commands.Cog):
    """The slash commands' help."""

    def __init__(self, bot: commands.Bot, prefix: str):
        self.bot = bot
        self.prefix = prefix

    @app_commands.command(name="help", description="The slash commands and their options")
    async def slash_help(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(help_text(self.bot.tree, self.prefix), ephemeral=True)


async def setup(bot: QuoteBotMixin) -> None:
    """The extension entry point: ``await bot.load_extension("bot.cogs.help")``."""
    await bot.add_cog(Help(bot, bot.settings.command_prefix))  # type: ignore[arg-type]
