"""The outbox dispatcher: exactly-once delivery, rate limits, retries and failures, and one
end-to-end run of `hipcoach run` where a reminder set a minute ahead really arrives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.delivery import PermanentFailure, RetryAfter, TransientFailure
from bot.engine.events import ChatKind, Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import OutboxMessage
from scheduler import Scheduler
from scheduler.core import MAX_ATTEMPTS, SchedulerConfig, backoff
from scheduler.payload import decode, encode
from tests.chat_driver import Chat, Clock
from tests.test_scheduler_helpers import (
    PROMPT,
    TEST_CONFIG,
    RecordingSender,
    outbox_rows,
    scheduler,
    setup_runner,
    step,
    stored_user,
    utc,
)

NOW = utc(2026, 6, 1, 5, 30)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 6, 1, 4, 0))


async def _queue(db: Database, n: int, platform: str = "console", at: datetime = NOW) -> None:
    async with db.transaction() as repo:
        for i in range(n):
            await outbox.add_message(
                repo,
                idempotency_key=f"test:{i}",
                platform=platform,
                chat_id=str(i),
                kind="checkin",
                payload=encode(Outbound(chat_id=str(i), text=f"message {i}")),
                not_before=at,
            )


# --- exactly once -----------------------------------------------------------------------------


async def test_two_dispatchers_on_postgresql_send_2000_messages_exactly_once(pg_url: str) -> None:
    clock = Clock(NOW)
    first_db, second_db = Database(pg_url), Database(pg_url)
    try:
        await _queue(first_db, 2000)
        senders = [RecordingSender(clock), RecordingSender(clock)]
        dispatchers = [
            Scheduler(d, Coach(d, clock=clock), {"console": s}, clock=clock, config=TEST_CONFIG)
            for d, s in zip((first_db, second_db), senders, strict=True)
        ]
        counts = await asyncio.gather(*(d.dispatch(NOW) for d in dispatchers))
        assert sum(counts) == 2000
        assert all(count > 0 for count in counts), counts  # both really took part
        delivered = Counter(s.message.chat_id for sender in senders for s in sender.sent)
        assert len(delivered) == 2000 and set(delivered.values()) == {1}
        statuses = Counter(r.status for r in await outbox_rows(first_db))
        assert statuses == {"sent": 2000}
    finally:
        await first_db.dispose()
        await second_db.dispose()


async def test_a_platform_without_a_sender_keeps_its_messages_waiting(
    db: Database, clock: Clock
) -> None:
    await _queue(db, 2, platform="slack")
    sender = RecordingSender(clock)
    sched = scheduler(db, Coach(db, clock=clock), sender, clock)
    assert await sched.dispatch(NOW) == 0
    assert [r.status for r in await outbox_rows(db)] == ["pending", "pending"]


async def test_an_orphaned_claim_is_sent_again_after_its_lease(db: Database, clock: Clock) -> None:
    """A crash between claiming (or sending) and marking: at worst that one message is sent
    again, once its lease (30 seconds) has run out."""
    await _queue(db, 1)
    async with db.transaction() as repo:
        claimed = await outbox.claim_messages(
            repo, NOW, ["console"], 10, NOW + timedelta(seconds=30)
        )
    assert len(claimed) == 1
    sender = RecordingSender(clock)
    sched = scheduler(db, Coach(db, clock=clock), sender, clock)
    assert await sched.dispatch(NOW + timedelta(seconds=29)) == 0
    assert await sched.dispatch(NOW + timedelta(seconds=30)) == 1
    assert await sched.dispatch(NOW + timedelta(minutes=30)) == 0
    assert sender.texts() == ["message 0"]


@dataclass
class StallingSender:
    """A platform that holds each send until the test lets it finish (or fail)."""

    platform: str = "console"
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    async def send(self, message: Outbound) -> None:
        self.started.append(message.text)
        gate = self.gates.setdefault(message.text, asyncio.Event())
        await gate.wait()
        if message.text in self.failures:
            raise self.failures[message.text]
        self.sent.append(message.text)

    async def until_started(self, text: str) -> None:
        for _ in range(1000):  # a bound, not a timing
            if text in self.started:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{text!r} never started")


async def test_a_dispatcher_whose_lease_ran_out_overwrites_nothing_and_stops(db_url: str) -> None:
    """Dispatcher A claims a reminder and stalls past its lease; B takes the row over. When
    A's send finally fails, A's mark must not touch B's claim, and A sends nothing more."""
    clock = Clock(NOW)
    first_db, second_db = Database(db_url), Database(db_url)
    config = SchedulerConfig(
        tick_seconds=3600, dispatch_seconds=3600, concurrency=1, lease_seconds=5
    )
    try:
        await _queue(first_db, 2)
        a, b = StallingSender(), StallingSender()
        a.failures["message 0"] = TransientFailure("timed out")
        one = Scheduler(first_db, Coach(first_db), {"console": a}, clock=clock, config=config)
        two = Scheduler(second_db, Coach(second_db), {"console": b}, clock=clock, config=config)
        stalled = asyncio.create_task(one.dispatch(NOW))
        await a.until_started("message 0")
        later = asyncio.create_task(two.dispatch(NOW + timedelta(seconds=10)))  # lease over
        await b.until_started("message 0")
        a.gates["message 0"].set()  # A hears back at last: a failure
        assert await asyncio.wait_for(stalled, 30) == 0  # a bound: a hang is a failure
        (row, _) = await outbox_rows(first_db)
        assert row.status == "sending" and row.last_error == "ClaimExpired"  # still B's
        b.gates["message 0"].set()
        b.gates["message 1"] = asyncio.Event()
        b.gates["message 1"].set()
        assert await asyncio.wait_for(later, 30) == 2
        assert a.started == ["message 0"]  # A stopped after its mark found the row taken
        assert b.sent == ["message 0", "message 1"]
        assert [r.status for r in await outbox_rows(first_db)] == ["sent", "sent"]
    finally:
        await first_db.dispose()
        await second_db.dispose()


