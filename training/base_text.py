"""The base text of a fine-tune: what it replays so as not to forget, and what the judge scores it on.

    base = base_text(parent, "models/guild-1/v2.pt", corpus=None)     # parent: a LoadedModel
    base.kind      # "corpus": the corpus the checkpoint names is on this machine
                   # "samples": it is not; the parent's own samples stand in (generative replay)
    base.train     # replay draws from here
    base.val       # the judge scores here (never replayed)

A checkpoint records its base corpus as ``data/tinyshakespeare.txt`` (``training.cli_support.repo_relative``),
found in the installed package's data folder wherever it is installed; a fine-tuned checkpoint carries
its parent's record on (``base_corpus``). When that file (or the one given) is here, it is used as it
always was. When it is
not, the base text is ``REPLAY_SAMPLES`` quotes the parent writes with the bot's default sampling, from
an empty seed, drawn once with a fixed random seed and cached beside the parent's file
(``NAME.replay.jsonl``, its first line naming the checkpoint's fingerprint, so a changed file is drawn
again). Replaying the parent's own samples keeps the new model close to what the parent wrote
(generative replay, as in Shin et al. 2017); the judge scores both models on held-out samples, so
"worse on the base text" means "drifted from what the parent wrote". Samples and corpus are split by
the same quote hash, so the judge never scores a replayed quote.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from model.checkpoint import LoadedModel
from model.generate import STOP_END, Generator
from model.sampling import SamplingConfig, SamplingDecoder
from training.cli_support import repo_relative, resolve_recorded
from training.corpus import CorpusError, load_quotes, normalise, split_quotes
from training.metrics import replay_cache_path_for as cache_path_for
from training.options import REPLAY_SAMPLES

SAMPLE_MAX_CHARS = 400  # longer samples are cut and not kept (the bot's quotes end well before)
SAMPLE_BATCH = 128
SAMPLE_SEED = 0

Say = Callable[[str], None]


@dataclass(frozen=True)
class BaseText:
    """The base text: ``kind`` is ``corpus`` or ``samples``; ``where`` the corpus or the cache (absolute)."""

    kind: str
    where: str
    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    format: str | None = None
    speaker: str | None = None

    def describe(self) -> str:
        """``the base corpus data/x.txt`` or ``2,000 samples of the current model``, for people."""
        if self.kind == "corpus":
            return f"the base corpus {repo_relative(self.where)}"
        return f"{len(self.train) + len(self.val):,} samples of the current model"

    def metadata(self) -> dict:
        """What a fine-tuned checkpoint records, so its own children find the same base corpus."""
        if self.kind != "corpus":
            return {"replay_source": "samples"}
        meta = {"replay_source": "corpus", "base_corpus": repo_relative(self.where)}
        if self.format:
            meta["base_format"] = self.format
        if self.speaker:
            meta["base_speaker"] = self.speaker
        return meta


def recorded_corpus(meta: dict) -> tuple[str, str | None, str | None] | None:
    """(path relative to the repository, format, speaker) of the base corpus a checkpoint names, or None.

    A model trained from scratch names its own corpus; a fine-tuned one names the base corpus it
    replayed (its own ``corpus`` is a server's quotes, never a base text).
    """
    if "base_corpus" in meta:
        return meta["base_corpus"], meta.get("base_format"), meta.get("base_speaker")
    if "replay_corpus" in meta:  # fine-tuned before base_corpus was recorded
        return meta["replay_corpus"], meta.get("replay_format"), meta.get("replay_speaker")
    if "parent" in meta or "corpus" not in meta:
        return None
    return meta["corpus"], meta.get("corpus_format"), meta.get("corpus_speaker")


def file_fingerprint(path: str | Path) -> str:
    """A short SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@torch.inference_mode()
def draw_samples(loaded: LoadedModel, count: int, seed: int = SAMPLE_SEED) -> list[str]:
    """``count`` quotes the model writes from an empty seed with the default sampling (repeatable).

    Only quotes that reached end-of-quote are kept, normalised and without repeats; the model is asked
    for more until there are ``count`` (or it stops giving new ones).
    """
    generator = Generator(loaded.model, loaded.vocab)
    kept: dict[str, None] = {}
    asked = 0
    while len(kept) < count and asked < 3 * count:
        rows = min(SAMPLE_BATCH, 2 * (count - len(kept)))
        decoder = SamplingDecoder(loaded.vocab, SamplingConfig(), seed + asked)
        for done in generator.complete([""] * rows, SAMPLE_MAX_CHARS, decoder):
            text = normalise(done.text, loaded.vocab)
            if done.stopped == STOP_END and text:
                kept.setdefault(text)
        asked += rows
    return list(kept)[:count]


def _read_cache(cache: Path, fingerprint: str, count: int) -> list[str] | None:
    try:
        lines = cache.read_text(encoding="utf-8").splitlines()
        head = json.loads(lines[0])
        if head.get("model") != fingerprint or head.get("count") != count:
            return None
        return [json.loads(line)["text"] for line in lines[1:]]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None  # missing, damaged or from another model: drawn again


def _write_cache(cache: Path, fingerprint: str, count: int, samples: list[str]) -> None:
    """Atomically (temporary file, then rename), so a reader never sees half a cache."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".tmp", dir=cache.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            head = {"model": fingerprint, "count": count, "sampling": "default", "seed": SAMPLE_SEED}
            handle.write(json.dumps(head) + "\n")
            handle.writelines(json.dumps({"text": s}, ensure_ascii=False) + "\n" for s in samples)
        os.chmod(tmp, 0o644)
        os.replace(tmp, cache)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_samples(
    loaded: LoadedModel, checkpoint: str | Path, cache: str | Path | None = None,
    count: int = REPLAY_SAMPLES, say: Say | None = None,
) -> tuple[Path, list[str]]:  # fmt: skip
    """(cache file, samples): read from the cache beside ``checkpoint``, else drawn and cached there."""
    cache = Path(cache) if cache else cache_path_for(checkpoint)
    fingerprint = file_fingerprint(checkpoint)
    samples = _read_cache(cache, fingerprint, count)
    if samples is None:
        if say:
            say(f"drawing {count} samples of {Path(checkpoint).name} (once; cached in {cache.name})")
        samples = draw_samples(loaded, count)
        try:
            _write_cache(cache, fingerprint, count, samples)
        except OSError as exc:  # a read-only folder: this run still has its samples
            if say:
                say(f"could not cache the samples in {cache} ({exc}); the next run draws them again")
    return cache, samples


def base_text(
    parent: LoadedModel,
    checkpoint: str | Path,
    *,
    corpus: str | None = None,
    corpus_format: str | None = None,
    cache: str | Path | None = None,
    samples: int = REPLAY_SAMPLES,
    say: Say | None = None,
) -> BaseText:
    """The base text of ``parent`` (loaded from ``checkpoint``): a given corpus (which must exist), the
    one the checkpoint names if it is here, else the parent's cached samples."""
    val_fraction = parent.metadata.get("val_fraction", 0.1)
    fmt = speaker = None
    if corpus is not None:
        if not Path(corpus).is_file():
            raise CorpusError(corpus, "no such file (the base corpus given)")
        path, fmt = Path(corpus), corpus_format
    else:
        recorded = recorded_corpus(parent.metadata)
        path = None
        if recorded is not None:
            candidate = resolve_recorded(recorded[0])  # data/... from the package; absolute stays absolute
            if candidate.is_file():
                path, (_, fmt, speaker) = candidate, recorded
            elif say:
                say(f"the base corpus {recorded[0]} is not on this machine; using the model's own samples")
    if path is not None:
        quotes = load_quotes(path, fmt, speaker=speaker, vocab=parent.vocab)
        train, val = split_quotes(quotes, val_fraction)
        return BaseText("corpus", str(path.resolve()), train, val, fmt, speaker)
    where, drawn = cached_samples(parent, checkpoint, cache, samples, say)
    train, val = split_quotes(drawn, 0.1)
    return BaseText("samples", str(where.resolve()), train, val)
