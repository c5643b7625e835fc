"""training.cli_support: how a checkpoint names its corpus, and finding the file again from any install."""

from __future__ import annotations

from pathlib import Path

from model.bundled import DATA_DIR, SAMPLE_CORPUS
from training.cli_support import SOURCE_ROOT, repo_relative, resolve_recorded


def test_bundled_corpus_is_named_by_the_package_not_the_folder():
    assert repo_relative(SAMPLE_CORPUS) == "data/sample_quotes.txt"
    assert resolve_recorded("data/sample_quotes.txt") == SAMPLE_CORPUS == DATA_DIR / "sample_quotes.txt"


def test_a_corpus_beside_the_sources_travels_and_one_elsewhere_is_absolute(tmp_path: Path):
    beside = SOURCE_ROOT.parent / "shared" / "data" / "tiny.txt"
    assert repo_relative(beside) == str(Path("..") / "shared" / "data" / "tiny.txt")
    assert resolve_recorded(repo_relative(beside)).resolve() == beside.resolve()
    elsewhere = tmp_path / "corpus.txt"
    if not elsewhere.is_relative_to(SOURCE_ROOT.parent):
        assert repo_relative(elsewhere) == str(elsewhere.resolve())
    assert resolve_recorded(str(elsewhere)) == elsewhere
