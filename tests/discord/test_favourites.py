"""Favourites end to end: the real QuoteBot and discord.py against the local Discord-compatible test server,
with a real SQLite file. Reactions become votes (also after a restart), and the favourites commands answer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.storage.store import Quote, Store
from tests.discord.helpers import ask, bot_settings, running
from tests.discord_server import DiscordServer, Overwrite, Perm
from tests.helpers import cells_holding

pytestmark = pytest.mark.discord


@pytest.fixture
def settings(discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path):
    return bot_settings(
        discord_server,
        mention_checkpoint,
        DB_PATH=str(tmp_path / "bot.db"),
        QUOTE_COOLDOWN_SECONDS="0",
    )


@pytest.fixture
async def bot(settings):
    async with running(settings) as bot:
        yield bot


async def eventually(read: Callable[[], Awaitable[object]], expected: object, timeout: float = 5.0) -> None:
    """Until ``await read()`` equals ``expected`` (reaction events are handled asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (value := await read()) != expected:
        assert loop.time() < deadline, f"still {value!r}, expected {expected!r}"
        await asyncio.sleep(0.02)


async def stored_quote(bot, message, timeout: float = 5.0) -> Quote:
    """The stored quote of the bot's ``message``: the cog records the message id just after sending it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (quote := await bot.store.quote_by_message(message.id)) is None:
        assert loop.time() < deadline, f"message {message.id} was never recorded on a stored quote"
        await asyncio.sleep(0.02)
    return quote


def voters(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as db:
        return sorted(row[0] for row in db.execute("SELECT user_id FROM votes"))


async def test_stars_vote_and_unvote_and_count_after_a_restart(discord_server: DiscordServer, settings):
    server = discord_server
    async with running(settings) as bot:
        sent, reply = await ask(server, "!quote Hey,")
        quote = await stored_quote(bot, reply)
        assert quote is not None
        assert (quote.guild_id, quote.channel_id, quote.requester_id) == (
            server.guild.id,
            server.channel.id,
            sent.author_id,
        )
        assert quote.seed == "Hey," and reply.content.startswith(quote.text.rstrip()[:20])
        await server.add_reaction(server.member, reply, "⭐")  # the requester's own star is not a vote
        await server.add_reaction(server.world.owner, reply, "⭐")
        await eventually(lambda: bot.store.vote_count(quote.id), 1)
        await server.remove_reaction(server.world.owner, reply, "⭐")
        await eventually(lambda: bot.store.vote_count(quote.id), 0)
    # A new bot on the same file: the message is in no cache, and the raw event still counts.
    async with running(settings) as bot:
        await server.add_reaction(server.admin, reply, "⭐")
        await eventually(lambda: bot.store.vote_count(quote.id), 1)
    async with await Store.open(settings.db_path) as store:
        assert (await store.get_quote(quote.id)).votes == 1
    assert voters(settings.db_path) == [server.admin.id]


async def test_bots_other_emoji_and_other_messages_are_ignored(discord_server: DiscordServer, settings):
    server = discord_server
    other_bot = server.world.add_user("otherbot", bot=True)
    server.world.add_member(server.guild, other_bot)
    async with running(settings) as bot:
        own, reply = await ask(server, "!quote Hi")
        quote = await stored_quote(bot, reply)
        await server.add_reaction(other_bot, reply, "⭐")  # a bot
        await server.add_reaction(server.bot_user, reply, "⭐")  # the bot itself
        await server.add_reaction(server.member, reply, "👍")  # another emoji
        await server.add_reaction(server.admin, own, "⭐")  # a message that is not a quote
        await server.remove_reaction(server.member, reply, "👍")
        await server.add_reaction(server.admin, reply, "⭐")  # the one real vote, last
        await eventually(lambda: bot.store.vote_count(quote.id), 1)
        await asyncio.sleep(0.2)  # time for any wrongly counted event to land
        assert await bot.store.vote_count(quote.id) == 1
    assert voters(settings.db_path) == [server.admin.id]


async def test_setstar_with_a_custom_emoji(discord_server: DiscordServer, bot):
    server = discord_server
    _sent, refused = await ask(server, "!setstar 👍")  # the member lacks Manage Server
    assert "Manage Server" in refused.content
    _sent, answer = await ask(server, "!setstar <:pat:555>", user=server.admin)
    assert "<:pat:555>" in answer.content
    _sent, reply = await ask(server, "!quote Hey,")
    quote = await stored_quote(bot, reply)
    owner = server.world.owner  # not the requester, whose own reaction would not be a vote
    await server.add_reaction(owner, reply, "⭐")  # no longer the vote emoji
    await server.add_reaction(owner, reply, "pat:555")
    await eventually(lambda: bot.store.vote_count(quote.id), 1)
    await server.remove_reaction(owner, reply, "⭐")  # removing the star takes no vote
    await server.remove_reaction(owner, reply, "<:pat:555>")
    await eventually(lambda: bot.store.vote_count(quote.id), 0)
    _sent, bad = await ask(server, "!setstar star", user=server.admin)
    assert "not an emoji" in bad.content


async def test_top_lists_the_favoured_with_votes_and_links(discord_server: DiscordServer, bot):
    server = discord_server
    _sent, empty = await ask(server, "!top")
    assert "No favourites yet" in empty.content
    _sent, first = await ask(server, "!quote One")
    _sent, second = await ask(server, "!quote Two")
    for user in (server.world.owner, server.admin):  # not the member who asked: own stars are no votes
        await server.add_reaction(user, second, "⭐")
    await server.add_reaction(server.world.owner, first, "⭐")
    one, two = [(await stored_quote(bot, m)).id for m in (first, second)]
    await eventually(lambda: bot.store.vote_count(one), 1)
    await eventually(lambda: bot.store.vote_count(two), 2)
    _sent, top = await ask(server, "!top 5")
    lines = top.content.splitlines()
    link = "https://discord.com/channels/{}/{}/{}"
    assert lines[1].startswith("1. **2** Two") and lines[1].endswith(
        link.format(server.guild.id, server.channel.id, second.id)
    )
    assert lines[2].startswith("2. **1** One") and lines[2].endswith(
        link.format(server.guild.id, server.channel.id, first.id)
    )
    _sent, bad = await ask(server, "!top 50")
    assert "1 to 10" in bad.content


async def test_quoteinfo_as_a_reply_and_with_a_link(discord_server: DiscordServer, bot):
    server = discord_server
    _sent, quote = await ask(server, "!quote Hey, --temp 0.6 --len 80")
    await server.add_reaction(server.admin, quote, "⭐")
    info = await stored_quote(bot, quote)
    await eventually(lambda: bot.store.vote_count(info.id), 1)
    await server.user_sends(server.member, "!quoteinfo", reply_to=quote)
    by_reply = await server.wait_for_message(server.channel, timeout=10)
    for words in ('Seed: "Hey,"', "temperature 0.6", "up to 80 characters", "Model: default", "1 vote"):
        assert words in by_reply.content
    assert f"--rng {info.settings['rng_seed']}" in by_reply.content
    _sent, by_link = await ask(
        server, f"!quoteinfo https://discord.com/channels/{server.guild.id}/{server.channel.id}/{quote.id}"
    )
    assert by_link.content == by_reply.content
    own = await server.user_sends(server.member, "just chatting")
    await server.user_sends(server.member, "!quoteinfo", reply_to=own)
    not_quote = await server.wait_for_message(server.channel, timeout=10)
    assert "not one of my quotes" in not_quote.content
    _sent, neither = await ask(server, "!quoteinfo")
    assert "reply to one of my quotes" in neither.content


async def test_addquote_refused_for_members_and_accepted_for_admins_and_the_role(
    discord_server: DiscordServer, settings
):
    server = discord_server
    adder_role = server.world.add_role(server.guild, "Quote Adder", 0)
    adder = server.world.add_user("carol")
    server.world.add_member(server.guild, adder, roles=[adder_role])
    # Anyone with Manage Roles can make a role of that name and take it: a name alone gives nothing.
    impostor_role = server.world.add_role(server.guild, "Quote Adder", 0)
    impostor = server.world.add_user("mallory")
    server.world.add_member(server.guild, impostor, roles=[impostor_role])
    async with running(settings) as bot:
        _sent, refused = await ask(server, "!addquote Mondays are a rumour.")
        assert "Manage Server" in refused.content and "!setrole adder @Role" in refused.content
        _sent, refused = await ask(server, "!addquote Mine now.", user=adder)  # no role chosen yet
        assert "Manage Server" in refused.content
        _sent, added = await ask(server, "!addquote Mondays are a rumour.", user=server.admin)
        assert "Added quote a1" in added.content
        _sent, denied = await ask(server, f"!setrole adder <@&{adder_role.id}>")  # a member may not
        assert "Manage Server" in denied.content
        _sent, chosen = await ask(server, f"!setrole adder <@&{adder_role.id}>", user=server.admin)
        assert "Quote Adder role can now add quotes" in chosen.content
        _sent, by_role = await ask(server, "!addquote Fridays are a promise.", user=adder)
        assert "a2" in by_role.content
        _sent, refused = await ask(server, "!addquote I made that role too.", user=impostor)
        assert "Manage Server" in refused.content
        rows = await bot.store.favoured_and_source_quotes(server.guild.id)
        assert [(q.kind, q.text) for q in rows] == [
            ("source", "Mondays are a rumour."),
            ("source", "Fridays are a promise."),
        ]
        assert await bot.store.get_adder_role(server.guild.id) == adder_role.id
        _sent, bad = await ask(server, "!setrole adder @nobody-at-all", user=server.admin)
        assert "not found" in bad.content
        _sent, everyone = await ask(server, f"!setrole adder <@&{server.guild.id}>", user=server.admin)
        assert "@everyone cannot be" in everyone.content
        _sent, other = await ask(server, "!setrole boss @x", user=server.admin)
        assert "I know one role to set" in other.content
        _sent, cleared = await ask(server, "!setrole adder none", user=server.admin)
        assert "only members with Manage Server" in cleared.content
        _sent, refused = await ask(server, "!addquote Not any more.", user=adder)
        assert "Manage Server" in refused.content
        _sent, missing = await ask(server, "!addquote", user=server.admin)
        assert "text" in missing.content and "!help" in missing.content
        _sent, help_text = await ask(server, "!help addquote")
        assert "quote-adder role" in help_text.content and "Manage Server" in help_text.content


async def test_forgetme_leaves_nothing_of_the_user(discord_server: DiscordServer, settings):
    server = discord_server
    adder_role = server.world.add_role(server.guild, "Quote Adder", 0)
    server.guild.members[server.member.id].role_ids.append(adder_role.id)
    async with await Store.open(settings.db_path) as store:
        await store.set_adder_role(server.guild.id, adder_role.id)
    async with running(settings):
        _sent, mine = await ask(server, "!quote Myseed")
        _sent, theirs = await ask(server, "!quote Other", user=server.admin)
        await server.add_reaction(server.member, mine, "⭐")
        await server.add_reaction(server.member, theirs, "⭐")
        await server.add_reaction(server.admin, mine, "⭐")

        async def vote_rows() -> int:
            return len(voters(settings.db_path))

        await eventually(vote_rows, 2)  # their own star on their own quote is no vote
        await ask(server, "!addquote Only I wrote this.")
        _sent, done = await ask(server, "!forgetme")
        assert "deleted 1 vote," in done.content
        assert "deleted 1 added quote" in done.content and "removed your seed from 1 quote" in done.content
    assert cells_holding(settings.db_path, server.member.id) == []
    assert cells_holding(settings.db_path, "Only I wrote this.") == []
    assert "quotes.seed" not in cells_holding(settings.db_path, "Myseed")
    assert voters(settings.db_path) == [server.admin.id]  # others' votes stay


async def test_a_seed_with_everyone_is_stored_verbatim_and_pings_nobody(discord_server: DiscordServer, bot):
    server = discord_server
    seed = f"@everyone <@{server.admin.id}> hi"
    _sent, reply = await ask(server, f"!quote {seed}")
    assert reply.content.startswith(seed) and not reply.pings()
    quote = await stored_quote(bot, reply)
    assert quote.seed == seed and quote.text.startswith(seed)
    await server.add_reaction(server.world.owner, reply, "⭐")
    await eventually(lambda: bot.store.vote_count(quote.id), 1)
    _sent, top = await ask(server, "!top")
    assert "@everyone" in top.content and not top.pings()
    await server.user_sends(server.member, "!quoteinfo", reply_to=reply)
    info = await server.wait_for_message(server.channel, timeout=10)
    assert seed in info.content and not info.pings()


async def test_a_slash_quote_is_stored_with_its_message_and_collects_votes(
    discord_server: DiscordServer, bot
):
    server = discord_server
    record = await server.run_slash_command(server.member, "quote", {"seed": "Hey,", "length": 60})
    reply = await server.wait_for_message(timeout=10)
    assert reply in record.messages
    quote = await stored_quote(bot, reply)
    assert quote.requester_id == server.member.id and quote.seed == "Hey,"
    await server.add_reaction(server.admin, reply, "⭐")
    await eventually(lambda: bot.store.vote_count(quote.id), 1)


async def test_a_private_channels_quotes_are_shown_only_to_its_readers(discord_server: DiscordServer, bot):
    server = discord_server
    staff = await server.create_text_channel(
        "staff",
        [
            Overwrite(server.guild.id, deny=Perm.VIEW_CHANNEL),  # @everyone cannot see it...
            Overwrite(server.world.moderators.id, allow=Perm.VIEW_CHANNEL),  # ...the moderators can
            Overwrite(server.world.bot_role.id, allow=Perm.VIEW_CHANNEL),
        ],
    )
    await server.wait_for(lambda: bot.get_channel(staff.id), what="the bot to learn of #staff")
    await server.user_sends(server.admin, "!quote Staff secret", channel=staff)
    secret = await server.wait_for_message(staff, timeout=10)
    quote = await stored_quote(bot, secret)
    await server.add_reaction(server.world.owner, secret, "⭐")
    await eventually(lambda: bot.store.vote_count(quote.id), 1)
    link = f"https://discord.com/channels/{server.guild.id}/{staff.id}/{secret.id}"
    # A member who cannot read #staff: no entry, no link, and quoteinfo does not even confirm it.
    _sent, top = await ask(server, "!top")
    assert "Staff secret" not in top.content and str(staff.id) not in top.content
    _sent, info = await ask(server, f"!quoteinfo {link}")
    assert "not one of my quotes" in info.content and "Staff secret" not in info.content
    # A moderator, who can read it, sees it anywhere in the server.
    _sent, top = await ask(server, "!top", user=server.admin)
    assert "1. **1** Staff secret" in top.content and link in top.content
    _sent, info = await ask(server, f"!quoteinfo {link}", user=server.admin)
    assert 'Seed: "Staff secret"' in info.content
    # In a direct message, a server's quote is never shown.
    dm = server.world.dm_channel(server.admin)
    await server.user_sends(server.admin, f"!quoteinfo {link}", channel=dm)
    answer = await server.wait_for_message(dm, timeout=10)
    assert "not one of my quotes" in answer.content
