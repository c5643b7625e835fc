"""REST routes for users, the gateway, channels, messages, reactions and typing.

Paths are written as discord.py's ``Route`` writes them, below the ``/api/v10`` prefix the server adds.
Bodies arrive parsed by the server's middleware: read them with ``json_of`` and ``files_of``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .body import files_of, json_of
from .errors import ApiError, json_response, missing_permissions, no_content, unknown
from .messages import StoredMessage, emoji_key
from .state import Perm

if TYPE_CHECKING:
    from .server import DiscordServer

CHANNEL = "/channels/{channel_id}"
MESSAGE = CHANNEL + "/messages/{message_id}"
REACTIONS = MESSAGE + "/reactions"


class RestApi:
    def __init__(self, server: DiscordServer) -> None:
        self.server = server
        self.world = server.world
        self.store = server.store

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/gateway", self.get_gateway),
            web.get("/gateway/bot", self.get_gateway_bot),
            web.get("/users/@me", self.get_me),
            web.post("/users/@me/channels", self.open_dm),
            web.get("/users/{user_id}", self.get_user),
            web.get("/oauth2/applications/@me", self.get_application),
            web.get("/guilds/{guild_id}", self.get_guild),
            web.get("/guilds/{guild_id}/members/{user_id}", self.get_member),
            web.get(CHANNEL, self.get_channel),
            web.post(CHANNEL + "/typing", self.typing),
            web.get(CHANNEL + "/messages", self.history),
            web.post(CHANNEL + "/messages", self.create_message),
            web.get(MESSAGE, self.get_message),
            web.patch(MESSAGE, self.edit_message),
            web.delete(MESSAGE, self.delete_message),
            web.put(REACTIONS + "/{emoji}/@me", self.add_own_reaction),
            web.delete(REACTIONS + "/{emoji}/@me", self.remove_own_reaction),
            web.delete(REACTIONS + "/{emoji}/{user_id}", self.remove_user_reaction),
            web.get(REACTIONS + "/{emoji}", self.reaction_users),
        ]

    # --- users, application, gateway ------------------------------------------------------------------

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.server.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
        return json_response({"url": self.server.gateway_url, "shards": 1, "session_start_limit": limit})

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.world.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise unknown("User", 10013)
        return json_response(user.payload())

    async def open_dm(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int((json_of(request) or {}).get("recipient_id", 0)))
        if user is None:
            raise unknown("User", 10013)
        return json_response(self.world.dm_channel(user).payload())

    async def get_application(self, request: web.Request) -> web.Response:
        bot = self.world.bot
        return json_response(
            {
                "id": str(self.world.application_id),
                "name": bot.name,
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.world.owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 1 << 18,  # GATEWAY_MESSAGE_CONTENT: the portal's message content switch is on
                "bot": bot.payload(),
                "interactions_endpoint_url": None,
            }
        )

    # --- guilds and channels --------------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self.world.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise unknown("Guild", 10004)
        return json_response(guild.payload(self.world.guild_channels(guild)))

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self.world.guilds.get(int(request.match_info["guild_id"]))
        if guild is None:
            raise unknown("Guild", 10004)
        member = self.world.member_payload(guild, int(request.match_info["user_id"]), with_user=True)
        if member is None:
            raise unknown("Member", 10007)
        return json_response(member)

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self.store.channel(request.match_info["channel_id"]).payload())

    async def typing(self, request: web.Request) -> web.Response:
        self.store.channel(request.match_info["channel_id"])
        return no_content()

    # --- messages -------------------------------------------------------------------------------------

    async def history(self, request: web.Request) -> web.Response:
        channel = self.store.channel(request.match_info["channel_id"])
        limit = min(int(request.query.get("limit", 50)), 100)
        before = int(request.query.get("before", 1 << 63))
        after = int(request.query.get("after", 0))
        found = [m for m in self.store.in_channel(channel.id) if after < m.id < before and not m.ephemeral]
        found.sort(key=lambda m: m.id, reverse=True)  # Discord returns newest first
        if "after" in request.query:
            found = found[-limit:]
        return json_response([self.store.payload(m) for m in found[:limit]])

    async def create_message(self, request: web.Request) -> web.Response:
        channel = self.store.channel(request.match_info["channel_id"])
        body = json_of(request) or {}
        message = await self.store.post(channel, self.world.bot.id, body, files_of(request))
        return json_response(self.store.payload(message))

    async def get_message(self, request: web.Request) -> web.Response:
        return json_response(self.store.payload(self._message(request)))

    async def edit_message(self, request: web.Request) -> web.Response:
        message = self._message(request)
        if message.author_id != self.world.bot.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        await self.store.edit(message, json_of(request) or {}, files_of(request))
        return json_response(self.store.payload(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        message = self._message(request)
        if message.author_id != self.world.bot.id:
            self._require(message.guild_id, Perm.MANAGE_MESSAGES)
        await self.store.delete(message)
        return no_content()

    # --- reactions ------------------------------------------------------------------------------------

    async def add_own_reaction(self, request: web.Request) -> web.Response:
        message = self._message(request)
        self._require(message.guild_id, Perm.ADD_REACTIONS | Perm.READ_MESSAGE_HISTORY)
        await self.store.react(message, self.world.bot.id, self._emoji(request), add=True)
        return no_content()

    async def remove_own_reaction(self, request: web.Request) -> web.Response:
        message = self._message(request)
        await self.store.react(message, self.world.bot.id, self._emoji(request), add=False)
        return no_content()

    async def remove_user_reaction(self, request: web.Request) -> web.Response:
        message = self._message(request)
        self._require(message.guild_id, Perm.MANAGE_MESSAGES)
        user_id = int(request.match_info["user_id"])
        await self.store.react(message, user_id, self._emoji(request), add=False)
        return no_content()

    async def reaction_users(self, request: web.Request) -> web.Response:
        message = self._message(request)
        users = message.reactions.get(self._emoji(request), [])
        return json_response([self.world.users[u].payload() for u in users])

    # --- helpers --------------------------------------------------------------------------------------

    def _message(self, request: web.Request) -> StoredMessage:
        return self.store.get(request.match_info["channel_id"], request.match_info["message_id"])

    @staticmethod
    def _emoji(request: web.Request) -> str:
        # discord.py percent-encodes the emoji once and aiohttp has already decoded it.
        return emoji_key(request.match_info["emoji"])

    def _require(self, guild_id: int | None, permissions: int) -> None:
        if guild_id is None:
            return
        if self.world.guilds[guild_id].permissions_of(self.world.bot.id) & permissions != permissions:
            raise missing_permissions()
