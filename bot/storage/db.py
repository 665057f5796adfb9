"""Engine, transactions and migrations.

Every inbound event is handled inside one `Database.transaction()`: the state change, the
log rows and the dedup record commit together or not at all.

SQLite notes (the embedded default):
- SQLAlchemy, not the sqlite3 module, emits BEGIN. The stdlib's own transaction handling
  starts transactions late and silently commits around DDL, which breaks SAVEPOINTs and
  transactional migrations.
- Write transactions start with BEGIN IMMEDIATE, taking SQLite's single write lock up front.
  Two turns for the same user then queue behind each other (busy timeout) instead of both
  reading the same row and one failing with "database is locked" when it tries to write.
- Within one process, write transactions also queue on an asyncio lock before BEGIN. SQLite
  has one writer anyway; without the lock, concurrent tasks wait in SQLite's busy handler,
  which sleeps in growing steps (up to 100 ms), and under load p99 latency went to seconds
  (bench/engine_throughput.py). The busy timeout still covers other processes.
- synchronous=NORMAL with WAL: a commit no longer waits for an fsync of the WAL; the database
  cannot be corrupted by a crash, and a power loss may lose only the last commits (an OS or
  process crash loses nothing). This is SQLite's recommended setting for WAL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from bot.storage import sqlite_inline
from bot.storage.repository import Repository
from bot.storage.types import json_dumps, json_loads

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "alembic_config",
    "asyncpg_connect_args",
    "create_engine",
    "default_database_url",
    "describe_database",
    "downgrade",
    "downgrade_async",
    "normalize_database_url",
    "upgrade",
    "upgrade_async",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Long enough to ride out another process's turn or a migration; a turn is milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Connection execution option read by the SQLite "begin" hook.
_SQLITE_BEGIN_OPTION = "hipcoach_sqlite_begin"

# Arbitrary constant: serializes concurrent `db upgrade` runs (several web processes
# starting at once) on one PostgreSQL database.
_PG_MIGRATION_LOCK_KEY = 0x68697063  # "hipc"

T = TypeVar("T")

_ENGINE_LOG = logging.getLogger("sqlalchemy.engine.Engine")


def default_database_url() -> str:
    """DATABASE_URL if set, else a SQLite file `hipcoach.db` in the working directory."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return normalize_database_url(url)
    return f"sqlite+aiosqlite:///{Path.cwd() / 'hipcoach.db'}"


def normalize_database_url(url: str | URL) -> str:
    """Rewrite URLs as hosting providers hand them out to the async drivers we ship.

    `postgres://` and `postgresql://` (any sync driver) become `postgresql+asyncpg://`;
    `sqlite://` becomes `sqlite+aiosqlite://`.
    """
    parsed = make_url(str(url)) if not isinstance(url, URL) else url
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


# Query parameters that asyncpg.connect() takes as keyword arguments, with the type it wants
# (SQLAlchemy hands every URL query parameter to it unchanged, as a string).
_ASYNCPG_KEYWORDS: dict[str, Callable[[str], Any]] = {
    "ssl": lambda v: {"true": True, "false": False}.get(v.lower(), v),
    "direct_tls": lambda v: v.lower() in ("1", "true", "yes", "on"),
    "timeout": float,
    "command_timeout": float,
    "statement_cache_size": int,
    "max_cached_statement_lifetime": float,
    "max_cacheable_statement_size": int,
    "target_session_attrs": str,
    "krbsrvname": str,
    "gsslib": str,
    "passfile": str,
    "service": str,
    "servicefile": str,
}
# Read by SQLAlchemy's dialect itself (or its multi-host handling), not by asyncpg.
_SQLALCHEMY_KEYS = frozenset({"prepared_statement_cache_size", "host", "port"})
# libpq spellings asyncpg knows under another name.
_LIBPQ_RENAMES = {"connect_timeout": "timeout"}


def asyncpg_connect_args(url: str | URL) -> tuple[URL, dict[str, Any]]:
    """Split a PostgreSQL URL into what SQLAlchemy may keep and asyncpg's connect_args.

    Providers hand out libpq URLs (`?sslmode=require`, `sslrootcert=...`,
    `options=-c search_path=...`, `application_name=...`); passed through as keyword
    arguments they crash asyncpg ("unexpected keyword argument 'sslmode'"). Those go into a
    host-less DSN given as `dsn`: asyncpg parses libpq's ssl* parameters itself, sends the
    rest as startup parameters like libpq does, and the URL's host, user and database still
    come from the keyword arguments SQLAlchemy builds.
    """
    parsed = make_url(str(url)) if not isinstance(url, URL) else url
    keep: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    libpq: list[tuple[str, str]] = []
    for key, value in parsed.query.items():
        values = value if isinstance(value, tuple) else (value,)
        name = _LIBPQ_RENAMES.get(key, key)
        if key in _SQLALCHEMY_KEYS:
            keep[key] = value
        elif name in _ASYNCPG_KEYWORDS:
            connect_args[name] = _ASYNCPG_KEYWORDS[name](values[-1])
        else:
            libpq.extend((key, v) for v in values)
    if libpq:
        connect_args["dsn"] = "postgresql://?" + urlencode(libpq, quote_via=quote)
    return parsed.set(query=keep), connect_args


