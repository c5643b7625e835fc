"""The test server's world: users, a guild with roles, members and channels, and Discord's id scheme.

Everything here is plain data with a ``payload()`` that renders it the way Discord's API does, so the
gateway and REST layers only decide *when* to send something, never *how it looks*.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

DISCORD_EPOCH_MS = 1_420_070_400_000
JOINED_AT = "2024-01-01T00:00:00+00:00"


class Perm:
    """Permission bits the tests care about (Discord's numbering)."""

    ADMINISTRATOR = 1 << 3
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    USE_APPLICATION_COMMANDS = 1 << 31
    ALL = (1 << 53) - 1

    # What @everyone can do in a freshly made guild, roughly.
    EVERYONE_DEFAULT = (
        ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | USE_APPLICATION_COMMANDS
    )


class Snowflakes:
    """Makes ids the way Discord does: milliseconds since 2015 in the top bits, a counter below.

    discord.py derives ``created_at`` from an id, so real-looking ids keep those values sensible.
    """

    def __init__(self) -> None:
        self._counter = itertools.count()

    def next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)


@dataclass
class User:
    id: int
    name: str
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": None if self.bot else self.name.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    mentionable: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": self.mentionable,
            "flags": 0,
        }


@dataclass
class Member:
    user: User
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None

    def payload(self, *, with_user: bool = True) -> dict:
        data = {
            "roles": [str(r) for r in self.role_ids],
            "nick": self.nick,
            "avatar": None,
            "joined_at": JOINED_AT,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


TEXT_CHANNEL = 0
DM_CHANNEL = 1
ROLE_OVERWRITE, MEMBER_OVERWRITE = 0, 1


@dataclass
class Overwrite:
    """A channel's permission overwrite for a role (@everyone's id is the guild's) or a member."""

    id: int
    type: int = ROLE_OVERWRITE
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict:
        return {"id": str(self.id), "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


@dataclass
class Channel:
    id: int
    name: str
    type: int = TEXT_CHANNEL
    guild_id: int | None = None
    position: int = 0
    recipient: User | None = None  # the other user of a DM channel
    overwrites: list[Overwrite] = field(default_factory=list)

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def payload(self) -> dict:
        if self.type == DM_CHANNEL:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": DM_CHANNEL,
                "last_message_id": None,
                "recipients": [self.recipient.payload()],
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "topic": None,
            "nsfw": False,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "permission_overwrites": [o.payload() for o in self.overwrites],
        }


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)

    @property
    def everyone_role(self) -> Role:
        # Discord gives @everyone the guild's own id.
        return self.roles[self.id]

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions (no channel overwrites are modelled): owner and admins get all."""
        if user_id == self.owner_id:
            return Perm.ALL
        member = self.members.get(user_id)
        if member is None:
            return 0
        value = self.everyone_role.permissions
        for role_id in member.role_ids:
            value |= self.roles[role_id].permissions
        return Perm.ALL if value & Perm.ADMINISTRATOR else value

    def permissions_in(self, channel: Channel, user_id: int) -> int:
        """Permissions in ``channel``, by Discord's rule: guild permissions, then the @everyone overwrite,
        then the member's roles' overwrites together, then the member's own; no View Channel, nothing."""
        value = self.permissions_of(user_id)
        member = self.members.get(user_id)
        if value == Perm.ALL or member is None:
            return value
        by_id = {(o.type, o.id): o for o in channel.overwrites}
        everyone = by_id.get((ROLE_OVERWRITE, self.id))
        if everyone is not None:
            value = (value & ~everyone.deny) | everyone.allow
        roles = [by_id[(ROLE_OVERWRITE, r)] for r in member.role_ids if (ROLE_OVERWRITE, r) in by_id]
        value &= ~sum_bits(o.deny for o in roles)
        value |= sum_bits(o.allow for o in roles)
        own = by_id.get((MEMBER_OVERWRITE, user_id))
        if own is not None:
            value = (value & ~own.deny) | own.allow
        return value if value & Perm.VIEW_CHANNEL else 0

    def payload(self, channels: list[Channel]) -> dict:
        """The full GUILD_CREATE body: everything a bot learns about a guild when it becomes available."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(self.owner_id),
            "unavailable": False,
            "large": False,
            "member_count": len(self.members),
            "joined_at": JOINED_AT,
            "features": [],
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "system_channel_flags": 0,
            "roles": [role.payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "members": [member.payload() for member in self.members.values()],
            "channels": [channel.payload() for channel in channels],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


class World:
    """All users, guilds and channels the server knows, with the default cast the test suite uses.

    The default world has one guild, ``#general``, the bot, an owner, an admin holding Manage Server through
    a ``Moderators`` role, and an ordinary member with no role at all.
    """

    def __init__(self, bot_name: str = "quotebot") -> None:
        self.ids = Snowflakes()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}

        self.bot = self.add_user(bot_name, bot=True)
        self.application_id = self.bot.id  # as for every bot made after 2019
        self.owner = self.add_user("olivia")
        self.admin = self.add_user("alice")
        self.member = self.add_user("bob")

        self.guild = self.add_guild("Quotebot Test Guild", owner=self.owner)
        self.channel = self.add_text_channel(self.guild, "general")
        self.moderators = self.add_role(self.guild, "Moderators", Perm.MANAGE_GUILD | Perm.MANAGE_MESSAGES)
        self.bot_role = self.add_role(self.guild, bot_name, Perm.EVERYONE_DEFAULT | Perm.MANAGE_MESSAGES)
        self.add_member(self.guild, self.bot, roles=[self.bot_role])
        self.add_member(self.guild, self.owner)
        self.add_member(self.guild, self.admin, roles=[self.moderators])
        self.add_member(self.guild, self.member)

    # --- building -------------------------------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False) -> User:
        user = User(self.ids.next(), name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, *, owner: User, shard: tuple[int, int] | None = None) -> Guild:
        """A new guild; with ``shard=(id, count)``, one whose id Discord's formula puts on that shard."""
        guild_id = self.ids.next()
        if shard is not None:
            shard_id, count = shard
            timestamp = guild_id >> 22  # (id >> 22) % count picks the shard: move the timestamp part
            guild_id += ((shard_id - timestamp) % count) << 22
        guild = Guild(guild_id, name, owner.id)
        guild.roles[guild.id] = Role(guild.id, "@everyone", Perm.EVERYONE_DEFAULT)
        self.guilds[guild.id] = guild
        return guild

    def add_guild_like_the_first(self, name: str, *, shard: tuple[int, int]) -> tuple[Guild, Channel]:
        """Another guild on ``shard`` with the same cast (owner, admin with Manage Server, member, bot)
        and its own ``#general``: for tests of several shards and processes."""
        guild = self.add_guild(name, owner=self.owner, shard=shard)
        channel = self.add_text_channel(guild, "general")
        moderators = self.add_role(guild, "Moderators", Perm.MANAGE_GUILD | Perm.MANAGE_MESSAGES)
        bot_role = self.add_role(guild, self.bot.name, Perm.EVERYONE_DEFAULT | Perm.MANAGE_MESSAGES)
        self.add_member(guild, self.bot, roles=[bot_role])
        self.add_member(guild, self.owner)
        self.add_member(guild, self.admin, roles=[moderators])
        self.add_member(guild, self.member)
        return guild, channel

    def add_role(self, guild: Guild, name: str, permissions: int) -> Role:
        role = Role(self.ids.next(), name, permissions, position=len(guild.roles))
        guild.roles[role.id] = role
        return role

    def add_member(self, guild: Guild, user: User, *, roles: Sequence[Role] = ()) -> Member:
        member = Member(user, [role.id for role in roles])
        guild.members[user.id] = member
        return member

    def add_text_channel(self, guild: Guild, name: str, overwrites: Sequence[Overwrite] = ()) -> Channel:
        channel = Channel(self.ids.next(), name, TEXT_CHANNEL, guild.id, position=len(guild.channel_ids))
        channel.overwrites = list(overwrites)
        guild.channel_ids.append(channel.id)
        self.channels[channel.id] = channel
        return channel

    def remove_channel(self, channel: Channel) -> None:
        """Forget a guild channel: REST calls to it now answer 404 Unknown Channel (10003)."""
        guild = self.guild_of(channel)
        if guild is not None and channel.id in guild.channel_ids:
            guild.channel_ids.remove(channel.id)
        self.channels.pop(channel.id, None)

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between the bot and ``user``, made on first use as Discord does."""
        for channel in self.channels.values():
            if channel.type == DM_CHANNEL and channel.recipient is user:
                return channel
        channel = Channel(self.ids.next(), "", DM_CHANNEL, recipient=user)
        self.channels[channel.id] = channel
        return channel

    # --- looking up -----------------------------------------------------------------------------------

    def guild_channels(self, guild: Guild) -> list[Channel]:
        return [self.channels[cid] for cid in guild.channel_ids]

    def guild_of(self, channel: Channel) -> Guild | None:
        return None if channel.guild_id is None else self.guilds[channel.guild_id]

    def member_payload(self, guild: Guild | None, user_id: int, *, with_user: bool = False) -> dict | None:
        if guild is None or user_id not in guild.members:
            return None
        return guild.members[user_id].payload(with_user=with_user)

    def user_with_member(self, guild: Guild | None, user: User) -> dict:
        """A user payload carrying its ``member`` (the shape of a message's ``mentions`` entries)."""
        data = user.payload()
        member = self.member_payload(guild, user.id)
        if member is not None:
            data["member"] = member
        return data


def sum_bits(values) -> int:
    total = 0
    for value in values:
        total |= value
    return total
