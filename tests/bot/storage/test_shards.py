"""bot/storage/shards.py: Discord's formula, the process filter, and the SQL that applies it."""

from __future__ import annotations

import sqlite3

import pytest

from bot.storage.shards import Shards, shard_of

# Snowflakes whose shard of 4 is known: (timestamp part << 22) picks the shard.
GUILDS = {shard: (1_000_000 + shard) << 22 | 12345 for shard in range(4)}


def test_discords_formula():
    assert [shard_of(GUILDS[s], 4) for s in range(4)] == [0, 1, 2, 3]
    assert shard_of(GUILDS[3], 1) == 0


def test_a_process_owns_only_its_shards_servers():
    shards = Shards((0, 1), 4)
    assert [shards.owns(GUILDS[s]) for s in range(4)] == [True, True, False, False]


def test_every_shard_or_no_sharding_means_no_filter():
    assert Shards.of_process(None, 4) is None
    assert Shards.of_process((0, 1, 2, 3), 4) is None
    assert Shards.of_process((2,), 4) == Shards((2,), 4)


@pytest.mark.parametrize("ids", [(), (4,), (1, 1)])
def test_impossible_shards_refused(ids):
    with pytest.raises(ValueError):
        Shards(ids, 4)


def test_the_sql_filter_agrees_with_the_formula():
    shards = Shards((1, 3), 4)
    where, params = shards.where("guild_id")
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (guild_id INTEGER)")
    db.executemany("INSERT INTO t VALUES (?)", [(g,) for g in GUILDS.values()])
    found = {row[0] for row in db.execute(f"SELECT guild_id FROM t WHERE {where}", params)}
    assert found == {GUILDS[1], GUILDS[3]}
