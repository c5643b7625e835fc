"""Reading a list of quotes from a file, normalising it, and splitting it into train and validation.

    quotes = load_quotes("path/to/tinyshakespeare.txt", "play", speaker="ROMEO")
    train, val = split_quotes(quotes, val_fraction=0.1)

Formats (``format=None`` guesses from the file): ``lines`` (one quote a line), ``blocks`` (quotes
separated by blank lines), ``play`` (``NAME:`` line, then the speech), ``csv`` and ``jsonl`` (text from
one column, rows filtered by ``where``), ``sqlite`` (the bot's store). Every quote is normalised
(NFC, Discord mentions and custom emoji in a readable form and URLs dropped, typographic quotes and
dashes to plain ones, whitespace runs to one space), and empty and
duplicate quotes are dropped. The split hashes each quote, so a quote stays on its side however the
corpus grows or is reordered.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.vocab import REPLACEMENTS, Vocab
from training.postgres_reader import is_database_url, read_postgres
from training.readers import (
    SPEAKER_LINE,
    SQLITE_MAGIC,
    CorpusError,
    Record,
    parse_where,
    read_blocks,
    read_csv,
    read_jsonl,
    read_lines,
    read_play,
    read_sqlite,
    read_text,
)
from training.server_text import clean_markup

__all__ = [
    "FORMATS",
    "CorpusError",
    "CorpusStats",
    "corpus_fingerprint",
    "guess_format",
    "load_quotes",
    "normalise",
    "split_quotes",
]

FORMATS = ("lines", "blocks", "play", "csv", "jsonl", "sqlite")
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".db": "sqlite",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
}


@dataclass
class CorpusStats:
    """What loading did: records read, and how many were dropped as empty or duplicate."""

    read: int = 0
    empty: int = 0
    duplicates: int = 0
    kept: int = 0
    format: str = ""
    dropped_examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.kept} quotes kept of {self.read} read ({self.format}): "
            f"{self.empty} empty, {self.duplicates} duplicates dropped"
        )


def normalise(text: str, vocab: Vocab | None = None) -> str:
    """NFC, Discord markup made readable and URLs dropped (``training.server_text``), plain stand-ins for
    typographic characters, one space for every whitespace run.

    With ``vocab``, a typographic character the vocabulary already knows is kept (a fine-tune on a
    model that has seen curly quotes keeps them); without it every one is replaced.
    """
    text = clean_markup(unicodedata.normalize("NFC", text))
    out = []
    for char in text:
        if char in REPLACEMENTS and (vocab is None or char not in vocab):
            out.append(REPLACEMENTS[char])
        elif unicodedata.category(char) in ("Cc", "Cf") and not char.isspace():
            continue  # control and invisible format characters (zero-width space, BOM) carry no text
        else:
            out.append(char)
    return " ".join("".join(out).split())


def guess_format(path: str | Path) -> str:
    """The corpus format of ``path``, from its suffix, its first bytes, or the shape of its text."""
    path = Path(path)
    if path.suffix.lower() in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[path.suffix.lower()]
    with path.open("rb") as handle:
        if handle.read(16) == SQLITE_MAGIC:
            return "sqlite"
    text = read_text(path)
    first_lines = [block.split("\n", 1)[0].strip() for block in text.split("\n\n") if block.strip()]
    if len(first_lines) >= 2:
        speakers = sum(1 for line in first_lines if SPEAKER_LINE.match(line))
        if speakers >= 0.8 * len(first_lines):
            return "play"
    return "lines"


def _check_path(path: Path) -> None:
    if not path.exists():
        raise CorpusError(path, "no such file")
    if not path.is_file():
        raise CorpusError(path, "not a file")


def read_records(
    path: str | Path,
    format: str | None = None,
    *,
    speaker: str | None = None,
    column: str = "text",
    where: str | Sequence[str] | dict[str, str] | None = None,
    blocks: bool = False,
    guild_id: int | None = None,
    min_votes: int = 1,
) -> tuple[str, list[Record]]:
    """The format used and the raw ``(line, text)`` records of a corpus file (or of the bot's PostgreSQL
    store, for a ``postgresql://`` URL)."""
    if is_database_url(path):
        return "postgresql", list(read_postgres(str(path), guild_id, min_votes))
    path = Path(path)
    _check_path(path)
    if format is None:
        format = "blocks" if blocks else guess_format(path)
    if format not in FORMATS:
        raise CorpusError(path, f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if speaker and format != "play":
        raise CorpusError(path, f"--speaker only applies to the play format, not {format!r}")
    try:
        conditions = parse_where(where)
    except ValueError as exc:
        raise CorpusError(path, str(exc)) from exc
    if conditions and format not in ("csv", "jsonl"):
        raise CorpusError(path, f"--where only applies to csv and jsonl corpora, not {format!r}")
    if format == "lines":
        records = read_lines(path)
    elif format == "blocks":
        records = read_blocks(path)
    elif format == "play":
        records = read_play(path, speaker)
    elif format == "csv":
        records = read_csv(path, column, conditions)
    elif format == "jsonl":
        records = read_jsonl(path, column, conditions)
    else:
        records = read_sqlite(path, guild_id, min_votes)
    return format, list(records)


def dedupe(texts: Iterable[str], vocab: Vocab | None = None, stats: CorpusStats | None = None) -> list[str]:
    """Normalised quotes, empty ones and repeats (after normalising) dropped, first occurrence kept."""
    stats = stats if stats is not None else CorpusStats()
    seen: set[str] = set()
    kept: list[str] = []
    for raw in texts:
        stats.read += 1
        text = normalise(raw, vocab)
        if not text:
            stats.empty += 1
        elif text in seen:
            stats.duplicates += 1
        else:
            seen.add(text)
            kept.append(text)
    stats.kept = len(kept)
    return kept


def load_quotes(
    path: str | Path,
    format: str | None = None,
    *,
    speaker: str | None = None,
    column: str = "text",
    where: str | Sequence[str] | dict[str, str] | None = None,
    blocks: bool = False,
    guild_id: int | None = None,
    min_votes: int = 1,
    vocab: Vocab | None = None,
    stats: CorpusStats | None = None,
) -> list[str]:
    """Normalised, deduplicated quotes of a corpus file, in file order.

    ``format`` is guessed when ``None`` (``blocks=True`` means blank-line blocks for a text file).
    ``speaker`` picks one speaker of a play; ``column`` and ``where`` (``"key=value"``, several, or a
    dict; all must match, case-insensitively) choose text and rows of CSV and JSON Lines; ``guild_id``
    picks one guild of the bot's store and ``min_votes`` how many votes make a stored quote favoured.
    Pass a ``CorpusStats`` to learn what was dropped. A file that gives no quote at all is an error.
    """
    stats = stats if stats is not None else CorpusStats()
    used, records = read_records(
        path,
        format,
        speaker=speaker,
        column=column,
        where=where,
        blocks=blocks,
        guild_id=guild_id,
        min_votes=min_votes,
    )
    stats.format = used
    quotes = dedupe((text for _, text in records), vocab, stats)
    if not quotes:
        found = "no records" if not records else f"{len(records)} records, all empty"
        raise CorpusError(path, f"no quotes found ({found}) in the {used} format")
    return quotes


def hash_unit(quote: str) -> float:
    """A number in [0, 1) fixed by the quote's text alone (SHA-1, not Python's salted ``hash``)."""
    digest = hashlib.sha1(quote.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_quotes(quotes: Sequence[str], val_fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """(train, validation): a quote goes to validation when its hash falls below ``val_fraction``."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    train: list[str] = []
    val: list[str] = []
    for quote in quotes:
        (val if hash_unit(quote) < val_fraction else train).append(quote)
    return train, val


def corpus_fingerprint(quotes: Iterable[str]) -> str:
    """A short SHA-256 of the quotes in order: equal fingerprints mean the same training text."""
    digest = hashlib.sha256()
    for quote in quotes:
        digest.update(quote.encode("utf-8"))
        digest.update(b"\x1e")  # record separator, so ["ab", "c"] and ["a", "bc"] differ
    return digest.hexdigest()[:16]
