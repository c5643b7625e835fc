"""bot/storage/training_data.py: the JSON-lines export of favoured and source quotes, from a real store
file."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path

import pytest

from bot.storage.store import Store, StoreError, StoreInputError
from bot.storage.training_data import export_jsonl, read_training_quotes

GUILD, OTHER = 111, 222
KEYS = ["text", "kind", "guild", "votes", "seed", "model_version"]


async def quote(store: Store, text: str, voters: int, guild: int = GUILD, requester: int = 5) -> int:
    qid = await store.add_quote(
        guild_id=guild,
        channel_id=1,
        requester_id=requester,
        seed=text[:4],
        text=text,
        settings={"temperature": 0.8},
        model_version=f"v-{guild}",
    )
    for user in range(voters):
        await store.add_vote(qid, 900 + user)
    return qid


@pytest.fixture
async def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "quotes.db"
    async with await Store.open(path) as store:
        await quote(store, "Hey, one vote.", 1)
        await quote(store, "Coffee first, «always» — ☕.", 3)
        await quote(store, "Nobody liked this.", 0)
        await quote(store, "Forgotten seed here.", 2, requester=66)
        await quote(store, "Elsewhere, four votes.", 4, guild=OTHER)
        await store.add_source_quote(GUILD, 7, "An admin's line.")
        await store.add_source_quote(OTHER, 7, "Another server's line.")
        await store.forget_user(66)
    return path


def row(*values: object) -> dict:
    return dict(zip(KEYS, values, strict=True))


def lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_export_writes_favoured_then_source_quotes(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    assert export_jsonl(db_path, out) == 6
    rows = lines(out)
    assert all(list(row) == KEYS for row in rows)
    assert rows == [
        row("Elsewhere, four votes.", "favoured", OTHER, 4, "Else", f"v-{OTHER}"),
        row("Coffee first, «always» — ☕.", "favoured", GUILD, 3, "Coff", f"v-{GUILD}"),
        row("Forgotten seed here.", "favoured", GUILD, 2, None, f"v-{GUILD}"),  # its requester was forgotten
        row("Hey, one vote.", "favoured", GUILD, 1, "Hey,", f"v-{GUILD}"),
        row("An admin's line.", "source", GUILD, None, None, None),
        row("Another server's line.", "source", OTHER, None, None, None),
    ]
    assert "«always» — ☕" in out.read_text(encoding="utf-8")  # written as UTF-8, not \\u escapes


def test_export_filters_by_guild_and_votes(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl"
    assert export_jsonl(db_path, out, guild=GUILD, min_votes=2) == 3
    assert [(r["kind"], r["text"]) for r in lines(out)] == [
        ("favoured", "Coffee first, «always» — ☕."),
        ("favoured", "Forgotten seed here."),
        ("source", "An admin's line."),
    ]
    assert export_jsonl(db_path, out, guild=333) == 0
    assert out.read_text() == ""


async def test_export_agrees_with_the_store_and_runs_beside_it(db_path: Path, tmp_path: Path) -> None:
    async with await Store.open(db_path) as store:  # the bot is running
        from_store = await store.favoured_and_source_quotes(GUILD, min_votes=1)
        out = tmp_path / "live.jsonl"
        assert export_jsonl(db_path, out, guild=GUILD) == len(from_store)
        assert lines(out) == [row.to_json() for row in from_store]
        assert from_store == read_training_quotes(db_path, GUILD, 1)


def test_export_refuses_bad_input_by_name(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with pytest.raises(StoreError, match="there is no database file at"):
        export_jsonl(tmp_path / "missing.db", out)
    assert not (tmp_path / "missing.db").exists()  # read-only: nothing was created
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StoreError, match="not a quotebot database of a version this code reads"):
        export_jsonl(empty, out)
    junk = tmp_path / "junk.db"
    junk.write_text("hello " * 200)
    with pytest.raises(StoreError, match="cannot read the database"):
        export_jsonl(junk, out)
    with pytest.raises(StoreInputError, match="minimum number of votes must be a whole number of at least 1"):
        export_jsonl(db_path, out, min_votes=0)
    with pytest.raises(StoreInputError, match="guild must be a non-negative integer id"):
        export_jsonl(db_path, out, guild="111")  # type: ignore[arg-type]
    with pytest.raises(StoreInputError, match="is a folder"):
        export_jsonl(db_path, tmp_path)
    with pytest.raises(StoreInputError, match="does not exist"):
        export_jsonl(db_path, tmp_path / "no" / "such.jsonl")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_never_writes_through_a_file_planted_at_a_guessable_name(
    db_path: Path, tmp_path: Path
) -> None:
    # Someone who can write to the output folder plants links at every name a predictable temporary
    # file could have (this process's id, and its neighbours'); the export must not write through them.
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.jsonl"
    for pid in range(max(1, os.getpid() - 5), os.getpid() + 6):
        (tmp_path / f".{out.name}.{pid}.tmp").symlink_to(victim)
    assert export_jsonl(db_path, out, guild=GUILD) == 4
    assert victim.read_text() == "precious"
    assert not out.is_symlink() and lines(out)[0]["kind"] == "favoured"


def test_export_syncs_its_file_to_disk_before_the_rename(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    synced: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else "?")
        real_fsync(fd)

    def replace(src, dst) -> None:
        assert synced, "renamed before the data reached the disk"
        synced.append(f"rename {Path(src).name}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    export_jsonl(db_path, out)
    assert synced[-1].startswith(f"rename .{out.name}.") and synced[-1].endswith(".tmp")
    assert lines(out)


async def test_export_reads_postgresql_too(postgres_url: str, db_path: Path, tmp_path: Path) -> None:
    async with await Store.open(postgres_url) as store:
        async with await Store.open(db_path) as source:
            for quote in await source.favoured_and_source_quotes():
                if quote.kind == "source":
                    await store.add_source_quote(quote.guild_id, 5, quote.text)
        from_store = await store.favoured_and_source_quotes()
    # In a thread, as `python -m bot export` runs it: outside any event loop.
    read = await asyncio.to_thread(read_training_quotes, postgres_url)
    assert [(q.kind, q.text) for q in read] == [(q.kind, q.text) for q in from_store] != []
    out = tmp_path / "pg.jsonl"
    assert await asyncio.to_thread(export_jsonl, postgres_url, out) == len(from_store)
