"""``DiscordServer``: the gateway and REST API on one ephemeral port, and the API tests drive it with.

    server = DiscordServer()
    await server.start()
    discord.http.Route.BASE = server.api_base                  # REST
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    ...
    await server.user_sends(server.member, "!quote Hey,")
    reply = await server.wait_for_message(server.channel)
    await server.stop()

Every REST call is recorded (``requests``); a route the server does not know answers 404 and lands in
``unknown_routes``; a malformed request or gateway payload lands in ``protocol_errors``.
"""

from __future__ import annotations

import contextlib
import socket
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from .body import UploadedFile, parse_body
from .errors import ApiError, json_response, unauthorized
from .gateway import Gateway, Session
from .interaction_record import InteractionRecord
from .interactions import InteractionApi
from .messages import StoredMessage, emoji_key
from .rest import RestApi
from .state import Channel, Overwrite, Role, User, World
from .store import MessageStore

T = TypeVar("T")
API = "/api/v10"
# Routes Discord serves without the bot's token: the interaction token in the URL is the credential.
_TOKENLESS = (API + "/webhooks/", API + "/interactions/", API + "/gateway")


@dataclass
class RecordedRequest:
    method: str
    path: str  # below /api/v10, e.g. "/channels/123/messages"
    route: str  # the matched template, e.g. "/channels/{channel_id}/messages"; "" when unknown
    query: dict[str, str]
    json: Any
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0


