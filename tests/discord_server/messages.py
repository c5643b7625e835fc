"""Stored messages: what the server keeps of every message, and what Discord would make of its mentions.

Both sides write messages here: test users (through the server's helpers) and the bot (through REST and
interaction responses). Tests read them back, so the fields are the ones a test wants to assert on.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from .state import Guild, World

EPHEMERAL = 1 << 6
LOADING = 1 << 7  # a deferred interaction response: "bot is thinking..."

_MENTION = re.compile(r"<@!?(?P<user>\d+)>|<@&(?P<role>\d+)>|@(?P<everyone>everyone|here)")
_CUSTOM_EMOJI = re.compile(r"<?a?:?(?P<name>\w+):(?P<id>\d+)>?")


@dataclass
class Mentions:
    """Mentions written in a message's text, whether or not they ping anyone."""

    users: list[int] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)
    everyone: bool = False


def parse_mentions(content: str) -> Mentions:
    found = Mentions()
    for match in _MENTION.finditer(content):
        if match["user"]:
            found.users.append(int(match["user"]))
        elif match["role"]:
            found.roles.append(int(match["role"]))
        else:
            found.everyone = True
    return found


@dataclass
class Pings:
    """Who a message actually notifies once ``allowed_mentions`` is applied; falsy when nobody."""

    users: set[int] = field(default_factory=set)
    roles: set[int] = field(default_factory=set)
    everyone: bool = False
    replied_user: bool = False

    def __bool__(self) -> bool:
        return bool(self.users or self.roles or self.everyone or self.replied_user)


def emoji_key(emoji: str) -> str:
    """Normalises an emoji written as ``⭐``, ``name:id`` or ``<:name:id>`` to ``⭐`` or ``name:id``."""
    custom = _CUSTOM_EMOJI.fullmatch(emoji)
    if custom:
        return f"{custom['name']}:{custom['id']}"
    return emoji


def emoji_payload(key: str) -> dict:
    if ":" in key:
        name, emoji_id = key.split(":", 1)
        return {"id": emoji_id, "name": name, "animated": False}
    return {"id": None, "name": key}


@dataclass
class StoredAttachment:
    id: int
    filename: str
    content_type: str
    data: bytes
    url: str = ""
    description: str | None = None

    def payload(self) -> dict:
        return {
            "id": str(self.id),
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
            "description": self.description,
        }


@dataclass
class StoredMessage:
    """One message, as posted by a user or the bot, kept with every field a test may check."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str = ""
    embeds: list[dict] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    allowed_mentions: dict | None = None  # exactly as the bot sent it; None when it sent none
    message_reference: dict | None = None
    flags: int = 0
    tts: bool = False
    webhook_id: int | None = None  # set on interaction responses and followups
    interaction_id: int | None = None
    previous_contents: list[str] = field(default_factory=list)  # one entry per edit, oldest first
    deleted: bool = False
    reactions: dict[str, list[int]] = field(default_factory=dict)  # emoji key -> user ids, in order
    components: list[dict] = field(default_factory=list)  # action rows as the bot sent them
    created_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat())

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    def buttons(self) -> list[dict]:
        """Every button of the message's action rows, in order."""
        return [c for row in self.components for c in row.get("components", []) if c.get("type") == 2]

    def button(self, label_part: str) -> dict:
        """The button whose label (or emoji) contains ``label_part``; KeyError naming the labels if none."""
        for button in self.buttons():
            shown = (button.get("label") or "") + ((button.get("emoji") or {}).get("name") or "")
            if label_part in shown:
                return button
        raise KeyError(f"no button {label_part!r}; buttons: {[b.get('label') for b in self.buttons()]}")

    @property
    def edited(self) -> bool:
        return bool(self.previous_contents)

    @property
    def mentions(self) -> Mentions:
        return parse_mentions(self.content)

    def pings(self) -> Pings:
        """Who Discord would notify, following its ``allowed_mentions`` rules.

        Without ``allowed_mentions`` everything written pings (and a reply pings the replied-to author);
        with it, only the kinds in ``parse`` and the ids listed, and the replied user only when asked.
        """
        written = self.mentions
        rules = self.allowed_mentions
        if rules is None:
            parse, user_ids, role_ids, replied = {"users", "roles", "everyone"}, set(), set(), True
        else:
            parse = set(rules.get("parse", []))
            user_ids = {int(u) for u in rules.get("users", [])}
            role_ids = {int(r) for r in rules.get("roles", [])}
            replied = bool(rules.get("replied_user", False))
        return Pings(
            users={u for u in written.users if "users" in parse or u in user_ids},
            roles={r for r in written.roles if "roles" in parse or r in role_ids},
            everyone=written.everyone and "everyone" in parse,
            replied_user=replied and self.message_reference is not None,
        )

    def payload(self, world: World, referenced: StoredMessage | None = None) -> dict:
        """The message object as Discord's API and gateway render it."""
        guild: Guild | None = world.guilds.get(self.guild_id) if self.guild_id else None
        author = world.users[self.author_id]
        written = self.mentions
        data: dict = {
            "id": str(self.id),
            "type": 19 if self.message_reference else 0,  # 19 = reply
            "channel_id": str(self.channel_id),
            "author": author.payload(),
            "content": self.content,
            "timestamp": self.created_at,
            "edited_timestamp": self.created_at if self.edited else None,
            "tts": self.tts,
            "mention_everyone": self.pings().everyone if author.bot else written.everyone,
            "mentions": [
                world.user_with_member(guild, world.users[u]) for u in written.users if u in world.users
            ],
            "mention_roles": [str(r) for r in written.roles],
            "attachments": [a.payload() for a in self.attachments],
            "embeds": self.embeds,
            "reactions": [
                self._reaction_payload(key, users, world.bot.id) for key, users in self.reactions.items()
            ],
            "pinned": False,
            "flags": self.flags,
            "components": self.components,
        }
        if guild is not None:
            data["guild_id"] = str(guild.id)
            member = world.member_payload(guild, self.author_id)
            if member is not None:
                data["member"] = member
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
            data["application_id"] = str(self.webhook_id)
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
            data["referenced_message"] = referenced.payload(world) if referenced else None
        return data

    @staticmethod
    def _reaction_payload(key: str, users: list[int], bot_id: int) -> dict:
        return {
            "emoji": emoji_payload(key),
            "count": len(users),
            "count_details": {"normal": len(users), "burst": 0},
            "me": bot_id in users,
            "me_burst": False,
            "burst_colors": [],
        }
