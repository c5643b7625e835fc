"""training.corpus and training.readers: each format, normalising, the split, one error per bad input."""

import json
import sqlite3
from pathlib import Path

import pytest

from model.vocab import Vocab
from training.corpus import (
    CorpusError,
    CorpusStats,
    corpus_fingerprint,
    guess_format,
    load_quotes,
    normalise,
    split_quotes,
)
from training.readers import parse_where

PLAY = """\
First Citizen:
Before we proceed any further,
hear me speak.

All:
Speak, speak.

FIRST CITIZEN:
You are all resolved?

TITUS:

All:
Speak, speak.
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_lines_are_normalised_and_empty_and_duplicate_quotes_dropped(tmp_path):
    path = write(
        tmp_path,
        "q.txt",
        "  Hey,\tyou  there. \n\n\u201cQuoted\u201d \u2014 yes\nHey, you there.\ncafe\u0301\n",
    )
    stats = CorpusStats()
    assert load_quotes(path, stats=stats) == ["Hey, you there.", '"Quoted" - yes', "caf\u00e9"]
    assert (stats.read, stats.empty, stats.duplicates, stats.kept, stats.format) == (5, 1, 1, 3, "lines")
    assert "3 quotes kept of 5" in stats.summary()


def test_normalise_keeps_typographic_characters_the_vocabulary_knows():
    assert normalise("\u201cHi\u201d") == '"Hi"'
    assert normalise("\u201cHi\u201d", Vocab.from_texts(["\u201c\u201dHi"])) == "\u201cHi\u201d"
    assert normalise("zero\u200bwidth") == "zerowidth"


def test_blocks_join_the_lines_of_each_block(tmp_path):
    path = write(tmp_path, "b.txt", "One line\nand more.\n\n\nSecond.\n")
    assert load_quotes(path, blocks=True) == ["One line and more.", "Second."]
    assert load_quotes(path, "blocks") == ["One line and more.", "Second."]


def test_play_gives_each_speech_once_without_the_speaker_line(tmp_path):
    path = write(tmp_path, "play.txt", PLAY)
    stats = CorpusStats()
    quotes = load_quotes(path, stats=stats)  # guessed: every block starts with a speaker line
    assert quotes == [
        "Before we proceed any further, hear me speak.",
        "Speak, speak.",
        "You are all resolved?",
    ]
    assert (stats.format, stats.empty, stats.duplicates) == ("play", 1, 1)


def test_play_speaker_is_case_insensitive(tmp_path):
    path = write(tmp_path, "play.txt", PLAY)
    assert load_quotes(path, "play", speaker="first citizen") == [
        "Before we proceed any further, hear me speak.",
        "You are all resolved?",
    ]


def test_play_unknown_speaker_names_the_speakers_there_are(tmp_path):
    path = write(tmp_path, "play.txt", PLAY)
    with pytest.raises(CorpusError, match=r"no speeches by 'ROMEO'.*All"):
        load_quotes(path, "play", speaker="ROMEO")


def test_play_block_without_speaker_line_names_its_line(tmp_path):
    path = write(tmp_path, "play.txt", "ALL:\nSpeak.\n\nno speaker here\nat all\n")
    with pytest.raises(CorpusError, match=r"play.txt, line 4: expected a speaker line"):
        load_quotes(path, "play")


def test_guess_format(tmp_path):
    assert guess_format(write(tmp_path, "play.txt", PLAY)) == "play"
    assert guess_format(write(tmp_path, "q.txt", "a\nb\n")) == "lines"
    assert guess_format(write(tmp_path, "q.CSV", "text\na\n")) == "csv"
    assert guess_format(write(tmp_path, "q.jsonl", "{}\n")) == "jsonl"
    db = tmp_path / "store"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    assert guess_format(db) == "sqlite"


CSV = 'id,character,text\n1,Pat,"Hey, you."\n2,Sam,Nope.\n3, pat ,Coffee first.\n'


def test_csv_column_and_where(tmp_path):
    path = write(tmp_path, "lines.csv", CSV)
    assert load_quotes(path, where="character=PAT") == ["Hey, you.", "Coffee first."]
    assert load_quotes(path, column="character") == ["Pat", "Sam", "pat"]
    assert load_quotes(path, where=["character=pat", "id=3"]) == ["Coffee first."]


def test_csv_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "lines.csv", CSV)
    with pytest.raises(CorpusError, match=r"line 1: no column 'quote'; the columns are: id, character, text"):
        load_quotes(path, column="quote")
    with pytest.raises(CorpusError, match="no column 'speaker'"):
        load_quotes(path, where="speaker=Pat")


def test_csv_row_with_wrong_field_count_names_its_line(tmp_path):
    path = write(tmp_path, "lines.csv", "id,text\n1,fine\n2,too,many\n")
    with pytest.raises(CorpusError, match="line 3: this row has more fields"):
        load_quotes(path)
    path = write(tmp_path, "short.csv", "id,character,text\n1,Pat\n")
    with pytest.raises(CorpusError, match="line 2: this row has fewer fields"):
        load_quotes(path)


def test_jsonl_column_and_where(tmp_path):
    rows = [{"character": "Pat", "line": "Hey."}, {"character": "Sam", "line": "No."}, {"character": "Pat"}]
    path = write(tmp_path, "q.jsonl", "\n".join(json.dumps(r) for r in rows[:2]) + "\n\n")
    assert load_quotes(path, column="line", where="character=pat") == ["Hey."]
    path = write(tmp_path, "missing.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(CorpusError, match=r"missing.jsonl, line 3: this object has no 'line' key"):
        load_quotes(path, column="line", where="character=Pat")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"text": "ok"}\n{"text": "broken\n', r"line 2: not valid JSON"),
        ('["a list"]\n', r"line 1: expected a JSON object per line, found list"),
        ('{"text": 42}\n', r"line 1: 'text' should be a string, found int"),
    ],
)
def test_jsonl_malformed_lines(tmp_path, text, problem):
    with pytest.raises(CorpusError, match=problem):
        load_quotes(write(tmp_path, "q.jsonl", text))


def test_text_that_is_not_utf8_names_the_line(tmp_path):
    path = write(tmp_path, "latin1.txt", "fine\nalso fine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"line 3: not valid UTF-8 \(byte 0xe9\)"):
        load_quotes(path)


def test_binary_missing_empty_and_folder(tmp_path):
    with pytest.raises(CorpusError, match="binary"):
        load_quotes(write(tmp_path, "x.bin", b"\x00\x01\x02"), "lines")
    with pytest.raises(CorpusError, match=r"nope\.txt: no such file"):
        load_quotes(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match=r"no quotes found \(2 records, all empty\)"):
        load_quotes(write(tmp_path, "blank.txt", "  \n\t\n"))
    with pytest.raises(CorpusError, match="not a file"):
        load_quotes(tmp_path)


def test_option_mistakes_are_refused(tmp_path):
    path = write(tmp_path, "q.txt", "a\n")
    with pytest.raises(CorpusError, match="unknown format 'yaml'"):
        load_quotes(path, "yaml")
    with pytest.raises(CorpusError, match="--speaker only applies to the play format"):
        load_quotes(path, speaker="ROMEO")
    with pytest.raises(CorpusError, match="expected COLUMN=VALUE"):
        load_quotes(write(tmp_path, "q.csv", CSV), where="character")
    with pytest.raises(CorpusError, match="--where only applies to csv and jsonl"):
        load_quotes(path, where="a=b")
    assert parse_where({"a": 1}) == {"a": "1"}


def test_sqlite_file_that_is_not_a_store(tmp_path):
    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(CorpusError, match="not a quotebot store: no table quotes, source_quotes, votes"):
        load_quotes(db)
    with pytest.raises(CorpusError, match="not an SQLite database"):
        load_quotes(write(tmp_path, "fake.db", "just text"))


def test_split_is_stable_when_the_corpus_grows_or_is_reordered(sample_quotes):
    train, val = split_quotes(sample_quotes, 0.2)
    assert sorted(train + val) == sorted(sample_quotes)
    assert 0.1 < len(val) / len(sample_quotes) < 0.3
    grown = [*reversed(sample_quotes), "A brand new quote.", "Another new one!"]
    train2, val2 = split_quotes(grown, 0.2)
    assert set(val) <= set(val2) and set(train) <= set(train2)
    assert split_quotes(sample_quotes, 0.0) == (list(sample_quotes), [])
    with pytest.raises(ValueError, match="val_fraction"):
        split_quotes(sample_quotes, 1.0)


def test_fingerprint_changes_with_content_and_order():
    assert corpus_fingerprint(["a", "b"]) == corpus_fingerprint(["a", "b"])
    assert corpus_fingerprint(["a", "b"]) != corpus_fingerprint(["b", "a"])
    assert corpus_fingerprint(["ab", "c"]) != corpus_fingerprint(["a", "bc"])


def make_store(path: Path) -> Path:
    """An SQLite file with the store's tables (bot/storage/migrations.py, version 1) and a few rows."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE quotes (id INTEGER PRIMARY KEY, guild_id INTEGER, requester_id INTEGER,
            text TEXT NOT NULL, model_version TEXT NOT NULL DEFAULT 'v1',
            created_at TEXT NOT NULL DEFAULT '');
        CREATE TABLE votes (quote_id INTEGER NOT NULL REFERENCES quotes (id), user_id INTEGER NOT NULL,
            created_at TEXT NOT NULL DEFAULT '', PRIMARY KEY (quote_id, user_id)) WITHOUT ROWID;
        CREATE TABLE source_quotes (id INTEGER PRIMARY KEY, guild_id INTEGER NOT NULL,
            added_by INTEGER NOT NULL, text TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT '');
        INSERT INTO quotes (id, guild_id, text) VALUES (1, 10, 'Loved  by two.'), (2, 10, 'Nobody voted.'),
            (3, 20, 'Other guild, one vote.'), (4, 10, 'Loved by one.');
        -- A requester's own star is not a vote: this quote is favoured by nobody.
        INSERT INTO quotes (id, guild_id, requester_id, text)
            VALUES (5, 10, 103, 'Starred by its requester.');
        INSERT INTO votes (quote_id, user_id) VALUES (1, 100), (1, 101), (3, 100), (4, 102), (5, 103);
        INSERT INTO source_quotes (guild_id, added_by, text) VALUES (10, 5, 'Added by an admin.'),
            (20, 5, 'Loved by one.');
        """
    )
    db.commit()
    db.close()
    return path


def test_sqlite_store_gives_favoured_then_source_quotes(tmp_path):
    store = make_store(tmp_path / "quotebot.db")
    assert load_quotes(store) == [
        "Loved by two.",
        "Other guild, one vote.",
        "Loved by one.",
        "Added by an admin.",
    ]  # the repeat of 'Loved by one.' from guild 20's sources is dropped
    assert load_quotes(store, guild_id=10) == ["Loved by two.", "Loved by one.", "Added by an admin."]
    assert load_quotes(store, "sqlite", guild_id=10, min_votes=2) == ["Loved by two.", "Added by an admin."]
    with pytest.raises(CorpusError, match="no quotes found"):
        load_quotes(store, guild_id=99)
