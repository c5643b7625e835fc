"""Which model answers in each server: its current version, loaded through the host, past a bad file.

    guild_models = GuildModels(versions, host)
    model_id = await guild_models.model_id(guild_id)     # "default" where no version was promoted
    await guild_models.activate(guild_id)                 # after a promotion or a rollback

Each server's lineage (its current version, that version's parent, ...) is read from the store and kept;
every ``recheck_s`` seconds the next use asks the store which version serves the server, so a version
another process promoted or rolled back (several processes, one store, a shared models folder) is loaded
at the next quote after that. A version whose file the model host refuses (any ``CheckpointError``:
missing, truncated, not a checkpoint) is logged with an error id, remembered as bad with a short reason
and that id (never the path: ``!model`` shows it to members), and passed over for its parent, down to
the bundled model, so a damaged file never stops a server's quotes; ``!model`` reports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.errors import new_error_id
from bot.serving.host import DEFAULT_MODEL_ID, ModelHost
from bot.storage.model_versions import ModelVersion, ModelVersions
from model.checkpoint import (
    CheckpointError,
    CheckpointMissingError,
    CheckpointVersionError,
    NotACheckpointError,
    TruncatedCheckpointError,
)

_log = logging.getLogger(__name__)


_PROBLEMS: tuple[tuple[type[CheckpointError], str], ...] = (
    (CheckpointMissingError, "its file is missing"),
    (TruncatedCheckpointError, "its file is truncated or damaged"),
    (CheckpointVersionError, "its file is of a newer format"),
    (NotACheckpointError, "its file is not a model"),
)


def load_problem(error: CheckpointError) -> str:
    """Why a model file was refused, in a few words for members: no path, no library message."""
    for kind, words in _PROBLEMS:
        if isinstance(error, kind):
            return words
    return "its file could not be read"


@dataclass(frozen=True)
class Serving:
    """What serves a server now: a version (None: the bundled model) and the versions passed over."""

    version: ModelVersion | None
    skipped: list[tuple[ModelVersion, str]] = field(default_factory=list)  # (bad version, why)

    @property
    def model_id(self) -> str:
        return self.version.model_id if self.version else DEFAULT_MODEL_ID


class GuildModels:
    """Resolves a server to a loaded model, caching each server's lineage."""

    def __init__(
        self,
        versions: ModelVersions,
        host: ModelHost,
        recheck_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.versions = versions
        self.host = host
        self.recheck_s = recheck_s
        self.clock = clock
        self._lineage: dict[int, list[ModelVersion]] = {}
        self._checked: dict[int, float] = {}  # server -> when its lineage was last checked with the store
        self.bad: dict[int, str] = {}  # version id -> why its file was refused

    async def model_id(self, guild_id: int | None) -> str:
        """The host's model id for a quote request in a server (loading it if needed, the request held
        against the queue's bound meanwhile); the default model outside servers."""
        return (await self.serving(guild_id, hold=True)).model_id

    async def serving(self, guild_id: int | None, *, hold: bool = False) -> Serving:
        """The first loadable version of the server's lineage, and the bad ones passed over."""
        if guild_id is None:
            return Serving(None)
        lineage = self._lineage.get(guild_id)
        now = self.clock()
        if lineage is not None and now - self._checked.get(guild_id, now) >= self.recheck_s:
            self._checked[guild_id] = now
            current = await self.versions.current_id(guild_id)
            if current != (lineage[0].id if lineage else None):
                lineage = None  # changed elsewhere: another process promoted or rolled back
        if lineage is None:
            lineage = await self.versions.lineage(guild_id)
            self._lineage[guild_id] = lineage
            self._checked[guild_id] = now
        skipped: list[tuple[ModelVersion, str]] = []
        for version in lineage:
            if version.id not in self.bad:
                try:
                    await self.host.use(version.model_id, self.versions.file_of(version), hold=hold)
                    return Serving(version, skipped)
                except CheckpointError as exc:
                    # The error names the file's path: the log keeps it, members read a reason and an id.
                    error_id = new_error_id()
                    self.bad[version.id] = f"{load_problem(exc)}; error id `{error_id}`"
                    _log.error(
                        "server %d: model version %d refused at load (error id %s), an earlier one serves "
                        "instead: %s",
                        guild_id, version.number, error_id, exc,
                    )  # fmt: skip
            skipped.append((version, self.bad[version.id]))
        return Serving(None, skipped)

    def forget(self, guild_id: int) -> None:
        """Drop the cached lineage: the store's ``guild_models`` row for the server changed."""
        self._lineage.pop(guild_id, None)

    async def activate(self, guild_id: int) -> Serving:
        """Re-read the server's lineage and load what now serves it (between two batches)."""
        self.forget(guild_id)
        return await self.serving(guild_id)
