"""Conversation stories through the real Coach service and a real SQLite database."""

from __future__ import annotations

import json
from datetime import date, timedelta

from bot.engine.events import ChatKind, InboundKind
from bot.service import Coach
from bot.storage.db import Database
from tests.chat_driver import (
    ADULT,
    CHECKIN,
    FRONT,
    NIGHT_PAIN,
    NO_FLAGS,
    ONBOARDING_TAPS,
    Chat,
    Clock,
    answer_flow,
    checkin,
    days_of_checkins,
    onboard,
)


async def stored_user(db: Database, user_id: str = "runner-1"):  # type: ignore[no-untyped-def]
    async with db.transaction(readonly=True) as repo:
        return await repo.get_user("console", user_id, lock=False)


# --- setup ------------------------------------------------------------------------------------


async def test_a_runner_without_red_flags_is_set_up_in_at_most_15_taps(chat: Chat) -> None:
    await chat.send("start")
    taps = ONBOARDING_TAPS
    for label in taps:
        await chat.press(label)
    assert len(taps) <= 15
    assert "pain on the outside of the hip" in chat.text
    assert "Today — phase 1" in chat.text
    assert "Daily check-in set for 07:30 (Europe/Berlin)" in chat.text
    assert not chat.labels[0].startswith("Yes")  # the session's log buttons, not a question


async def test_setup_says_what_the_coach_is_and_is_not(chat: Chat) -> None:
    await chat.send("start")
    assert "not a doctor" in chat.text
    assert "export" in chat.text and "delete" in chat.text


async def test_a_runner_under_18_is_not_coached_and_nothing_is_kept(
    chat: Chat, db: Database
) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", "Me — I'm under 18", "Walking normally", "No")
    assert "only coach adults" in chat.text
    assert "should see them the same day" in chat.text
    assert await stored_user(db) is None


async def test_declining_consent_keeps_nothing(chat: Chat, db: Database) -> None:
    await chat.send("start")
    await chat.press("No thanks")
    assert "haven't kept anything" in chat.text
    assert await stored_user(db) is None


async def test_front_of_hip_pain_with_clicking_recommends_a_physio(
    chat: Chat, db: Database
) -> None:
    await onboard(chat, location=FRONT, triage=("Yes", "Yes"))
    assert "pain at the front of the hip" in chat.text
    user = await stored_user(db)
    assert user.profile["presentation"] == "front"
    assert user.profile["review"] == "SOON"
    assert any("sports physio" in t for t in chat.transcript)


async def test_unclear_outside_pain_takes_the_strictest_plan(chat: Chat, db: Database) -> None:
    await onboard(chat, triage=("No", "No"))
    user = await stored_user(db)
    assert user.profile["presentation"] == "mixed"


# --- red flags --------------------------------------------------------------------------------


async def test_groin_pain_when_walking_in_the_screen_sends_the_runner_to_a_doctor_today(
    chat: Chat, db: Database
) -> None:
    await chat.send("start")
    await chat.answer_all(
        "I agree", ADULT, "Europe/London", "None of these", "None of these"
    )
    await chat.press("Yes, one or more")  # the bone-stress group
    await chat.press("Yes")  # R9: deep groin pain when walking or standing
    assert "checked by a doctor today" in chat.text
    assert "NHS 111" in chat.text
    assert "no running" in chat.text.lower()
    assert "Cue:" not in chat.text  # no exercise content with an escalation (W3)
    user = await stored_user(db)
    assert user.profile["escalation"] == "URGENT"
    async with db.transaction(readonly=True) as repo:
        escalations = await repo.open_escalations(user.id)
    assert escalations[0].trigger == "R9" and escalations[0].level == "URGENT"
    await chat.send("today")
    assert "paused" in chat.text


async def test_saddle_numbness_is_an_emergency_with_the_local_number(chat: Chat) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", ADULT, "Europe/London", "Yes, one or more", "Yes")
    assert "call 999" in chat.text
    assert "no running, stretching or exercises" in chat.text.lower()
    assert "plan is on pause" in chat.text


