"""A fresh clone with nothing beside it: 25 quotes added on Discord, ``!retrain``, a promoted model serving.

The repository's files (what git tracks, and new files not ignored) are copied to an empty temporary folder;
the bot runs there as ``python -m bot`` (a subprocess, so the training children are the copy's too) against
the local Discord test server. Its model is a tiny one whose checkpoint names its base corpus beside the
repository, as the bundled one once did (``../shared/data/...``; here a name no machine has, since the
package's data folder is the installed one): not there, so the run replays and is judged on the model's
own samples. Quotes hold digits, emoji, mentions, custom emoji, links and accents.
Short budgets and a wide margin: this checks that a retrain works from a bare copy, not what it learns
(``benchmarks/retrain.py`` measures that).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from model.checkpoint import save_checkpoint
from model.vocab import Vocab
from tests.discord.helpers import ask
from tests.discord_server import DiscordServer
from tests.helpers import REPO, make_tiny_model

pytestmark = [pytest.mark.discord, pytest.mark.slow]

QUOTES = [
    "Thanks <@123456789012345678> for the raid, and <@!42> for the snacks 🎮",
    "Clip it <:pog:112233445566778899>, clip it now, https://clips.example/abc?x=1",
    "Zoë says the 3rd skip is fake <a:dance:998877>, Zoë is wrong 💜",
    *[
        line
        for line in (REPO / "data" / "server_quotes.txt").read_text(encoding="utf-8").splitlines()
        if line
    ][:22],
]


def copy_repository(to: Path) -> Path:
    """The repository's tracked and unignored files, and nothing else, under ``to``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


async def test_a_fresh_clone_retrains_on_25_added_quotes_and_serves_the_new_model(
    discord_server: DiscordServer, tmp_path_factory: pytest.TempPathFactory, sample_quotes: list[str]
):
    server = discord_server
    alone = tmp_path_factory.mktemp("alone")  # the clone's parent holds nothing else
    clone = copy_repository(alone / "quotebot")
    vocab = Vocab.from_texts(sample_quotes)
    meta = {"corpus": "../nothing-beside-quotebot/tinyshakespeare.txt", "corpus_format": "play"}
    meta["val_fraction"] = 0.1
    tiny = save_checkpoint(
        clone / "data" / "models" / "tiny.pt", make_tiny_model(vocab, layers=1), vocab, meta
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "RETRAIN_", "PYTHON"))},
        **server.env(),
        "MODEL_PATH": str(tiny),
        "DEVICE": "cpu",
        "DB_PATH": str(clone / "quotebot.db"),
        "MODELS_DIR": str(clone / "models"),
        "QUOTE_COOLDOWN_SECONDS": "0",
        "ADDQUOTE_COOLDOWN_SECONDS": "0",
        "MAX_QUOTE_CHARS": "120",
        "MAX_SEED_CHARS": "60",
        "RETRAIN_MIN_QUOTES": "25",
        "RETRAIN_MINUTES": "0.05",
        "RETRAIN_TIME_LIMIT_MINUTES": "1.5",
        "RETRAIN_REPLAY_SAMPLES": "60",
        "RETRAIN_SCORE_MARGIN": "1",
        "RETRAIN_LOOP_TARGET": "1",
        "GENERATION_THREADS": "1",
        "LOG_LEVEL": "WARNING",
    }
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=clone, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await server.wait_for_session(timeout=30)
        for number, quote in enumerate(QUOTES, start=1):
            _sent, added = await ask(server, f"!addquote {quote}", user=server.admin)
            assert f"Added quote a{number}" in added.content, added.content
        _sent, left_out = await ask(server, "!retrain exclude a3", user=server.admin)
        assert "`a3` is left out of retrains" in left_out.content
        _sent, preview = await ask(server, "!retrain preview", user=server.admin)
        assert "learn from 24 quotes: 0 favoured and 24 added (1 left out" in preview.content, preview.content
        assert "`a1` Thanks @someone for the raid, and @someone for the snacks 🎮" in preview.content
        assert "`a2` Clip it :pog:, clip it now," in preview.content and "https" not in preview.content
        _sent, back = await ask(server, "!retrain include a3", user=server.admin)
        assert "`a3` is back in retrains" in back.content
        _sent, status = await ask(server, "!retrain", user=server.admin)
        ends = ("now serves", "failed", "rejected", "No retrain")
        await server.wait_for(
            lambda: any(end in status.content for end in ends) or None, timeout=120, what="the run's end"
        )
        assert "version 1 now serves this server" in status.content, status.content
        assert "samples of the current model" in status.content  # the base text it was judged on
        _sent, info = await ask(server, "!model")
        assert "the previous model's own samples" in info.content, info.content
        _sent, quote = await ask(server, "!quote Chat,")
        assert quote.content.startswith("Chat,")
    finally:
        if bot.returncode is None:
            bot.send_signal(signal.SIGTERM)
        try:
            stderr = (await asyncio.wait_for(bot.communicate(), 30))[1].decode(errors="replace")
        except asyncio.TimeoutError:
            bot.kill()
            stderr = "(killed)"
    assert "Traceback" not in stderr, stderr[-3000:]
    # Everything the run wrote is inside the clone: the version, and the tiny model's samples beside it.
    assert (clone / "models" / f"guild-{server.guild.id}" / "v1.pt").is_file()
    assert (clone / "models" / "bundled" / "tiny.replay.jsonl").is_file()
    assert sorted(p.name for p in alone.iterdir()) == ["quotebot"]
    with sqlite3.connect(clone / "quotebot.db") as db:
        stored = [row[0] for row in db.execute("SELECT model_version FROM quotes")]
        trained = db.execute("SELECT trained_on FROM model_versions").fetchone()[0]
    assert stored == ["version-1"]
    assert '"replay_source": "samples"' in trained