def describe_database(url: str | URL) -> str:
    """The database in a few words for the start-up line: kind and place, never a password."""
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite {parsed.database or ':memory:'}"
    where = parsed.host or "local socket"
    if parsed.port:
        where += f":{parsed.port}"
    tls = parsed.query.get("sslmode") or parsed.query.get("ssl")
    return f"PostgreSQL {where}/{parsed.database or ''}" + (f" (sslmode={tls})" if tls else "")


def _is_sqlite_file(url: URL) -> bool:
    database = url.database or ""
    return bool(database) and database != ":memory:" and url.query.get("mode") != "memory"


def _sqlite_driver(url: URL) -> str:
    """The SQLite driver for an engine on `url`: the inline one (bot/storage/sqlite_inline)
    for a database file, unless HIPCOACH_SQLITE_DRIVER=aiosqlite. An in-memory database
    stays on aiosqlite, as it always ran (no other process can hold its lock)."""
    chosen = os.environ.get("HIPCOACH_SQLITE_DRIVER", "inline").strip().lower()
    if chosen == "aiosqlite" or not _is_sqlite_file(url):
        return "aiosqlite"
    return sqlite_inline.DRIVER


def create_engine(url: str, *, foreign_keys: bool = True, echo: bool = False) -> AsyncEngine:
    """An async engine with the connection settings this project relies on.

    `foreign_keys=False` is for migrations only: SQLite batch migrations rebuild a table by
    copying and dropping it, and with foreign keys on, dropping `users` would cascade-delete
    every child row.
    """
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() != "sqlite":
        parsed, connect_args = asyncpg_connect_args(parsed)
        # pre_ping: long-lived web/clock processes outlive server-side idle disconnects.
        return _create_async_engine(
            parsed,
            echo=echo,
            pool_pre_ping=True,
            connect_args=connect_args,
            json_serializer=json_dumps,
            json_deserializer=json_loads,
        )

    # Plain sqlite3 on the loop's thread for a database file (bot/storage/sqlite_inline):
    # no thread hop per statement.
    parsed_for_engine = parsed.set(drivername=f"sqlite+{_sqlite_driver(parsed)}")
    engine = _create_async_engine(
        parsed_for_engine, echo=echo, json_serializer=json_dumps, json_deserializer=json_loads
    )
    wal = _is_sqlite_file(parsed)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand BEGIN/COMMIT to SQLAlchemy (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            if wal:
                # Readers no longer block the writer (health checks, exports during turns).
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "IMMEDIATE")
        if connection.dialect.driver != sqlite_inline.DRIVER:
            connection.exec_driver_sql(f"BEGIN {mode}")
            return
        raw = connection.connection.driver_connection
        assert raw is not None
        sqlite_inline.begin(raw, mode, SQLITE_BUSY_TIMEOUT_MS)

    return engine


