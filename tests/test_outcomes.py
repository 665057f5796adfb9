"""Issue 13: weekly outcome measures, the Sunday summary and the summary for a physio.

A six-week story through the real service and database with a controlled clock: the
weekly check comes on the right local days (not on the day of an escalation), the Sunday
summary arrives on Sunday evening with the week's counts, and the one-page PDF holds the
period, the escalation with its date, the plan changes and the outcome scores (read back
with pypdf). Its first page is rendered to PNG (PyMuPDF) so a person can look at it.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pymupdf
import pytest
from pypdf import PdfReader

from bot.engine import outcomes as om
from bot.engine.events import Outbound
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord
from bot.report.weekly import CAPTION_MAX, caption_length
from bot.service import Coach
from bot.storage import reports
from bot.storage.db import Database
from scheduler import Scheduler
from tests.chat_driver import NIGHT_PAIN, NO_FLAGS, ZONE, Chat, Clock, checkin, local_day, onboard
from tests.test_scheduler_helpers import RecordingSender, scheduler

OFFER = "weekly progress check"
START = "x:w"
SKIP_WEEK = "x:wn"
SUMMARY_BUTTON = "Summary for my physio"
PAGE_PNG = Path(tempfile.gettempdir()) / "hipcoach-summary-page1.png"
A4 = (595.3, 841.9)  # points
LETTER = (612.0, 792.0)


def pdf_of(replies: list[Outbound]) -> bytes:
    files = [
        r.attachment for r in replies if r.attachment and r.attachment.mime == "application/pdf"
    ]
    assert len(files) == 1, [r.text[:40] for r in replies]
    return files[0].data


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


@dataclass
class Story:
    """What the runner did, to compare the summaries with."""

    offers: list[date] = field(default_factory=list)
    checkin_days: set[date] = field(default_factory=set)
    done: dict[date, int] = field(default_factory=dict)
    runs: dict[date, int] = field(default_factory=dict)


async def weekly_check(chat: Chat, *answers: str) -> str:
    """Start this week's check from the offer and answer it; returns what the coach said."""
    await chat.tap(START)
    said = []
    for answer in answers:
        if answer in chat.labels:
            await chat.press(answer)
        else:
            await chat.send(answer)  # the runner's own words
        said.append(chat.text)
    assert await chat.question() is None, "the weekly check is over"
    return said[-1]


async def a_day(chat: Chat, clock: Clock, story: Story, day_no: int, **answers: str) -> None:
    await checkin(chat, **answers)
    today = local_day(clock)
    story.checkin_days.add(today)
    if any(OFFER in m for m in chat.messages):
        story.offers.append(today)
    # The first exercise of today's card, opened and logged done.
    await chat.send("today")
    first = next((b for b in chat.buttons if b.payload.startswith("x:v:")), None)
    if first is not None:
        await chat.tap(first.payload)
        await chat.press("Done ✅")
        story.done[today] = 1
    if "ran" in answers:
        story.runs[today] = int(answers["ran"].split()[0])


