"""The layer rules of the README's architecture section, checked on the source: who may import whom, no
cycles, small modules. Each rule names the file that breaks it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("bot", "model", "training")
DISCORD_FREE = ("bot.quotes", "bot.serving", "bot.storage", "bot.schedules", "bot.retrain")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported: module-level imports, not those inside functions or
    ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def all_imports(path: Path) -> set[str]:
    """Every module named in an import anywhere in the file, functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_model_imports_nothing_of_bot_or_training():
    for name, path in modules().items():
        if name.startswith("model"):
            bad = {m for m in all_imports(path) if m.split(".")[0] in ("bot", "training")}
            assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_training_imports_nothing_of_bot_at_import_time():
    for name, path in modules().items():
        if name.startswith("training"):
            bad = {m for m in top_level_imports(path) if m.split(".")[0] == "bot"}
            assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_the_discord_free_packages_import_no_discord():
    for name, path in modules().items():
        if name.startswith(DISCORD_FREE):
            bad = {m for m in all_imports(path) if m.split(".")[0] == "discord"}
            assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


@pytest.mark.slow
def test_importing_the_quote_service_loads_no_discord():
    """Checked in a fresh interpreter, so an indirect import (through another bot module) counts too."""
    code = (
        "import sys, bot.quotes.service, bot.schedules.scheduler, bot.retrain.retrainer, bot.storage.store; "
        "print(sorted(m for m in sys.modules if m == 'discord' or m.startswith('training.trainer')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # no discord, and the retrainer does not load the trainer


def test_no_import_cycles():
    known = modules()
    graph = {
        name: {m for m in top_level_imports(path) if m in known and m != name} for name, path in known.items()
    }
    # A package's __init__ is imported before any of its modules; that edge is not a cycle of ours.
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_modules_are_small():
    for path in modules().values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path.relative_to(REPO)} has {lines} lines (at most 400)"


def test_bot_keeps_at_most_twelve_modules_at_its_top():
    top = sorted(p.name for p in (REPO / "bot").glob("*.py"))
    assert len(top) <= 12, top
