"""Which servers belong to which shard, and the SQL filter "only this process's shards' servers".

Discord puts a server on shard ``(guild_id >> 22) % shard_count``. A process that runs only some shards
(``SHARD_IDS``) must do background work (scheduled posts) only for the servers on them; another process
does the rest. The filter is plain arithmetic that SQLite and PostgreSQL both evaluate the same way.

    shards = Shards((0, 1), 4)
    shards.owns(guild_id)                       # True when the server is on shard 0 or 1 of 4
    where, params = shards.where("guild_id")    # "(guild_id >> 22) % ? IN (?, ?)", (4, 0, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's sharding formula: the shard whose gateway connection receives the server's events."""
    return (guild_id >> 22) % shard_count


@dataclass(frozen=True)
class Shards:
    """Some shards (``ids``) of ``count``; ``None`` in place of a ``Shards`` means every server."""

    ids: tuple[int, ...]
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not self.ids or any(not 0 <= i < self.count for i in self.ids):
            raise ValueError(f"shard ids {self.ids} are not shards of {self.count}")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"shard ids {self.ids} list a shard twice")

    @classmethod
    def of_process(cls, shard_ids: tuple[int, ...] | None, shard_count: int | None) -> Shards | None:
        """The filter for a process with these settings; None when it runs every shard (or unsharded)."""
        if shard_ids is None or shard_count is None or len(shard_ids) == shard_count:
            return None
        return cls(tuple(shard_ids), shard_count)

    def owns(self, guild_id: int) -> bool:
        return shard_of(guild_id, self.count) in self.ids

    def where(self, column: str) -> tuple[str, tuple[Any, ...]]:
        """An SQL condition on an integer guild-id ``column`` (a fixed name, never user input)."""
        marks = ", ".join("?" for _ in self.ids)
        return f"({column} >> 22) % ? IN ({marks})", (self.count, *self.ids)