async def test_O4_a_six_week_story_weekly_checks_sunday_summaries_and_the_physio_pdf(
    db: Database, coach: Coach, chat: Chat, clock: Clock
) -> None:
    sender = RecordingSender(clock)
    sched: Scheduler = scheduler(db, coach, sender, clock)
    chat.user_id = "runner-6w"
    await onboard(chat)  # Thursday 26 November 2026, Berlin
    start = local_day(clock)
    story = Story()
    scores_said: dict[int, str] = {}
    escalation_day = start + timedelta(days=14)

    for n in range(1, 43):
        clock.now = datetime(2026, 11, 26, 7, 0, tzinfo=UTC) + timedelta(days=n)
        today = local_day(clock)
        if today == escalation_day:
            # A weekly day, but night pain sends the runner to a doctor today: no check.
            # (It is also the weekly full screen's day: night pain is in its bone group.)
            await checkin(chat, screen={**NIGHT_PAIN, "s/g:bone": "Yes, one or more"})
            assert "checked by a doctor today" in chat.text
            assert not any(OFFER in m for m in chat.messages)
            story.checkin_days.add(today)
        elif today == escalation_day + timedelta(days=1):
            await chat.send("checkin")
            await chat.answer_all("Yes, I've been seen", "Yes, I'm cleared", *NO_FLAGS)
            await a_day(chat, clock, story, n)
        elif n % 3 == 0:
            await a_day(chat, clock, story, n, ran=f"{10 + n} min", run_pain="1")
        else:
            await a_day(chat, clock, story, n)
        if story.offers and story.offers[-1] == today:
            week = len(story.offers)
            if week == 1:  # the first check: pick activities and score them
                scores_said[week] = await weekly_check(
                    chat,
                    "About the same",
                    "Climbing stairs",
                    "4",
                    "Carrying my toddler",
                    "3",
                    "That's all",
                )
            elif week == 3:
                await chat.tap(SKIP_WEEK)
                assert "next week" in chat.text
            else:
                stairs, toddler = {2: ("5", "4"), 4: ("8", "7"), 5: ("9", "8")}[week]
                groc = {2: "A little better", 4: "Better", 5: "Much better"}[week]
                scores_said[week] = await weekly_check(chat, groc, stairs, toddler)
        # Sunday 19:00 in Berlin is 18:00 UTC in winter: the Sunday summary.
        if today.weekday() == 6:
            await sched.tick(datetime(today.year, today.month, today.day, 18, 0, tzinfo=UTC))
            await sched.dispatch(datetime(today.year, today.month, today.day, 18, 0, tzinfo=UTC))

    assert len(story.done) > 30  # exercises were logged on most days, so the counts say something
    # The weekly check came a week after the plan began, then weekly; not on the day of the
    # escalation but at the next check-in, and weekly again from then.
    assert story.offers == [
        start + timedelta(days=7),
        escalation_day + timedelta(days=1),
        escalation_day + timedelta(days=8),
        escalation_day + timedelta(days=15),
        escalation_day + timedelta(days=22),
    ]
    assert "starting point" in scores_said[1]
    assert "real improvement" in scores_said[4]  # stairs 4 -> 8, toddler 3 -> 7: mean +4
    assert "Climbing stairs: 4 → 8" in scores_said[4]
    assert "clearly better" in scores_said[4]  # GROC +2
    assert "don't say what is causing" in scores_said[4]

    # Sunday summaries: one a week, on Sunday evening local time, in the private chat.
    summaries = [s for s in sender.sent if s.message.text.startswith("Your week")]
    sundays = [
        start + timedelta(days=d) for d in range(43) if (start + timedelta(days=d)).weekday() == 6
    ]
    assert [s.at.date() for s in summaries] == sundays
    for sent in summaries:
        message = sent.message
        assert message.private and message.attachment is not None
        assert message.attachment.data.startswith(b"\x89PNG")
        assert caption_length(message.text) <= CAPTION_MAX
        sunday = sent.at.date()
        week = [sunday - timedelta(days=d) for d in range(7)]
        checkins = sum(d in story.checkin_days for d in week)
        done = sum(story.done.get(d, 0) for d in week)
        runs = [story.runs[d] for d in week if d in story.runs]
        assert f"Check-ins: {checkins} of 7 days" in message.text
        assert f"Exercises done: {done}" in message.text
        if runs:
            assert f"Runs: {len(runs)}, longest {max(runs)} min" in message.text
        else:
            assert "Runs: none" in message.text
        assert "Decisions:" in message.text
    last = summaries[-1].message.text
    assert "real improvement" in last  # the outcome change since the first check

    # The summary for a physio.
    replies = await chat.send("summary")
    data = pdf_of(replies)
    text = pdf_text(data)
    PAGE_PNG.with_suffix(".pdf").write_bytes(data)
    # The first page as an image a person can look at.
    document = pymupdf.open(stream=data, filetype="pdf")
    pixmap = document[0].get_pixmap(dpi=110)
    pixmap.save(str(PAGE_PNG))
    assert PAGE_PNG.read_bytes().startswith(b"\x89PNG")
    assert pixmap.width > 800 and pixmap.height > 1100
    today = local_day(clock)
    period_start = today - timedelta(days=41)
    assert f"Period: {period_start:%d %b %Y} to {today:%d %b %Y}" in text
    assert ZONE in text
    assert f"{escalation_day:%d %b %Y}: URGENT" in text
    assert "R11" in text
    assert "Plan changes" in text and "→" in text
    assert f"{start:%d %b %Y}: phase 1.1 → 1.1 (start" in text
    assert "For: " in text
    first_check = start + timedelta(days=7)
    assert f"{first_check:%d %b %Y}: Climbing stairs 4/10" in text
    assert "Carrying my toddler 8/10" in text
    assert "global change +3 (Much better)" in text
    assert "automated running coach" in text
    assert "runner-6w" not in text  # no platform ids
    page = PdfReader(io.BytesIO(data)).pages[0].mediabox
    width, height = float(page.width), float(page.height)
    assert width <= min(A4[0], LETTER[0]) + 0.5 and height <= min(A4[1], LETTER[1]) + 0.5


