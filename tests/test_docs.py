"""The documentation keeps up with the code: every setting is in .env.example and the README, and back."""

import re

from bot.settings import PARSERS, load_settings
from tests.helpers import REPO


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_env_example_lists_every_setting_with_a_comment_and_nothing_else():
    listed = env_example()
    assert set(listed) == set(PARSERS)
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            assert lines[index - 1].startswith("# "), f"{line.split('=')[0]} needs a comment above it"


def test_env_example_values_are_valid_settings():
    values = {key: value for key, value in env_example().items() if value}
    load_settings(values, env_file=None)  # raises, naming the variable, if a documented default is wrong


def test_readme_documents_every_setting():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name for name in PARSERS if f"`{name}`" not in readme]
    assert missing == []


def test_the_voice_benchmark_fine_tunes_with_the_quick_starts_recipe():
    from benchmarks.voice import RECOMMENDED_FINETUNE

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick_start = r"python -m training finetune --from data/models/default.pt (.*?)--minutes"
    recipe = re.search(quick_start, readme, re.S)
    flags = recipe.group(1).replace("\\", " ").split() if recipe else []
    assert flags == ["--corpus", "data/sample_quotes.txt", *RECOMMENDED_FINETUNE]
