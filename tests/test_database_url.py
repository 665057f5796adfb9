"""DATABASE_URL as managed PostgreSQL providers hand it out: libpq parameters in the query
(`sslmode`, `sslrootcert`, `options`, ...) work through asyncpg instead of crashing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text

from bot.service import Coach
from bot.storage.db import Database, asyncpg_connect_args, describe_database
from tests.chat_driver import Chat

ROOT = Path(__file__).resolve().parent.parent


def test_libpq_parameters_become_asyncpg_arguments() -> None:
    url, args = asyncpg_connect_args(
        "postgresql+asyncpg://coach:pw@db.example:5432/hipcoach"
        "?sslmode=verify-full&sslrootcert=/etc/ssl/provider-ca.pem"
        "&options=-c%20search_path%3Dcoach&connect_timeout=7&command_timeout=30"
        "&prepared_statement_cache_size=0"
    )
    # SQLAlchemy keeps what it reads itself; asyncpg gets typed keywords and a host-less DSN
    # carrying the libpq parameters it parses (ssl*) or sends as startup parameters.
    assert dict(url.query) == {"prepared_statement_cache_size": "0"}
    assert args["timeout"] == 7.0 and args["command_timeout"] == 30.0
    dsn = urlsplit(args["dsn"])
    assert dsn.netloc == "" and dsn.path == ""
    assert parse_qs(dsn.query) == {
        "sslmode": ["verify-full"],
        "sslrootcert": ["/etc/ssl/provider-ca.pem"],
        "options": ["-c search_path=coach"],
    }


def test_a_plain_url_passes_through_unchanged() -> None:
    url, args = asyncpg_connect_args("postgresql+asyncpg://coach@db/hipcoach")
    assert args == {} and url.render_as_string() == "postgresql+asyncpg://coach@db/hipcoach"


def test_the_start_up_line_names_the_database_without_its_password() -> None:
    described = describe_database(
        "postgres://coach:hunter2@db.example:5432/hipcoach?sslmode=require"
    )
    assert described == "PostgreSQL db.example:5432/hipcoach (sslmode=require)"


async def test_a_provider_style_url_opens_the_database_and_runs_a_turn(pg_url: str) -> None:
    # The URL as a provider hands it out: plain postgresql://, libpq parameters.
    url = (
        pg_url.replace("postgresql+asyncpg://", "postgresql://")
        + "?sslmode=disable&application_name=hipcoach-ci&options=-c%20statement_timeout%3D5000"
    )
    db = Database(url)
    try:
        chat = Chat(Coach(db), platform="telegram", user_id="555")
        await chat.send("start")
        assert chat.buttons, "the welcome asks for consent with a button"
        async with db.engine.connect() as conn:
            name = (await conn.execute(text("SHOW application_name"))).scalar()
            timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar()
            tls = (
                await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
            ).scalar()
        assert (name, timeout, tls) == ("hipcoach-ci", "5s", False)
        async with db.transaction(readonly=True) as repo:
            assert await repo.get_user("telegram", "555", lock=False) is not None
    finally:
        await db.dispose()


def test_hipcoach_db_upgrade_takes_the_provider_style_url(pg_url: str) -> None:
    url = pg_url.replace("postgresql+asyncpg://", "postgres://") + "?sslmode=disable"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"],
        cwd=str(ROOT),
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "database is up to date" in done.stdout
