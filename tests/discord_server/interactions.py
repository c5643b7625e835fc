"""Slash commands end to end: the command routes, INTERACTION_CREATE, and the interaction-response routes.

A test invokes ``/name`` as a user; the server builds the interaction Discord would send (typed options,
resolved users, the member's permissions) and records how the bot answers: the callback (message, defer,
...), the original response and its edits, and followups. Discord's limits hold: one callback per
interaction, within ``ack_deadline`` seconds, and the first followup after a defer fills the "thinking"
message instead of posting a new one.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import commands as c
from .body import files_of, json_of
from .errors import ApiError, already_acknowledged, invalid_form, json_response, no_content, unknown
from .interaction_record import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MESSAGE_COMPONENT,
    UPDATE_MESSAGE,
    InteractionRecord,
)
from .messages import EPHEMERAL, LOADING, StoredMessage
from .options import typed_options
from .state import Channel, Guild, Perm, User

if TYPE_CHECKING:
    from .server import DiscordServer

APP = "/applications/{application_id}"
WEBHOOK = "/webhooks/{application_id}/{token}"


class InteractionApi:
    def __init__(self, server: DiscordServer, ack_deadline: float = 3.0) -> None:
        self.server = server
        self.world = server.world
        self.store = server.store
        self.ack_deadline = ack_deadline  # Discord drops an interaction not answered within 3 s
        self.registry = c.CommandRegistry(self.world.application_id, self.world.ids)
        self.interactions: dict[int, InteractionRecord] = {}

    def routes(self) -> list[web.RouteDef]:
        routes = []
        for prefix in (APP, APP + "/guilds/{guild_id}"):
            routes += [
                web.get(prefix + "/commands", self.list_commands),
                web.put(prefix + "/commands", self.overwrite_commands),
                web.post(prefix + "/commands", self.create_command),
                web.get(prefix + "/commands/{command_id}", self.get_command),
                web.patch(prefix + "/commands/{command_id}", self.edit_command),
                web.delete(prefix + "/commands/{command_id}", self.delete_command),
            ]
        # "@original" must be registered before "{message_id}", which would also match it.
        return [
            *routes,
            web.post("/interactions/{interaction_id}/{token}/callback", self.callback),
            web.get(WEBHOOK + "/messages/@original", self.get_original),
            web.patch(WEBHOOK + "/messages/@original", self.edit_original),
            web.delete(WEBHOOK + "/messages/@original", self.delete_original),
            web.post(WEBHOOK, self.followup),
            web.get(WEBHOOK + "/messages/{message_id}", self.get_followup),
            web.patch(WEBHOOK + "/messages/{message_id}", self.edit_followup),
            web.delete(WEBHOOK + "/messages/{message_id}", self.delete_followup),
        ]

    # --- application command routes -------------------------------------------------------------------

    def _scope(self, request: web.Request) -> int | None:
        if int(request.match_info["application_id"]) != self.world.application_id:
            raise unknown("Application", 10002)
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None and int(guild_id) not in self.world.guilds:
            raise unknown("Guild", 10004)
        return int(guild_id) if guild_id else None

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.registry.list(self._scope(request)))

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        return json_response(self.registry.overwrite(self._scope(request), json_of(request)))

    async def create_command(self, request: web.Request) -> web.Response:
        return json_response(self.registry.upsert(self._scope(request), json_of(request) or {}), status=201)

    async def get_command(self, request: web.Request) -> web.Response:
        return json_response(self.registry.get(request.match_info["command_id"], self._scope(request)))

    async def edit_command(self, request: web.Request) -> web.Response:
        command = self.registry.get(request.match_info["command_id"], self._scope(request))
        return json_response(self.registry.edit(command, json_of(request) or {}))

    async def delete_command(self, request: web.Request) -> web.Response:
        self.registry.delete(self.registry.get(request.match_info["command_id"], self._scope(request)))
        return no_content()

    # --- invoking -------------------------------------------------------------------------------------

    async def invoke(
        self,
        user: User,
        channel: Channel,
        name: str,
        options: dict[str, Any],
        *,
        check_permissions: bool = True,
        focused: str | None = None,
    ) -> InteractionRecord:
        """Dispatches INTERACTION_CREATE for ``user`` running ``/name`` (``"group sub"`` for subcommands).

        With ``focused`` (an option's name), the user is still typing that option: an autocomplete
        interaction (type 4) goes out instead, and the bot's choices land in ``record.choices``.
        """
        guild = self.world.guild_of(channel)
        top, *path = name.split()
        command, permissions = self._command(user, guild, top, c.CHAT_INPUT, check_permissions)
        typed, resolved = typed_options(command, path, options, self.world, guild, focused=focused)
        data: dict = {"id": command["id"], "name": top, "type": c.CHAT_INPUT, "options": typed}
        if resolved:
            data["resolved"] = resolved
        kind = AUTOCOMPLETE if focused else APPLICATION_COMMAND
        return await self._dispatch(
            user, channel, guild, permissions, name, kind, self._scoped(command, data)
        )

    async def invoke_message_command(
        self, user: User, message: StoredMessage, name: str, *, check_permissions: bool = True
    ) -> InteractionRecord:
        """``user`` picks Apps > ``name`` on ``message``: a message context menu (command type 3)."""
        channel = self.world.channels[message.channel_id]
        guild = self.world.guild_of(channel)
        command, permissions = self._command(user, guild, name, c.MESSAGE, check_permissions)
        data = {
            "id": command["id"],
            "name": name,
            "type": c.MESSAGE,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): self.store.payload(message)}},
        }
        return await self._dispatch(
            user, channel, guild, permissions, name, APPLICATION_COMMAND, self._scoped(command, data)
        )

    async def press_button(self, user: User, message: StoredMessage, custom_id: str) -> InteractionRecord:
        """``user`` presses the button ``custom_id`` on ``message``: a component interaction (type 3)."""
        if not any(b.get("custom_id") == custom_id for b in message.buttons()):
            raise LookupError(f"message {message.id} has no button {custom_id!r}: {message.buttons()}")
        channel = self.world.channels[message.channel_id]
        guild = self.world.guild_of(channel)
        permissions = guild.permissions_of(user.id) if guild else Perm.ALL
        data = {"custom_id": custom_id, "component_type": 2}
        extra = {"message": self.store.payload(message)}
        return await self._dispatch(
            user, channel, guild, permissions, custom_id, MESSAGE_COMPONENT, data, extra, target=message
        )

    def _command(
        self, user: User, guild: Guild | None, name: str, kind: int, check_permissions: bool
    ) -> tuple[dict, int]:
        """The registered command a user would see, and their permissions; as the client hides it."""
        command = self.registry.find(name, guild.id if guild else None, kind)
        if command is None:
            known = sorted(cmd["name"] for cmd in self.registry.commands.values())
            raise LookupError(f"{name!r} is not registered (did the bot sync its tree?); registered: {known}")
        if guild is None and not c.usable_in_dms(command):
            raise PermissionError(f"{name!r} is not offered in direct messages (guild only)")
        permissions = guild.permissions_of(user.id) if guild else Perm.ALL
        needed = int(command.get("default_member_permissions") or 0)
        admin = bool(permissions & Perm.ADMINISTRATOR)
        if check_permissions and not admin and permissions & needed != needed:
            raise PermissionError(f"{user.name} cannot see {name!r}: it needs permissions {needed}")
        return command, permissions

    @staticmethod
    def _scoped(command: dict, data: dict) -> dict:
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return data

    async def _dispatch(
        self,
        user: User,
        channel: Channel,
        guild: Guild | None,
        permissions: int,
        name: str,
        kind: int,
        data: dict,
        extra: dict | None = None,
        target: StoredMessage | None = None,
    ) -> InteractionRecord:
        record = InteractionRecord(
            id=self.world.ids.next(),
            token=secrets.token_urlsafe(32),
            name=name,
            user_id=user.id,
            channel_id=channel.id,
            guild_id=guild.id if guild else None,
            payload={},
            created_at=asyncio.get_running_loop().time(),
            kind=kind,
            target=target,
        )
        payload = self._interaction_payload(record, data, user, channel, guild, permissions)
        record.payload = {**payload, "type": kind, **(extra or {})}
        self.interactions[record.id] = record
        await self.server.gateway.dispatch("INTERACTION_CREATE", record.payload)
        return record

    def _interaction_payload(
        self,
        record: InteractionRecord,
        data: dict,
        user: User,
        channel: Channel,
        guild: Guild | None,
        perms: int,
    ) -> dict:
        payload = {
            "id": str(record.id),
            "application_id": str(self.world.application_id),
            "type": 2,  # APPLICATION_COMMAND
            "data": data,
            "channel": {**channel.payload(), "permissions": str(perms)},
            "channel_id": str(channel.id),
            "token": record.token,
            "version": 1,
            "app_permissions": str(guild.permissions_of(self.world.bot.id) if guild else 0),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "context": 0 if guild else 1,
        }
        if guild is not None:
            member = self.world.member_payload(guild, user.id, with_user=True) or {}
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member={**member, "permissions": str(perms)},
                authorizing_integration_owners={"0": str(guild.id)},
            )
        else:
            payload["user"] = user.payload()
        return payload

    # --- responding -----------------------------------------------------------------------------------

    def _record(self, request: web.Request) -> InteractionRecord:
        """The interaction a webhook or callback URL names; 404 as on Discord when the token does not fit."""
        if "interaction_id" in request.match_info:
            record = self.interactions.get(int(request.match_info["interaction_id"]))
            if record is None or record.token != request.match_info["token"]:
                raise unknown("interaction", 10062)
            return record
        if int(request.match_info["application_id"]) == self.world.application_id:
            for record in self.interactions.values():
                if record.token == request.match_info["token"]:
                    return record
        raise unknown("Webhook", 10015)

    async def callback(self, request: web.Request) -> web.Response:
        record = self._record(request)
        if record.response_type is not None:
            raise already_acknowledged()
        if asyncio.get_running_loop().time() - record.created_at > self.ack_deadline:
            raise unknown("interaction", 10062)  # what Discord answers after its 3 s window
        body = json_of(request) or {}
        kind = body.get("type")
        allowed = {
            APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, 9},
            MESSAGE_COMPONENT: {
                CHANNEL_MESSAGE,
                DEFERRED_CHANNEL_MESSAGE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
                9,
            },
            AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
        }[record.kind]
        if kind not in allowed:
            message = f"Invalid Form Body: callback type {kind} for interaction type {record.kind}"
            raise ApiError(400, 50035, message)
        record.response_type, record.response = kind, body
        data = body.get("data") or {}
        channel = self.world.channels[record.channel_id]
        if kind == AUTOCOMPLETE_RESULT and len(data.get("choices") or []) > 25:
            raise invalid_form("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            record.original = record.target  # "@original" is now the message the button is on
            if kind == UPDATE_MESSAGE and record.target is not None:
                await self.store.edit(record.target, data)
        elif record.response_type == CHANNEL_MESSAGE:
            record.original = await self._post(record, channel, data, files_of(request))
        elif record.response_type == DEFERRED_CHANNEL_MESSAGE:
            thinking = {"flags": LOADING | (int(data.get("flags") or 0) & EPHEMERAL)}
            record.original = await self._post(record, channel, thinking, [])
        self.store.notify()
        if request.query.get("with_response") not in ("1", "true", "True"):
            return no_content()
        original = record.original
        callback = {
            "interaction": {
                "id": str(record.id),
                "type": record.kind,
                "response_message_id": str(original.id) if original else None,
                "response_message_loading": bool(original and original.loading),
                "response_message_ephemeral": bool(original and original.ephemeral),
            }
        }
        if original is not None:
            callback["resource"] = {"type": record.response_type, "message": self.store.payload(original)}
        return json_response(callback)

    async def _post(
        self, record: InteractionRecord, channel: Channel, body: dict, files: list
    ) -> StoredMessage:
        return await self.store.post(
            channel,
            self.world.bot.id,
            body,
            files,
            webhook_id=self.world.application_id,
            interaction_id=record.id,
        )

    def _original(self, request: web.Request) -> tuple[InteractionRecord, StoredMessage]:
        record = self._record(request)
        if record.original is None or record.original.deleted:
            raise unknown("Message", 10008)
        return record, record.original

    async def get_original(self, request: web.Request) -> web.Response:
        _, message = self._original(request)
        return json_response(self.store.payload(message))

    async def edit_original(self, request: web.Request) -> web.Response:
        _, message = self._original(request)
        message.flags &= ~LOADING
        await self.store.edit(message, json_of(request) or {}, files_of(request))
        return json_response(self.store.payload(message))

    async def delete_original(self, request: web.Request) -> web.Response:
        _, message = self._original(request)
        await self.store.delete(message)
        return no_content()

    async def followup(self, request: web.Request) -> web.Response:
        record = self._record(request)
        if record.response_type is None:
            raise unknown("Webhook", 10015)  # followups need an acknowledged interaction
        body = json_of(request) or {}
        if record.original is not None and record.original.loading and not record.original.deleted:
            # Discord fills the deferred "thinking" message with the first followup.
            message = record.original
            message.flags &= ~LOADING
            await self.store.edit(message, body, files_of(request))
        else:
            channel = self.world.channels[record.channel_id]
            message = await self._post(record, channel, body, files_of(request))
            record.followups.append(message)
        if request.query.get("wait") not in ("1", "true", "True"):
            return no_content()
        return json_response(self.store.payload(message))

    def _followup(self, request: web.Request) -> StoredMessage:
        record = self._record(request)
        message = self.store.messages.get(int(request.match_info["message_id"]))
        if message is None or message.deleted or message.interaction_id != record.id:
            raise unknown("Message", 10008)
        return message

    async def get_followup(self, request: web.Request) -> web.Response:
        return json_response(self.store.payload(self._followup(request)))

    async def edit_followup(self, request: web.Request) -> web.Response:
        message = self._followup(request)
        await self.store.edit(message, json_of(request) or {}, files_of(request))
        return json_response(self.store.payload(message))

    async def delete_followup(self, request: web.Request) -> web.Response:
        await self.store.delete(self._followup(request))
        return no_content()
