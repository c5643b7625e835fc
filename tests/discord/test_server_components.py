"""The test server's buttons, autocomplete and context menus, checked with the plain discord.py client
(no quotebot code): Discord's rules on components, and each interaction type with its callbacks.
"""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from tests.discord.test_server import SlashClient, running
from tests.discord_server import DiscordServer

pytestmark = pytest.mark.discord


class Counter(discord.ui.View):
    def __init__(self, count: int = 0) -> None:
        super().__init__(timeout=None)
        self.count = count
        self.press.label = str(count)

    @discord.ui.button(label="0", custom_id="counter")
    async def press(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        await interaction.response.edit_message(view=Counter(self.count + 1))

    @discord.ui.button(label="Secret", custom_id="secret")
    async def secret(self, interaction: discord.Interaction, _button: discord.ui.Button) -> None:
        await interaction.response.send_message("only you", ephemeral=True)


async def test_buttons_autocomplete_and_context_menus(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = SlashClient()

    @client.tree.command(description="A message with buttons")
    async def buttons(interaction: discord.Interaction) -> None:
        view = Counter()
        client.add_view(view)
        await interaction.response.send_message("count", view=view)

    async def fruit_choices(_interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        fruits = ["apple", "apricot", "banana"]
        return [app_commands.Choice(name=f, value=f) for f in fruits if f.startswith(typed)]

    @client.tree.command(description="Pick a fruit")
    @app_commands.autocomplete(fruit=fruit_choices)
    async def pick(interaction: discord.Interaction, fruit: str) -> None:
        await interaction.response.send_message(f"picked {fruit}")

    @client.tree.context_menu(name="Shout it")
    async def shout(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(message.content.upper())

    async with running(client, server.token):
        assert (
            server.commands()["Shout it"]["type"] == 3 and server.commands()["Shout it"]["description"] == ""
        )
        await server.run_slash_command(server.member, "buttons")
        message = await server.wait_for_message(server.channel)
        assert [b["custom_id"] for b in message.buttons()] == ["counter", "secret"]
        press = await server.press_button(server.member, message, "counter")
        await server.wait_for(lambda: message.buttons()[0]["label"] == "1" or None, what="the count to go up")
        assert press.response_type == 7 and press.payload["message"]["id"] == str(message.id)
        secret = await server.press_button(server.member, message, "secret")
        reply = await server.wait_for_message(server.channel)
        assert reply.content == "only you" and secret.private
        with pytest.raises(LookupError):
            await server.press_button(server.member, message, "no-such-button")

        typing = await server.autocomplete(server.member, "pick", {"fruit": "ap"}, focused="fruit")
        choices = await server.wait_for(lambda: typing.choices, what="suggestions")
        assert [c["value"] for c in choices] == ["apple", "apricot"] and typing.response_type == 8
        with pytest.raises(ValueError, match="no autocomplete"):
            await server.autocomplete(server.member, "buttons", {}, focused="nothing")

        said = await server.user_sends(server.member, "hello there")
        menu = await server.run_message_command(server.member, said, "Shout it")
        assert (await server.wait_for_message(server.channel)).content == "HELLO THERE"
        assert menu.payload["data"]["target_id"] == str(said.id)


async def test_components_follow_discords_rules(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = SlashClient()
    async with running(client, server.token):
        channel = client.get_channel(server.channel.id)
        rows = [{"type": 1, "components": [{"type": 2, "style": 1, "label": "a", "custom_id": "same"}]}] * 2
        with pytest.raises(discord.HTTPException) as duplicate:
            await client.http.send_message(
                channel.id, params=discord.http.handle_message_parameters(content="x")
            )
            await client.http.request(
                discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel.id),
                json={"content": "dup", "components": rows},
            )
        assert duplicate.value.status == 400
        no_label = [{"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "bare"}]}]
        with pytest.raises(discord.HTTPException):
            await client.http.request(
                discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel.id),
                json={"content": "bare", "components": no_label},
            )
