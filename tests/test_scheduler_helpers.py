"""Shared helpers for the scheduler and dispatcher tests (no tests in here)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.delivery import DeliveryError
from bot.engine.events import Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import OutboxMessage, User
from scheduler import Scheduler, SchedulerConfig
from tests.chat_driver import Chat, Clock, onboard

PROMPT = "Time for your daily hip check-in"
NUDGE = "gentle nudge"
CLEARANCE = "Were you able to get checked"

# Tests drive time themselves; no waiting on rate limits of the fake platform.
TEST_CONFIG = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600)


@dataclass
class Sent:
    at: datetime
    message: Outbound


@dataclass
class RecordingSender:
    """A fake platform: records what it was asked to send, optionally failing first."""

    clock: Clock
    platform: str = "console"
    sent: list[Sent] = field(default_factory=list)
    failures: list[DeliveryError] = field(default_factory=list)
    calls: int = 0

    async def send(self, message: Outbound) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(Sent(self.clock.now, message))

    def texts(self, needle: str = "") -> list[str]:
        return [s.message.text for s in self.sent if needle in s.message.text]

    def times(self, needle: str) -> list[datetime]:
        return [s.at for s in self.sent if needle in s.message.text]


def scheduler(db: Database, coach: Coach, sender: RecordingSender, clock: Clock) -> Scheduler:
    return Scheduler(db, coach, {sender.platform: sender}, clock=clock, config=TEST_CONFIG)


async def setup_runner(chat: Chat, *, zone: str = "Europe/Berlin", reminder: str = "07:30") -> None:
    """Onboard with the timezone and reminder time typed as free text (any zone)."""
    await onboard(chat, zone=zone, reminder=reminder)


async def step(sched: Scheduler, clock: Clock, at: datetime) -> None:
    clock.now = at
    await sched.tick(at)
    await sched.dispatch(at)


async def drive(sched: Scheduler, clock: Clock, instants: Iterable[datetime]) -> None:
    for at in sorted(set(instants)):
        if at > clock.now:
            await step(sched, clock, at)


def hourly(start: datetime, end: datetime, every: timedelta = timedelta(hours=1)) -> list[datetime]:
    out, at = [], start
    while at <= end:
        out.append(at)
        at += every
    return out


def around(instants: Iterable[datetime], minutes: int = 1) -> list[datetime]:
    """Each instant with the minute before and after it (to prove "not early, not twice")."""
    delta = timedelta(minutes=minutes)
    return [x for at in instants for x in (at - delta, at, at + delta)]


def local_at(day: date, clock_time: str, zone: str) -> datetime:
    """A wall-clock time that exists in `zone` on `day`, as UTC (plain zoneinfo)."""
    hh, mm = map(int, clock_time.split(":"))
    return datetime.combine(day, time(hh, mm), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


async def stored_user(db: Database, user_id: str = "runner-1") -> User:
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("console", user_id, lock=False)
    assert user is not None
    return user


async def outbox_rows(db: Database, **filters: object) -> list[OutboxMessage]:
    async with db.transaction(readonly=True) as repo:
        return await outbox.list_messages(repo, **filters)
