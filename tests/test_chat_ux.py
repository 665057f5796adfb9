"""Chat UX as a runner meets it (issue 11): free text about the hip, redoing setup, edits
that keep what people need, and wording that states only true facts.

Real Coach service on SQLite through tests/chat_driver.py; time is the driver's Clock.
"""

from __future__ import annotations

from datetime import date

from bot.engine.tips import tip_for
from bot.storage.db import Database
from content.loader import default_content
from tests.chat_driver import (
    ADULT,
    CHECKIN,
    FRONT,
    Chat,
    Clock,
    answer_flow,
    checkin,
    local_day,
    onboard,
    question_text,
)


async def _checkins(db: Database, user_id: str = "runner-1") -> int:
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("console", user_id, lock=False)
        assert user is not None
        return len(await repo.latest_checkins(user.id, 1000))


# --- point 3: free text about the hip -------------------------------------------------------


async def test_a_runner_who_writes_that_the_hip_hurts_more_gets_the_checkin(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("my hip hurts more today")
    assert "didn't follow" not in chat.text
    assert "Thanks for telling me" in chat.text
    assert await chat.question() == "pain"
    # Typed again while the check-in waits: the same question, not a canned reply.
    await chat.send("it really is sore")
    assert await chat.question() == "pain"
    assert "Thanks for telling me" in chat.text
    assert question_text("morning_pain_question") in chat.text


async def test_a_red_flag_word_asks_the_safety_questions_at_once(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("since this morning my leg has gone numb")
    assert await chat.question() == "s/i:R1"
    assert "isn't a diagnosis" in chat.text
    await chat.press("Yes")
    assert "Please get medical help now" in chat.text  # R1: EMERGENCY
    profile, _ = await chat.stored()
    assert profile.plan_paused


async def test_a_clear_safety_check_after_a_red_flag_word_leads_to_the_checkin(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("I had a fever last night")
    assert await chat.question() == "s/i:R6"
    asked = []
    while (qid := await chat.question()) is not None and qid.startswith("s/"):
        asked.append(qid)
        await chat.press("No" if qid.startswith("s/i:") else "None of these")
    # The runner's own words first, then the rest of the full screen; then the check-in.
    assert asked[0] == "s/i:R6" and asked[1].startswith("s/g:")
    _, conv = await chat.stored()
    assert conv.flow == "checkin" and conv.qid == "pain"
    asked = await answer_flow(chat, CHECKIN)
    assert not [q for q in asked if q.startswith("s/")], asked  # not asked twice


async def test_before_setup_red_flag_words_get_the_safety_advice_and_nothing_is_kept(
    chat: Chat, db: Database
) -> None:
    await chat.send("I can't walk on my leg")
    assert "get medical help now" in chat.text
    assert chat.labels == ["Set up my plan"]
    await chat.send("my hip is sore")
    assert "set up" in chat.text and chat.labels == ["Set up my plan"]
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("console", "runner-1", lock=False)
    assert user is None or not (user.profile or {}).get("consented_at")


async def test_other_free_text_still_gets_the_short_help(chat: Chat) -> None:
    await onboard(chat)
    await chat.send("what a lovely day")
    assert "didn't follow" in chat.text and "today" in chat.text


# --- point 4: redoing setup never deletes history -----------------------------------------------


async def test_redoing_setup_asks_before_under_18_and_keeps_the_history(
    chat: Chat, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat)
    assert await _checkins(db) == 1

    await chat.send("start")
    await chat.answer_all("Redo the setup", "I agree", "Me — I'm under 18")
    assert "that would stop your plan" in chat.text
    await chat.press("No — it's for me, and I'm 18 or older")
    assert await chat.question() == "tz"  # setup goes on as an adult
    assert await _checkins(db) == 1

    await chat.send("start")  # half-way through setup: where we were
    await chat.send("delete")
    await chat.press("No, keep it")
    await chat.send("start")
    await chat.answer_all("Redo the setup", "I agree", "Me — I'm under 18", "Yes, I'm under 18")
    await chat.answer_all("Walking normally", "No")
    assert "Your history is kept" in chat.text
    assert await _checkins(db) == 1  # still there, until the person runs delete
    profile, _ = await chat.stored()
    assert not profile.onboarded and profile.paused  # no more coaching or reminders


async def test_saying_no_to_consent_while_redoing_setup_keeps_everything(
    chat: Chat, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat)
    await chat.send("start")
    await chat.answer_all("Redo the setup", "No thanks")
    assert "nothing has changed" in chat.text
    assert await _checkins(db) == 1
    profile, _ = await chat.stored()
    assert profile.onboarded


# --- point 5: edits keep what people need -------------------------------------------------------


async def test_answering_keeps_the_privacy_statement_and_the_emergency_number(chat: Chat) -> None:
    await chat.send("start")
    await chat.press("I agree")
    (edit,) = [r for r in chat.replies if r.edit_ref is not None]
    assert "store your answers" in edit.text and "get medical help straight away" in edit.text
    assert edit.text.endswith("→ I agree") and not edit.buttons
    await chat.answer_all(ADULT, "Europe/Berlin")
    assert "I'll use 112 as the emergency number" in chat.text
    await chat.press("None of these")
    (edit,) = [r for r in chat.replies if r.edit_ref is not None]
    assert "I'll use 112 as the emergency number" in edit.text
    assert edit.text.endswith("→ None of these")


# --- point 8: wording states only true facts ---------------------------------------------------


async def test_the_plan_summary_names_the_place_the_runner_chose(chat: Chat) -> None:
    # Front of the hip, with answers that point nowhere: a mixed plan, but it hurts at the front.
    await onboard(chat, location=FRONT, triage=("No", "No", "No"))
    profile, _ = await chat.stored()
    assert profile.presentation == "mixed"
    transcript = "\n".join(chat.transcript)
    assert "pain at the front of the hip" in transcript
    assert "front and outside" not in transcript


def test_tips_match_the_presentation_and_the_phase() -> None:
    content = default_content()
    days = [date(2026, 1, 1).replace(day=d) for d in range(1, 29)]
    outside = {tip_for(content, "outside", 1, d).id for d in days}  # type: ignore[union-attr]
    front = {tip_for(content, "front", 1, d).id for d in days}  # type: ignore[union-attr]
    assert "cross_training_saddle" not in outside and "sitting_outside_hip" not in front
    assert not any(t.startswith("cadence") for t in outside | front)  # no running yet
    running = {tip_for(content, "front", 3, d).id for d in days}  # type: ignore[union-attr]
    assert any(t.startswith("cadence") for t in running)


async def test_the_checkin_says_the_time_of_day_and_its_real_number_of_taps(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(hours=12, minutes=10)  # 20:10 in Berlin, the plan's first day
    await chat.send("checkin")
    assert "Evening check-in — 3 quick taps (5 if you ran)." in chat.text
    asked = await answer_flow(chat, {"pain": "2", "ran": "No run"})
    assert len(asked) == 3
    assert "exercise_pain" not in asked  # nothing was planned before the first day

    clock.advance(hours=12)  # 08:10 the next morning
    await chat.send("checkin")
    # No run and no pain: morning pain, the run, yesterday's exercises, the mini-screen.
    assert chat.text.startswith("Morning check-in — 4 quick taps (7 if you ran).")
    asked = await answer_flow(chat, {"pain": "0", "ran": "No run", "exercise_pain": "0"})
    assert len(asked) == 4, asked


async def test_we_drop_one_step_only_when_a_step_was_dropped(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, exercise_pain="6")  # >5/10: too much (P1, P7)
    assert "Back off" in chat.text and "We drop one step" not in chat.text  # first level
    await chat.update_profile(level=2, level_started_on=local_day(clock))
    clock.advance(days=1)
    await checkin(chat, exercise_pain="6")
    assert "We drop one step: back to phase 1, level 1." in chat.text


async def test_the_pain_limits_say_which_is_which(chat: Chat) -> None:
    await onboard(chat)
    await chat.send("today")
    await chat.press("1")  # the first exercise of the card, with how to do it
    assert "3/10 is your comfort limit" in chat.text and "5/10 is the stop limit" in chat.text
