"""Model versions and retrain runs: a small repository over the store's v2 tables.

    versions = ModelVersions(store, models_dir=Path("models"))
    run = await versions.start_run(guild_id=1, requested_by=2, channel_id=3, max_running=1)
    ...                                         # bot/retrain/retrainer.py trains and judges a candidate
    version = await versions.record_version(1, run.id, "guild-1/v1.pt", None, scores={}, trained_on={})
    await versions.finish_run(run.id, "promoted", "version 1 promoted", figures)
    await versions.rollback(1)                  # back to the parent (None: the bundled model)

Tables (``bot/storage/migrations.py``, version 2): ``retrain_runs`` (one 'running' run per guild, by a
partial unique
index), ``model_versions`` (a file under the models folder, its parent, run, scores and what it was trained
on) and ``guild_models`` (the version a guild serves; no row or NULL means the bundled model). Every
operation is one transaction through ``Database.read``/``write``. Refusals meant for users are
``QuotebotError``s; the file moves of a promotion are ``bot/retrain/retrainer.py``'s.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import QuotebotError
from bot.storage.db import Database, fetch_one, rowcount
from bot.storage.records import check_id, check_optional_id

RUN_STATUSES = ("running", "promoted", "rejected", "failed", "cancelled", "interrupted")
_VERSION_FILE = re.compile(r"guild-(\d+)/v(\d+)\.pt$")
_RUN_COLUMNS = (
    "id, guild_id, requested_by, status, parent_version_id, channel_id, status_message_id, detail, figures, "
    "started_at, finished_at"
)
_VERSION_COLUMNS = "id, guild_id, path, parent_id, run_id, scores, trained_on, created_at"


class RetrainRefusedError(QuotebotError):
    """A retrain cannot start now (one is running in this server, or too many run at once)."""


class NothingToRollBackError(QuotebotError):
    """The server already serves the bundled model."""


@dataclass(frozen=True)
class RetrainRun:
    """One row of ``retrain_runs``; ``figures`` holds the run's numbers (counts, scores, loop rates)."""

    id: int
    guild_id: int
    requested_by: int | None
    status: str
    parent_version_id: int | None  # None: started from the bundled model
    channel_id: int | None
    status_message_id: int | None
    detail: str | None
    figures: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ModelVersion:
    """One promoted model: ``path`` is relative to the models folder, e.g. ``guild-1/v3.pt``."""

    id: int
    guild_id: int
    path: str
    parent_id: int | None  # None: fine-tuned from the bundled model
    run_id: int | None
    scores: dict[str, Any]
    trained_on: dict[str, Any]
    created_at: datetime

    @property
    def number(self) -> int:
        """The ``n`` of ``v<n>.pt``: the guild's own count of versions."""
        match = _VERSION_FILE.search(self.path)
        return int(match.group(2)) if match else 0

    @property
    def model_id(self) -> str:
        """The model host's key for this version."""
        return f"version-{self.id}"


def owner_name(shard_ids: Sequence[int] | None = None) -> str:
    """A process's name as the owner of its retrain runs: its host and its shards.

    Stable across restarts (unlike a pid), so a restarted process knows its own dead runs; distinct for
    processes that run different shards, so one never takes another's live run for its own.
    """
    shards = "all" if shard_ids is None else ",".join(str(i) for i in sorted(shard_ids))
    return f"{socket.gethostname()}/shards {shards}"


def version_path(guild_id: int, number: int) -> str:
    """Where version ``number`` of a guild lives, relative to the models folder."""
    return f"guild-{guild_id}/v{number}.pt"


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _run(row: Any) -> RetrainRun:
    *head, detail, figures, started, finished = row
    return RetrainRun(*head, detail, json.loads(figures), datetime.fromisoformat(started), _time(finished))


def _version(row: Any) -> ModelVersion:
    *head, scores, trained_on, created = row
    return ModelVersion(*head, json.loads(scores), json.loads(trained_on), datetime.fromisoformat(created))


def _json(name: str, value: dict[str, Any]) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold plain, finite JSON values ({exc})") from exc


