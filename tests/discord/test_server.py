"""The Discord-compatible test server, checked with the real discord.py client (no quotebot code involved).

Each test starts a fresh server and a minimal client defined here; ``guild_ready_timeout`` is cut to 0.1 s
so on_ready does not wait discord.py's default 2 s for more guilds.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.http import Route

from tests.discord_server import DiscordServer, Perm
from tests.discord_server.encoding import ZlibStream, ZstdStream

pytestmark = pytest.mark.discord


def make_client(**options) -> discord.Client:
    intents = discord.Intents.default()
    intents.message_content = True
    return discord.Client(intents=intents, guild_ready_timeout=0.1, **options)


class SlashClient(discord.Client):
    """A client with a command tree that syncs its global commands at login, as a bot would."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.1)
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        await self.tree.sync()


@contextlib.asynccontextmanager
async def running(client: discord.Client, token: str, timeout: float = 10.0) -> AsyncIterator[discord.Client]:
    """Runs ``client`` until on_ready has fired, yields it, then closes it."""
    task = asyncio.create_task(client.start(token))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while not client.is_ready():
            if task.done():
                task.result()  # re-raises the client's own error
                raise AssertionError("client stopped before it was ready")
            assert loop.time() < deadline, "client not ready in time"
            await asyncio.sleep(0.01)
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, timeout)


