"""training.base_text: the base corpus when it is here, else the model's own samples, cached beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, read_checkpoint, save_checkpoint
from tests.helpers import REPO, make_tiny_model
from training.base_text import base_text, recorded_corpus
from training.corpus import CorpusError
from training.metrics import replay_cache_path_for as cache_path_for


@pytest.fixture
def absent(tmp_path: Path, sample_vocab) -> Path:
    """A tiny model naming a corpus beside the repository, which no fresh clone has."""
    meta = {"corpus": "../shared/data/nowhere.txt", "val_fraction": 0.1}
    return save_checkpoint(tmp_path / "m.pt", make_tiny_model(sample_vocab, layers=1), sample_vocab, meta)


def test_a_corpus_recorded_relative_to_the_repository_is_used_when_here(tmp_path: Path, sample_vocab):
    meta = {"corpus": "data/sample_quotes.txt", "val_fraction": 0.1}
    path = save_checkpoint(tmp_path / "m.pt", make_tiny_model(sample_vocab, layers=1), sample_vocab, meta)
    base = base_text(load_checkpoint(path), path)
    assert base.kind == "corpus" and base.where == str(REPO / "data" / "sample_quotes.txt")
    assert base.train and base.val and not set(base.train) & set(base.val)
    assert base.metadata() == {"replay_source": "corpus", "base_corpus": "data/sample_quotes.txt"}
    assert not cache_path_for(path).exists()


def test_absent_corpus_means_samples_drawn_once_and_cached_beside_the_model(absent: Path):
    said: list[str] = []
    base = base_text(load_checkpoint(absent), absent, samples=40, say=said.append)
    assert base.kind == "samples" and base.where == str(absent.with_name("m.replay.jsonl"))
    assert len(base.train) + len(base.val) == 40 and base.val
    assert any("not on this machine" in s for s in said) and any("drawing 40" in s for s in said)
    again = base_text(load_checkpoint(absent), absent, samples=40, say=said.append)
    assert again == base and sum("drawing" in s for s in said) == 1  # the cache, not a new draw
    head = json.loads(Path(base.where).read_text(encoding="utf-8").splitlines()[0])
    assert head["count"] == 40 and head["sampling"] == "default"


def test_a_changed_model_or_a_damaged_cache_is_drawn_again(absent: Path, sample_vocab):
    base_text(load_checkpoint(absent), absent, samples=20)
    cache = cache_path_for(absent)
    cache.write_text("not json\n", encoding="utf-8")
    said: list[str] = []
    base_text(load_checkpoint(absent), absent, samples=20, say=said.append)
    assert any("drawing" in s for s in said)
    other = make_tiny_model(sample_vocab, seed=5, layers=1)  # new weights at the same path
    save_checkpoint(absent, other, sample_vocab, {"corpus": "../shared/data/nowhere.txt"})
    said.clear()
    base_text(load_checkpoint(absent), absent, samples=20, say=said.append)
    assert any("drawing" in s for s in said)


def test_a_corpus_given_must_exist(absent: Path, tmp_path: Path):
    with pytest.raises(CorpusError, match="no such file"):
        base_text(load_checkpoint(absent), absent, corpus=str(tmp_path / "gone.txt"))


def test_a_fine_tuned_model_names_its_base_corpus_never_its_server_quotes():
    assert recorded_corpus({"corpus": "x.db", "parent": "p.pt"}) is None
    assert recorded_corpus({"corpus": "x.db", "parent": "p.pt", "base_corpus": "b.txt"})[0] == "b.txt"
    assert recorded_corpus({"corpus": "data/a.txt", "corpus_format": "play"}) == ("data/a.txt", "play", None)


def test_the_bundled_model_names_its_corpus_inside_the_repository():
    meta = read_checkpoint(DEFAULT_CHECKPOINT)["metadata"]
    assert meta["corpus"] == "data/tinyshakespeare.txt"
    assert not meta["corpus"].startswith("..") and "shared" not in meta["train_command"]
    assert DEFAULT_CHECKPOINT.stat().st_size < 20 * 1024 * 1024