class ModelVersions:
    """Retrain runs and model versions of one store; ``models_dir`` is where version files live.

    ``owner`` names this process (``owner_name``): runs it starts are recorded as its own, with a heartbeat.
    """

    def __init__(self, db: Database, models_dir: str | Path, owner: str | None = None):
        self.db = db
        self.models_dir = Path(models_dir)
        self.owner = owner or owner_name()

    def file_of(self, version: ModelVersion) -> Path:
        """The checkpoint file of a version."""
        return self.models_dir / version.path

    # -- runs -----------------------------------------------------------------------------------------------

    async def start_run(
        self, guild_id: int, requested_by: int | None, channel_id: int | None, max_running: int
    ) -> RetrainRun:
        """Record a new running run; refused while one runs in the guild or ``max_running`` run in all."""
        params = (check_id("guild_id", guild_id), check_optional_id("requested_by", requested_by))
        channel = check_optional_id("channel_id", channel_id)

        async def op(db: aiosqlite.Connection) -> RetrainRun:
            # Checked in the same write transaction as the insert, so two !retrain at once cannot both pass.
            row = await fetch_one(
                db, "SELECT id FROM retrain_runs WHERE guild_id = ? AND status = 'running'", (guild_id,)
            )
            if row is not None:
                raise RetrainRefusedError(
                    f"a retrain is already running in this server (run #{row[0]}); "
                    "see `retrain status`, or `retrain cancel` it first."
                )
            running = (await fetch_one(db, "SELECT COUNT(*) FROM retrain_runs WHERE status = 'running'"))[0]
            if running >= max_running:
                raise RetrainRefusedError(
                    f"{running} retrain{'s are' if running != 1 else ' is'} running on this bot already "
                    f"(the most at once is {max_running}); try again when one has finished."
                )
            current = await fetch_one(
                db, "SELECT version_id FROM guild_models WHERE guild_id = ?", (guild_id,)
            )
            parent = current[0] if current else None
            now = self.db.now()
            async with db.execute(
                "INSERT INTO retrain_runs (guild_id, requested_by, status, parent_version_id, channel_id, "
                "started_at, owner, heartbeat_at) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (*params, parent, channel, now, self.owner, now),
            ) as cursor:
                run_id = int(cursor.lastrowid or 0)
            return _run(
                await fetch_one(db, f"SELECT {_RUN_COLUMNS} FROM retrain_runs WHERE id = ?", (run_id,))
            )

        return await self.db.write(op)

    async def set_status_message(self, run_id: int, channel_id: int, message_id: int) -> None:
        """Record the one message that shows the run's progress, so a restart can still edit it."""
        params = (check_id("channel_id", channel_id), check_id("message_id", message_id), run_id)
        sql = "UPDATE retrain_runs SET channel_id = ?, status_message_id = ? WHERE id = ?"
        await self.db.write(lambda db: rowcount(db, sql, params))

    async def finish_run(self, run_id: int, status: str, detail: str, figures: dict[str, Any]) -> bool:
        """End a running run with ``status``; False if it was no longer running (e.g. marked interrupted)."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"a run ends as one of {', '.join(RUN_STATUSES[1:])}, not {status!r}")
        sql = """UPDATE retrain_runs SET status = ?, detail = ?, figures = ?, finished_at = ?
                 WHERE id = ? AND status = 'running'"""
        params = (status, detail, _json("figures", figures), self.db.now(), run_id)
        return await self.db.write(lambda db: rowcount(db, sql, params)) == 1

    async def run(self, run_id: int) -> RetrainRun | None:
        """The run with this id, or None."""
        sql = f"SELECT {_RUN_COLUMNS} FROM retrain_runs WHERE id = ?"
        row = await self.db.read(lambda db: fetch_one(db, sql, (run_id,)))
        return _run(row) if row else None

    async def latest_run(self, guild_id: int) -> RetrainRun | None:
        """The guild's most recent run (running or finished), or None."""
        sql = f"SELECT {_RUN_COLUMNS} FROM retrain_runs WHERE guild_id = ? ORDER BY id DESC LIMIT 1"
        row = await self.db.read(lambda db: fetch_one(db, sql, (check_id("guild_id", guild_id),)))
        return _run(row) if row else None

    async def heartbeat(self, run_id: int) -> bool:
        """Say that this process's run is alive; False when it is no longer running (or not ours)."""
        sql = "UPDATE retrain_runs SET heartbeat_at = ? WHERE id = ? AND owner = ? AND status = 'running'"
        params = (self.db.now(), run_id, self.owner)
        return await self.db.write(lambda db: rowcount(db, sql, params)) == 1

    async def interrupt_running(
        self, stale_after: timedelta = timedelta(minutes=3), *, own: bool = True
    ) -> list[RetrainRun]:
        """Mark as interrupted the runs that died with a process.

        At start-up (``own=True``) that is this process's own running runs (it has just started, so they
        died with its previous life), and any other owner's whose heartbeat is older than ``stale_after``
        (or missing): that process is gone. Another process's live run, beating within ``stale_after``, is
        left alone. ``own=False`` (before a new run) sweeps only the stale ones, never this process's.
        """
        detail = "interrupted: the bot restarted while this retrain was running"
        stale = (datetime.fromisoformat(self.db.now()) - stale_after).isoformat()
        # ISO UTC text of one width: text order is time order in both backends.
        where = """WHERE status = 'running'
                   AND (owner = ? OR owner IS NULL OR heartbeat_at IS NULL OR heartbeat_at < ?)"""
        params = (self.owner if own else "", stale)

        async def op(db: aiosqlite.Connection) -> list[RetrainRun]:
            sql = f"SELECT {_RUN_COLUMNS} FROM retrain_runs {where} ORDER BY id"
            async with db.execute(sql, params) as cursor:
                runs = [_run(row) for row in await cursor.fetchall()]
            for run in runs:
                await db.execute(
                    "UPDATE retrain_runs SET status = 'interrupted', detail = ?, finished_at = ? "
                    "WHERE id = ? AND status = 'running'",
                    (detail, self.db.now(), run.id),
                )
            return runs

        return await self.db.write(op)

    # -- versions -------------------------------------------------------------------------------------------

    async def record_version(
        self,
        guild_id: int,
        run_id: int | None,
        path: str,
        parent_id: int | None,
        scores: dict[str, Any],
        trained_on: dict[str, Any],
    ) -> ModelVersion:
        """Add a promoted version (its file already in place) and make it the guild's current one."""
        check_id("guild_id", guild_id)
        values = (guild_id, path, parent_id, run_id, _json("scores", scores), _json("trained_on", trained_on))

        async def op(db: aiosqlite.Connection) -> ModelVersion:
            now = self.db.now()
            async with db.execute(
                "INSERT INTO model_versions (guild_id, path, parent_id, run_id, scores, trained_on, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*values, now),
            ) as cursor:
                version_id = int(cursor.lastrowid or 0)
            await self._serve(db, guild_id, version_id, now)
            sql = f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE id = ?"
            return _version(await fetch_one(db, sql, (version_id,)))

        return await self.db.write(op)

    @staticmethod
    async def _serve(db: aiosqlite.Connection, guild_id: int, version_id: int | None, now: str) -> None:
        await db.execute(
            "INSERT INTO guild_models (guild_id, version_id, updated_at) VALUES (?, ?, ?) ON CONFLICT "
            "(guild_id) DO UPDATE SET version_id = excluded.version_id, updated_at = excluded.updated_at",
            (guild_id, version_id, now),
        )

    async def version(self, version_id: int) -> ModelVersion | None:
        """The version with this id, or None."""
        sql = f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE id = ?"
        row = await self.db.read(lambda db: fetch_one(db, sql, (version_id,)))
        return _version(row) if row else None

    async def current(self, guild_id: int) -> ModelVersion | None:
        """The version the guild serves, or None for the bundled model."""
        sql = f"""SELECT {", ".join("v." + c for c in _VERSION_COLUMNS.split(", "))}
                  FROM guild_models g JOIN model_versions v ON v.id = g.version_id WHERE g.guild_id = ?"""
        row = await self.db.read(lambda db: fetch_one(db, sql, (check_id("guild_id", guild_id),)))
        return _version(row) if row else None

    async def current_id(self, guild_id: int) -> int | None:
        """The id of the version the guild serves (None: the bundled model): one cheap read."""
        sql = "SELECT version_id FROM guild_models WHERE guild_id = ?"
        row = await self.db.read(lambda db: fetch_one(db, sql, (check_id("guild_id", guild_id),)))
        return row[0] if row else None

    async def lineage(self, guild_id: int) -> list[ModelVersion]:
        """The guild's current version, then its parent, grandparent, ...: the order to fall back in."""
        current = await self.current(guild_id)
        chain: list[ModelVersion] = []
        seen: set[int] = set()
        while current is not None and current.id not in seen:
            chain.append(current)
            seen.add(current.id)
            current = await self.version(current.parent_id) if current.parent_id is not None else None
        return chain

    async def versions(self, guild_id: int) -> list[ModelVersion]:
        """Every version of the guild, oldest first."""
        sql = f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE guild_id = ? ORDER BY id"
        params = (check_id("guild_id", guild_id),)

        async def op(db: aiosqlite.Connection) -> list[ModelVersion]:
            async with db.execute(sql, params) as cursor:
                return [_version(row) for row in await cursor.fetchall()]

        return await self.db.read(op)

    async def next_number(self, guild_id: int) -> int:
        """The ``n`` for the guild's next ``v<n>.pt``: past every recorded version and every file on disk."""
        used = [v.number for v in await self.versions(guild_id)]
        folder = self.models_dir / f"guild-{guild_id}"
        if folder.is_dir():  # a file without a row (a crash between the move and the insert) is skipped too
            used += [
                int(m.group(1)) for p in folder.glob("v*.pt") if (m := re.fullmatch(r"v(\d+)\.pt", p.name))
            ]
        return max(used, default=0) + 1

    async def rollback(self, guild_id: int) -> ModelVersion | None:
        """Serve the current version's parent (None: the bundled model); the old file stays on disk."""
        check_id("guild_id", guild_id)

        async def op(db: aiosqlite.Connection) -> ModelVersion | None:
            row = await fetch_one(
                db,
                "SELECT v.id, v.parent_id FROM guild_models g JOIN model_versions v ON v.id = g.version_id "
                "WHERE g.guild_id = ?",
                (guild_id,),
            )
            if row is None:
                raise NothingToRollBackError(
                    "this server already uses the bundled model; there is no earlier version to go back to."
                )
            parent_id = row[1]
            await self._serve(db, guild_id, parent_id, self.db.now())
            if parent_id is None:
                return None
            sql = f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE id = ?"
            return _version(await fetch_one(db, sql, (parent_id,)))

        return await self.db.write(op)
