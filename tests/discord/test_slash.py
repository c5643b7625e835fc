"""Slash commands end to end: what the bot syncs (types, ranges, permissions, contexts), /quote's typed
options, private errors before the defer, and admin commands hidden from members and refused at run time.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import BusyError
from tests.discord.helpers import bot_settings, running
from tests.discord_server import DiscordServer
from tests.discord_server.commands import CHAT_INPUT, MESSAGE, usable_in_dms

pytestmark = pytest.mark.discord

STRING, INTEGER, CHANNEL, NUMBER = 3, 4, 7, 10
MANAGE_GUILD = str(1 << 5)


def options_of(command: dict, *path: str) -> dict[str, dict]:
    options = command["options"]
    for name in path:
        options = next(o for o in options if o["name"] == name)["options"]
    return {o["name"]: o for o in options}


async def test_the_synced_commands_carry_types_ranges_permissions_and_contexts(server_and_bot):
    server, _bot = server_and_bot
    synced = server.commands()
    every = {"quote", "top", "quoteinfo", "addquote", "setstar", "forgetme", "schedule", "retrain", "model"}
    assert every | {"rollback", "help", "Continue as quote", "Quote info"} <= set(synced)

    quote = options_of(synced["quote"])
    assert quote["seed"]["type"] == STRING and not quote["seed"].get("required")
    assert quote["temperature"]["type"] == NUMBER
    assert (quote["temperature"]["min_value"], quote["temperature"]["max_value"]) == (0.1, 2.0)
    assert quote["length"]["type"] == INTEGER
    assert (quote["length"]["min_value"], quote["length"]["max_value"]) == (10, 120)  # MAX_QUOTE_CHARS
    assert quote["rng"]["type"] == INTEGER and quote["rng"]["min_value"] == 0
    assert options_of(synced["top"])["n"]["max_value"] == 10

    for admin in ("setstar", "rollback", "retrain", "schedule"):
        assert synced[admin]["default_member_permissions"] == MANAGE_GUILD, admin
        assert not usable_in_dms(synced[admin]), admin
    for open_to_all in ("quote", "top", "quoteinfo", "forgetme", "model", "help"):
        assert synced[open_to_all]["default_member_permissions"] is None, open_to_all
    for guild_only in ("top", "addquote", "model"):
        assert not usable_in_dms(synced[guild_only]), guild_only
    assert usable_in_dms(synced["quote"]) and usable_in_dms(synced["forgetme"])

    retrain = options_of(synced["retrain"])
    assert {"start", "status", "cancel"} <= set(retrain)
    schedule = options_of(synced["schedule"])
    assert set(schedule) == {"add", "list", "remove", "resume"}
    add = options_of(synced["schedule"], "add")
    assert [c["value"] for c in add["rhythm"]["choices"]] == ["every", "daily"]
    assert add["channel"]["type"] == CHANNEL and 0 in add["channel"]["channel_types"]
    assert add["timezone"]["autocomplete"] is True
    assert synced["Continue as quote"]["type"] == MESSAGE and synced["Quote info"]["type"] == MESSAGE
    assert synced["quote"]["type"] == CHAT_INPUT


async def test_slash_quote_with_typed_options_is_public_with_buttons(server_and_bot):
    server, bot = server_and_bot
    options = {"seed": "Hey,", "temperature": 0.7, "length": 40, "rng": 7}
    record = await server.run_slash_command(server.member, "quote", options)
    reply = await server.wait_for_message(timeout=10)
    assert record.response_type == 5 and reply in record.messages and not reply.ephemeral
    assert reply.content.startswith("Hey,") and len(reply.content) <= 41
    assert not reply.pings()
    stored = await wait_stored(bot, reply.id)
    assert stored.settings["temperature"] == 0.7 and stored.settings["rng_seed"] == 7
    assert stored.settings["max_chars"] == 40
    labels = [b.get("label") for b in reply.buttons()]
    assert labels == ["Another", "0", "Info"]
    assert [b["custom_id"] for b in reply.buttons()] == [
        f"quote:{a}:{stored.id}" for a in ("another", "star", "info")
    ]
    # The same rng, seed and settings write the same quote again.
    again = await server.run_slash_command(server.admin, "quote", options)
    assert (await server.wait_for_message(timeout=10)).content == reply.content
    assert again.response_type == 5


async def wait_stored(bot, message_id: int):
    for _ in range(200):
        stored = await bot.store.quote_by_message(message_id)
        if stored is not None:
            return stored
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} was never recorded on a stored quote")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"seed": "Hey \u2603"}, "snowman"),
        ({"seed": "a" * 61}, "61 characters"),
        ({"seed": "a" * 50, "length": 20}, "leaves no room"),
    ],
)
async def test_slash_quote_errors_are_private_and_come_before_any_defer(server_and_bot, options, words):
    server, _bot = server_and_bot
    record = await server.run_slash_command(server.member, "quote", options)
    reply = await server.wait_for_message(timeout=10)
    assert words in reply.content
    assert record.response_type == 4 and record.private  # never a public "thinking" message
    assert not [m for m in server.bot_messages() if not m.ephemeral]


async def test_slash_cooldown_is_private_and_a_refused_request_spends_no_turn(server_and_bot):
    server, _bot = server_and_bot
    refused = await server.run_slash_command(server.member, "quote", {"seed": "Hey \u2603"})
    await server.wait_for_message(timeout=10)
    assert refused.private
    first = await server.run_slash_command(server.member, "quote", {"seed": "Hi"})
    assert (await server.wait_for_message(timeout=10)).content.startswith("Hi")  # the turn was not spent
    second = await server.run_slash_command(server.member, "quote", {"seed": "Hi"})
    slow = await server.wait_for_message(timeout=10)
    assert "slow down" in slow.content.lower() and second.private and second.response_type == 4
    assert first.response_type == 5


async def test_admin_commands_are_hidden_from_members_and_refused_at_run_time(server_and_bot):
    server, _bot = server_and_bot
    for name in ("rollback", "setstar", "retrain start", "schedule list"):
        with pytest.raises(PermissionError):  # Discord's client does not even offer them
            await server.run_slash_command(server.member, name, {"emoji": "⭐"} if name == "setstar" else {})
    # A server may show them to everyone (Integrations settings): the bot still refuses, privately.
    for name, options in (("rollback", {}), ("setstar", {"emoji": "⭐"}), ("schedule list", {})):
        record = await server.run_slash_command(server.member, name, options, check_permissions=False)
        refusal = await server.wait_for_message(timeout=10)
        assert "Manage Server" in refusal.content and record.private, name
    record = await server.run_slash_command(server.admin, "schedule list")
    listing = await server.wait_for_message(timeout=10)
    assert "No scheduled posts" in listing.content and record.private


async def test_guild_only_commands_are_not_offered_in_a_dm(server_and_bot):
    server, _bot = server_and_bot
    dm = server.world.dm_channel(server.member)
    for name in ("top", "retrain status", "schedule list", "model"):
        with pytest.raises(PermissionError, match="guild only"):
            await server.run_slash_command(server.member, name, {}, channel=dm)
    record = await server.run_slash_command(server.member, "forgetme", {}, channel=dm)
    reply = await server.wait_for_message(timeout=10)
    assert "no data about you" in reply.content and record.private


async def test_hybrid_commands_answer_as_slash_commands(server_and_bot):
    server, _bot = server_and_bot
    record = await server.run_slash_command(server.member, "top", {"n": 3})
    top = await server.wait_for_message(timeout=10)
    assert "No favourites yet" in top.content and record.messages == [top]
    record = await server.run_slash_command(server.admin, "setstar", {"emoji": "🔥"})
    assert "🔥" in (await server.wait_for_message(timeout=10)).content
    record = await server.run_slash_command(server.member, "quoteinfo", {"link": "not a link"})
    bad = await server.wait_for_message(timeout=10)
    assert "not found" in bad.content.lower() and record.private
    record = await server.run_slash_command(server.member, "help")
    help_text = await server.wait_for_message(timeout=10)
    assert record.private and len(help_text.content) <= 2000
    for words in ("/quote [seed] [temperature] [length] [rng]", "/schedule add rhythm channel", "Quote info"):
        assert words in help_text.content


async def test_without_the_message_content_intent_slash_and_mentions_work(
    discord_server: DiscordServer, mention_checkpoint
):
    server = discord_server
    server.gateway.allowed_privileged_intents = set()  # the portal switch is off
    settings = bot_settings(server, mention_checkpoint, MESSAGE_CONTENT_INTENT="false")
    async with running(settings):
        await server.user_sends(server.member, "!quote Hey,")  # arrives empty: nothing to answer
        await server.user_sends(server.member, f"<@{server.bot_user.id}> quote Hey,")
        by_mention = await server.wait_for_message(server.channel, timeout=10)
        assert by_mention.content.startswith("Hey,")
        record = await server.run_slash_command(server.admin, "quote", {"seed": "Hi"})
        assert (await server.wait_for_message(timeout=10)).content.startswith("Hi")
        assert record.response_type == 5
        assert len(server.bot_messages()) == 2  # the "!quote" never reached the bot


async def test_an_error_after_the_defer_is_private_and_the_thinking_message_goes(server_and_bot, monkeypatch):
    server, bot = server_and_bot

    async def busy(_request):
        raise BusyError()

    monkeypatch.setattr(bot.host, "complete", busy)  # found only once the model is asked, after the defer
    record = await server.run_slash_command(server.member, "quote", {"seed": "Hey,"})
    reply = await server.wait_for_message(timeout=10)
    assert "try again shortly" in reply.content and reply.ephemeral
    assert record.response_type == 5 and record.original.deleted  # the public "thinking" is gone
    assert [m for m in server.bot_messages() if not m.ephemeral] == []
    monkeypatch.undo()
    again = await server.run_slash_command(
        server.member, "quote", {"seed": "Hey,"}
    )  # the turn was given back
    assert (await server.wait_for_message(timeout=10)).content.startswith("Hey,") and again.response_type == 5


async def test_a_slash_seed_with_mentions_pings_nobody(server_and_bot):
    server, _bot = server_and_bot
    seed = f"@everyone <@{server.admin.id}> hi"
    await server.run_slash_command(server.member, "quote", {"seed": seed})
    reply = await server.wait_for_message(timeout=10)
    assert reply.content.startswith(seed) and not reply.pings()


async def test_addquote_and_quoteinfo_by_slash(server_and_bot):
    server, _bot = server_and_bot
    refused = await server.run_slash_command(server.member, "addquote", {"text": "Hello there."})
    assert "quote-adder role" in (await server.wait_for_message(timeout=10)).content and refused.private
    added = await server.run_slash_command(server.admin, "addquote", {"text": "Hello there."})
    assert "Added quote a1" in (await server.wait_for_message(timeout=10)).content
    assert not added.private
    await server.run_slash_command(server.member, "quote", {"seed": "Hey,", "rng": 3})
    quote = await server.wait_for_message(timeout=10)
    await wait_stored(_bot, quote.id)
    link = f"https://discord.com/channels/{server.guild.id}/{server.channel.id}/{quote.id}"
    info = await server.run_slash_command(server.admin, "quoteinfo", {"link": link})
    details = await server.wait_for_message(timeout=10)
    assert 'Seed: "Hey,"' in details.content and "rng 3" in details.content and info.response_type == 4


async def test_a_slow_check_defers_in_time_and_its_refusal_is_still_private(server_and_bot, monkeypatch):
    server, bot = server_and_bot
    model_for = bot.service.model_for

    async def loading(guild_id):  # the server's model is being loaded from disk
        await asyncio.sleep(3.2)  # longer than the 3 s Discord waits for an answer
        return await model_for(guild_id)

    monkeypatch.setattr(bot.service, "model_for", loading)
    refused = await server.run_slash_command(server.member, "quote", {"seed": "Hey \u2603"})
    reply = await server.wait_for_message(timeout=10)
    assert "snowman" in reply.content and reply.ephemeral
    assert refused.response_type == 5 and refused.original.deleted  # deferred within Discord's 3 s
    written = await server.run_slash_command(server.member, "quote", {"seed": "Hey,"})
    assert (await server.wait_for_message(timeout=10)).content.startswith("Hey,")
    assert written.response_type == 5