async def test_without_a_known_country_the_escalation_names_112_plainly(chat: Chat) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", ADULT)
    await chat.send("Etc/GMT+5")
    await chat.answer_all("Yes, one or more", "Yes")
    assert "your local emergency number (112" in chat.text


async def test_not_sure_twice_about_saddle_numbness_stays_an_emergency(chat: Chat) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", ADULT, "Europe/Berlin", "Not sure", "Not sure")
    await chat.press("Still not sure")
    assert "get medical help now" in chat.text
    assert "call 112" in chat.text


async def test_not_sure_twice_about_a_fall_becomes_same_day(chat: Chat, db: Database) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", ADULT, "Europe/Berlin", "None of these", "Not sure")
    await chat.press("Not sure")  # R4, the fall
    await chat.press("Still not sure")
    # R5 (limp, can't bear weight) could still be an emergency, so it is still asked.
    await chat.answer_all("No", "No", "No", "No")
    assert "doctor today" in chat.text
    user = await stored_user(db)
    assert user.profile["escalation"] == "URGENT"


async def test_night_pain_in_a_checkin_gives_the_same_day_escalation_and_pauses_the_plan(
    chat: Chat, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    asked = await checkin(chat, screen=NIGHT_PAIN)
    # Fever and nerve questions could still make it an emergency, so they are asked too.
    assert "s/mi:unwell" in asked and "s/mi:nerves" in asked
    assert "checked by a doctor today" in chat.text
    user = await stored_user(db)
    assert user.profile["escalation"] == "URGENT"
    # The next day the check-in asks whether they were seen instead of the usual questions.
    clock.advance(days=1)
    await chat.send("checkin")
    assert "Were you able to get checked" in chat.text


async def test_a_cleared_runner_restarts_gently_after_a_clean_screen(
    chat: Chat, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, screen=NIGHT_PAIN)
    clock.advance(days=2)
    await chat.send("checkin")
    await chat.answer_all("Yes, I've been seen", "Yes, I'm cleared", *NO_FLAGS)
    assert "Welcome back" in chat.text
    user = await stored_user(db)
    assert user.profile["escalation"] is None
    assert user.profile["phase"] == 1 and user.profile["level"] == 1


async def test_not_yet_seen_keeps_the_plan_paused(chat: Chat, clock: Clock, db: Database) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, screen=NIGHT_PAIN)
    clock.advance(days=1)
    await chat.send("checkin")
    await chat.press("Not yet")
    assert "stays paused" in chat.text
    user = await stored_user(db)
    assert user.profile["escalation"] == "URGENT"
    async with db.transaction(readonly=True) as repo:
        (escalation,) = await repo.open_escalations(user.id)
    assert escalation.acknowledged_at is not None and escalation.cleared_at is None


