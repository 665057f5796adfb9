"""One pacing per platform for everything sent: replies go ahead of a reminder backlog, replies
count against the same limits as reminders, a 429 closes the chat (or the platform), and the
dispatcher sleeps until the earliest due message and wakes when a reply is queued.

Time is a controlled clock throughout (the limiter's monotonic clock and the scheduler's
clock are both ours); nothing here asserts how long anything took."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.delivery import RetryAfter
from bot.engine.events import InboundKind, Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from scheduler import Scheduler
from scheduler.core import SchedulerConfig
from scheduler.payload import encode
from scheduler.ratelimit import DEFAULT_LIMITS, PlatformLimit, RateLimiter
from tests.chat_driver import Chat, Clock
from tests.test_scheduler_helpers import RecordingSender, outbox_rows, utc

NOW = utc(2026, 6, 1, 5, 30)
ONE_AT_A_TIME = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600, concurrency=1)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _queue(
    db: Database, chats: list[str], *, kind: str = "checkin", platform: str = "console"
) -> None:
    async with db.transaction() as repo:
        for n, chat in enumerate(chats):
            await outbox.add_message(
                repo,
                idempotency_key=f"{kind}:{chat}:{n}",
                platform=platform,
                chat_id=chat,
                kind=kind,
                payload=encode(Outbound(chat_id=chat, text=f"{kind} for {chat}")),
                not_before=NOW,
            )


# --- the limiter ----------------------------------------------------------------------------


async def test_a_runners_reply_takes_the_next_slot_ahead_of_fifty_waiting_reminders() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter({"telegram": PlatformLimit(overall_count=1, overall_window=1.0)}, clock)
    granted: list[str] = []
    release: dict[str, asyncio.Event] = {}

    async def send(name: str, chat: str, urgent: bool) -> None:
        release[name] = asyncio.Event()
        async with limiter.slot("telegram", chat, urgent=urgent):
            granted.append(name)
            await release[name].wait()

    tasks = [asyncio.create_task(send("reminder-0", "100", False))]
    await _settle()
    tasks += [asyncio.create_task(send(f"reminder-{n}", str(100 + n), False)) for n in range(1, 51)]
    await _settle()
    tasks.append(asyncio.create_task(send("reply", "7", True)))  # the runner taps, last
    await _settle()
    assert granted == ["reminder-0"]  # the budget is taken: everyone waits
    assert limiter.waiting("telegram")[0] == ("7", True)  # the reply is first in line

    release["reminder-0"].set()
    await _settle()
    assert granted == ["reminder-0"]  # still in the window of the first message's answer
    clock.now += 1.0
    limiter.poke()
    await _settle()
    assert granted == ["reminder-0", "reply"]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_window_counts_a_message_until_its_answer_came_back() -> None:
    """The 31st message may start only a second after the 1st was answered: arrivals at the
    platform are then a second apart however late the answers were read."""
    clock = FakeMonotonic()
    limiter = RateLimiter({"telegram": DEFAULT_LIMITS["telegram"]}, clock)
    for n in range(30):
        async with limiter.slot("telegram", str(n)):
            clock.now += 0.01  # each call takes 10 ms
    assert limiter.ready_in("telegram", "999") == pytest.approx(
        1000.01 + DEFAULT_LIMITS["telegram"].overall_window - clock.now
    )
    clock.now += 1.0
    assert limiter.ready_in("telegram", "999") == 0.0


async def test_chats_and_groups_keep_their_own_gaps() -> None:
    clock = FakeMonotonic()
    limits = DEFAULT_LIMITS["telegram"]
    limiter = RateLimiter({"telegram": limits}, clock)
    async with limiter.slot("telegram", "42"):
        pass
    assert limiter.ready_in("telegram", "42") == pytest.approx(limits.chat_gap)  # 1/s a chat
    assert limiter.ready_in("telegram", "43") == 0.0
    async with limiter.slot("telegram", "-100", edit=False):
        pass
    # Cards to a group are spread out; a reply in that group only keeps the chat's gap.
    assert limiter.ready_in("telegram", "-100") == pytest.approx(limits.group_bulk_gap)
    assert limiter.ready_in("telegram", "-100", urgent=True) == pytest.approx(limits.chat_gap)
    for _ in range(19):
        clock.now += 1.1
        async with limiter.slot("telegram", "-100", urgent=True):
            pass
    clock.now += 1.1
    # 20 in the group's minute: the next waits until the first leaves it.
    assert limiter.ready_in("telegram", "-100", urgent=True) > 30
    async with limiter.slot("telegram", "42", edit=True):  # an edit keeps no chat gap
        pass
    async with limiter.slot("console", "x"):  # a platform without limits never waits
        pass
    assert limiter.ready_in("console", "x") == 0.0


async def test_a_429_closes_the_chat_and_two_in_a_window_pause_the_platform() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter({"telegram": DEFAULT_LIMITS["telegram"]}, clock)
    limiter.retry_after("telegram", "42", 20)
    assert limiter.ready_in("telegram", "42") == pytest.approx(20)
    assert limiter.ready_in("telegram", "43") == 0.0  # one chat refused: only that chat
    assert limiter.paused_for("telegram") == 0.0
    clock.now += 0.2
    limiter.retry_after("telegram", "44", 3)  # a second chat within the window: platform-wide
    assert limiter.paused_for("telegram") == pytest.approx(3)
    assert limiter.ready_in("telegram", "45") == pytest.approx(3)


async def test_waiters_go_replies_first_then_in_arrival_order_and_a_cancelled_one_leaves() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter({"telegram": PlatformLimit(overall_count=1, overall_window=1.0)}, clock)
    granted: list[str] = []
    release = asyncio.Event()

    async def send(chat: str, urgent: bool) -> None:
        async with limiter.slot("telegram", chat, urgent=urgent):
            granted.append(chat)
            await release.wait()

    arrivals = [("1", False), ("2", True), ("3", False), ("4", True), ("5", False)]
    tasks = {chat: asyncio.create_task(send(chat, urgent)) for chat, urgent in arrivals}
    await _settle()
    assert granted == ["1"]
    assert limiter.waiting("telegram") == [("2", True), ("4", True), ("3", False), ("5", False)]
    tasks["4"].cancel()
    await _settle()
    assert limiter.waiting("telegram") == [("2", True), ("3", False), ("5", False)]
    release.set()  # every send now ends at once; one starts per window
    for _ in range(3):
        await _settle()
        clock.now += 1.0
        limiter.poke()
    await _settle()
    assert granted == ["1", "2", "3", "5"]
    assert limiter.waiting("telegram") == []
    await asyncio.gather(*tasks.values(), return_exceptions=True)


# --- the dispatcher -------------------------------------------------------------------------


async def test_during_a_burst_the_reply_is_claimed_before_five_hundred_reminders(
    db: Database,
) -> None:
    clock = Clock(NOW)
    await _queue(db, [str(1000 + n) for n in range(500)])
    # Runner 7 tapped during the burst; runner 2250's reminder is still queued when they write.
    await _queue(db, ["2250"])
    await _queue(db, ["7", "2250"], kind=outbox.REPLY)
    sender = RecordingSender(clock)
    sched = Scheduler(
        db,
        Coach(db, clock=clock),
        {"console": sender},
        clock=clock,
        config=ONE_AT_A_TIME,
        limiter=RateLimiter({}),
    )
    assert await sched.dispatch(NOW) == 503
    order = [(s.message.chat_id, s.message.text.split()[0]) for s in sender.sent]
    # The chats with a waiting reply first, oldest first; the reminder of 2250 still goes
    # before that chat's reply (a chat's order is kept).
    assert order[:3] == [("2250", "checkin"), ("7", "reply"), ("2250", "reply")]
    assert order[3:] == [(str(1000 + n), "checkin") for n in range(500)]


async def test_replies_and_reminders_share_one_budget(db: Database) -> None:
    """The replies a turn sends at once take the same slots as the dispatcher's reminders."""
    clock = Clock(NOW)
    mono = FakeMonotonic()
    pacer = RateLimiter({"console": PlatformLimit(overall_count=1, overall_window=60.0)}, mono)
    coach = Coach(db, clock=clock, pacer=pacer)
    sender = RecordingSender(clock)
    config = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600, max_wait=5.0)
    sched = Scheduler(db, coach, {"console": sender}, clock=clock, config=config)
    assert sched.limiter is pacer
    chat = Chat(coach, user_id="runner-1")
    await chat.send("help")  # the reply goes out at once and takes the minute's one slot
    assert chat.delivered
    await _queue(db, ["someone-else"])
    assert await sched.dispatch(NOW) == 0
    (row,) = await outbox_rows(db, chat_id="someone-else")
    assert (row.status, row.last_error) == ("pending", "RateLimited")  # put back for later
    assert row.not_before > NOW
    assert sender.sent == []