async def test_after_a_crash_only_the_message_in_flight_waits_for_its_lease(
    db: Database, clock: Clock
) -> None:
    """A dispatcher dies while sending the first of three messages: the other two go out
    with the next pass, not when a lease runs out."""
    await _queue(db, 3)
    stuck = StallingSender()
    one_at_a_time = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600, concurrency=1)
    dying = Scheduler(db, Coach(db), {"console": stuck}, clock=clock, config=one_at_a_time)
    crashed = asyncio.create_task(dying.dispatch(NOW))
    await stuck.until_started("message 0")
    crashed.cancel()  # the process is gone: nothing of it runs any more
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    sender = RecordingSender(clock)
    sched = scheduler(db, Coach(db, clock=clock), sender, clock)
    assert await sched.dispatch(NOW + timedelta(seconds=1)) == 2
    assert sender.texts() == ["message 1", "message 2"]
    lease = timedelta(seconds=one_at_a_time.lease_seconds)
    assert await sched.dispatch(NOW + lease + timedelta(seconds=1)) == 1  # its lease ran out
    assert sender.texts() == ["message 1", "message 2", "message 0"]


# --- retries and failures -----------------------------------------------------------------


async def test_429_delays_but_never_loses_messages(db_url: str) -> None:
    clock = Clock(NOW)
    db = Database(db_url)
    try:
        await _queue(db, 3)
        sender = RecordingSender(clock, failures=[RetryAfter(30), RetryAfter(30), RetryAfter(5)])
        sched = scheduler(db, Coach(db, clock=clock), sender, clock)
        assert await sched.dispatch(NOW) == 0  # all three asked to wait
        waiting = await outbox_rows(db)
        assert {r.status for r in waiting} == {"pending"}
        assert {r.last_error for r in waiting} == {"RetryAfter"}
        assert await sched.dispatch(NOW + timedelta(seconds=4)) == 0
        assert await sched.dispatch(NOW + timedelta(seconds=6)) == 1
        assert await sched.dispatch(NOW + timedelta(seconds=31)) == 2
        assert sorted(sender.texts()) == ["message 0", "message 1", "message 2"]
        assert {r.status for r in await outbox_rows(db)} == {"sent"}
        assert all(r.attempts == 0 for r in await outbox_rows(db))  # 429 is not a failure
    finally:
        await db.dispose()


