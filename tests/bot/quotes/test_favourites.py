"""bot/quotes/favourites.py on a real SQLite file: reaction votes, top, quote info, added quotes,
forgetting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.quotes.favourites import (
    TOP_MAX,
    AddQuoteLimits,
    Favourites,
    FavouritesError,
    NotAllowedError,
    NotAQuoteError,
    VoteChange,
    can_add_quotes,
    emoji_matches,
    jump_link,
    show_emoji,
)
from bot.storage.store import Store, StoreInputError
from tests.helpers import cells_holding

GUILD, CHANNEL, ASKER = 10, 20, 30
OTHER_GUILD = 11
PRIVATE = 21  # a channel most members cannot read


def READ_ALL(channel_id: int) -> bool:
    return True


def MEMBER_READS(channel_id: int) -> bool:
    return channel_id != PRIVATE


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "quotes.db") as store:
        yield store


@pytest.fixture
def favourites(store: Store) -> Favourites:
    return Favourites(store)


async def post(
    store: Store, message_id: int, text: str = "Hey, the coffee.", guild: int | None = GUILD
) -> int:
    """A quote the bot posted as ``message_id``."""
    quote_id = await store.add_quote(
        guild_id=guild,
        channel_id=CHANNEL,
        requester_id=ASKER,
        seed=text[:4],
        text=text,
        settings={"temperature": 0.7, "max_chars": 120, "rng_seed": 42, "stopped": "end", "min_p": 0.05},
        model_version="default",
    )
    await store.set_quote_message(quote_id, CHANNEL, message_id)
    return quote_id


async def react(favourites: Favourites, message_id: int, user: int, emoji: str = "⭐", **kw) -> VoteChange:
    emoji_id = int(emoji.rsplit(":", 1)[1]) if ":" in emoji else None
    name = emoji.split(":")[0] if ":" in emoji else emoji
    args = {"guild_id": GUILD, "by_bot": False, "added": True, **kw}
    return await favourites.reaction(
        message_id=message_id, user_id=user, emoji_id=emoji_id, emoji_name=name, **args
    )


# -- pure rules --


def test_emoji_matching():
    assert emoji_matches("⭐", None, "⭐")
    assert emoji_matches("⭐", None, "⭐\ufe0f") and emoji_matches("⭐\ufe0f", None, "⭐")
    assert not emoji_matches("⭐", None, "👍")
    assert not emoji_matches("⭐", 5, "⭐")  # a custom emoji named like the star is not the star
    assert emoji_matches("pat:123", 123, "renamed")  # custom emoji by id: a rename does not matter
    assert not emoji_matches("pat:123", 124, "pat") and not emoji_matches("pat:123", None, "pat")
    assert show_emoji("pat:123") == "<:pat:123>" and show_emoji("⭐") == "⭐"


def test_jump_links():
    assert jump_link(1, 2, 3) == "https://discord.com/channels/1/2/3"
    assert jump_link(None, 2, 3) == "https://discord.com/channels/@me/2/3"
    assert jump_link(1, 2, None) is None


def test_who_may_add_quotes():
    assert can_add_quotes(True, [], None)
    assert can_add_quotes(False, [5, 77], 77)
    assert not can_add_quotes(False, [5, 78], 77)
    assert not can_add_quotes(False, [5], None)  # no role chosen: Manage Server only


async def test_the_adder_role_is_chosen_by_id_per_server(favourites: Favourites, store: Store):
    assert not await favourites.may_add_quotes(GUILD, False, [77])
    reply = await favourites.set_adder_role(GUILD, 77, "Quote **Adder**")
    assert "Quote \\*\\*Adder\\*\\*" in reply and "by id" in reply
    assert await favourites.may_add_quotes(GUILD, False, [1, 77])
    assert not await favourites.may_add_quotes(GUILD, False, [78])  # another role, whatever its name
    assert not await favourites.may_add_quotes(GUILD + 1, False, [77])  # per server
    assert await favourites.may_add_quotes(GUILD, True, [])
    assert "only members with Manage Server" in await favourites.set_adder_role(GUILD, None)
    assert not await favourites.may_add_quotes(GUILD, False, [77])


# -- votes --


async def test_star_reactions_vote_and_unvote(favourites: Favourites, store: Store):
    quote_id = await post(store, message_id=100)
    assert await react(favourites, 100, user=1) is VoteChange.ADDED
    assert await react(favourites, 100, user=1) is VoteChange.UNCHANGED  # a repeated event counts once
    assert await react(favourites, 100, user=2, emoji="⭐\ufe0f") is VoteChange.ADDED
    assert await store.vote_count(quote_id) == 2
    assert await react(favourites, 100, user=1, added=False) is VoteChange.REMOVED
    assert await react(favourites, 100, user=1, added=False) is VoteChange.UNCHANGED
    assert await store.vote_count(quote_id) == 1


async def test_a_requesters_own_star_is_not_a_vote(favourites: Favourites, store: Store):
    quote_id = await post(store, message_id=100)  # asked for by ASKER
    assert await react(favourites, 100, user=ASKER) is VoteChange.IGNORED
    assert await store.vote_count(quote_id) == 0
    # Even an own vote stored before this rule (or by another path) makes nothing favoured.
    await store.add_vote(quote_id, ASKER)
    assert "No favourites yet" in await favourites.top(GUILD, can_read=READ_ALL)
    assert await store.favoured_and_source_quotes(GUILD) == []
    assert "0 votes" in await favourites.info(100, GUILD, CHANNEL, READ_ALL)
    # A vote by anyone else counts, once.
    assert await react(favourites, 100, user=ASKER + 1) is VoteChange.ADDED
    (favoured,) = await store.favoured_and_source_quotes(GUILD)
    assert favoured.votes == 1 and "**1**" in await favourites.top(GUILD, can_read=READ_ALL)
    # Removing one's own reaction still removes one's own old vote.
    assert await react(favourites, 100, user=ASKER, added=False) is VoteChange.REMOVED


async def test_bots_other_emoji_other_messages_and_other_guilds_are_ignored(
    favourites: Favourites, store: Store
):
    quote_id = await post(store, message_id=100)
    assert await react(favourites, 100, user=1, by_bot=True) is VoteChange.IGNORED
    assert await react(favourites, 100, user=1, emoji="👍") is VoteChange.IGNORED
    assert await react(favourites, 101, user=1) is VoteChange.IGNORED  # not a stored quote
    assert await react(favourites, 100, user=1, guild_id=GUILD + 1) is VoteChange.IGNORED
    assert await store.vote_count(quote_id) == 0


async def test_a_custom_favourite_emoji(favourites: Favourites, store: Store):
    quote_id = await post(store, message_id=100)
    reply = await favourites.set_favourite_emoji(GUILD, "<:pat:555>")
    assert "<:pat:555>" in reply
    assert await store.get_favourite_emoji(GUILD) == "pat:555"
    assert await react(favourites, 100, user=1) is VoteChange.IGNORED  # the star no longer votes
    assert await react(favourites, 100, user=1, emoji="renamed:555") is VoteChange.ADDED
    assert await store.vote_count(quote_id) == 1
    # Another Favourites on the same file (a restart) reads the emoji from the store.
    assert await Favourites(store).favourite_emoji(GUILD) == "pat:555"
    with pytest.raises(StoreInputError, match="not an emoji"):
        await favourites.set_favourite_emoji(GUILD, "star")
    assert await favourites.favourite_emoji(GUILD) == "pat:555"  # a refused emoji changes nothing


# -- !top and !quoteinfo --


async def test_top_lists_votes_and_links_most_first(favourites: Favourites, store: Store):
    assert "No favourites yet" in await favourites.top(GUILD, can_read=READ_ALL)
    await post(store, 100, "One vote here.")
    await post(store, 101, "Two votes here.")
    await post(store, 102, "No votes here.")
    for message, users in ((100, [1]), (101, [1, 2])):
        for user in users:
            await react(favourites, message, user)
    text = await favourites.top(GUILD, 5, READ_ALL)
    lines = text.splitlines()
    assert len(lines) == 3 and "⭐" in lines[0]
    assert lines[1] == f"1. **2** Two votes here. https://discord.com/channels/{GUILD}/{CHANNEL}/101"
    assert lines[2].startswith("2. **1** One vote here.")
    assert "No votes" not in text
    assert len((await favourites.top(GUILD, 1, READ_ALL)).splitlines()) == 2
    for bad in (0, TOP_MAX + 1):
        with pytest.raises(FavouritesError, match=f"1 to {TOP_MAX}"):
            await favourites.top(GUILD, bad, READ_ALL)


async def test_top_fits_a_discord_message_with_long_quotes(favourites: Favourites, store: Store):
    for i in range(TOP_MAX):
        await post(store, 100 + i, f"{i} " + "very long words " * 120)
        await react(favourites, 100 + i, user=1)
    text = await favourites.top(GUILD, TOP_MAX, READ_ALL)
    assert len(text) <= 2000
    assert all("https://discord.com/channels/" in line for line in text.splitlines()[1:])


async def test_quoteinfo_shows_seed_settings_model_and_votes(favourites: Favourites, store: Store):
    quote_id = await post(store, 100, "Hey, the coffee.")
    await react(favourites, 100, user=1)
    text = await favourites.info(100, GUILD, CHANNEL, READ_ALL)
    assert f"Quote #{quote_id}: 1 vote" in text
    assert 'Seed: "Hey,"' in text
    assert "temperature 0.7" in text and "up to 120 characters" in text and "--rng 42" in text
    assert "min_p 0.05" in text and "Model: default" in text and "ended by end" in text
    with pytest.raises(NotAQuoteError):
        await favourites.info(999, GUILD, CHANNEL, READ_ALL)  # not a quote
    with pytest.raises(NotAQuoteError):
        await favourites.info(
            100, GUILD + 1, CHANNEL, READ_ALL
        )  # another server's quote: its seed stays there


async def test_top_and_quoteinfo_escape_and_strip_what_they_echo(favourites: Favourites, store: Store):
    hostile = "# Head [x](https://evil.example) **b**\u202e\u200b end"
    quote_id = await store.add_quote(
        guild_id=GUILD, channel_id=CHANNEL, requester_id=ASKER, seed=hostile, text=hostile + " more",
        settings={}, model_version="default",
    )  # fmt: skip
    await store.set_quote_message(quote_id, CHANNEL, 100)
    await react(favourites, 100, user=1)
    shown = "\\# Head \\[x](https://evil.example) \\*\\*b\\*\\* end"
    top = await favourites.top(GUILD, can_read=READ_ALL)
    assert f"1. **1** {shown} more https://" in top
    info = await favourites.info(100, GUILD, CHANNEL, READ_ALL)
    assert f'Seed: "{shown}"' in info
    for text in (top, info):
        assert "\u202e" not in text and "\u200b" not in text and "\n# " not in text


async def test_quoteinfo_in_a_direct_message_only_in_that_channel(favourites: Favourites, store: Store):
    await post(store, 100, "Hey, you.", guild=None)
    assert "Quote #" in await favourites.info(100, None, CHANNEL)
    with pytest.raises(NotAQuoteError):
        await favourites.info(100, None, CHANNEL + 1)


# -- !addquote and !forgetme --


async def test_addquote_needs_permission(favourites: Favourites, store: Store):
    with pytest.raises(NotAllowedError, match="quote-adder role"):
        await favourites.add_source_quote(GUILD, 1, "Mondays are a rumour.", allowed=False)
    assert await store.favoured_and_source_quotes(GUILD) == []
    reply = await favourites.add_source_quote(GUILD, 1, "  Mondays are a rumour. ", allowed=True)
    assert "Added quote a1" in reply and "retrain exclude a1" in reply
    (added,) = await store.favoured_and_source_quotes(GUILD)
    assert added.kind == "source" and added.text == "Mondays are a rumour."


async def test_addquote_limits_length_cooldown_and_the_servers_cap(store: Store):
    now = [100.0]
    limits = AddQuoteLimits(max_per_server=3, cooldown_seconds=5.0, max_chars=30)
    favourites = Favourites(store, limits, clock=lambda: now[0])
    add = favourites.add_source_quote
    with pytest.raises(FavouritesError, match="at most 30 characters long; this one has 31"):
        await add(GUILD, 1, "x" * 31, allowed=True)
    with pytest.raises(FavouritesError, match="nothing would be left"):
        await add(GUILD, 1, "https://example.com/x <t:1>", allowed=True)
    assert "a1" in await add(GUILD, 1, "Attempt 47 🎮, here we go", allowed=True)
    now[0] += 4.0
    with pytest.raises(FavouritesError, match="wait 1 more second before"):
        await add(GUILD, 1, "Too soon.", allowed=True)
    assert "a2" in await add(GUILD, 2, "Another member may.", allowed=True)  # the cooldown is per member
    now[0] += 1.0
    assert "a3" in await add(GUILD, 1, "Now I may.", allowed=True)
    now[0] += 10.0
    with pytest.raises(StoreInputError, match="has added 3 quotes, the most a server may add"):
        await add(GUILD, 2, "One too many.", allowed=True)
    assert "a4" in await add(OTHER_GUILD, 2, "Another server has room.", allowed=True)
    assert len(await store.favoured_and_source_quotes(GUILD)) == 3


async def test_forget_reports_counts_and_leaves_no_trace(favourites: Favourites, store: Store):
    forgetful = 777
    own = await store.add_quote(
        guild_id=GUILD,
        channel_id=CHANNEL,
        requester_id=forgetful,
        seed="Secretseed",
        text="Secretseed and then my words.",
        settings={},
        model_version="default",
    )
    await store.set_quote_message(own, CHANNEL, 300)
    unloved = await store.add_quote(
        guild_id=GUILD,
        channel_id=CHANNEL,
        requester_id=forgetful,
        seed="Lonelyseed",
        text="Lonelyseed that only they ever voted for.",
        settings={},
        model_version="default",
    )
    await store.set_quote_message(unloved, CHANNEL, 302)
    await store.add_vote(unloved, forgetful)  # own votes from before own stars were ignored
    other = await post(store, 301)
    await store.add_vote(own, forgetful)
    await react(favourites, 301, user=forgetful)
    await react(favourites, 300, user=5)
    await favourites.add_source_quote(GUILD, forgetful, "A line only they wrote.", allowed=True)
    reply = await favourites.forget(forgetful)
    assert "deleted 3 votes" in reply and "deleted 1 added quote" in reply
    assert "deleted 1 quote you asked for that nobody favoured" in reply
    assert "removed your seed from 1 quote" in reply and "unlinked you from 1 quote" in reply
    for trace in (forgetful, "A line only they wrote."):
        assert cells_holding(Path(store.path), trace) == []
    # The quote nobody else favoured is gone whole, seed and all.
    assert await store.get_quote(unloved) is None and cells_holding(Path(store.path), "Lonelyseed") == []
    # The favoured one stays as posted, with the other member's vote; its seed column is blanked.
    assert cells_holding(Path(store.path), "Secretseed") == ["quotes.text"]
    kept = await store.get_quote(own)
    assert kept is not None and kept.seed is None and kept.requester_id is None and kept.votes == 1
    assert "removed" in Favourites.describe(kept)
    assert (await store.get_quote(other)).votes == 0
    assert "nothing to delete" in await favourites.forget(forgetful)


async def test_quotes_of_a_channel_the_reader_cannot_read_are_not_shown(favourites: Favourites, store: Store):
    public = await post(store, 100, "Said in the open.")
    hidden = await store.add_quote(
        guild_id=GUILD, channel_id=PRIVATE, requester_id=ASKER, seed="Staff", text="Staff only secret.",
        settings={}, model_version="default",
    )  # fmt: skip
    await store.set_quote_message(hidden, PRIVATE, 200)
    for voter in (1, 2):
        await react(favourites, 200, user=voter)  # the private one is the most favoured
    await react(favourites, 100, user=1)
    # A member who cannot read the private channel: not listed, no link, and no quoteinfo (not even "yes").
    top = await favourites.top(GUILD, 5, MEMBER_READS)
    assert "Staff only" not in top and f"/{PRIVATE}/" not in top
    assert top.splitlines()[1].startswith("1. **1** Said in the open.")
    with pytest.raises(NotAQuoteError):
        await favourites.info(200, GUILD, CHANNEL, MEMBER_READS)
    assert "Quote #" in await favourites.info(100, GUILD, CHANNEL, MEMBER_READS)
    # Who can read it sees it; a reader who can read nothing here (the console) sees no server quote.
    assert "1. **2** Staff only secret." in await favourites.top(GUILD, 5, READ_ALL)
    assert 'Seed: "Staff"' in await favourites.info(200, GUILD, PRIVATE, READ_ALL)
    assert "Said in the open" not in await favourites.top(GUILD, 5)
    with pytest.raises(NotAQuoteError):
        await favourites.info(100, GUILD, CHANNEL)
    # In a direct message (no guild), a server's quote is never shown, private or not.
    with pytest.raises(NotAQuoteError):
        await favourites.info(200, None, PRIVATE, READ_ALL)
    assert public  # (stored)
