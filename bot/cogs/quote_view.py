"""The buttons under every quote: Another, ⭐ (with the votes) and Info, persistent across restarts.

    await channel.send(result.reply, view=quote_view(result.quote_id, votes=0))

Each button is a ``discord.ui.DynamicItem`` whose ``custom_id`` carries the stored quote's id
(``quote:star:42``). discord.py matches a pressed button against the registered templates
(``bot.add_dynamic_items``), so a button on a message sent before a restart still works: nothing is
kept in memory. What a press does lives in ``bot/cogs/buttons.py``; this module only draws them.
"""

from __future__ import annotations

import re
from typing import Any

import discord

ACTIONS = ("another", "star", "info")
STAR = "⭐"


class QuoteButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"quote:(?P<action>another|star|info):(?P<quote_id>[0-9]{1,20})",
):
    """One of a quote's buttons; its action and quote id live in its ``custom_id``."""

    def __init__(self, action: str, quote_id: int, votes: int = 0) -> None:
        if action == "star":
            button = discord.ui.Button(style=discord.ButtonStyle.secondary, emoji=STAR, label=str(votes))
        elif action == "another":
            button = discord.ui.Button(style=discord.ButtonStyle.primary, label="Another")
        else:
            button = discord.ui.Button(style=discord.ButtonStyle.secondary, label="Info")
        button.custom_id = f"quote:{action}:{quote_id}"
        super().__init__(button)
        self.action = action
        self.quote_id = quote_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> QuoteButton:
        label = getattr(item, "label", None) or "0"
        return cls(match["action"], int(match["quote_id"]), int(label) if label.isdigit() else 0)

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        handler = interaction.client.get_cog("QuoteButtons")  # type: ignore[attr-defined]
        if handler is None:  # the extension is not loaded: say so rather than let the press time out
            await interaction.response.send_message("That button is switched off right now.", ephemeral=True)
            return
        await handler.pressed(self.action, self.quote_id, interaction)


def quote_view(quote_id: int | None, votes: int = 0) -> discord.ui.View:
    """The row of buttons for a stored quote; none for a quote that was not stored (no id to key on)."""
    view = discord.ui.View(timeout=None)
    if quote_id is not None:
        for action in ACTIONS:
            view.add_item(QuoteButton(action, quote_id, votes))
    return view
