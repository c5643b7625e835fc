"""PostgreSQL for the tests: one real server per session (the ``pgserver`` package ships its binaries), a
fresh schema per test, and ``store_target``, which runs a store test on SQLite and on PostgreSQL.

Registered in ``tests/conftest.py`` as a plugin. Where PostgreSQL cannot start (pgserver missing, a
platform without its binaries), the PostgreSQL runs are skipped with the reason, never silently passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import asyncpg
import pytest

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session, stopped at its end."""
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on CI machines
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        pytest.skip("PostgreSQL tests need the pgserver package (make setup-dev installs it)")
    # A short folder outside pytest's (which only root may enter; pgserver runs the server as its own
    # user): the server's Unix socket lives there, and socket paths are limited to ~100 bytes.
    folder = Path(tempfile.mkdtemp(prefix="quotebot-pg-"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(folder, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises plain errors with initdb's or pg_ctl's output
        pytest.skip(f"PostgreSQL could not start here: {type(exc).__name__}: {exc}")
    yield server
    # Immediate shutdown: the data is thrown away anyway, and pg_ctl's orderly stop took 15 s here.
    pid = server.get_pid()
    with contextlib.suppress(ProcessLookupError, TypeError):
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):  # gone within a second or so; then pgserver's cleanup has nothing to stop
            os.kill(pid, 0)
            time.sleep(0.05)
    server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def new_database(server) -> str:
    """A fresh, empty schema on the server; a URL whose connections use it (asyncpg passes unknown URL
    parameters such as ``search_path`` to the server). A schema takes milliseconds; a database, a second."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    base = server.get_uri()

    async def create() -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f"CREATE SCHEMA {name}")
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{base}{'&' if '?' in base else '?'}search_path={name}"


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a fresh, empty schema (the whole server goes at the session's end)."""
    return new_database(postgres_server)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which store backend a parametrised test runs on."""
    return request.param


@pytest.fixture
def store_target(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where ``Store.open`` opens the test's store: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        return tmp_path / "data" / "quotes.db"  # a folder that does not exist yet: open() makes it
    return request.getfixturevalue("postgres_url")


def sqlite_only(backend: str, why: str) -> None:
    """Skip the PostgreSQL run of a test about SQLite's own machinery (file locks, the file itself)."""
    if backend != "sqlite":
        pytest.skip(f"SQLite only: {why}")
