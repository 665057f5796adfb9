"""Pausing until a date (issue 11, point 9): holidays, races and layoffs.

"pause until 5 Jan" / "pause 2 weeks" / "pause" with its buttons stop the reminders, and
they start again by themselves on that day in the runner's own timezone, at their usual
time, with the date shown in settings and on the home screen. Driven by the real
scheduler on a clock the test moves.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.engine.dates import parse_until
from bot.home import home_summary
from bot.service import Coach
from scheduler import Scheduler
from tests.chat_driver import Chat, Clock
from tests.test_scheduler_helpers import (
    PROMPT,
    RecordingSender,
    around,
    drive,
    hourly,
    local_at,
    scheduler,
    setup_runner,
    stored_user,
    utc,
)

AUCKLAND = "Pacific/Auckland"  # UTC+13 in January: its days start 13 hours before UTC's


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 12, 31, 20, 0))  # Fri 1 Jan 2027, 09:00 in Auckland


@pytest.fixture
def sender(clock: Clock) -> RecordingSender:
    return RecordingSender(clock)


@pytest.fixture
def sched(db, coach: Coach, sender: RecordingSender, clock: Clock) -> Scheduler:  # type: ignore[no-untyped-def]
    return scheduler(db, coach, sender, clock)


async def test_pause_until_a_date_resumes_by_itself_on_that_local_morning(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender, coach: Coach
) -> None:
    await setup_runner(chat, zone=AUCKLAND, reminder="07:30")
    await chat.send("pause until 5 Jan")
    assert "Tue 5 Jan, at 07:30" in chat.text
    await chat.send("settings")
    assert "until Tue 5 Jan" in chat.text
    await chat.press("Done")
    home = await home_summary(coach, "console", chat.user_id)
    assert home.paused and home.paused_until == "Tue 5 Jan"
    assert home.next_checkin == "Tue 07:30 (Pacific/Auckland)"

    resume = local_at(date(2027, 1, 5), "07:30", AUCKLAND)  # Mon 4 Jan 18:30 UTC
    assert resume == utc(2027, 1, 4, 18, 30)
    await drive(sched, clock, hourly(clock.now, resume + timedelta(hours=2)) + around([resume]))
    assert sender.times(PROMPT) == [resume]  # not one reminder during the pause, then on time
    assert "your pause is over" in sender.texts(PROMPT)[0]
    user = await stored_user(chat.coach.db)
    assert not user.profile["paused"] and user.profile["paused_until"] is None

    # ... and the day after, the usual reminder again.
    tomorrow = local_at(date(2027, 1, 6), "07:30", AUCKLAND)
    await drive(sched, clock, around([tomorrow]))
    assert sender.times(PROMPT) == [resume, tomorrow]


async def test_pause_with_its_buttons_or_a_span_counts_local_days(
    chat: Chat, clock: Clock, sched: Scheduler, sender: RecordingSender
) -> None:
    await setup_runner(chat, zone=AUCKLAND, reminder="07:30")
    await chat.send("pause")
    assert {"3 days", "1 week", "2 weeks", "Until I resume"} <= set(chat.labels)
    await chat.press("3 days")  # today is Fri 1 Jan in Auckland: back on Mon 4 Jan
    assert "Mon 4 Jan" in chat.text
    resume = local_at(date(2027, 1, 4), "07:30", AUCKLAND)
    await drive(sched, clock, hourly(clock.now, resume + timedelta(hours=1)) + around([resume]))
    assert sender.times(PROMPT) == [resume]

    await chat.send("pause 2 weeks")
    assert "Mon 18 Jan" in chat.text
    await chat.send("resume")  # back early: the pause ends at once
    tomorrow = local_at(date(2027, 1, 5), "07:30", AUCKLAND)
    await drive(sched, clock, around([tomorrow]))
    assert sender.times(PROMPT) == [resume, tomorrow]


async def test_a_date_that_is_not_one_asks_again_with_the_buttons(chat: Chat) -> None:
    await setup_runner(chat, zone=AUCKLAND, reminder="07:30")
    await chat.send("pause until the cows come home")
    assert "couldn't read that" in chat.text and "2 weeks" in chat.labels
    await chat.send("until 12 Jan")  # typed at the question
    assert "Tue 12 Jan" in chat.text
    user = await stored_user(chat.coach.db)
    assert user.profile["paused_until"] == "2027-01-12"


TODAY = date(2026, 11, 26)  # a Thursday


@pytest.mark.parametrize(
    ("typed", "until"),
    [
        ("2 weeks", date(2026, 12, 10)),
        ("10 days", date(2026, 12, 6)),
        ("a week", date(2026, 12, 3)),
        ("tomorrow", date(2026, 11, 27)),
        ("monday", date(2026, 11, 30)),
        ("until thu", date(2026, 12, 3)),  # today is Thursday: the next one
        ("until 12 Jan", date(2027, 1, 12)),  # already past this year: next year's
        ("till january 12th", date(2027, 1, 12)),
        ("12 December", date(2026, 12, 12)),
        ("2027-03-01", date(2027, 3, 1)),
        ("for a month", date(2026, 12, 26)),
        ("until 26 nov", date(2027, 11, 26)),
        ("until 30 feb", None),
        ("2025-01-01", None),  # the past
        ("2031-01-01", None),  # more than a year away
        ("9999 weeks", None),
        ("soon", None),
        ("1" * 500, None),
    ],
)
def test_typed_pause_dates(typed: str, until: date | None) -> None:
    assert parse_until(typed, TODAY) == until


async def test_app_home_shows_the_day_the_pause_ends(chat: Chat, coach: Coach) -> None:
    from bot.adapters.slack.render import render_home

    await setup_runner(chat, zone=AUCKLAND, reminder="07:30")
    await chat.send("pause until 5 Jan")
    view = render_home(await home_summary(coach, "console", chat.user_id), coach.content)
    shown = str(view["blocks"])
    assert "paused until Tue 5 Jan" in shown and "Tue 07:30 (Pacific/Auckland)" in shown
    assert "Resume reminders" in shown