class DiscordServer:
    """A Discord-compatible server on 127.0.0.1 with the default world of ``state.World``."""

    def __init__(
        self,
        *,
        token: str = "quotebot-test-token",
        heartbeat_interval_ms: int = 41_250,
        ack_deadline: float = 3.0,
    ) -> None:
        self.token = token
        self.world = World()
        self.gateway = Gateway(self.world, token, heartbeat_interval_ms)
        self.store = MessageStore(self.world, self.gateway)
        self.gateway.on_change = self.store.notify
        self.rest = RestApi(self)
        self.interactions = InteractionApi(self, ack_deadline)
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[str] = []
        self.port = 0
        self._claimed: set[int] = set()  # bot messages already handed out by wait_for_message
        self._runner: web.AppRunner | None = None

    # --- addresses and the cast -----------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` (and the bot's ``DISCORD_API_BASE``) should be."""
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` (and ``DISCORD_GATEWAY_URL``) should be."""
        return f"ws://127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        """Environment variables that point the bot (e.g. ``python -m bot`` in a subprocess) here."""
        return {
            "DISCORD_TOKEN": self.token,
            "DISCORD_API_BASE": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
        }

    @property
    def bot_user(self) -> User:
        return self.world.bot

    @property
    def guild(self):
        return self.world.guild

    @property
    def channel(self) -> Channel:
        return self.world.channel

    @property
    def admin(self) -> User:
        """A member with Manage Server (through the Moderators role)."""
        return self.world.admin

    @property
    def member(self) -> User:
        """An ordinary member without any role."""
        return self.world.member

    @property
    def protocol_errors(self) -> list[str]:
        return self.gateway.protocol_errors

    # --- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> DiscordServer:
        app = web.Application(middlewares=[self._middleware], client_max_size=32 * 1024 * 1024)
        # The resume URL differs from the first one only so tests can see discord.py using it.
        app.router.add_get("/", self.gateway.handle)
        app.router.add_get("/resume", self.gateway.handle)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self._attachment)
        for route in self.rest.routes() + self.interactions.routes():
            app.router.add_route(route.method, API + route.path, route.handler)
        app.router.add_route("*", "/{tail:.*}", self._unknown)

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.gateway.resume_url = f"ws://127.0.0.1:{self.port}/resume"
        self.store.attachment_base = f"http://127.0.0.1:{self.port}/attachments"
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- what a test's users do -----------------------------------------------------------------------

    async def user_sends(
        self,
        author: User,
        content: str,
        channel: Channel | None = None,
        *,
        reply_to: StoredMessage | None = None,
    ) -> StoredMessage:
        """``author`` posts ``content`` (default channel: #general); the bot gets MESSAGE_CREATE."""
        channel = channel or self.world.channel
        guild = self.world.guild_of(channel)
        if guild is not None and author.id not in guild.members:
            raise ValueError(f"{author.name} is not a member of {guild.name}")
        body: dict = {"content": content}
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to.id)}
        return await self.store.post(channel, author.id, body)

    async def add_reaction(self, user: User, message: StoredMessage, emoji: str) -> None:
        """``user`` reacts with ``emoji`` (``"⭐"``, ``"name:id"`` or ``"<:name:id>"``)."""
        await self.store.react(message, user.id, emoji_key(emoji), add=True)

    async def remove_reaction(self, user: User, message: StoredMessage, emoji: str) -> None:
        await self.store.react(message, user.id, emoji_key(emoji), add=False)

    async def run_slash_command(
        self,
        user: User,
        name: str,
        options: dict[str, Any] | None = None,
        channel: Channel | None = None,
        *,
        check_permissions: bool = True,
    ) -> InteractionRecord:
        """``user`` runs ``/name`` (registered by the bot's sync) with ``options``; returns the record."""
        return await self.interactions.invoke(
            user, channel or self.world.channel, name, options or {}, check_permissions=check_permissions
        )

    async def autocomplete(
        self,
        user: User,
        name: str,
        options: dict[str, Any],
        focused: str,
        channel: Channel | None = None,
    ) -> InteractionRecord:
        """``user`` is typing option ``focused`` of ``/name``; the bot's suggestions land in ``.choices``."""
        return await self.interactions.invoke(
            user, channel or self.world.channel, name, options, focused=focused
        )

    async def run_message_command(
        self, user: User, message: StoredMessage, name: str, *, check_permissions: bool = True
    ) -> InteractionRecord:
        """``user`` runs the message context menu ``name`` (Apps > name) on ``message``."""
        return await self.interactions.invoke_message_command(
            user, message, name, check_permissions=check_permissions
        )

    async def press_button(self, user: User, message: StoredMessage, custom_id: str) -> InteractionRecord:
        """``user`` presses the button ``custom_id`` on ``message`` (see ``StoredMessage.button``)."""
        return await self.interactions.press_button(user, message, custom_id)

    def commands(self, guild_id: int | None = None) -> dict[str, dict]:
        """The application commands the bot synced (global, or a guild's), by name: the sync payloads."""
        return {command["name"]: command for command in self.interactions.registry.list(guild_id)}

    # --- what a test's admins do ----------------------------------------------------------------------

    async def delete_channel(self, channel: Channel) -> None:
        """An admin deletes a guild channel: CHANNEL_DELETE goes out and the channel's routes answer 404."""
        self.world.remove_channel(channel)
        await self.gateway.dispatch("CHANNEL_DELETE", channel.payload())
        self.store.notify()

    async def create_text_channel(self, name: str, overwrites: Sequence[Overwrite] = ()) -> Channel:
        """An admin makes a channel in the guild (with permission overwrites: a private channel denies
        @everyone, whose id is the guild's, View Channel); CHANNEL_CREATE goes out."""
        channel = self.world.add_text_channel(self.world.guild, name, overwrites)
        await self.gateway.dispatch("CHANNEL_CREATE", channel.payload())
        self.store.notify()
        return channel

    async def set_role_permissions(self, role: Role, permissions: int) -> None:
        """An admin changes a role's permissions (e.g. takes Send Messages away); sends GUILD_ROLE_UPDATE."""
        role.permissions = permissions
        guild = next(g for g in self.world.guilds.values() if role.id in g.roles)
        await self.gateway.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": role.payload()})
        self.store.notify()

    # --- breaking the connection ----------------------------------------------------------------------

    async def drop_connection(self) -> int:
        """Cuts the gateway connection(s) without a close frame; the client should RESUME."""
        return self.gateway.drop_connections()

    def outage(self) -> contextlib.AbstractAsyncContextManager[None]:
        """``async with server.outage():`` drops the gateway and holds reconnections until the block ends,
        so anything dispatched inside is certainly missed live and must come back by RESUME replay."""
        return self.gateway.outage()

    # --- waiting and looking ----------------------------------------------------------------------------

    async def wait_for(
        self, check: Callable[[], T | None], timeout: float = 5.0, what: str = "a condition"
    ) -> T:
        """Waits until ``check()`` returns something other than None (re-checked after every change)."""
        return await self.store.wait_for(check, timeout, lambda: what)

    async def wait_for_message(
        self,
        channel: Channel | int | None = None,
        predicate: Callable[[StoredMessage], bool] | None = None,
        *,
        timeout: float = 5.0,
    ) -> StoredMessage:
        """The bot's next message (REST post, interaction response or followup) not yet returned by an
        earlier call, in ``channel`` (any when None) and matching ``predicate``. Deferred responses count
        once filled in. Fails the test with what the bot did post, when it times out."""
        channel_id = getattr(channel, "id", channel)

        def check() -> StoredMessage | None:
            for message in self.store.messages.values():
                if (
                    message.author_id == self.world.bot.id
                    and message.id not in self._claimed
                    and not message.deleted
                    and not message.loading
                    and channel_id in (None, message.channel_id)
                    and (predicate is None or predicate(message))
                ):
                    self._claimed.add(message.id)
                    return message
            return None

        def what() -> str:
            posted = [m.content[:80] for m in self.bot_messages() if m.id not in self._claimed]
            return (
                f"a bot message in channel {channel_id}; unclaimed bot messages: {posted}; "
                f"unknown routes: {self.unknown_routes}; protocol errors: {self.protocol_errors}"
            )

        return await self.store.wait_for(check, timeout, what)

    async def wait_for_session(self, count: int = 1, timeout: float = 10.0) -> Session:
        """Waits until ``count`` IDENTIFYs have been answered with READY; returns the latest session."""
        return await self.wait_for(
            lambda: self.gateway.identifies[-1] if len(self.gateway.identifies) >= count else None,
            timeout,
            f"{count} identified gateway session(s)",
        )

    def bot_messages(self, channel: Channel | int | None = None) -> list[StoredMessage]:
        channel_id = getattr(channel, "id", channel)
        return [
            m
            for m in self.store.messages.values()
            if m.author_id == self.world.bot.id and channel_id in (None, m.channel_id) and not m.deleted
        ]

    def calls(self, method: str, route: str) -> list[RecordedRequest]:
        """Recorded REST calls to a route template: ``calls("POST", "/channels/{channel_id}/typing")``."""
        return [r for r in self.requests if r.method == method and r.route == route]

    # --- HTTP plumbing --------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ):
        if not request.path.startswith(API):
            return await handler(request)  # the gateway websocket and attachment downloads
        record = RecordedRequest(
            request.method, request.path.removeprefix(API), "", dict(request.query), None
        )
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical != "/{tail}":  # the catch-all for unknown routes
            record.route = resource.canonical.removeprefix(API)
        try:
            body = await parse_body(request)
            record.json, record.files = body.json, body.files
            if (
                not request.path.startswith(_TOKENLESS)
                and request.headers.get("Authorization") != f"Bot {self.token}"
            ):
                raise unauthorized()
            response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except Exception as exc:
            # A request the server cannot make sense of: answer 400 (a 5xx would make discord.py retry) and
            # record it, so the test fails and shows where.
            self.protocol_errors.append(f"{request.method} {request.path}: {exc!r}\n{traceback.format_exc()}")
            response = json_response(
                {"message": f"test server could not handle this: {exc!r}", "code": 0}, 400
            )
        record.status = response.status
        self.requests.append(record)
        self.store.notify()
        return response

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unknown_routes.append(f"{request.method} {request.path}")
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    async def _attachment(self, request: web.Request) -> web.Response:
        wanted = int(request.match_info["attachment_id"])
        for message in self.store.messages.values():
            for attachment in message.attachments:
                if attachment.id == wanted:
                    return web.Response(body=attachment.data, content_type=attachment.content_type)
        return await self._unknown(request)