async def test_transient_failures_back_off_and_give_up_after_eight_attempts(
    db: Database, clock: Clock
) -> None:
    await _queue(db, 1)
    sender = RecordingSender(clock, failures=[TransientFailure("boom")] * MAX_ATTEMPTS)
    sched = scheduler(db, Coach(db, clock=clock), sender, clock)
    at = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert await sched.dispatch(at) == 0
        (row,) = await outbox_rows(db)
        assert row.attempts == attempt and row.last_error == "TransientFailure"
        if attempt < MAX_ATTEMPTS:
            assert row.status == "pending"
            assert await sched.dispatch(at + backoff(attempt) - timedelta(seconds=2)) == 0
            at += backoff(attempt) + timedelta(seconds=1)
    assert row.status == "failed"
    assert sender.calls == MAX_ATTEMPTS
    assert backoff(1) < backoff(2) < backoff(7)


async def test_a_blocked_bot_marks_the_runner_unreachable_until_they_write_again(
    db: Database, clock: Clock
) -> None:
    coach = Coach(db, clock=clock)
    chat = Chat(coach)
    await setup_runner(chat, reminder="07:30")
    sender = RecordingSender(clock, failures=[PermanentFailure("bot was blocked by the user")])
    sched = scheduler(db, coach, sender, clock)
    await step(sched, clock, NOW)
    (row,) = await outbox_rows(db)
    assert (row.status, row.last_error) == ("failed", "PermanentFailure")  # no message text
    assert (await stored_user(db)).unreachable
    for day in (1, 2):
        await step(sched, clock, NOW + timedelta(days=day))
    assert sender.sent == [] and len(await outbox_rows(db)) == 1
    # They unblock the bot and write: reminders resume the next day.
    await chat.send("help")
    assert not (await stored_user(db)).unreachable
    await step(sched, clock, NOW + timedelta(days=3))
    assert sender.times(PROMPT) == [NOW + timedelta(days=3)]


async def test_a_deleted_group_stops_its_warmup_cards(db: Database, clock: Clock) -> None:
    clock.now = utc(2026, 10, 19, 12, 0)
    coach = Coach(db, clock=clock)
    group = Chat(coach, user_id="captain", chat_id="-100", chat_kind=ChatKind.GROUP, is_admin=True)
    await group.send("warmup add daily 18:00 before 15 tz Europe/Berlin")
    sender = RecordingSender(clock, failures=[PermanentFailure("chat not found")])
    sched = scheduler(db, coach, sender, clock)
    await step(sched, clock, utc(2026, 10, 19, 15, 45))
    await step(sched, clock, utc(2026, 10, 20, 15, 45))
    assert sender.sent == []
    assert [r.status for r in await outbox_rows(db)] == ["failed"]


# --- rate limits and the payload -------------------------------------------------------------


async def test_a_busy_group_chat_is_paced_by_putting_rows_back(db: Database, clock: Clock) -> None:
    async with db.transaction() as repo:
        for i in range(3):
            await outbox.add_message(
                repo,
                idempotency_key=f"card:{i}",
                platform="telegram",
                chat_id="-100",
                kind="warmup",
                payload=encode(Outbound(chat_id="-100", text=f"card {i}")),
                not_before=NOW,
            )
    sender = RecordingSender(clock, platform="telegram")
    config = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600, max_wait=0.5)
    sched = Scheduler(db, Coach(db, clock=clock), {"telegram": sender}, clock=clock, config=config)
    assert await sched.dispatch(NOW) == 1  # the next would wait 3 s
    first, second, third = await outbox_rows(db)
    assert first.status == "sent"
    assert (second.status, second.last_error) == ("pending", "RateLimited")
    assert second.not_before > NOW
    assert (third.status, third.last_error) == ("pending", None)  # in order, behind it


