"""!retrain, !model and !rollback end to end: the real bot against the local Discord-compatible server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.storage.model_versions import ModelVersions
from bot.storage.store import Store
from model.checkpoint import save_checkpoint
from model.vocab import Vocab
from tests.discord.helpers import ask, bot_settings, running
from tests.discord_server import DiscordServer
from tests.helpers import fill_store, make_tiny_model

pytestmark = pytest.mark.discord


@pytest.fixture
def base_checkpoint(tmp_path: Path, sample_vocab: Vocab) -> Path:
    """A tiny model that names the sample corpus as its own: the base text a run is judged on."""
    meta = {"corpus": "data/sample_quotes.txt", "val_fraction": 0.1}
    return save_checkpoint(tmp_path / "base.pt", make_tiny_model(sample_vocab, layers=1), sample_vocab, meta)


async def stored_quote(bot, message_id: int):
    """The stored quote of a reply (the cog records the message id just after sending it)."""
    for _ in range(100):
        stored = await bot.store.quote_by_message(message_id)
        if stored is not None:
            return stored
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} was never recorded as a quote")


def settings_for(server: DiscordServer, checkpoint: Path, tmp_path: Path, **extra: str):
    """Quick runs (a 2-second training budget) that any tiny model passes, in this test's own folders."""
    env = {
        "DB_PATH": str(tmp_path / "bot.db"),
        "MODELS_DIR": str(tmp_path / "models"),
        "QUOTE_COOLDOWN_SECONDS": "0",
        "RETRAIN_MIN_QUOTES": "5",
        "RETRAIN_MINUTES": "0.03",
        "RETRAIN_TIME_LIMIT_MINUTES": "1.5",
        "RETRAIN_SCORE_MARGIN": "1",
        "RETRAIN_LOOP_TARGET": "1",
        "SYNC_COMMANDS": "false",
        **extra,
    }
    return bot_settings(server, checkpoint, **env)


async def test_members_without_manage_server_cannot_change_the_model(
    discord_server: DiscordServer, base_checkpoint: Path, tmp_path: Path
):
    server = discord_server
    async with running(settings_for(server, base_checkpoint, tmp_path)) as bot:
        for command in ("!retrain", "!retrain cancel", "!rollback"):
            _sent, reply = await ask(server, command)  # server.member: no Manage Server
            assert "only members with the Manage Server permission" in reply.content, command
        assert await ModelVersions(bot.store, tmp_path / "models").latest_run(server.guild.id) is None
        # Anyone may look.
        _sent, reply = await ask(server, "!model")
        assert "bundled model (base.pt)" in reply.content
        _sent, reply = await ask(server, "!retrain status")
        assert "No retrain has run" in reply.content
        # An admin with too few quotes is told why, in the one status message.
        _sent, reply = await ask(server, "!retrain", user=server.admin)
        await server.wait_for(lambda: "No retrain" in reply.content or None, timeout=10, what="the refusal")
        assert "not enough quotes" in reply.content and "needs 5" in reply.content


@pytest.mark.slow
async def test_retrain_edits_one_status_message_then_model_and_rollback(
    discord_server: DiscordServer, base_checkpoint: Path, tmp_path: Path, sample_quotes: list[str]
):
    server = discord_server
    guild = server.guild.id
    store = await Store.open(tmp_path / "bot.db")
    await fill_store(store, sample_quotes, guild=guild)
    await store.close()
    async with running(settings_for(server, base_checkpoint, tmp_path)) as bot:
        _sent, status = await ask(server, "!retrain", user=server.admin)
        ends = ("now serves", "failed", "rejected")
        await server.wait_for(
            lambda: any(end in status.content for end in ends) or None, timeout=60, what="the run's end"
        )
        assert "version 1 now serves this server" in status.content, status.content
        assert len(status.previous_contents) >= 2  # started, training..., scoring..., done: one message
        assert any("Retrain #1 started" in text for text in status.previous_contents)
        assert server.calls("PATCH", "/channels/{channel_id}/messages/{message_id}")
        assert len(server.calls("POST", "/channels/{channel_id}/messages")) == 1  # no other message
        # Quotes in this server now come from its own model, and the store records which.
        _sent, quote = await ask(server, "!quote Hey,")
        assert (await stored_quote(bot, quote.id)).model_version == "version-1"
        _sent, info = await ask(server, "!model")
        assert "version 1, fine-tuned from the bundled model" in info.content
        assert "20 favoured and 6 added quotes" in info.content, info.content
        assert [a.filename for a in info.attachments] == ["loss-curve.png"]
        _sent, status_now = await ask(server, "!retrain status")
        assert "version 1 now serves" in status_now.content
        _sent, back = await ask(server, "!rollback", user=server.admin)
        assert "the bundled model now serves this server (version 1 stays on disk)" in back.content
        _sent, quote = await ask(server, "!quote Hey,")
        assert (await stored_quote(bot, quote.id)).model_version == "default"
        _sent, again = await ask(server, "!rollback", user=server.admin)
        assert "already uses the bundled model" in again.content


