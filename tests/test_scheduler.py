"""The due-work tick: daily prompts on time and once, in every timezone; snooze, skip,
pause, nudges, clearance questions, team warm-ups, restarts and downtime.

Time is injected: a `Clock` drives the coach and `tick(now)` / `dispatch(now)`. Most
stories run on SQLite (fast); the restart story runs on PostgreSQL too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.engine.events import ChatKind
from bot.service import Coach
from bot.storage.db import Database
from bot.storage.models import User
from scheduler import Scheduler
from tests.chat_driver import CHECKIN, NIGHT_PAIN, Chat, Clock, answer_flow, checkin
from tests.test_scheduler_helpers import (
    CLEARANCE,
    NUDGE,
    PROMPT,
    RecordingSender,
    around,
    drive,
    hourly,
    local_at,
    outbox_rows,
    scheduler,
    setup_runner,
    step,
    stored_user,
    utc,
)


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 3, 20, 12, 0))


@pytest.fixture
def sender(clock: Clock) -> RecordingSender:
    return RecordingSender(clock)


@pytest.fixture
def sched(db: Database, coach: Coach, sender: RecordingSender, clock: Clock) -> Scheduler:
    return scheduler(db, coach, sender, clock)


# --- one prompt per local day, at the local time, across DST -------------------------------

# (zone, first local date, days): windows around each zone's 2026 clock changes.
DST_WINDOWS = [
    ("Europe/Berlin", date(2026, 3, 27), 5),  # spring forward 29 Mar
    ("Europe/Berlin", date(2026, 10, 23), 5),  # fall back 25 Oct
    ("America/New_York", date(2026, 3, 6), 5),  # 8 Mar
    ("America/New_York", date(2026, 10, 30), 5),  # 1 Nov
    ("Australia/Sydney", date(2026, 4, 3), 5),  # southern hemisphere: ends 5 Apr
    ("Australia/Sydney", date(2026, 10, 2), 5),  # starts 4 Oct
    ("Asia/Kolkata", date(2026, 3, 27), 4),  # +05:30, no DST
    ("Pacific/Chatham", date(2026, 4, 3), 5),  # +13:45 -> +12:45 on 5 Apr
    ("Pacific/Chatham", date(2026, 9, 25), 5),  # +12:45 -> +13:45 on 27 Sep
]


@pytest.mark.parametrize(("zone", "first", "days"), DST_WINDOWS)
async def test_a_runner_gets_one_prompt_per_local_day_at_the_local_time(
    zone: str,
    first: date,
    days: int,
    chat: Chat,
    clock: Clock,
    sched: Scheduler,
    sender: RecordingSender,
) -> None:
    clock.now = local_at(first, "12:00", zone) - timedelta(days=1)
    await setup_runner(chat, zone=zone, reminder="07:30")
    expected = [local_at(first + timedelta(days=n), "07:30", zone) for n in range(days)]
    coarse = hourly(clock.now, expected[-1] + timedelta(hours=2), timedelta(hours=3))
    instants = coarse + around(expected)
    await drive(sched, clock, instants)
    assert sender.times(PROMPT) == expected
    # Local reading of each prompt is 07:30 on consecutive local dates.
    assert len({(t.isoformat()) for t in sender.times(PROMPT)}) == days


async def test_the_berlin_clock_changes_in_utc_terms(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 3, 27, 12, 0)
    await setup_runner(chat, reminder="07:30")
    expected = [
        utc(2026, 3, 28, 6, 30),  # CET
        utc(2026, 3, 29, 5, 30),  # CEST from 29 Mar
        utc(2026, 3, 30, 5, 30),
    ]
    await drive(sched, clock, hourly(clock.now, utc(2026, 3, 30, 8)) + around(expected))
    assert sender.times(PROMPT) == expected


async def test_a_time_inside_the_gap_fires_once_after_it_and_once_on_the_doubled_night(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 3, 27, 12, 0)
    await setup_runner(chat, reminder="02:30")
    spring = [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST, the first valid minute
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]
    await drive(
        sched, clock, hourly(clock.now, utc(2026, 3, 30, 3), timedelta(hours=2)) + around(spring)
    )
    assert sender.times(PROMPT) == spring

    sender.sent.clear()
    clock.now = utc(2026, 10, 23, 12, 0)
    await step(sched, clock, clock.now)  # catches up (skips) the days in between
    autumn = [
        utc(2026, 10, 24, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 happens twice: only the first (CEST) one
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]
    second_0230 = utc(2026, 10, 25, 1, 30)
    await drive(
        sched,
        clock,
        hourly(clock.now, utc(2026, 10, 26, 3), timedelta(hours=2))
        + around([*autumn, second_0230]),
    )
    assert sender.times(PROMPT) == autumn


async def test_changing_timezone_on_a_dst_day_moves_the_next_prompt_to_the_new_local_time(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    # A New York runner flies to Berlin and changes zone on the night Europe springs forward.
    clock.now = utc(2026, 3, 27, 16, 0)
    await setup_runner(chat, zone="America/New_York", reminder="07:30")
    await drive(sched, clock, [*hourly(clock.now, utc(2026, 3, 28, 13)), utc(2026, 3, 28, 11, 30)])
    assert sender.times(PROMPT) == [utc(2026, 3, 28, 11, 30)]  # 07:30 EDT

    clock.now = utc(2026, 3, 29, 1, 30)  # 03:30 CEST in Berlin, just after the change
    await chat.send("settings")
    await chat.press("Timezone")
    await chat.press("Europe/Berlin")
    assert "Europe/Berlin" in chat.text
    user = await stored_user(chat.coach.db)
    assert user.timezone == "Europe/Berlin"
    assert user.next_checkin_at == utc(2026, 3, 29, 5, 30)

    new_york_time = utc(2026, 3, 29, 11, 30)
    berlin_times = [utc(2026, 3, 29, 5, 30), utc(2026, 3, 30, 5, 30)]
    await drive(
        sched,
        clock,
        hourly(clock.now, utc(2026, 3, 30, 12)) + around([*berlin_times, new_york_time]),
    )
    assert sender.times(PROMPT) == [utc(2026, 3, 28, 11, 30), *berlin_times]


async def test_changing_the_reminder_time_after_todays_prompt_waits_for_tomorrow(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await step(sched, clock, utc(2026, 6, 1, 5, 30))
    assert len(sender.times(PROMPT)) == 1
    clock.now = utc(2026, 6, 1, 6, 0)
    await chat.send("settings")
    await chat.press("Check-in time")
    await chat.press("18:00")
    await drive(
        sched, clock, hourly(clock.now, utc(2026, 6, 2, 17)) + around([utc(2026, 6, 1, 16)])
    )
    assert sender.times(PROMPT) == [utc(2026, 6, 1, 5, 30), utc(2026, 6, 2, 16, 0)]


# --- restarts and downtime -------------------------------------------------------------------


async def _runner(coach: Coach, user_id: str, reminder: str) -> None:
    await setup_runner(Chat(coach, user_id=user_id), reminder=reminder)


async def test_a_restart_sends_nothing_twice_and_keeps_reminders_in_the_grace_window(
    db_url: str,
) -> None:
    clock = Clock(utc(2026, 6, 1, 2, 0))  # Berlin is UTC+2 in June
    db = Database(db_url)
    coach = Coach(db, clock=clock)
    try:
        await _runner(coach, "early", "07:00")  # 05:00 UTC
        await _runner(coach, "mid", "08:00")  # 06:00 UTC
        await _runner(coach, "late", "11:00")  # 09:00 UTC
        sender = RecordingSender(clock)
        first = scheduler(db, coach, sender, clock)
        await step(first, clock, utc(2026, 6, 1, 5, 0))
        assert [s.message.chat_id for s in sender.sent] == ["early"]
        await first.shutdown()
    finally:
        await db.dispose()

    # Down from 05:00 until 09:30 UTC; a new process on the same database.
    db = Database(db_url)
    coach = Coach(db, clock=clock)
    try:
        second = scheduler(db, coach, sender, clock)
        await step(second, clock, utc(2026, 6, 1, 9, 30))
        await step(second, clock, utc(2026, 6, 1, 9, 31))
        # "mid" was due 3 h 30 ago: skipped to tomorrow; "late" is 30 min late: sent once;
        # "early" was already sent and is not sent again.
        assert [s.message.chat_id for s in sender.sent if PROMPT in s.message.text] == [
            "early",
            "late",
        ]
        async with db.transaction(readonly=True) as repo:
            mid = await repo.get_user("console", "mid", lock=False)
        assert mid is not None and mid.next_checkin_at == utc(2026, 6, 2, 6, 0)
        # A third process ticking the same minute again changes nothing.
        third = scheduler(db, coach, sender, clock)
        assert await third.tick(utc(2026, 6, 1, 9, 31)) == 0
        assert await third.dispatch(utc(2026, 6, 1, 9, 31)) == 0
        sent_before = len(sender.sent)
        await step(third, clock, utc(2026, 6, 2, 6, 0))
        # The next day "mid" gets its prompt (with "early", whose 07:00 is due too; messages
        # to different chats go out side by side, in no promised order).
        assert {s.message.chat_id for s in sender.sent[sent_before:]} == {"early", "mid"}
    finally:
        await db.dispose()


async def test_a_long_outage_sends_the_latest_occurrence_if_it_is_still_in_the_window(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")  # next: 1 Jun 05:30 UTC
    # The clock process was down for a day and a bit: 1 Jun is skipped, 2 Jun goes out.
    await step(sched, clock, utc(2026, 6, 2, 7, 0))
    assert sender.times(PROMPT) == [utc(2026, 6, 2, 7, 0)]
    rows = await outbox_rows(chat.coach.db, kind="checkin")
    assert [r.idempotency_key.split(":")[-1] for r in rows] == ["2026-06-02"]


# --- snooze, skip, pause, nudges -------------------------------------------------------------


async def test_snooze_asks_again_once_after_the_chosen_time(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await step(sched, clock, utc(2026, 6, 1, 5, 30))
    (prompt,) = sender.sent
    chat.buttons = prompt.message.flat_buttons
    clock.now = utc(2026, 6, 1, 5, 35)
    await chat.press("Snooze 30 min")
    assert "08:05" in chat.text
    await drive(
        sched,
        clock,
        hourly(clock.now, utc(2026, 6, 2, 4), timedelta(minutes=20))
        + around([utc(2026, 6, 1, 6, 5), utc(2026, 6, 1, 9, 5)]),
    )
    assert sender.times(PROMPT) == [utc(2026, 6, 1, 5, 30), utc(2026, 6, 1, 6, 5)]
    # The re-ask schedules the day's one nudge three hours later.
    assert sender.times(NUDGE) == [utc(2026, 6, 1, 9, 5)]
    keys = [r.idempotency_key for r in await outbox_rows(chat.coach.db, kind="checkin")]
    user = await stored_user(chat.coach.db)
    assert keys == [f"checkin:{user.id}:2026-06-01", f"checkin:{user.id}:2026-06-01:snooze:0805"]
    assert user.next_checkin_at == utc(2026, 6, 2, 5, 30)


async def test_skip_today_means_no_nudge_and_no_snoozed_reask(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await step(sched, clock, utc(2026, 6, 1, 5, 30))
    chat.buttons = sender.sent[-1].message.flat_buttons
    clock.now = utc(2026, 6, 1, 5, 40)
    await chat.press("Snooze 1 h")
    await chat.press("Skip today")
    assert "no check-in today" in chat.text
    await drive(
        sched,
        clock,
        [*hourly(clock.now, utc(2026, 6, 2, 6), timedelta(minutes=15)), utc(2026, 6, 2, 5, 30)],
    )
    assert sender.times(PROMPT) == [utc(2026, 6, 1, 5, 30), utc(2026, 6, 2, 5, 30)]
    assert sender.times(NUDGE) == []


async def test_a_paused_runner_gets_nothing_until_they_resume(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await chat.send("pause")
    await chat.press("Until I resume")
    await drive(sched, clock, hourly(clock.now, utc(2026, 6, 3, 12)))
    assert sender.sent == []
    await chat.send("resume")
    await drive(sched, clock, hourly(clock.now, utc(2026, 6, 4, 6)))
    assert sender.times(PROMPT) == [utc(2026, 6, 4, 6, 0)]  # the first tick after 05:30


async def test_an_unanswered_prompt_gets_one_nudge_and_never_after_21(
    coach: Coach, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    morning, evening, quiet = (Chat(coach, user_id=u) for u in ("morning", "evening", "quiet"))
    await setup_runner(morning, reminder="07:30")
    await setup_runner(evening, reminder="19:00")  # a nudge would be 22:00
    await setup_runner(quiet, reminder="07:30")
    await quiet.send("settings")
    await quiet.press("Nudges" if "Nudges" in quiet.labels else quiet.labels[3])
    assert not (await stored_user(coach.db, "quiet")).profile["nudges"]
    await drive(
        sched,
        clock,
        hourly(clock.now, utc(2026, 6, 2, 0), timedelta(minutes=30))
        + around([utc(2026, 6, 1, 8, 30)]),
    )
    nudges = [(s.at, s.message.chat_id) for s in sender.sent if NUDGE in s.message.text]
    assert nudges == [(utc(2026, 6, 1, 8, 30), "morning")]
    assert len(sender.times(PROMPT)) == 3


async def test_no_nudge_once_the_checkin_is_answered(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await step(sched, clock, utc(2026, 6, 1, 5, 30))
    chat.buttons = sender.sent[-1].message.flat_buttons
    await answer_flow(chat, CHECKIN)
    await drive(sched, clock, hourly(clock.now, utc(2026, 6, 1, 20), timedelta(minutes=30)))
    assert sender.times(NUDGE) == []


async def test_the_day_after_an_escalation_the_prompt_is_the_clearance_question(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await checkin(chat, screen=NIGHT_PAIN)
    await drive(sched, clock, hourly(clock.now, utc(2026, 6, 3, 7)))
    prompts = [s for s in sender.sent if NUDGE not in s.message.text]
    # 1 Jun's check-in was done; 2 and 3 Jun ask whether they were seen (until answered).
    assert [s.at for s in prompts] == [utc(2026, 6, 2, 6, 0), utc(2026, 6, 3, 6, 0)]
    assert all(CLEARANCE in s.message.text for s in prompts)


# --- team warm-ups ---------------------------------------------------------------------------


async def test_a_warmup_card_posts_lead_minutes_before_each_run_across_dst(
    coach: Coach, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 10, 19, 12, 0)  # Monday
    group = Chat(coach, user_id="captain", chat_id="club", chat_kind=ChatKind.GROUP, is_admin=True)
    await group.send("warmup add tue,thu 18:00 before 15 tz Europe/Berlin")
    assert "Tue, Thu" in group.text
    expected = [
        utc(2026, 10, 20, 15, 45),  # Tue 17:45 CEST
        utc(2026, 10, 22, 15, 45),  # Thu 17:45 CEST
        utc(2026, 10, 27, 16, 45),  # Tue 17:45 CET (clocks went back on Sunday)
    ]
    coarse = hourly(clock.now, utc(2026, 10, 28, 12), timedelta(hours=3))
    await drive(sched, clock, coarse + around(expected))
    assert sender.times("warm-up") == expected or [s.at for s in sender.sent] == expected
    assert all(s.message.chat_id == "club" and not s.message.private for s in sender.sent)

    await group.send("warmup remove 1")
    assert "removed" in group.text.lower()
    await drive(sched, clock, hourly(clock.now, utc(2026, 11, 6, 12), timedelta(hours=3)))
    assert len(sender.sent) == 3


async def test_a_warmup_missed_until_the_run_started_is_skipped(
    coach: Coach, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    clock.now = utc(2026, 10, 19, 12, 0)
    group = Chat(coach, user_id="captain", chat_id="club", chat_kind=ChatKind.GROUP, is_admin=True)
    await group.send("warmup add tue 18:00 before 15 tz Europe/Berlin")
    await step(sched, clock, utc(2026, 10, 20, 15, 55))  # 10 min late: the run is at 16:00
    await step(sched, clock, utc(2026, 10, 27, 17, 5))  # down past next week's 17:00 UTC run
    await step(sched, clock, utc(2026, 11, 3, 16, 45))
    assert [s.at for s in sender.sent] == [utc(2026, 10, 20, 15, 55), utc(2026, 11, 3, 16, 45)]


# --- delete ----------------------------------------------------------------------------------


async def test_delete_removes_the_runners_pending_reminders(
    chat: Chat, clock: Clock, sched: Scheduler, db: Database
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    clock.now = utc(2026, 6, 1, 5, 30)
    assert await sched.tick(clock.now) == 1
    user = await stored_user(db)
    assert [r.status for r in await outbox_rows(db, user_id=user.id)] == ["pending"]
    await chat.send("delete")
    await chat.press("Yes, delete everything")
    assert await outbox_rows(db) == []
    async with db.transaction(readonly=True) as repo:
        counts = await repo.row_counts_for_user(user.id, "runner-1")
    assert counts["outbox"] == 0 and sum(counts.values()) == 0


async def test_export_includes_the_reminders_queued_for_the_runner(
    chat: Chat, clock: Clock, sched: Scheduler, db: Database
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await step(sched, clock, utc(2026, 6, 1, 5, 30))
    user = await stored_user(db)
    async with db.transaction(readonly=True) as repo:
        export = await repo.export_user(user.id)
        counts = await repo.row_counts_for_user(user.id, "runner-1")
    assert len(export["outbox"]) == counts["outbox"] == 1
    assert export["outbox"][0]["status"] == "sent"


async def test_cleanup_forgets_old_sent_messages_and_event_ids(
    chat: Chat, clock: Clock, sched: Scheduler, db: Database
) -> None:
    clock.now = utc(2026, 6, 1, 4, 0)
    await setup_runner(chat, reminder="07:30")
    await step(sched, clock, utc(2026, 6, 1, 5, 30))
    assert await sched.cleanup(utc(2026, 6, 5)) == (0, 0)
    # Event ids are stamped with the real time; the outbox row with the tick's time.
    events, messages = await sched.cleanup(datetime.now(UTC) + timedelta(days=8))
    assert events > 0 and messages == 1
    assert await outbox_rows(db) == []


def test_users_model_has_the_scheduler_columns() -> None:
    assert {"next_checkin_at", "next_nudge_at", "paused", "unreachable"} <= set(
        User.__table__.columns.keys()
    )
