"""The tick handles a minute's due runners as one set: a few statements for the whole
batch, each runner's row written once; and when the batch fails, it is done again one
runner at a time, so one runner whose stored state is broken does not hold back the rest.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import event, text

from bot.service import Coach
from bot.storage.db import Database
from scheduler import Scheduler
from tests.chat_driver import Chat, Clock
from tests.test_scheduler_helpers import (
    PROMPT,
    RecordingSender,
    scheduler,
    setup_runner,
    step,
    stored_user,
    utc,
)

RUNNERS = ("ana", "ben", "cleo", "dev")


@pytest.fixture
def db(database: Database) -> Database:
    """These stories run on SQLite and on PostgreSQL (the batch SQL differs by dialect)."""
    return database


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 6, 1, 4, 0))


@pytest.fixture
def sender(clock: Clock) -> RecordingSender:
    return RecordingSender(clock)


@pytest.fixture
def sched(db: Database, coach: Coach, sender: RecordingSender, clock: Clock) -> Scheduler:
    return scheduler(db, coach, sender, clock)


async def _club(coach: Coach) -> None:
    for name in RUNNERS:
        await setup_runner(Chat(coach, user_id=name), reminder="07:30")  # 05:30 UTC in June


def _prompted(sender: RecordingSender) -> list[str]:
    return sorted(s.message.chat_id for s in sender.sent if PROMPT in s.message.text)


async def test_a_club_due_at_the_same_minute_is_prompted_with_each_row_written_once(
    coach: Coach, db: Database, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    await _club(coach)
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        clock.now = utc(2026, 6, 1, 5, 30)
        assert await sched.tick(clock.now) == len(RUNNERS)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    user_updates = [s for s in statements if s.startswith("update users")]
    outbox_inserts = [s for s in statements if s.startswith("insert into outbox")]
    # One batched UPDATE and one batched INSERT for the four runners (a batch is one
    # executemany: one statement as SQLAlchemy sees it), not one or two per runner.
    assert len(user_updates) == 1
    assert len(outbox_inserts) == 1
    await sched.dispatch(clock.now)
    assert _prompted(sender) == sorted(RUNNERS)
    for name in RUNNERS:
        user = await stored_user(db, name)
        assert user.next_checkin_at == utc(2026, 6, 2, 5, 30)
        assert user.next_nudge_at == utc(2026, 6, 1, 8, 30)
    # The same minute again queues nothing twice.
    assert await sched.tick(clock.now) == 0


async def test_one_runner_with_broken_stored_state_does_not_block_the_others(
    coach: Coach,
    db: Database,
    clock: Clock,
    sched: Scheduler,
    sender: RecordingSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _club(coach)
    broken = await stored_user(db, "cleo")
    # A profile the engine cannot read (as a bad migration or a hand edit might leave it).
    profile = {**broken.profile, "phase": "not a phase"}
    async with db.transaction() as repo:
        await repo.session.execute(
            text("UPDATE users SET profile = :p WHERE id = :id"),
            {"p": json.dumps(profile), "id": broken.id},
        )
    clock.now = utc(2026, 6, 1, 5, 30)
    with caplog.at_level(logging.WARNING, logger="hipcoach.scheduler"):
        await step(sched, clock, clock.now)
    assert any("one by one" in r.getMessage() for r in caplog.records)
    assert _prompted(sender) == ["ana", "ben", "dev"]
    # The broken runner's reminder was skipped, not left due: the next ticks move on.
    assert (await stored_user(db, "cleo")).next_checkin_at == utc(2026, 6, 2, 5, 30)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hipcoach.scheduler"):
        await step(sched, clock, utc(2026, 6, 1, 5, 31))
    assert not any("one by one" in r.getMessage() for r in caplog.records)
    assert _prompted(sender) == ["ana", "ben", "dev"]
