"""``python -m bot export`` (bot/export.py) on a real bot database: the JSON-lines content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.storage.store import Store
from tests.helpers import REPO
from training.__main__ import main


async def quote(store: Store, guild: int, text: str, votes: int, requester: int = 9) -> int:
    quote_id = await store.add_quote(
        guild_id=guild,
        channel_id=2,
        requester_id=requester,
        seed=text.split()[0],
        text=text,
        settings={"temperature": 0.8},
        model_version="default",
    )
    for user in range(votes):
        await store.add_vote(quote_id, 100 + user)
    return quote_id


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    async with await Store.open(path) as store:
        await quote(store, 1, "Hey, two votes here.", 2)
        await quote(store, 1, "Hey, one vote here.", 1)
        await quote(store, 1, "Hey, no votes here.", 0)
        await quote(store, 2, "Other guild, three votes.", 3, requester=55)
        await store.add_source_quote(1, 7, "Mondays are a rumour.")
        await store.add_source_quote(2, 7, "Other guild's source.")
        await store.forget_user(55)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_all_guilds(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "all.jsonl"
    assert main(["export", "--db", str(db), "--out", str(out)]) == 0
    assert f"wrote 5 quotes to {out}" in capsys.readouterr().out
    rows = read_jsonl(out)
    assert [(r["kind"], r["text"], r["votes"]) for r in rows] == [
        ("favoured", "Other guild, three votes.", 3),
        ("favoured", "Hey, two votes here.", 2),
        ("favoured", "Hey, one vote here.", 1),
        ("source", "Mondays are a rumour.", None),
        ("source", "Other guild's source.", None),
    ]
    assert rows[0]["seed"] is None  # its requester asked to be forgotten
    assert rows[1] == {
        "text": "Hey, two votes here.",
        "kind": "favoured",
        "guild": 1,
        "votes": 2,
        "seed": "Hey,",
        "model_version": "default",
    }
    assert rows[3]["guild"] == 1 and rows[3]["seed"] is None and rows[3]["model_version"] is None


def test_export_one_guild_with_min_votes(db: Path, tmp_path: Path):
    out = tmp_path / "guild.jsonl"
    assert main(["export", "--db", str(db), "--guild", "1", "--min-votes", "2", "--out", str(out)]) == 0
    assert [(r["kind"], r["text"]) for r in read_jsonl(out)] == [
        ("favoured", "Hey, two votes here."),
        ("source", "Mondays are a rumour."),
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"--db": "missing.db"}, "no database file"),
        ({"--min-votes": "0"}, "minimum number of votes"),
        ({"--out": "no/such/folder/x.jsonl"}, "does not exist"),
    ],
)
def test_export_errors_are_one_line(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, words: str
):
    options = {"--db": str(db), "--out": str(tmp_path / "x.jsonl"), **change}
    for key in ("--db", "--out"):
        if not Path(options[key]).is_absolute():
            options[key] = str(tmp_path / options[key])
    argv = ["export", *(part for pair in options.items() for part in pair)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.slow
@pytest.mark.parametrize("package", ["bot", "training"])  # training's export is an alias of the bot's
def test_python_m_export(db: Path, tmp_path: Path, package: str):
    out = tmp_path / "cli.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", package, "export", "--db", str(db), "--guild", "2", "--out", str(out)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r["text"] for r in read_jsonl(out)] == ["Other guild, three votes.", "Other guild's source."]
