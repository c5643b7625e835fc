"""The message store: creates, edits and deletes messages by Discord's rules and tells the gateway.

REST routes, interaction responses and the tests' "a user says..." helpers all go through here, so a
message is validated, stored and dispatched (MESSAGE_CREATE/UPDATE/DELETE, reactions) in one place.
Every change wakes the waiters of ``wait_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import TypeVar

from .body import UploadedFile
from .components import check_components
from .errors import empty_message, invalid_form, missing_permissions, unknown
from .gateway import Gateway
from .messages import StoredAttachment, StoredMessage, emoji_payload
from .state import Channel, Perm, World

T = TypeVar("T")
MAX_CONTENT = 2000
MAX_EMBEDS = 10


class MessageStore:
    def __init__(self, world: World, gateway: Gateway) -> None:
        self.world = world
        self.gateway = gateway
        self.messages: dict[int, StoredMessage] = {}
        self.attachment_base = ""  # http://127.0.0.1:PORT/attachments, set by the server
        self._changed = asyncio.Event()

    # --- looking up -----------------------------------------------------------------------------------

    def channel(self, channel_id: int | str) -> Channel:
        channel = self.world.channels.get(int(channel_id))
        if channel is None:
            raise unknown("Channel", 10003)
        return channel

    def get(self, channel_id: int | str, message_id: int | str) -> StoredMessage:
        message = self.messages.get(int(message_id))
        if message is None or message.deleted or message.channel_id != int(channel_id):
            raise unknown("Message", 10008)
        return message

    def in_channel(self, channel_id: int) -> list[StoredMessage]:
        return [m for m in self.messages.values() if m.channel_id == channel_id and not m.deleted]

    def payload(self, message: StoredMessage) -> dict:
        referenced = None
        if message.message_reference:
            referenced = self.messages.get(int(message.message_reference.get("message_id", 0)))
        return message.payload(self.world, referenced)

    # --- changing -------------------------------------------------------------------------------------

    async def post(
        self,
        channel: Channel,
        author_id: int,
        body: dict,
        files: Sequence[UploadedFile] = (),
        *,
        webhook_id: int | None = None,
        interaction_id: int | None = None,
        dispatch: bool = True,
    ) -> StoredMessage:
        """Validates and stores a new message, then dispatches MESSAGE_CREATE (unless ephemeral)."""
        if webhook_id is None:  # interaction responses need no channel permissions
            self._check_can_send(channel, author_id, files)
        self._check_body(body)
        message = StoredMessage(
            id=self.world.ids.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author_id,
            content=body.get("content") or "",
            embeds=list(body.get("embeds") or []),
            attachments=self._attachments(body, files),
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=self._reference(channel, body.get("message_reference")),
            flags=int(body.get("flags") or 0),
            tts=bool(body.get("tts")),
            webhook_id=webhook_id,
            interaction_id=interaction_id,
            components=list(body.get("components") or []),
        )
        if not (
            message.content or message.embeds or message.attachments or message.components or message.loading
        ):
            raise empty_message()
        self.messages[message.id] = message
        if dispatch and not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_CREATE", self.payload(message))
        self.notify()
        return message

    async def edit(
        self, message: StoredMessage, body: dict, files: Sequence[UploadedFile] = ()
    ) -> StoredMessage:
        self._check_body(body)
        if "content" in body:
            message.previous_contents.append(message.content)
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "components" in body:
            message.components = list(body["components"] or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "attachments" in body or files:
            kept = {str(a.get("id")) for a in body.get("attachments") or []}
            old = [a for a in message.attachments if str(a.id) in kept]
            message.attachments = old + self._attachments(body, files)
        if "flags" in body and body["flags"] is not None:
            message.flags = int(body["flags"])
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_UPDATE", self.payload(message))
        self.notify()
        return message

    async def delete(self, message: StoredMessage) -> None:
        message.deleted = True
        data = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id:
            data["guild_id"] = str(message.guild_id)
        if not message.ephemeral:
            await self.gateway.dispatch("MESSAGE_DELETE", data)
        self.notify()

    async def react(self, message: StoredMessage, user_id: int, key: str, *, add: bool) -> None:
        """Adds or removes one user's reaction; repeating the current state changes nothing, as on Discord."""
        users = message.reactions.setdefault(key, [])
        if (user_id in users) == add:
            return
        if add:
            users.append(user_id)
        else:
            users.remove(user_id)
            if not users:
                del message.reactions[key]
        data = {
            "user_id": str(user_id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": emoji_payload(key),
            "burst": False,
            "type": 0,
        }
        if message.guild_id:
            data["guild_id"] = str(message.guild_id)
            if add:
                guild = self.world.guilds[message.guild_id]
                data["member"] = self.world.member_payload(guild, user_id, with_user=True)
        if add:
            data["message_author_id"] = str(message.author_id)
        await self.gateway.dispatch("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", data)
        self.notify()

    # --- waiting --------------------------------------------------------------------------------------

    def notify(self) -> None:
        """Wakes every ``wait_for``: something changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, check: Callable[[], T | None], timeout: float, what: Callable[[], str]) -> T:
        """Re-runs ``check`` after every change, and every 20 ms for conditions on the client's side,
        until it returns something other than None. On timeout, fails the test with ``what()``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (found := check()) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what()}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.02))
        return found

    # --- Discord's rules ------------------------------------------------------------------------------

    def _check_can_send(self, channel: Channel, author_id: int, files: Sequence[UploadedFile]) -> None:
        guild = self.world.guild_of(channel)
        if guild is None:
            return
        allowed = guild.permissions_in(channel, author_id)
        needed = Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | (Perm.ATTACH_FILES if files else 0)
        if allowed & needed != needed:
            raise missing_permissions()

    @staticmethod
    def _check_body(body: dict) -> None:
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise invalid_form("content", "STRING_TYPE_CONVERT", "Could not interpret the value as string.")
        if content and len(content) > MAX_CONTENT:
            raise invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        check_components(body.get("components"))
        if len(body.get("embeds") or []) > MAX_EMBEDS:
            raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
        mentions = body.get("allowed_mentions")
        if mentions:
            parse = mentions.get("parse", [])
            if set(parse) - {"users", "roles", "everyone"}:
                raise invalid_form("allowed_mentions.parse", "BASE_TYPE_CHOICES", f"Bad value in {parse}.")
            for kind in ("users", "roles"):
                if kind in parse and mentions.get(kind):
                    # Discord refuses "parse users" together with a list of users (same for roles).
                    message = f"parse:[{kind}] and {kind}:[ids] are mutually exclusive."
                    raise invalid_form(
                        f"allowed_mentions.{kind}", "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE", message
                    )

    def _reference(self, channel: Channel, reference: dict | None) -> dict | None:
        if not reference:
            return None
        target = self.messages.get(int(reference.get("message_id", 0)))
        if target is None or target.deleted or target.channel_id != channel.id:
            if reference.get("fail_if_not_exists", True):
                raise invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            return None
        return {
            "type": 0,
            "message_id": str(target.id),
            "channel_id": str(channel.id),
            **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
        }

    def _attachments(self, body: dict, files: Sequence[UploadedFile]) -> list[StoredAttachment]:
        """Pairs each ``files[n]`` upload with its ``attachments`` entry (id n) from the JSON payload."""
        described = {str(a.get("id")): a for a in body.get("attachments") or []}
        stored = []
        for upload in files:
            index = upload.field.removeprefix("files[").removesuffix("]")
            info = described.get(index, {})
            attachment = StoredAttachment(
                id=self.world.ids.next(),
                filename=info.get("filename") or upload.filename,
                content_type=upload.content_type,
                data=upload.data,
                description=info.get("description"),
            )
            attachment.url = f"{self.attachment_base}/{attachment.id}/{attachment.filename}"
            stored.append(attachment)
        return stored
