"""SQLite for SQLAlchemy's async engine without a thread hop per statement.

aiosqlite runs every statement on a worker thread and wakes the event loop for each
result: profiled, ~58% of a turn's wall time was spent waiting on those hops, while SQLite
itself took ~1.4% (issue 14). This dialect hands SQLAlchemy's async engine the plain
`sqlite3` module instead, so statements run on the loop's thread, in microseconds, with no
hop at all.

What could block the loop is waiting for SQLite's write lock held by another process (a
`hipcoach clock` beside `hipcoach web`). Within one process, write transactions already
queue on an asyncio lock before BEGIN (bot/storage/db.py). So BEGIN IMMEDIATE, the one
statement that takes the write lock, is first tried without waiting (busy timeout 0); only
if another process holds the lock is it retried on a worker thread with the full busy
timeout, the loop free meanwhile: one hop per contended transaction, none otherwise. Once
a transaction holds the write lock, nothing else in it waits on other connections in WAL
mode (readers never block the writer).

URLs stay `sqlite+aiosqlite://`; `bot.storage.db.create_engine` picks this dialect.

`AsyncConnection.execute` refuses a call that never awaited (AwaitRequired), and libraries
use it (slack_sdk's OAuth stores, operators' scripts): so a statement run inside SQLAlchemy's
greenlet bridge awaits one finished coroutine first, two greenlet switches and no trip
through the event loop. Statements run straight on the loop (`Repository.core`) skip even
that.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

__all__ = ["DRIVER", "SQLiteDialect_inline", "begin", "keep_for_writes"]

DRIVER = "hipcoach_inline"


async def _nothing() -> None:
    return None


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = ()) -> Any:
        if in_greenlet():
            await_(_nothing())
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any) -> Any:
        if in_greenlet():
            await_(_nothing())
        return super().executemany(sql, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's async results on an async driver's cursor, to fetch its
        rows before the call returns; a sqlite3 cursor reads them on demand, at no wait."""


class _Connection(sqlite3.Connection):
    # Set by keep_for_writes: the busy timeout to wait with once a BEGIN found the lock
    # taken (None: the connection's own timeout stays as it is, see `begin`).
    write_wait_ms: int | None = None

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


class SQLiteDialect_inline(SQLiteDialect_pysqlite):
    """pysqlite, declared async so that `create_async_engine` accepts it. Its DBAPI calls
    never await, so SQLAlchemy's greenlet bridge runs them straight through."""

    driver = DRIVER
    supports_statement_cache = True
    is_async = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # As aiosqlite's dialect does: a queue pool for files, one shared connection for an
        # in-memory database (each new connection would be another, empty database).
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # A contended BEGIN runs on a worker thread (see the module docstring); the
        # connection is still used by one task at a time, handed over by the pool.
        kwargs["check_same_thread"] = False
        kwargs["factory"] = _Connection
        return args, kwargs


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_inline")


def _locked(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message


def keep_for_writes(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    """Make this the process's connection for write transactions (bot/storage/db.py):
    its busy timeout is 0 from now on, so BEGIN IMMEDIATE needs no PRAGMA before and after
    it; nothing else in a write transaction waits on another connection in WAL mode."""
    assert isinstance(dbapi_connection, _Connection)
    dbapi_connection.execute("PRAGMA busy_timeout = 0")
    dbapi_connection.write_wait_ms = busy_timeout_ms


def begin(dbapi_connection: sqlite3.Connection, mode: str, busy_timeout_ms: int) -> None:
    """BEGIN `mode` on the raw connection; a write lock held by another process is waited
    for on a worker thread (when called from async code) rather than on the loop."""
    if mode != "IMMEDIATE" or not in_greenlet():
        dbapi_connection.execute(f"BEGIN {mode}")
        return
    kept = getattr(dbapi_connection, "write_wait_ms", None)
    if kept is None:
        dbapi_connection.execute("PRAGMA busy_timeout = 0")
    try:
        dbapi_connection.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as error:
        if not _locked(error):
            raise
    finally:
        if kept is None:
            dbapi_connection.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    loop = asyncio.get_running_loop()
    if kept is None:
        await_(loop.run_in_executor(None, dbapi_connection.execute, "BEGIN IMMEDIATE"))
        return
    # The kept writer connection waits with the full timeout, off the loop, then goes
    # back to not waiting.
    dbapi_connection.execute(f"PRAGMA busy_timeout = {kept}")
    try:
        await_(loop.run_in_executor(None, dbapi_connection.execute, "BEGIN IMMEDIATE"))
    finally:
        dbapi_connection.execute("PRAGMA busy_timeout = 0")