async def test_a_run_left_running_by_a_stopped_bot_is_interrupted_at_start_up(
    discord_server: DiscordServer, base_checkpoint: Path, tmp_path: Path
):
    server = discord_server
    old_status = await server.user_sends(server.bot_user, "Retrain #1 training: step 40.")  # its message
    store = await Store.open(tmp_path / "bot.db")
    versions = ModelVersions(store, tmp_path / "models")
    run = await versions.start_run(server.guild.id, server.admin.id, server.channel.id, max_running=1)
    await versions.set_status_message(run.id, server.channel.id, old_status.id)
    await store.close()
    async with running(settings_for(server, base_checkpoint, tmp_path)) as bot:
        await server.wait_for(
            lambda: "was interrupted" in old_status.content or None, timeout=10, what="the note"
        )
        assert (await ModelVersions(bot.store, tmp_path / "models").run(run.id)).status == "interrupted"
        _sent, reply = await ask(server, "!retrain status")
        assert "interrupted" in reply.content


async def test_the_model_commands_as_slash_commands(
    discord_server: DiscordServer, base_checkpoint: Path, tmp_path: Path
):
    server = discord_server
    async with running(settings_for(server, base_checkpoint, tmp_path, SYNC_COMMANDS="true")):
        start = await server.run_slash_command(server.admin, "retrain start")
        note = await server.wait_for_message(timeout=10)
        assert "next message shows how it goes" in note.content and start.private
        status = await server.wait_for_message(server.channel, timeout=10)  # an ordinary channel message
        assert status.interaction_id is None
        await server.wait_for(lambda: "No retrain" in status.content or None, timeout=10, what="the refusal")
        assert "not enough quotes" in status.content

        cancel = await server.run_slash_command(server.admin, "retrain cancel")
        refusal = await server.wait_for_message(timeout=10)
        assert (
            cancel.private and cancel.response_type == 4 and refusal.content
        )  # nothing to cancel, privately
        status_now = await server.run_slash_command(server.admin, "retrain status")
        assert "No retrain" in (await server.wait_for_message(timeout=10)).content
        assert status_now.response_type == 4
        model = await server.run_slash_command(server.member, "model")
        assert "bundled model (base.pt)" in (await server.wait_for_message(timeout=10)).content
        assert not model.private
        back = await server.run_slash_command(server.admin, "rollback")
        assert "already uses the bundled model" in (await server.wait_for_message(timeout=10)).content
        assert back.private  # a refusal, so only the admin sees it


async def test_cooldown_and_bad_quote_ids_get_clear_answers(
    discord_server: DiscordServer, base_checkpoint: Path, tmp_path: Path, sample_quotes: list[str]
):
    server = discord_server
    store = await Store.open(tmp_path / "bot.db")
    await fill_store(store, sample_quotes, guild=server.guild.id)
    versions = ModelVersions(store, tmp_path / "models")
    run = await versions.start_run(server.guild.id, server.admin.id, server.channel.id, max_running=1)
    await versions.finish_run(run.id, "rejected", "Retrain #1 rejected.", {})
    await store.close()
    settings = settings_for(server, base_checkpoint, tmp_path, RETRAIN_COOLDOWN_MINUTES="90")
    async with running(settings):
        _sent, status = await ask(server, "!retrain", user=server.admin)
        await server.wait_for(lambda: "No retrain" in status.content or None, timeout=10, what="the refusal")
        assert (
            "retrained less than 90 minutes ago" in status.content
            and "can start in 1 h 30 min" in status.content
        )
        _sent, preview = await ask(server, "!retrain preview", user=server.admin)
        assert "cooldown ends in 1 h 30 min" in preview.content and "`f1`" in preview.content
        _sent, bad = await ask(server, "!retrain exclude 12", user=server.admin)
        assert "`a12` (added)" in bad.content
        _sent, other = await ask(server, "!retrain exclude a999", user=server.admin)
        assert "no source quote with that id" in other.content
        _sent, member = await ask(server, "!retrain preview")
        assert "Manage Server" in member.content