async def test_a_429_on_a_reminder_closes_that_chat_in_the_shared_pacing(db: Database) -> None:
    clock = Clock(NOW)
    mono = FakeMonotonic()
    pacer = RateLimiter({"console": PlatformLimit(chat_gap=1.0)}, mono)
    sender = RecordingSender(clock, failures=[RetryAfter(20)])
    sched = Scheduler(
        db,
        Coach(db, clock=clock, pacer=pacer),
        {"console": sender},
        clock=clock,
        config=ONE_AT_A_TIME,
    )
    await _queue(db, ["42"])
    assert await sched.dispatch(NOW) == 0
    (row,) = await outbox_rows(db)
    assert row.status == "pending" and row.not_before >= NOW + timedelta(seconds=20)
    assert pacer.ready_in("console", "42") == pytest.approx(20)
    assert pacer.ready_in("console", "43") == 0.0


async def test_the_dispatcher_sleeps_until_the_earliest_due_message(db: Database) -> None:
    clock = Clock(NOW)
    sender = RecordingSender(clock)
    sched = Scheduler(
        db,
        Coach(db, clock=clock),
        {"console": sender},
        clock=clock,
        config=ONE_AT_A_TIME,
        limiter=RateLimiter({}),
    )
    assert await sched.next_wait() == 3600  # nothing queued: the longest sleep
    async with db.transaction() as repo:
        for minutes, chat in ((15, "a"), (5, "b")):
            await outbox.add_message(
                repo,
                idempotency_key=f"later:{chat}",
                platform="console",
                chat_id=chat,
                kind="checkin",
                payload=encode(Outbound(chat_id=chat, text="later")),
                not_before=NOW + timedelta(minutes=minutes),
            )
    assert await sched.next_wait() == pytest.approx(300)  # the earlier of the two
    clock.advance(minutes=4)
    assert await sched.next_wait() == pytest.approx(60)
    clock.advance(minutes=2)
    assert await sched.next_wait() == 0  # due: go now


async def test_a_queued_reply_wakes_the_sleeping_dispatcher(db: Database) -> None:
    clock = Clock(NOW)
    delivered = asyncio.Event()

    class Sender(RecordingSender):
        async def send(self, message: Outbound) -> None:
            await super().send(message)
            delivered.set()

    sender = Sender(clock)
    coach = Coach(db, clock=clock)
    sched = Scheduler(
        db,
        coach,
        {"console": sender},
        clock=clock,
        config=ONE_AT_A_TIME,
        limiter=RateLimiter({}),
    )
    await sched.start()  # drains nothing, then sleeps for up to an hour
    try:
        chat = Chat(coach, user_id="runner-1")
        # Recorded without sending (as a process that cannot send now does): the reply
        # waits in the outbox, and the dispatcher is woken for it.
        await coach.record(chat.inbound(InboundKind.COMMAND, command="help"), claim=False)
        await asyncio.wait_for(delivered.wait(), 60)  # a guard, not a timing assertion
    finally:
        await sched.shutdown()
    assert [s.message.chat_id for s in sender.sent] == ["runner-1"]
