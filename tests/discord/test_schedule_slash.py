"""``/schedule`` end to end: typed options, rhythm choices, time zone autocomplete, the channel option."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cogs.schedule_slash import matching_zones
from tests.discord.helpers import bot_settings, running
from tests.discord_server import DiscordServer, Perm

pytestmark = pytest.mark.discord


def test_zone_suggestions_start_with_what_was_typed():
    assert matching_zones("europe/par")[0] == "Europe/Paris"
    assert "America/New_York" in matching_zones("new york")  # spaces typed, underscores stored
    assert len(matching_zones("")) == 25 and matching_zones("")[0] == "UTC"
    assert matching_zones("no such place") == []


async def test_schedule_add_list_remove_resume_by_slash(
    discord_server: DiscordServer, mention_checkpoint: Path, tmp_path: Path
):
    server = discord_server
    settings = bot_settings(server, mention_checkpoint, DB_PATH=str(tmp_path / "bot.db"))
    async with running(settings):

        async def run(name: str, options: dict, user=None) -> str:
            record = await server.run_slash_command(user or server.admin, name, options)
            reply = await server.wait_for_message(timeout=10)
            assert record.private, reply.content  # /schedule answers only the admin
            return reply.content

        suggested = await server.autocomplete(
            server.admin, "schedule add", {"rhythm": "daily", "timezone": "Europe/Pa"}, focused="timezone"
        )
        choices = await server.wait_for(lambda: suggested.choices, what="the time zone suggestions")
        assert choices[0] == {"name": "Europe/Paris", "value": "Europe/Paris"} and len(choices) <= 25

        every = await run(
            "schedule add", {"rhythm": "every", "interval": "6h", "channel": server.channel, "seed": "Hey,"}
        )
        assert every.startswith("Scheduled #1") and "every 6h" in every and 'seed "Hey,"' in every
        daily = {"rhythm": "daily", "time": "09:00", "timezone": "Europe/Paris", "channel": server.channel}
        assert "daily 09:00 Europe/Paris" in await run("schedule add", daily)
        assert "needs an interval" in await run(
            "schedule add", {"rhythm": "every", "channel": server.channel}
        )
        assert "shortest interval" in await run(
            "schedule add", {"rhythm": "every", "interval": "5m", "channel": server.channel}
        )
        zone = await run("schedule add", {**daily, "timezone": "Mars/Olympus"})
        assert "unknown time zone `Mars/Olympus`" in zone

        quiet = await server.create_text_channel("quiet")
        await server.set_role_permissions(server.world.bot_role, Perm.VIEW_CHANNEL)
        await server.set_role_permissions(server.guild.everyone_role, Perm.VIEW_CHANNEL)
        assert "I can't send messages in" in await run("schedule add", {**daily, "channel": quiet})

        listing = await run("schedule list", {})
        assert "(2 of 10)" in listing and "#1 ·" in listing and "#2 ·" in listing
        assert (await run("schedule remove", {"schedule_id": 1})).startswith("Removed #1")
        assert "no schedule with id 1" in await run("schedule remove", {"schedule_id": 1})
        assert "is not paused" in await run("schedule resume", {"schedule_id": 2})