class Database:
    """One database: an engine plus a session factory handing out repositories."""

    def __init__(self, url: str | None = None, *, echo: bool = False) -> None:
        self.url: str = normalize_database_url(url or default_database_url())
        self.engine: AsyncEngine = create_engine(self.url, echo=echo)
        self.dialect_name: str = self.engine.dialect.name
        # SQLite: in-process queue for the single writer (see the module docstring).
        self._writer: asyncio.Lock | None = None
        self._writer_loop: asyncio.AbstractEventLoop | None = None
        self._writer_task: asyncio.Task[Any] | None = None
        # Inline SQLite driver: the writer's own connection, kept between transactions.
        self._writer_connection: AsyncConnection | None = None
        self._writer_connection_loop: asyncio.AbstractEventLoop | None = None
        self._writer_connection_echo: tuple[Any, bool] = (False, False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect_name == "sqlite"

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Repository]:
        """A `Repository` inside one transaction: commit on normal exit, rollback on error.

        `readonly=True` promises the block does not write. On SQLite it then starts a
        deferred transaction that does not queue for the write lock (for /healthz, exports,
        charts); elsewhere it changes nothing.
        """
        if not self.is_sqlite or readonly:
            async with self._session(readonly) as repo:
                yield repo
            return
        task = asyncio.current_task()
        if task is not None and task is self._writer_task:
            # Nested write transaction in the same task: SQLite's own lock decides, as before.
            async with self._session(readonly) as repo:
                yield repo
            return
        async with self._writer_lock():
            self._writer_task = task
            try:
                if self.engine.dialect.driver == sqlite_inline.DRIVER:
                    async with self._write_on_own_connection() as repo:
                        yield repo
                else:
                    async with self._session(readonly) as repo:
                        yield repo
            finally:
                self._writer_task = None

    @asynccontextmanager
    async def _write_on_own_connection(self) -> AsyncIterator[Repository]:
        # Write transactions queue on the writer lock anyway, so they can share one
        # connection: no pool checkout, reset and return per transaction, and the
        # connection's busy timeout stays 0 (sqlite_inline.begin waits for another
        # process's lock off the loop). Profiled, that was most of an empty transaction's
        # ~120 us, paid twice per turn (its record, its replies' outcomes).
        connection = await self._own_writer_connection()
        repo = Repository(connection)
        try:
            async with connection.begin():
                yield repo
                await repo.flush()
        except BaseException:
            if connection.invalidated or connection.closed:
                await self._drop_writer_connection()
            raise
        finally:
            await repo.close()

    async def _own_writer_connection(self) -> AsyncConnection:
        loop = asyncio.get_running_loop()
        # A connection decides at its start whether it logs statements: one kept from before
        # an operator turned sqlalchemy.engine logging on or off is made again.
        echo = (self.engine.echo, _ENGINE_LOG.isEnabledFor(logging.INFO))
        if self._writer_connection is not None and (
            self._writer_connection_loop is not loop or self._writer_connection_echo != echo
        ):
            await self._drop_writer_connection()
        if self._writer_connection is None:
            self._writer_connection_echo = echo
            connection = await self.engine.connect()
            await connection.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            raw = (await connection.get_raw_connection()).driver_connection
            sqlite_inline.keep_for_writes(raw, SQLITE_BUSY_TIMEOUT_MS)
            self._writer_connection, self._writer_connection_loop = connection, loop
        return self._writer_connection

    async def _drop_writer_connection(self) -> None:
        connection, self._writer_connection = self._writer_connection, None
        if connection is not None:
            try:
                # Not back to the pool: its busy timeout of 0 is for the writer alone.
                await connection.invalidate()
                await connection.close()
            except Exception:  # already broken: the pool discards it
                pass

    def _writer_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer_loop is not loop:
            self._writer, self._writer_loop = asyncio.Lock(), loop
        return self._writer

    @asynccontextmanager
    async def _session(self, readonly: bool) -> AsyncIterator[Repository]:
        # A connection and its transaction; the repository makes an ORM session on it only
        # if something asks for one (the turns' hot path runs prebuilt statements only,
        # and a session's set-up, flush and commit cost more than the turn's SQL).
        async with self.engine.connect() as connection:
            if self.is_sqlite:
                # Set before BEGIN, which the "begin" hook emits with the chosen mode.
                await connection.execution_options(
                    **{_SQLITE_BEGIN_OPTION: "DEFERRED" if readonly else "IMMEDIATE"}
                )
            repo = Repository(connection)
            try:
                async with connection.begin():
                    yield repo
                    await repo.flush()
            finally:
                await repo.close()

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.transaction(readonly=True) as repo:
            await repo.ping()

    async def dispose(self) -> None:
        await self._drop_writer_connection()
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.dispose()

    def __repr__(self) -> str:
        return f"<Database {make_url(self.url).render_as_string(hide_password=True)}>"


# --- migrations -------------------------------------------------------------------------


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config that works from an installed package and any working directory.

    Built in code (no alembic.ini lookup relative to the cwd); the URL travels in
    `attributes` rather than the ini options, where '%' in passwords would be interpolated.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["url"] = normalize_database_url(url or default_database_url())
    return config


def _run_alembic(connection: Connection, url: str, action: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def _sqlite_foreign_key_problems(connection: Connection) -> list[Any]:
    return list(connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall())


async def _migrate(url: str, action: str, revision: str) -> None:
    url = normalize_database_url(url)
    engine = create_engine(url, foreign_keys=False)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY}
                )
            await conn.run_sync(_run_alembic, url, action, revision)
            if engine.dialect.name == "sqlite":
                # Foreign keys were off while migrating; refuse to commit broken references.
                problems = await conn.run_sync(_sqlite_foreign_key_problems)
                if problems:
                    raise RuntimeError(f"migration left broken foreign keys: {problems[:5]}")
    finally:
        await engine.dispose()


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (default: the newest), in one transaction."""
    await _migrate(url, "upgrade", revision)


async def downgrade_async(url: str, revision: str) -> None:
    """Revert migrations down to `revision` ("base" empties the schema)."""
    await _migrate(url, "downgrade", revision)


def _run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (a sync helper in async code): asyncio.run would
    # refuse, so run the migration on its own loop in a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking `upgrade_async`, for the CLI and the Procfile's release phase."""
    _run_blocking(upgrade_async(url, revision))


def downgrade(url: str, revision: str) -> None:
    """Blocking `downgrade_async`."""
    _run_blocking(downgrade_async(url, revision))
