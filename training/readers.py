"""One reader per corpus format; each yields ``(line, text)`` pairs of raw, unnormalised quotes.

``line`` is the 1-based line of the file where the quote starts (the row for SQLite), so that
``corpus.load_quotes`` can name it in an error. Readers raise ``CorpusError`` for malformed input;
they do not normalise, deduplicate or judge emptiness: that is the corpus module's job.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

Record = tuple[int, str]  # (line where the quote starts, raw text)

# A play's speaker line: a name that starts with a capital letter, then a colon and nothing else.
SPEAKER_LINE = re.compile(r"^([A-Z][\w' .,&-]*?)\s*:\s*$")
SQLITE_MAGIC = b"SQLite format 3\x00"


class CorpusError(ValueError):
    """A corpus could not be read; the message names the file, the line (when known) and the problem."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        self.path, self.problem, self.line = str(path), problem, line
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")


def read_text(path: Path) -> str:
    """The file's text as UTF-8, with an error naming the line of the first undecodable byte."""
    data = path.read_bytes()
    if b"\x00" in data[:4096]:
        raise CorpusError(path, "this looks like a binary file, not text (it holds NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(
            path, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save it as UTF-8", line
        ) from exc


def _blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Runs of non-blank lines, with the 1-based line number of each run's first line."""
    start, lines = 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line)
        elif lines:
            yield start, lines
            lines = []
    if lines:
        yield start, lines


def read_lines(path: Path) -> Iterator[Record]:
    """One quote per line."""
    yield from enumerate(read_text(path).splitlines(), start=1)


def read_blocks(path: Path) -> Iterator[Record]:
    """Quotes separated by blank lines; the lines of one block are one quote."""
    for start, lines in _blocks(read_text(path)):
        yield start, " ".join(lines)


def read_play(path: Path, speaker: str | None = None) -> Iterator[Record]:
    """A play script: blocks of a ``NAME:`` line and the speech; each speech is one quote.

    With ``speaker``, only that speaker's speeches (case-insensitive); a name the play never uses is
    an error listing a few names it does use.
    """
    wanted = speaker.strip().casefold() if speaker else None
    names: dict[str, int] = {}
    records: list[Record] = []
    for start, lines in _blocks(read_text(path)):
        match = SPEAKER_LINE.match(lines[0].strip())
        if match is None:
            raise CorpusError(
                path,
                f"expected a speaker line such as 'NAME:' to start this block, found {lines[0][:40]!r}",
                start,
            )
        name = match.group(1)
        names[name] = names.get(name, 0) + 1
        if wanted is None or name.casefold() == wanted:
            records.append((start + 1, " ".join(lines[1:])))
    if wanted is not None and not records:
        common = sorted(names, key=lambda n: -names[n])[:8]
        raise CorpusError(
            path, f"no speeches by {speaker!r}; speakers with most speeches: {', '.join(common)}"
        )
    yield from records


def parse_where(where: str | Sequence[str] | dict[str, str] | None) -> dict[str, str]:
    """``"character=Pat"`` (or several, or a dict) -> ``{"character": "Pat"}``; all must match a row."""
    if where is None:
        return {}
    if isinstance(where, dict):
        return {str(k): str(v) for k, v in where.items()}
    items = [where] if isinstance(where, str) else list(where)
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--where {item!r}: expected COLUMN=VALUE, e.g. character=Pat")
        out[key.strip()] = value.strip()
    return out


def _matches(row: dict, where: dict[str, str]) -> bool:
    # Compare as text, ignoring case and surrounding space: "Pat" matches " pat ".
    return all(str(row.get(k, "")).strip().casefold() == v.casefold() for k, v in where.items())


def read_csv(path: Path, column: str = "text", where: dict[str, str] | None = None) -> Iterator[Record]:
    """A CSV file with a header row; quotes from ``column`` of the rows matching every ``where``."""
    where = where or {}
    text = read_text(path)
    reader = csv.DictReader(text.splitlines(keepends=True), strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise CorpusError(path, f"the header row is not valid CSV ({exc})", 1) from exc
    if not header:
        raise CorpusError(path, "the file is empty: a CSV corpus needs a header row", 1)
    for key in [column, *where]:
        if key not in header:
            raise CorpusError(path, f"no column {key!r}; the columns are: {', '.join(header)}", 1)
    try:
        for row in reader:
            line = reader.line_num
            if None in row:  # DictReader puts surplus fields under the key None
                raise CorpusError(path, f"this row has more fields than the header's {len(header)}", line)
            if any(value is None for value in row.values()):
                raise CorpusError(path, f"this row has fewer fields than the header's {len(header)}", line)
            if _matches(row, where):
                yield line, row[column]
    except csv.Error as exc:
        raise CorpusError(path, f"not valid CSV ({exc})", reader.line_num) from exc


def read_jsonl(path: Path, column: str = "text", where: dict[str, str] | None = None) -> Iterator[Record]:
    """JSON Lines: one object per line; quotes from key ``column`` of the objects matching ``where``."""
    where = where or {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(path, f"not valid JSON ({exc.msg} at column {exc.colno})", number) from exc
        if not isinstance(row, dict):
            raise CorpusError(path, f"expected a JSON object per line, found {type(row).__name__}", number)
        if not _matches(row, where):
            continue
        if column not in row:
            raise CorpusError(path, f"this object has no {column!r} key (keys: {', '.join(row)})", number)
        if not isinstance(row[column], str):
            raise CorpusError(
                path, f"{column!r} should be a string, found {type(row[column]).__name__}", number
            )
        yield number, row[column]


def read_sqlite(path: Path, guild_id: int | None = None, min_votes: int = 1) -> Iterator[Record]:
    """The bot's store: favoured quotes (stored quotes with ``min_votes`` votes or more), then admin-added
    source quotes, less those an admin excluded; with ``guild_id``, only that guild's. The record number
    is the row's id.
    """
    with path.open("rb") as handle:
        if handle.read(16) != SQLITE_MAGIC:
            raise CorpusError(path, "not an SQLite database")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CorpusError(path, f"cannot open the database ({exc})") from exc
    args = {"guild": guild_id, "min_votes": max(1, min_votes)}
    not_excluded = " AND {} NOT IN (SELECT item_id FROM retrain_exclusions WHERE kind = '{}')"
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = {"quotes", "votes", "source_quotes"} - tables
        if missing:
            raise CorpusError(path, f"not a quotebot store: no table {', '.join(sorted(missing))}")
        # Quotes an admin left out (!retrain exclude) are not read, where the store has that table.
        excluding = "retrain_exclusions" in tables
        favoured = db.execute(
            # A requester's own vote is not one (as the bot counts them).
            "SELECT q.id, q.text FROM quotes q JOIN votes v ON v.quote_id = q.id"
            " AND (q.requester_id IS NULL OR v.user_id <> q.requester_id)"
            " WHERE (:guild IS NULL OR q.guild_id = :guild)"
            + (not_excluded.format("q.id", "favoured") if excluding else "")
            + " GROUP BY q.id HAVING COUNT(*) >= :min_votes ORDER BY q.id",
            args,
        ).fetchall()
        sources = db.execute(
            "SELECT id, text FROM source_quotes WHERE (:guild IS NULL OR guild_id = :guild)"
            + (not_excluded.format("id", "source") if excluding else "")
            + " ORDER BY id",
            args,
        ).fetchall()
    except sqlite3.Error as exc:
        raise CorpusError(path, f"cannot read the store ({exc})") from exc
    finally:
        db.close()
    for row_id, text in [*favoured, *sources]:
        yield int(row_id), str(text or "")