def test_the_payload_round_trips_text_buttons_flags_files_and_edits() -> None:
    from bot.engine.events import Attachment, Button

    message = Outbound(
        chat_id="c",
        text="Time for your check-in",
        buttons=((Button("1", "p:1"), Button("2", "p:2")), (Button("Skip today", "x:k"),)),
        private=True,
    )
    assert decode("c", encode(message)) == message
    chart = Outbound(
        chat_id="c",
        text="Your last 4 weeks",
        attachment=Attachment("hipcoach-progress.png", b"\x89PNG\r\n\x1a\n\x00\xff", "image/png"),
        private=True,
        recipient="42",
    )
    assert decode("c", json.loads(json.dumps(encode(chart)))) == chart  # JSON-safe
    edit = Outbound(chat_id="c", text="Pain now?\n→ 2", edit_ref="17", ephemeral=True)
    assert decode("c", encode(edit)) == edit


# --- end to end ---------------------------------------------------------------------------


async def test_hipcoach_run_delivers_a_reminder_set_a_minute_ahead(
    sqlite_url: str, tmp_path: Path
) -> None:
    """`hipcoach run` (console mode) in a subprocess: the scheduler really fires."""
    db = Database(sqlite_url)
    try:
        coach = Coach(db)  # the real clock
        chat = Chat(coach, user_id="local")
        await setup_runner(chat, zone="UTC", reminder="07:30")
        # Set "one minute ahead" only now, so a slow setup cannot push it to tomorrow.
        reminder = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%H:%M")
        await chat.send("settings")
        await chat.press("Check-in time")
        await chat.send(reminder)
        user = await stored_user(db, "local")
        assert user.reminder_time == reminder and user.next_checkin_at is not None
    finally:
        await db.dispose()

    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "HIPCOACH_TICK_SECONDS": "2",
        "HIPCOACH_DISPATCH_SECONDS": "1",
        "HIPCOACH_CONSOLE_USER": "local",
        "HIPCOACH_FILES_DIR": str(tmp_path / "files"),
    }
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        cwd=str(ROOT),
        env=env,
        stdin=asyncio.subprocess.PIPE,  # kept open, never written to
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    seen: list[str] = []
    try:

        async def read_until_prompt() -> None:
            assert process.stdout is not None
            while True:
                line = await process.stdout.readline()
                if not line:
                    raise AssertionError("hipcoach run exited early")
                seen.append(line.decode())
                if "Skip today" in seen[-1]:  # the prompt's last button
                    return

        await asyncio.wait_for(read_until_prompt(), timeout=100)
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            _, err = await asyncio.wait_for(process.communicate(), timeout=15)
        except TimeoutError:
            process.kill()
            _, err = await process.communicate()
    assert any(PROMPT in line for line in seen), (seen, err.decode()[-2000:])
    assert any("Snooze 30 min" in line for line in seen)
    assert sum(PROMPT in line for line in seen) == 1


async def test_held_replies_are_renewed_together_and_only_those_still_ours(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claims a process holds on replies waiting in its pacing are renewed in a few
    statements (bot/holds.py); a row another sender took over keeps that sender's lease."""
    monkeypatch.setattr(outbox, "RENEW_CHUNK", 2)  # several statements for five rows
    db = Database(db_url)
    try:
        lease = NOW + timedelta(seconds=30)
        claimed: list[outbox.ClaimedMessage] = []
        async with db.transaction() as repo:
            for n, token in enumerate(("ours-a", "ours-a", "ours-b", "ours-b", "theirs")):
                reply = outbox.NewReply(f"reply:r{n}", "console", f"chat-{n}", {"text": "hi"})
                rows = await outbox.add_replies(
                    repo, [reply], now=NOW, token=token, lease_until=lease
                )
                claimed.extend(row for _, row in rows)
        assert len(claimed) == 5
        ours, taken_over = claimed[:4], claimed[4]
        # The last row was taken over: we still think we hold it under our own token.
        stale = replace(taken_over, token="ours-b")
        later = NOW + timedelta(seconds=90)
        async with db.transaction() as repo:
            kept = await outbox.renew_each(repo, [*ours, stale], later)
        assert kept == {row.id for row in ours}
        async with db.transaction(readonly=True) as repo:
            leases = {
                row.id: row.lease_until
                for row in (await repo.session.execute(select(OutboxMessage))).scalars()
            }
        assert all(leases[row.id] == later for row in ours)
        assert leases[taken_over.id] == lease  # the other sender's claim, untouched
    finally:
        await db.dispose()