async def test_pain_of_7_in_a_checkin_runs_the_full_screen_at_once(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("checkin")
    await chat.press("8")
    assert "safety questions" in chat.text
    assert "None of these" in chat.labels


# --- daily decisions --------------------------------------------------------------------------


async def test_6_of_10_pain_during_a_run_backs_off(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, ran="20 min", run_pain="6")
    assert "Back off" in chat.text
    assert "above 5/10" in chat.text


async def test_morning_pain_a_bit_above_usual_holds_then_backs_off_on_the_second_morning(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    await days_of_checkins(chat, clock, 3, pain="2")  # the baseline: usual mornings are 2
    clock.advance(days=1)
    await checkin(chat, pain="3")
    assert "Hold" in chat.text
    clock.advance(days=1)
    await checkin(chat, pain="3")
    assert "Back off" in chat.text
    assert "second morning" in chat.text


async def test_two_good_days_progress_one_step(chat: Chat, clock: Clock, db: Database) -> None:
    await onboard(chat)
    said = await days_of_checkins(chat, clock, 3, pain="2", ran="20 min", run_pain="2")
    assert all("Hold" in s for s in said)  # learning the usual morning first
    clock.advance(days=1)
    await checkin(chat, pain="2", ran="20 min", run_pain="1")
    assert "Progress" in chat.text
    assert (await stored_user(db)).profile["level"] == 2


async def test_a_second_checkin_the_same_day_edits_the_first(
    chat: Chat, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, pain="2")
    await checkin(chat, pain="4", exercise_pain="Skipped them")
    assert "replace today's" in "\n".join(chat.transcript)
    user = await stored_user(db)
    async with db.transaction(readonly=True) as repo:
        rows = await repo.checkins_between(user.id, date(2026, 11, 1), date(2026, 12, 31))
    assert len(rows) == 1 and rows[0].pain_now == 4 and rows[0].exercises == "none"


# --- today ------------------------------------------------------------------------------------


async def test_logging_an_exercise_done_counts_it(chat: Chat) -> None:
    await onboard(chat)
    await chat.send("today")
    await chat.press("1")  # the first exercise's details
    await chat.press("Done ✅")
    assert "Logged" in chat.text and "1 of" in chat.text


async def test_a_too_painful_exercise_comes_back_easier_next_time(
    chat: Chat, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    # Move the runner to phase 2 where single-leg bridges have an easier version.
    async with db.transaction() as repo:
        user = await repo.get_user("console", "runner-1")
        user.profile = {**user.profile, "phase": 2, "level": 1}
        await repo.save_user(user)
    await chat.send("today")
    bridge = next(b for b in chat.buttons if b.payload.endswith(":single_leg_bridge"))
    await chat.tap(bridge.payload)
    await chat.press("Too painful")
    assert "easier version" in chat.text
    clock.advance(days=1)
    await chat.send("today")
    assert "Glute bridge — 1 x 10 reps (easier)" in chat.text


async def test_yesterdays_log_button_is_refused_kindly(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    await chat.send("today")
    old = chat.buttons[0].payload
    clock.advance(days=1)
    await chat.tap(old)
    assert "another day" in chat.text
    assert "Today — phase 1" in chat.text


# --- unexpected input -------------------------------------------------------------------------


async def test_free_text_where_a_button_was_expected_asks_again(chat: Chat, db: Database) -> None:
    await chat.send("start")
    await chat.press("I agree")
    await chat.send("what? 🙃")
    assert "tap a button" in chat.text
    assert "Who is the coaching for?" in chat.text
    await chat.send(ADULT)  # typing the label works like tapping it
    assert "timezone" in chat.text


async def test_a_stale_button_says_it_expired_and_shows_the_current_question(chat: Chat) -> None:
    await chat.send("start")
    consent = chat.buttons[0].payload
    await chat.press("I agree")
    await chat.tap(consent)
    assert "expired" in chat.text
    assert "Who is the coaching for?" in chat.text


async def test_a_forged_button_is_treated_as_expired(chat: Chat) -> None:
    await chat.send("start")
    await chat.tap("999999:drop table users")
    assert "expired" in chat.text
    await chat.tap("x:l:20261126:../../etc:d")
    assert "expired" in chat.text


async def test_asking_for_today_mid_checkin_keeps_the_checkin_where_it_was(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("checkin")
    await chat.press("2")
    await chat.send("today")
    assert "Today — phase 1" in chat.text
    assert "still in the middle" in chat.text
    await chat.press("No run")  # the 'did you run' question carries on
    assert "Yesterday's exercises" in chat.text


async def test_a_typed_timezone_or_city_is_understood(chat: Chat, db: Database) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", ADULT)
    await chat.send("Nowhere/Atlantis")
    assert "couldn't read that" in chat.text
    await chat.send("madrid")
    assert "Europe/Madrid" in chat.text


async def test_the_same_event_delivered_twice_is_handled_once(chat: Chat, coach: Coach) -> None:
    inbound = chat.inbound(InboundKind.COMMAND, command="start")
    first = await coach.handle(inbound)
    second = await coach.handle(inbound)
    assert first and second == []


# --- settings, export, delete -------------------------------------------------------------------


async def test_settings_show_the_next_checkin_in_the_runners_timezone(
    chat: Chat, db: Database
) -> None:
    await onboard(chat, zone="America/New_York", reminder="07:30")
    await chat.send("settings")
    assert "Next check-in: Thu 07:30 (America/New_York)" in chat.text
    await chat.press("Check-in time")
    await chat.send("6:45 am")
    assert "Daily check-in set for 06:45" in chat.text
    user = await stored_user(db)
    assert user.reminder_time == "06:45"
    assert user.next_checkin_at is not None and user.next_checkin_at.hour == 11  # 06:45 EST


async def test_pause_and_resume_reminders(chat: Chat, db: Database) -> None:
    await onboard(chat)
    await chat.send("pause")
    await chat.press("Until I resume")  # `pause` asks how long
    user = await stored_user(db)
    assert user.paused and user.next_checkin_at is None
    await chat.send("resume")
    user = await stored_user(db)
    assert not user.paused and user.next_checkin_at is not None


async def test_export_holds_the_checkin_and_delete_removes_every_row(
    chat: Chat, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, pain="3", ran="30 min", run_pain="2", after_run="Swollen or stiff")
    await chat.send("export")
    export = next(r.attachment for r in chat.replies if r.attachment)
    (row,) = json.loads(export.data)["checkins"]
    assert (row["pain_now"], row["run_minutes"], row["pain_during"]) == (3, 30, 2)
    assert (row["swelling"], row["run_sharp"], row["exercise_pain"]) == (True, False, 2)
    assert "isometric_worse" in row
    user_id = (await stored_user(db)).id
    await chat.send("delete")
    await chat.press("Yes, delete everything")
    assert "deleted" in chat.text
    async with db.transaction(readonly=True) as repo:
        counts = await repo.row_counts_for_user(user_id, "runner-1")
    assert sum(counts.values()) == 0, counts


async def test_progress_sends_a_summary_and_a_png_chart(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    await days_of_checkins(chat, clock, 3, ran="30 min", run_pain="2")
    await chat.send("progress")
    assert "Check-in streak: 3 days" in chat.text
    chart = next(r.attachment for r in chat.replies if r.attachment)
    assert chart.mime == "image/png" and chart.data.startswith(b"\x89PNG")


async def test_a_restart_resumes_at_the_same_question(db: Database, clock: Clock) -> None:
    chat = Chat(Coach(db, clock=clock))
    await chat.send("start")
    await chat.answer_all("I agree", ADULT)
    restarted = Chat(Coach(db, clock=clock), buttons=chat.buttons, buttons_ref=chat.buttons_ref)
    await restarted.press("Europe/Berlin")
    assert "safety check" in restarted.text


# --- groups -----------------------------------------------------------------------------------


def group_chat(coach: Coach, user_id: str, *, admin: bool) -> Chat:
    return Chat(coach, user_id=user_id, chat_id="club-1", chat_kind=ChatKind.GROUP, is_admin=admin)


async def test_a_personal_command_in_a_group_points_to_a_private_chat(
    coach: Coach, chat: Chat
) -> None:
    await onboard(chat)
    group = group_chat(coach, "runner-1", admin=False)
    await group.send("progress")
    assert len(group.replies) == 1
    reply = group.replies[0]
    assert reply.open_private and reply.attachment is None
    assert "streak" not in reply.text and "pain" not in reply.text.lower()


async def test_a_group_admin_sets_lists_and_removes_a_warmup(coach: Coach, db: Database) -> None:
    admin = group_chat(coach, "captain", admin=True)
    await admin.send("warmup add tue,thu 18:00 before 15 tz Europe/Berlin")
    assert "15 minutes before the 18:00 run on Tue, Thu (Europe/Berlin)" in admin.text
    await admin.send("warmup list")
    assert "1. Tue, Thu — run at 18:00" in admin.text
    async with db.transaction(readonly=True) as repo:
        chat_row = await repo.get_team_chat("console", "club-1", lock=False)
        (schedule,) = await repo.list_warmups(chat_row.id)
    # Thursday 26 Nov 2026, 17:45 in Berlin is 16:45 UTC.
    assert schedule.next_warmup_at.isoformat() == "2026-11-26T16:45:00+00:00"
    await admin.send("warmup remove 1")
    assert "Removed reminder 1" in admin.text
    await admin.send("warmup")
    assert "No warm-up reminders" in admin.text


async def test_a_non_admin_cannot_change_warmups(coach: Coach) -> None:
    member = group_chat(coach, "member", admin=False)
    await member.send("warmup add tue 18:00")
    assert "only the chat's admins" in member.text


async def test_a_group_without_a_timezone_is_asked_for_one(coach: Coach) -> None:
    admin = group_chat(coach, "captain", admin=True)
    await admin.send("warmup add sat 09:00 before 10")
    assert "Which timezone" in admin.text
    await admin.press("Europe/London")
    assert "10 minutes before the 09:00 run on Sat (Europe/London)" in admin.text


# --- reminders the bot starts itself ---------------------------------------------------------


async def remind(coach: Coach, db: Database, kind: str = "checkin"):  # type: ignore[no-untyped-def]
    async with db.transaction() as repo:
        user = await repo.get_user("console", "runner-1")
        return await coach.reminder_turn(repo, user, kind, coach.clock())


async def test_the_daily_reminder_asks_the_first_question_with_snooze_and_skip(
    chat: Chat, coach: Coach, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    (prompt,) = await remind(coach, db)
    labels = [b.label for b in prompt.flat_buttons]
    assert "how much did the hip hurt or feel stiff" in prompt.text
    assert {"Snooze 30 min", "Snooze 1 h", "Snooze 2 h", "Skip today"} <= set(labels)
    chat.buttons = prompt.flat_buttons
    await chat.press("Snooze 1 h")
    assert "ask again at 09:00" in chat.text  # 07:00 UTC is 08:00 in Berlin
    user = await stored_user(db)
    assert user.next_checkin_at == clock.now + timedelta(hours=1)
    await chat.press("3")  # the question itself still works after a snooze
    assert "Did you run" in chat.text


async def test_after_an_escalation_the_reminder_asks_whether_they_were_seen(
    chat: Chat, coach: Coach, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, screen=NIGHT_PAIN)
    clock.advance(days=1)
    (prompt,) = await remind(coach, chat.coach.db)
    assert "Were you able to get checked" in prompt.text


async def test_no_nudge_once_the_checkin_is_done(
    chat: Chat, coach: Coach, clock: Clock, db: Database
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await remind(coach, db)
    assert len(await remind(coach, db, "nudge")) == 1
    await checkin(chat)
    assert await remind(coach, db, "nudge") == []
    assert await remind(coach, db, "checkin") == []


async def test_a_command_half_way_through_setup_carries_on_where_we_were(chat: Chat) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", ADULT)
    await chat.send("checkin")
    assert "finish setting up first" in chat.text
    assert "Which timezone" in chat.text
    await chat.press("Europe/Berlin")  # the same question, still answerable
    assert "safety check" in chat.text


async def test_a_checkin_stored_by_the_older_flows_starts_again_instead_of_failing(
    chat: Chat, clock: Clock, db: Database
) -> None:
    """Deploying over a runner who was half-way through the old check-in (its 'compared
    with your usual morning' question no longer exists)."""
    await onboard(chat)
    clock.advance(days=1)
    old = {
        "flow": "checkin",
        "qid": "morning",
        "turn": 40,
        "text": "Compared with your usual morning, how does the hip feel today?",
        "options": [["better", "Better than usual"], ["same", "About usual"]],
        "data": {"date": "2026-11-27", "pain_now": 2, "ran": "no"},
    }
    async with db.transaction() as repo:
        user = await repo.get_user("console", "runner-1")
        user.conversation = old
        await repo.save_user(user)
    await chat.tap("40:same")
    assert "from the top" in chat.text and "got out of bed" in chat.text
    await answer_flow(chat, CHECKIN)
    assert "Hold" in chat.text or "Progress" in chat.text