async def test_O4_the_weekly_check_waits_a_week_and_respects_the_limit(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    for _ in range(6):
        clock.advance(days=1)
        await checkin(chat)
        assert not any(OFFER in m for m in chat.messages)
    clock.advance(days=1)
    await checkin(chat)
    assert any(OFFER in m for m in chat.messages)
    # Up to three activities: the third score ends the check (1 rating + 3 scores <= 5).
    await chat.tap(START)
    await chat.answer_all("About the same", "Climbing stairs", "5", "Running 5 km", "2")
    await chat.answer_all("Sitting for a long time", "6")
    assert await chat.question() is None
    profile, _ = await chat.stored()
    assert len(profile.psfs_activities) == om.MAX_ACTIVITIES
    assert 1 + om.MAX_ACTIVITIES <= om.MAX_WEEKLY_ITEMS
    # Asked today: not again tomorrow.
    clock.advance(days=1)
    await checkin(chat)
    assert not any(OFFER in m for m in chat.messages)


def test_O1_two_points_lower_morning_pain_is_much_better() -> None:
    today = date(2026, 12, 10)
    week = [CheckinRecord(local_date=today - timedelta(days=d), pain_now=2) for d in range(5)]
    change = om.nprs_change(week, 4.0, today)
    assert change is not None and change.meaningful
    assert om.nprs_words(change) == ("outcomes_pain_better", 2.0)
    small = om.nprs_change(week, 3.0, today)
    assert small is not None and not small.meaningful
    assert om.nprs_words(small) == ("outcomes_pain_some", 1.0)
    assert om.nprs_change(week, None, today) is None


def test_O2_activity_scores_need_2_points_on_average_or_3_for_one() -> None:
    first = {"stairs": 4, "sitting": 5}
    assert om.psfs_change(first, {"stairs": 6, "sitting": 6}) == om.Change(4.5, 6.0, False)
    change = om.psfs_change(first, {"stairs": 7, "sitting": 6})
    assert change is not None and change.meaningful
    assert om.psfs_item_changed(4, 7) and not om.psfs_item_changed(4, 6)
    assert om.psfs_change(first, {"running": 3}) is None


def test_O3_a_rating_of_two_steps_better_counts() -> None:
    assert om.groc_meaningful(2) and om.groc_meaningful(3)
    assert not om.groc_meaningful(1)
    assert om.groc_words(-2) == "outcomes_groc_worse"
    assert om.groc_words(0) == "outcomes_groc_small"


def test_O4_never_on_a_day_with_an_escalation() -> None:
    today = date(2026, 12, 10)
    due = Profile(onboarded=True, plan_started_on=today - timedelta(days=7))
    assert om.weekly_check_due(due, today, escalated_today=False)
    assert not om.weekly_check_due(due, today, escalated_today=True)
    referred = due.model_copy(update={"review_since": today})
    assert not om.weekly_check_due(referred, today, escalated_today=False)
    assert not om.weekly_check_due(due, today - timedelta(days=1), escalated_today=False)


async def test_export_holds_the_outcome_answers_and_delete_removes_them(
    db: Database, chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=7)
    await checkin(chat)
    await chat.tap(START)
    await chat.answer_all("Better", "Climbing stairs", "6", "That's all")
    replies = await chat.send("export")
    export = next(r.attachment for r in replies if r.attachment is not None)
    import json

    data = json.loads(export.data)
    answers = [(a["measure"], a["item"], a["score"]) for a in data["outcome_answers"]]
    assert answers == [("groc", None, 2), ("psfs", "Climbing stairs", 6)]
    assert data["weekly_summaries"] and data["weekly_summaries"][0]["next_at"]
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user(chat.platform, chat.user_id, lock=False)
        assert user is not None
        user_id = user.id
        assert len(await reports.outcome_answers(repo, user_id)) == 2
    await chat.send("delete")
    await chat.press("Yes, delete everything")
    async with db.transaction(readonly=True) as repo:
        assert await reports.outcome_answers(repo, user_id) == []
        counts = await repo.row_counts_for_user(user_id, chat.user_id)
        assert counts["outcome_answers"] == counts["weekly_summaries"] == 0


@pytest.mark.parametrize("setting", ["Sunday summary on/off"])
async def test_the_sunday_summary_can_be_turned_off_in_settings(
    db: Database, coach: Coach, chat: Chat, clock: Clock, setting: str
) -> None:
    sender = RecordingSender(clock)
    sched = scheduler(db, coach, sender, clock)
    await onboard(chat)  # Thursday
    clock.advance(days=1)
    await checkin(chat)
    await chat.send("settings")
    await chat.press(setting)
    assert "Sunday summary is off" in chat.text
    await chat.press("Done")
    sunday = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    await sched.tick(sunday)
    await sched.dispatch(sunday)
    assert not sender.texts("Your week")
    # On again (that Sunday evening): the next Sunday brings it.
    clock.now = sunday + timedelta(hours=2)
    await chat.send("settings")
    await chat.press(setting)
    assert "Sunday summary is on" in chat.text
    await chat.press("Done")
    clock.now = sunday + timedelta(days=1, hours=-11)
    await checkin(chat)
    await sched.tick(sunday + timedelta(days=7))
    await sched.dispatch(sunday + timedelta(days=7))
    assert len(sender.texts("Your week")) == 1
