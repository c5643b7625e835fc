"""A Discord-compatible test server: enough gateway and REST for the real discord.py client.

See README.md in this folder; the fixtures live in ``tests.discord_server.fixtures``.
"""

from .interaction_record import InteractionRecord
from .messages import Pings, StoredAttachment, StoredMessage
from .server import DiscordServer, RecordedRequest
from .state import Channel, Overwrite, Perm, User

__all__ = [
    "Channel",
    "DiscordServer",
    "InteractionRecord",
    "Overwrite",
    "Perm",
    "Pings",
    "RecordedRequest",
    "StoredAttachment",
    "StoredMessage",
    "User",
]
