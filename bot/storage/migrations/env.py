"""Alembic environment for hipcoach.

Two ways in:
- programmatic (`bot.storage.db.upgrade`, used by `hipcoach db upgrade`): the caller passes
  an open synchronous connection in `config.attributes["connection"]`, already inside a
  transaction, and commits it;
- the `alembic` command line for developers writing migrations
  (`alembic -c bot/storage/alembic.ini revision --autogenerate -m "..."`): the URL comes
  from `-x url=...`, else DATABASE_URL, else the default SQLite file.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from bot.storage.db import create_engine, default_database_url, normalize_database_url
from bot.storage.models import UNMAPPED_TABLES, Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and not config.attributes.get("connection"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return normalize_database_url(url) if url else default_database_url()


def _mapped(name: str | None, type_: str, _parent: object) -> bool:
    """Autogenerate compares only our models (library-owned tables are not in them)."""
    return not (type_ == "table" and name in UNMAPPED_TABLES)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=_mapped,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run_with_connection(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_new_engine() -> None:
    # Foreign keys off: batch rebuilds drop and re-create tables (see db.create_engine).
    engine = create_engine(_url(), foreign_keys=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_with_connection)
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with_connection(connection)
    else:
        asyncio.run(_run_with_new_engine())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
