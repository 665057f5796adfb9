"""Shared fixtures: migrated databases on SQLite and PostgreSQL.

- `sqlite_url`: a fresh SQLite file per test, migrated to head.
- `pg_url`: a fresh PostgreSQL database per test, cloned from a template migrated once per
  session; skipped unless TEST_DATABASE_URL is set (.ci/run sets it). Each test gets its
  own database, so tests (and other people's test runs on the same server) never see each
  other's rows.
- `db_url`: parametrized over both; `database`: an open `Database` on `db_url`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from bot import logsafe
from bot.service import Coach
from bot.storage.db import Database, normalize_database_url, upgrade
from tests.chat_driver import Chat, Clock

PG_SKIP_REASON = "PostgreSQL tests need TEST_DATABASE_URL (set by .ci/run)"
# Database kind -> the fixture producing a migrated URL for it.
DB_FIXTURES = {"sqlite": "sqlite_url", "postgresql": "pg_url"}


@pytest.fixture(scope="session", autouse=True)
def _safe_logs() -> None:
    """Log records are cleaned as in production (bot/logsafe.py), so what tests capture is
    what an operator would see."""
    logsafe.install()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hipcoach.db'}"
    upgrade(url)
    return url


def _test_server_url() -> URL | None:
    raw = os.environ.get("TEST_DATABASE_URL", "").strip()
    return make_url(normalize_database_url(raw)) if raw else None


def _asyncpg_dsn(url: URL) -> str:
    # asyncpg speaks libpq-style DSNs, without SQLAlchemy's "+driver" suffix.
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(server: URL, *statements: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction; asyncpg runs each statement
    # in autocommit when no transaction is open.
    conn = await asyncpg.connect(_asyncpg_dsn(server))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[tuple[URL, str]]:
    """A database migrated to head once per session; each test gets a copy of it."""
    server = _test_server_url()
    if server is None:
        pytest.skip(PG_SKIP_REASON)
    name = _unique_name("hipcoach_tpl")
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(server.set(database=name).render_as_string(hide_password=False))
        yield server, name
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(_pg_template: tuple[URL, str]) -> Iterator[str]:
    server, template = _pg_template
    name = _unique_name("hipcoach_t")
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that failed mid-transaction may leave a pooled connection behind.
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=list(DB_FIXTURES))
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database URL, once per database kind."""
    if request.param == "postgresql" and _test_server_url() is None:
        pytest.skip(PG_SKIP_REASON)
    return str(request.getfixturevalue(DB_FIXTURES[request.param]))


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    try:
        yield db
    finally:
        await db.dispose()


# --- conversations on SQLite (files may override `clock` to start elsewhere in time) ------


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    """An open `Database` on a fresh, migrated SQLite file."""
    database = Database(sqlite_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def coach(db: Database, clock: Clock) -> Coach:
    return Coach(db, clock=clock)


@pytest.fixture
def chat(coach: Coach) -> Chat:
    return Chat(coach)


# --- counts the fault suite reports (printed at the end of every run) ----------------------

_FAULT_COUNTS = pytest.StashKey[list[str]]()


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """`fault_report("0 of 12 replies lost ...")`: a line for the "fault counts" summary."""
    lines = request.config.stash.setdefault(_FAULT_COUNTS, [])

    def report(line: str) -> None:
        lines.append(f"{request.node.name}: {line}")

    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(_FAULT_COUNTS, [])
    if lines:
        terminalreporter.write_sep("=", "fault counts")
        for line in lines:
            terminalreporter.write_line(line)