async def test_client_connects_and_sees_the_guild(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = make_client()
    async with running(client, server.token):
        assert client.user is not None and client.user.id == server.bot_user.id
        guild = client.get_guild(server.guild.id)
        assert guild is not None and guild.name == "Quotebot Test Guild"
        assert [c.name for c in guild.text_channels] == ["general"]
        # Without the members intent discord.py caches no members: fetch them through REST.
        admin, member = await guild.fetch_member(server.admin.id), await guild.fetch_member(server.member.id)
        assert admin.guild_permissions.manage_guild and not member.guild_permissions.manage_guild
        assert guild.me.id == server.bot_user.id
        assert client.application_id == server.world.application_id
        (connection,) = server.gateway.connections
        # discord.py asks for zlib-stream (zstd-stream where a zstd module exists) and gets it.
        assert isinstance(connection.encoder, (ZlibStream, ZstdStream))
        assert connection.request.query["encoding"] == "json" and connection.request.query["v"] == "10"

    (session,) = server.gateway.identifies
    assert session.intents == client.intents.value
    assert session.seq == 2  # READY and GUILD_CREATE, numbered
    assert [r.status for r in server.calls("GET", "/users/@me")] == [200]


async def test_echo_reply_is_recorded_with_allowed_mentions(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = make_client(allowed_mentions=discord.AllowedMentions.none())
    seen: list[discord.Message] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message)
        if not message.author.bot:
            await message.reply(f"echo: {message.content}")

    async with running(client, server.token):
        sent = await server.user_sends(server.member, f"hi @everyone and {server.admin.mention}")
        reply = await server.wait_for_message(server.channel)
        await server.wait_for(lambda: len(seen) >= 2 or None, what="the bot's own reply over the gateway")

    assert reply.content == f"echo: hi @everyone and {server.admin.mention}"
    assert reply.allowed_mentions is not None and not reply.pings()
    assert reply.message_reference is not None and reply.message_reference["message_id"] == str(sent.id)
    incoming, echoed = seen
    assert incoming.author.id == server.member.id and incoming.mention_everyone
    assert [m.id for m in incoming.mentions] == [server.admin.id]
    assert echoed.author.id == server.bot_user.id and echoed.id == reply.id
    # Without allowed_mentions the same text would have pinged everyone: the rule is really applied.
    reply.allowed_mentions = None
    assert reply.pings().everyone and reply.pings().users == {server.admin.id}


async def test_reactions_reach_raw_reaction_events(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = make_client()
    events: asyncio.Queue[tuple[str, discord.RawReactionActionEvent]] = asyncio.Queue()

    @client.event
    async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
        await events.put(("add", payload))

    @client.event
    async def on_raw_reaction_remove(payload: discord.RawReactionActionEvent) -> None:
        await events.put(("remove", payload))

    async with running(client, server.token):
        target = await server.user_sends(server.admin, "react to this")
        await server.add_reaction(server.member, target, "⭐")
        await server.add_reaction(server.admin, target, "<:blob:1234>")
        await server.remove_reaction(server.member, target, "⭐")
        got = [await asyncio.wait_for(events.get(), 5) for _ in range(3)]
        # The bot reacting through REST is stored (and echoed back as an event too).
        await (
            client.get_partial_messageable(server.channel.id)
            .get_partial_message(target.id)
            .add_reaction("👍")
        )
        own = await asyncio.wait_for(events.get(), 5)

    (kind1, star), (kind2, blob), (kind3, unstar) = got
    assert (kind1, kind2, kind3) == ("add", "add", "remove")
    assert star.emoji.name == "⭐" and star.user_id == server.member.id and star.message_id == target.id
    assert star.member is not None and star.member.id == server.member.id
    assert blob.emoji.id == 1234 and blob.emoji.name == "blob"
    assert unstar.emoji.name == "⭐" and unstar.user_id == server.member.id
    assert own[1].user_id == server.bot_user.id
    assert target.reactions == {"blob:1234": [server.admin.id], "👍": [server.bot_user.id]}


async def test_slash_command_answers_an_interaction(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = SlashClient()

    @client.tree.command(description="Repeat some text")
    async def echo(
        interaction: discord.Interaction, text: str, times: app_commands.Range[int, 1, 3] = 1
    ) -> None:
        await interaction.response.send_message(" ".join([text] * times))

    @client.tree.command(description="Think first, then answer")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("done thinking")

    async with running(client, server.token):
        assert sorted(c["name"] for c in server.interactions.registry.list(None)) == ["echo", "slow"]
        quick = await server.run_slash_command(server.member, "echo", {"text": "hi", "times": 2})
        reply = await server.wait_for_message(server.channel)
        deferred = await server.run_slash_command(server.member, "slow")
        later = await server.wait_for_message(server.channel)
        with pytest.raises(ValueError, match="range"):
            await server.run_slash_command(server.member, "echo", {"text": "hi", "times": 9})
        with pytest.raises(LookupError, match="not registered"):
            await server.run_slash_command(server.member, "nope")

    assert quick.response_type == 4 and reply.content == "hi hi" and reply.interaction_id == quick.id
    assert deferred.response_type == 5 and later.content == "done thinking"
    # Discord fills the "thinking" message with the first followup instead of posting another.
    assert deferred.original is later and deferred.followups == [] and not later.loading
    assert len(server.calls("POST", "/interactions/{interaction_id}/{token}/callback")) == 2


async def test_hybrid_command_by_prefix_and_by_slash(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents, guild_ready_timeout=0.1)

    @bot.hybrid_command()
    async def say(ctx: commands.Context, *, text: str) -> None:
        """Repeat the text."""
        async with ctx.typing():  # a typing call by prefix, a deferred response by slash
            await asyncio.sleep(0.01)
        await ctx.send(f"said: {text}")

    async def sync_commands() -> None:
        await bot.tree.sync()

    bot.setup_hook = sync_commands
    async with running(bot, server.token):
        await server.user_sends(server.member, "!say by prefix")
        by_prefix = await server.wait_for_message(server.channel)
        record = await server.run_slash_command(server.member, "say", {"text": "by slash"})
        by_slash = await server.wait_for_message(server.channel)

    assert by_prefix.content == "said: by prefix" and by_prefix.interaction_id is None
    assert len(server.calls("POST", "/channels/{channel_id}/typing")) == 1
    assert (
        by_slash.content == "said: by slash" and record.response_type == 5 and record.messages == [by_slash]
    )


async def test_late_interaction_response_is_refused(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    server.interactions.ack_deadline = 0.05  # Discord's is 3 s
    client = SlashClient()
    errors: list[int] = []

    @client.tree.command(description="Answer too late")
    async def late(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.2)
        try:
            await interaction.response.send_message("too late")
        except discord.NotFound as exc:
            errors.append(exc.code)

    async with running(client, server.token):
        record = await server.run_slash_command(server.member, "late")
        await server.wait_for(lambda: errors or None, what="the late response to fail")

    assert errors == [10062] and record.response_type is None and server.bot_messages() == []


async def test_outage_is_resumed_with_missed_events_replayed(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = make_client()
    seen: list[str] = []
    resumed = asyncio.Event()

    @client.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    async with running(client, server.token):
        async with server.outage():
            await server.user_sends(server.member, "sent while the bot was away")
        await asyncio.wait_for(resumed.wait(), 10)
        await server.wait_for(lambda: seen or None, what="the replayed message")
        # A plain drop (no held reconnection) is resumed too, and the connection works afterwards.
        await server.drop_connection()
        await server.wait_for(lambda: len(server.gateway.resumes) >= 2 or None, what="a second RESUME")
        await server.user_sends(server.member, "after the second drop")
        await server.wait_for(lambda: len(seen) >= 2 or None, what="a live message after resuming")

    first = server.gateway.resumes[0]
    assert first.accepted and first.replayed == 1 and first.path == "/resume"
    assert seen == ["sent while the bot was away", "after the second drop"]
    assert len(server.gateway.identifies) == 1  # RESUME, never a second IDENTIFY


async def test_invalid_session_makes_the_client_identify_again(use_discord_server: DiscordServer) -> None:
    server = use_discord_server

    class NoWaitClient(discord.Client):
        async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
            pass  # discord.py waits 5 s before a non-initial IDENTIFY; not needed here

    client = NoWaitClient(intents=discord.Intents.default(), guild_ready_timeout=0.1)
    async with running(client, server.token):
        server.gateway.invalidate_sessions()
        await server.drop_connection()
        await server.wait_for_session(count=2)

    assert [r.accepted for r in server.gateway.resumes] == [False]
    assert len(server.gateway.identifies) == 2


async def test_wrong_token_raises_login_failure(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = make_client()
    with pytest.raises(discord.LoginFailure):
        await asyncio.wait_for(client.start("not-the-token"), 10)
    await client.close()
    assert [r.status for r in server.calls("GET", "/users/@me")] == [401]
    assert server.gateway.identifies == []


async def test_plain_json_gateway_and_wrong_token_close(discord_server: DiscordServer) -> None:
    server = discord_server
    url = server.gateway_url + "?v=10&encoding=json"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 513, "properties": {}}})
            closing = await ws.receive(timeout=5)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4004

        async with http.ws_connect(url) as ws:
            await ws.receive_json(timeout=5)
            await ws.send_json({"op": 2, "d": {"token": server.token, "intents": 513, "properties": {}}})
            ready, guild = await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)
            await ws.send_json({"op": 1, "d": guild["s"]})
            ack = await ws.receive_json(timeout=5)

    assert (ready["t"], ready["s"]) == ("READY", 1)
    assert ready["d"]["guilds"] == [{"id": str(server.guild.id), "unavailable": True}]
    assert ready["d"]["resume_gateway_url"].endswith("/resume")
    assert (guild["t"], guild["s"]) == ("GUILD_CREATE", 2) and len(guild["d"]["members"]) == 4
    assert ack == {"op": 11}


async def test_unknown_route_answers_404_and_is_recorded(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = make_client()
    async with running(client, server.token):
        with pytest.raises(discord.NotFound):
            await client.http.request(Route("GET", "/no/such/route"))
    assert server.unknown_routes == ["GET /api/v10/no/such/route"]
    server.unknown_routes.clear()  # expected here; the fixture fails any other test that hits one


async def test_bot_messages_follow_discords_rules(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    client = make_client()
    async with running(client, server.token):
        channel = client.get_partial_messageable(server.channel.id)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        with pytest.raises(discord.HTTPException) as empty:
            await client.http.send_message(
                server.channel.id, params=discord.http.MultipartParameters({}, None, None)
            )
        sent = await channel.send("a file", file=discord.File(io.BytesIO(b"quote data"), "quote.txt"))
        assert await sent.attachments[0].read() == b"quote data"
        fetched = await channel.fetch_message(sent.id)
        edited = await fetched.edit(content="a file, edited")

    assert too_long.value.status == 400 and too_long.value.code == 50035
    assert "2000" in json.dumps(too_long.value.text)
    assert empty.value.code == 50006
    stored = server.store.messages[sent.id]
    assert stored.attachments[0].filename == "quote.txt" and stored.previous_contents == ["a file"]
    assert edited.content == "a file, edited"


async def test_without_message_content_intent_messages_arrive_empty(
    use_discord_server: DiscordServer,
) -> None:
    server = use_discord_server
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.1)
    contents: list[str] = []

    @client.event
    async def on_message(message: discord.Message) -> None:
        contents.append(message.content)

    async with running(client, server.token):
        await server.user_sends(server.member, "not for the bot")
        await server.user_sends(server.member, f"{server.bot_user.mention} for the bot")
        await server.wait_for(lambda: len(contents) >= 2 or None, what="two messages")

    assert contents == ["", f"{server.bot_user.mention} for the bot"]


async def test_disallowed_privileged_intent_is_refused(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    intents = discord.Intents.default()
    intents.members = True  # not enabled "in the developer portal" of the test server
    client = discord.Client(intents=intents)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.start(server.token), 10)
    await client.close()


async def test_deleted_channel_and_revoked_send_permission(use_discord_server: DiscordServer) -> None:
    server = use_discord_server
    doomed = server.world.add_text_channel(server.guild, "doomed")
    client = make_client()
    async with running(client, server.token):
        guild = client.get_guild(server.guild.id)
        assert guild is not None and guild.get_channel(doomed.id) is not None
        await server.delete_channel(doomed)
        await server.wait_for(lambda: guild.get_channel(doomed.id) is None or None, what="CHANNEL_DELETE")
        with pytest.raises(discord.NotFound) as gone:
            await client.get_partial_messageable(doomed.id).send("hello?")

        role = server.world.bot_role
        everyone = server.guild.everyone_role
        await server.set_role_permissions(role, role.permissions & ~Perm.SEND_MESSAGES)
        await server.set_role_permissions(everyone, everyone.permissions & ~Perm.SEND_MESSAGES)
        general = guild.get_channel(server.channel.id)
        assert isinstance(general, discord.TextChannel)
        await server.wait_for(
            lambda: not general.permissions_for(guild.me).send_messages or None, what="GUILD_ROLE_UPDATE"
        )
        with pytest.raises(discord.Forbidden) as refused:
            await general.send("hello?")

    assert gone.value.code == 10003
    assert refused.value.code == 50013


async def test_each_sharded_client_gets_only_its_shards_guilds_and_messages(
    use_discord_server: DiscordServer,
) -> None:
    server = use_discord_server
    first_shard = (server.guild.id >> 22) % 2
    second, second_channel = server.world.add_guild_like_the_first("Second", shard=(1 - first_shard, 2))
    assert (second.id >> 22) % 2 == 1 - first_shard
    intents = discord.Intents.default()
    intents.message_content = True
    heard: dict[int, list[str]] = {0: [], 1: []}
    clients = {}
    for shard in (0, 1):
        client = discord.AutoShardedClient(
            intents=intents, guild_ready_timeout=0.1, shard_ids=[shard], shard_count=2
        )

        @client.event
        async def on_message(message: discord.Message, shard: int = shard) -> None:
            heard[shard].append(message.content)

        clients[shard] = client
    async with running(clients[0], server.token), running(clients[1], server.token):
        assert sorted(s.shard for s in server.gateway.identifies) == [(0, 2), (1, 2)]
        assert [g.id for g in clients[first_shard].guilds] == [server.guild.id]
        assert [g.id for g in clients[1 - first_shard].guilds] == [second.id]
        await server.user_sends(server.member, "in the first guild")
        await server.user_sends(server.member, "in the second guild", second_channel)
        await server.wait_for(lambda: (heard[0] and heard[1]) or None, timeout=5, what="both messages")
        await asyncio.sleep(0.2)
        assert heard[first_shard] == ["in the first guild"]
        assert heard[1 - first_shard] == ["in the second guild"]
