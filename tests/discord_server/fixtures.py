"""Pytest fixtures for the Discord-compatible test server.

Import them explicitly in a test module (tests/conftest.py stays as it is)::

    from tests.discord_server.fixtures import discord_server_fixture, use_discord_server_fixture  # noqa: F401

and ask for them by their fixture names, ``discord_server`` and ``use_discord_server``. (The functions have
other names so that a test's ``discord_server`` argument does not shadow the import: ruff's F811.)

``discord_server`` starts a fresh server per test and, on teardown, fails the test if any request hit a
route the server does not know or broke the protocol. ``use_discord_server`` also points discord.py's
module-level URLs at it, for tests that build a ``discord.Client`` directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import discord.gateway
import discord.http
import pytest
import yarl

from .server import DiscordServer


@contextlib.contextmanager
def point_discord_py_at(server: DiscordServer) -> Iterator[DiscordServer]:
    """Sets ``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY`` to the server, restoring them after."""
    with restored_discord_py_urls():
        discord.http.Route.BASE = server.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
        yield server


@contextlib.contextmanager
def restored_discord_py_urls() -> Iterator[None]:
    """Puts back whatever discord.py's URLs were, whoever changed them in between (e.g. the bot itself)."""
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        yield
    finally:
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture(name="discord_server")
async def discord_server_fixture() -> AsyncIterator[DiscordServer]:
    """A started server with the default world (guild, #general, bot, admin, member, owner)."""
    server = DiscordServer()
    with restored_discord_py_urls():
        async with server:
            yield server
    assert not server.unknown_routes, (
        f"requests to routes the test server does not know: {server.unknown_routes}"
    )
    assert not server.protocol_errors, "protocol errors:\n" + "\n".join(server.protocol_errors)


@pytest.fixture(name="use_discord_server")
async def use_discord_server_fixture(discord_server: DiscordServer) -> AsyncIterator[DiscordServer]:
    """``discord_server`` with discord.py pointed at it for the duration of the test."""
    with point_discord_py_at(discord_server):
        yield discord_server
