"""SQLite's hot path (bot/storage/lean.py): the same rows, counts and errors as SQLAlchemy.

Each statement is run both ways on one migrated SQLite file: through `Repository.core`
(the cursor with a plan worked out once) and through SQLAlchemy's own execute.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, delete, event, insert, select
from sqlalchemy.exc import IntegrityError, StatementError

from bot.storage import lean
from bot.storage.db import Database
from bot.storage.models import Checkin, ProcessedEvent, User
from bot.storage.repository import Repository

CHECKINS = Checkin.__table__
EVENTS = ProcessedEvent.__table__

READ_CHECKIN = select(CHECKINS).where(CHECKINS.c.user_id == bindparam("user_id"))
ADD_EVENT = insert(EVENTS).values(
    platform=bindparam("platform"),
    event_id=bindparam("event_id"),
    created_at=bindparam("at", type_=EVENTS.c.created_at.type),
)
DROP_EVENTS = delete(EVENTS).where(EVENTS.c.platform == bindparam("platform"))
RETURN_EVENT = ADD_EVENT.returning(EVENTS.c.event_id, EVENTS.c.created_at)
READ_EVENTS_IN = select(EVENTS.c.event_id).where(
    EVENTS.c.event_id.in_(bindparam("ids", expanding=True))
)


async def _runner_with_a_checkin(repo: Repository) -> User:
    user = await repo.create_user("telegram", "lean-1", "lean-1")
    await repo.write_checkin(
        user.id,
        date(2026, 6, 1),
        {"phase": 1, "level": 1, "pain_now": 3, "swelling": False, "answers": {"q": [1, "é"]}},
        new=True,
    )
    return user


async def test_a_checkin_read_on_the_hot_path_is_what_sqlalchemy_reads(db: Database) -> None:
    assert db.engine.dialect.driver == "hipcoach_inline"  # the default for a SQLite file
    async with db.transaction() as repo:
        user = await _runner_with_a_checkin(repo)
        lean_rows = (await repo.core(READ_CHECKIN, {"user_id": user.id})).all()
        orm_rows = (await repo.session.execute(READ_CHECKIN, {"user_id": user.id})).all()
    assert [tuple(r) for r in lean_rows] == [tuple(r) for r in orm_rows]
    row = lean_rows[0]
    assert row.local_date == date(2026, 6, 1)
    assert row.answers == {"q": [1, "é"]} and row.swelling is False and row.pain_now == 3
    assert row.created_at.tzinfo is not None and row.created_at.utcoffset().total_seconds() == 0
    assert row._mapping["user_id"] == user.id


async def test_counts_batches_and_returned_rows_match(db: Database) -> None:
    at = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)
    async with db.transaction() as repo:
        added = await repo.core(
            ADD_EVENT, [{"platform": "x", "event_id": str(n), "at": at} for n in range(3)]
        )
        assert added.rowcount == 3  # one executemany
        returned = await repo.core(RETURN_EVENT, {"platform": "x", "event_id": "r", "at": at})
        assert [(r.event_id, r.created_at) for r in returned.all()] == [("r", at)]
        assert returned.scalars().all() == ["r"]
        assert (await repo.core(DROP_EVENTS, {"platform": "x"})).rowcount == 4
        assert (await repo.core(DROP_EVENTS, {"platform": "x"})).rowcount == 0


async def test_errors_come_as_sqlalchemy_raises_them(db: Database) -> None:
    at = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)
    params = {"platform": "x", "event_id": "twice", "at": at}
    with pytest.raises(IntegrityError):
        async with db.transaction() as repo:
            await repo.core(ADD_EVENT, params)
            await repo.core(ADD_EVENT, params)  # the same event id again
    with pytest.raises(StatementError) as refused:
        async with db.transaction() as repo:
            await repo.core(ADD_EVENT, {**params, "at": datetime(2026, 6, 1, 7, 30)})
    assert isinstance(refused.value.orig, ValueError)  # a naive datetime, refused
    async with db.transaction(readonly=True) as repo:
        left = await repo.session.scalar(select(EVENTS.c.event_id).where(EVENTS.c.platform == "x"))
    assert left is None  # both transactions rolled back


async def test_statement_listeners_hear_every_statement(db: Database) -> None:
    heard: list[str] = []

    def hear(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        heard.append(statement.split()[0].upper())

    at = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)
    event.listen(db.engine.sync_engine, "before_cursor_execute", hear)
    try:
        async with db.transaction() as repo:
            await repo.core(ADD_EVENT, {"platform": "x", "event_id": "1", "at": at})
            await repo.core(DROP_EVENTS, {"platform": "x"})
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", hear)
    assert heard.count("INSERT") == 1 and heard.count("DELETE") == 1


async def test_what_the_cursor_cannot_do_goes_through_sqlalchemy(db: Database) -> None:
    dialect = db.engine.dialect
    assert lean.plan_for(READ_EVENTS_IN, dialect) is None  # an expanding IN (...)
    plan = lean.plan_for(RETURN_EVENT, dialect)
    assert plan is not None
    at = datetime(2026, 6, 1, 7, 30, tzinfo=UTC)
    batch = [{"platform": "x", "event_id": str(n), "at": at} for n in range(2)]
    assert not lean.takes(plan, batch)  # rows back from a batch: one multi-row INSERT
    async with db.transaction() as repo:
        returned = await repo.core(RETURN_EVENT, batch)
        assert sorted(r[0] for r in returned.all()) == ["0", "1"]
        found = await repo.core(READ_EVENTS_IN, {"ids": ["0", "1"]})
        assert len(found.all()) == 2


def test_a_timestamp_is_written_as_sqlalchemys_two_sqlite_processors_write_it() -> None:
    from zoneinfo import ZoneInfo

    from sqlalchemy.dialects import sqlite
    from sqlalchemy.types import TypeDecorator

    from bot.storage.types import UTCDateTime

    dialect = sqlite.dialect()
    kind = UTCDateTime()
    fused = kind.bind_processor(dialect)
    # The check, then DATETIME's format: what SQLAlchemy does without the override.
    composed = TypeDecorator.bind_processor(kind.dialect_impl(dialect), dialect)
    assert fused is not None and composed is not None
    london, kolkata = ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")
    for value in (
        datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 30, tzinfo=london),  # just after the clocks went forward
        datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=london),  # the hour that came twice
        datetime(2026, 12, 31, 23, 59, tzinfo=kolkata),  # half an hour off, east of UTC
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        None,
    ):
        assert fused(value) == composed(value), value
    for bad, error in ((datetime(2026, 1, 1), ValueError), (date(2026, 1, 1), TypeError)):
        with pytest.raises(error):
            fused(bad)
        with pytest.raises(error):
            composed(bad)
