"""Correcting answers (issue 11, point 7): Back inside the check-in, and "change today's
check-in" afterwards, with the decision made again by the same rules.

A runner who mis-taps goes back one question and answers it again; a runner who checked
in and then remembers the run hurt more changes today's check-in: the answers are
replaced and the decision is made again from where the plan stood that morning, never
from where the first decision moved it.
"""

from __future__ import annotations

from datetime import timedelta

from bot.storage.db import Database
from tests import test_telegram
from tests.chat_driver import (
    CHECKIN,
    NIGHT_PAIN,
    Chat,
    Clock,
    answer_flow,
    checkin,
    days_of_checkins,
    local_day,
    onboard,
)
from tests.fake_telegram import FakeTelegram
from tests.test_telegram import Person

# The Telegram tests' own fixtures: the fake Bot API and the real adapter polling it.
fake, bot, runner = test_telegram.fake, test_telegram.bot, test_telegram.runner

BACK = "◀ Back"


async def todays_row(chat: Chat, clock: Clock):  # type: ignore[no-untyped-def]
    day = local_day(clock)
    async with chat.coach.db.transaction(readonly=True) as repo:
        user = await repo.get_user("console", chat.user_id, lock=False)
        assert user is not None
        rows = await repo.checkins_between(user.id, day, day)
        changes = await repo.export_user(user.id)
    return user, rows, changes["plan_changes"]


async def test_back_asks_the_previous_question_again_and_the_new_answer_counts(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("checkin")
    assert BACK not in chat.labels  # nothing before the first question
    await chat.press("3")
    assert BACK in chat.labels  # "did you run?" can go back to the pain score
    await chat.press(BACK)
    assert "that one again" in chat.text and "got out of bed" in chat.text
    assert chat.replies[0].text.endswith(f"→ {BACK}")  # the left question says so
    await chat.press("1")
    await chat.press("20 min")
    await chat.send("back")  # typed works too
    assert "Did you run" in chat.text
    await answer_flow(chat, {**CHECKIN, "ran": "No run"})
    _, (row,), _ = await todays_row(chat, clock)
    assert (row.pain_now, row.ran, row.run_minutes) == (1, "no", None)
    assert row.decision is not None


async def test_no_going_back_once_a_safety_answer_was_not_no(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("checkin")
    for label in ("2", "No run", "2", "No, same or easier"):
        await chat.press(label)
    assert BACK in chat.labels  # the daily safety screen, with Back to the holds
    await chat.press("Yes, one or more")
    assert BACK not in chat.labels  # red flags win: no stepping round them


async def test_a_changed_checkin_is_decided_again_from_the_mornings_plan(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    await days_of_checkins(chat, clock, 3, pain="2", ran="20 min", run_pain="2")
    clock.advance(days=1)
    await checkin(chat, pain="2", ran="20 min", run_pain="1")
    assert "Progress" in chat.text
    user, _, _ = await todays_row(chat, clock)
    assert user.profile["level"] == 2

    # The run hurt more than first said: change today's check-in.
    await chat.press("Change today's answers")
    assert "replace today's" in chat.text
    await answer_flow(
        chat,
        {**CHECKIN, "pain": "2", "ran": "20 min", "run_pain": "4", "after_run": "All fine"},
    )
    assert "Hold" in chat.text and "4–5" in chat.text  # P2 at 4/10: hold, not progress
    user, (row,), changes = await todays_row(chat, clock)
    # Decided from level 1 (the morning's), so the hold keeps level 1; deciding from the
    # level the first answers moved it to would have kept level 2.
    assert user.profile["level"] == 1
    assert (row.pain_during, row.decision, row.reason) == (4, "hold", "run_pain_moderate")
    assert [(c["from_level"], c["to_level"]) for c in changes[-2:]] == [(1, 2), (2, 1)]


async def test_a_changed_checkin_still_sends_a_red_flag_to_a_clinician(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat)
    await chat.press("Change today's answers")
    await answer_flow(chat, CHECKIN, screen=NIGHT_PAIN)  # night pain now said: R11
    assert "Today's exercises" not in chat.labels
    user, (row,), _ = await todays_row(chat, clock)
    assert row.decision == "escalated" and "R11" in (row.reason or "")
    assert user.profile["escalation"] is not None


# --- on Telegram -------------------------------------------------------------------------------


async def test_telegram_back_and_change_todays_checkin(
    fake: FakeTelegram, runner: Person, clock: Clock, db: Database
) -> None:
    from tests.chat_driver import onboarding_taps

    await runner.send("/start")
    await runner.taps(*onboarding_taps())
    clock.advance(days=1)
    await runner.send("/checkin")
    await runner.tap("4")
    calls = await runner.tap(BACK)
    edit = next(c for c in calls if c.method == "editMessageText")
    assert edit.text.endswith(f"→ {BACK}")
    await runner.taps("2", "No run", "2", "No, same or easier")
    while fake.last_keyboard_message(runner.chat_id) and "None of these" in str(
        fake.last_keyboard_message(runner.chat_id).markup  # type: ignore[union-attr]
    ):
        await runner.tap("None of these")
    calls = await runner.tap("Change today's answers")
    assert "replace today's" in "\n".join(c.text for c in calls)
    await runner.taps("5", "No run", "2", "No, same or easier")
    while "None of these" in str(fake.last_keyboard_message(runner.chat_id).markup):  # type: ignore[union-attr]
        await runner.tap("None of these")
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", str(runner.user_id), lock=False)
        assert user is not None
        day = local_day(clock)
        (row,) = await repo.checkins_between(user.id, day - timedelta(days=0), day)
    assert row.pain_now == 5 and row.decision is not None
