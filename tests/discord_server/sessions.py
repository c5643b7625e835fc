"""Gateway sessions and connections: opcodes, intents, sharding, and the numbered event buffer.

A *connection* is one websocket; a *session* is what IDENTIFY creates and what outlives a dropped
connection: every event sent to it is numbered and kept, so a RESUME can replay what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from aiohttp import web

from .encoding import Encoder


class Op:
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    PRIVILEGED: ClassVar[dict[int, str]] = {
        GUILD_MEMBERS: "members",
        GUILD_PRESENCES: "presences",
        MESSAGE_CONTENT: "message_content",
    }


# event -> (intent needed in a guild, intent needed in a DM); events not listed always go out.
_EVENT_INTENTS = {
    "GUILD_CREATE": (Intent.GUILDS, Intent.GUILDS),
    "CHANNEL_DELETE": (Intent.GUILDS, Intent.GUILDS),
    "GUILD_ROLE_UPDATE": (Intent.GUILDS, Intent.GUILDS),
    "MESSAGE_CREATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_UPDATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_DELETE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_REACTION_ADD": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE_ALL": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE_EMOJI": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "TYPING_START": (Intent.GUILD_MESSAGE_TYPING, Intent.DIRECT_MESSAGE_TYPING),
}
_CONTENT_FIELDS = {"content": "", "embeds": [], "attachments": [], "components": []}


@dataclass
class Connection:
    """One websocket; its encoder keeps compression state, so sends are serialised by a lock."""

    ws: web.WebSocketResponse
    request: web.Request
    encoder: Encoder
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: Session | None = None
    heartbeats: int = 0

    @property
    def path(self) -> str:
        return self.request.path

    async def send(self, payload: dict) -> None:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        async with self.lock:
            if self.ws.closed:
                return
            frame = self.encoder.encode(text)
            # A peer that just vanished is not an error: the session keeps the event for a RESUME.
            with contextlib.suppress(ConnectionError, RuntimeError):
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)


@dataclass
class Session:
    """What survives a dropped connection: the numbered events, so a RESUME can replay the missed ones."""

    id: str
    shard: tuple[int, int]
    intents: int
    seq: int = 0
    buffer: deque[dict] = field(default_factory=lambda: deque(maxlen=1000))
    connection: Connection | None = None
    ended: bool = False

    def receives(self, event: str, guild_id: int | None) -> bool:
        if self.ended:
            return False
        shard_id, shard_count = self.shard
        # Discord's sharding formula; DMs always go to shard 0.
        if (0 if guild_id is None else (guild_id >> 22) % shard_count) != shard_id:
            return False
        needed = _EVENT_INTENTS.get(event)
        return needed is None or bool(self.intents & needed[0 if guild_id else 1])

    def record(self, event: str, data: dict) -> dict:
        self.seq += 1
        payload = {"op": Op.DISPATCH, "t": event, "s": self.seq, "d": data}
        self.buffer.append(payload)
        return payload


@dataclass
class ResumeRecord:
    session_id: str
    seq: int | None
    accepted: bool
    replayed: int
    path: str


def without_content(event: str, data: dict, intents: int, bot_id: int) -> dict:
    """Without the message content intent, guild messages arrive empty unless they mention the bot."""
    if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or not data.get("guild_id"):
        return data
    if intents & Intent.MESSAGE_CONTENT:
        return data
    own = data.get("author", {}).get("id") == str(bot_id)
    if own or any(m["id"] == str(bot_id) for m in data.get("mentions", [])):
        return data
    return {**data, **_CONTENT_FIELDS}
