"""Clinical rules sections 0 and 1 (G1-G5, R1-R21) and the wording rules W2/W3 they use.

Stories through the real service: a runner answers, the coach escalates, refers or coaches
exactly as the rule says. Each test is named after the rule it proves.
"""

from __future__ import annotations

from datetime import date, timedelta

from bot.engine import screening
from bot.engine.rules.screen import six_weeks_without_improvement, unsure_level
from bot.engine.screening import ScreenOutcome
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord
from bot.storage.db import Database
from content.loader import default_content
from content.schema import Level
from tests.chat_driver import Chat, Clock, answer_flow, checkin, local_day, onboard


async def stored_profile(chat: Chat) -> Profile:
    profile, _ = await chat.stored()
    return profile


async def user_exists(db: Database, user_id: str = "runner-1") -> bool:
    async with db.transaction(readonly=True) as repo:
        return await repo.get_user("console", user_id, lock=False) is not None


# --- G1: the age gate -----------------------------------------------------------------------


async def test_G1_an_under_18_who_cannot_walk_is_told_to_get_emergency_help(
    chat: Chat, db: Database
) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", "Me — I'm under 18")
    assert "walk" in chat.text.lower()
    await chat.press("Can't walk or stand on it")
    first_line = chat.messages[0].splitlines()[0].lower()
    assert "emergency" in first_line and "now" in first_line
    assert "Today — phase" not in "\n".join(chat.transcript)
    assert not await user_exists(db)  # nothing kept about a child


async def test_G1_a_parent_asking_for_a_child_gets_no_adult_plan(chat: Chat, db: Database) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", "A child or teen I look after")
    await chat.press("Walking, but limping")
    first_line = chat.messages[0].splitlines()[0].lower()
    assert "doctor" in first_line and "today" in first_line
    assert "Today — phase" not in "\n".join(chat.transcript)
    assert "timezone" not in chat.text.lower()  # setup does not go on
    assert not await user_exists(db)


async def test_G1_a_child_walking_normally_with_knee_pain_still_sees_a_doctor_today(
    chat: Chat,
) -> None:
    await chat.send("start")
    await chat.answer_all("I agree", "A child or teen I look after", "Walking normally")
    await chat.press("Yes")  # pain in the hip, groin, thigh or knee
    assert "today" in chat.messages[0].splitlines()[0].lower()


# --- R21: no improvement after cutting back --------------------------------------------------


async def test_R21_two_weeks_of_cutting_back_without_improvement_recommends_a_physio(
    chat: Chat,
) -> None:
    asked = await onboard(chat, running="Not running right now", r21="Yes")
    assert "r21" in asked
    profile = await stored_profile(chat)
    assert profile.review == "SOON"
    assert "physio" in chat.replies[-1].text.lower()


async def test_R21_is_not_asked_of_someone_in_normal_training(chat: Chat) -> None:
    asked = await onboard(chat, running="Normal training")
    assert "r21" not in asked


# --- R18, R19: the plan waits for a clinician -----------------------------------------------

OTHER_GROUP_YES = {"s/g:other": "Yes, one or more"}


async def test_R18_the_hip_plan_waits_for_a_clinicians_approval(chat: Chat) -> None:
    await onboard(chat, screen={**OTHER_GROUP_YES, "s/i:R18": "Yes"})
    profile = await stored_profile(chat)
    assert profile.review == "SOON"
    assert profile.plan_hold == "R18"
    transcript = "\n".join(chat.transcript)
    assert "Today — phase" not in transcript  # no exercise plan yet
    await chat.send("today")
    assert "Cue:" not in chat.text and "clinician" in chat.text.lower()


async def test_R19_back_pain_with_the_hip_pain_means_review_before_any_hip_plan(
    chat: Chat,
) -> None:
    await onboard(chat, screen={**OTHER_GROUP_YES, "s/i:R19": "Yes"})
    profile = await stored_profile(chat)
    assert profile.review == "SOON" and profile.plan_hold == "R19"
    assert "Today — phase" not in "\n".join(chat.transcript)


# --- W3: a SOON outcome leads with the action ------------------------------------------------


async def test_W3_a_SOON_outcome_ends_onboarding_with_the_action_and_timeframe(
    chat: Chat,
) -> None:
    await onboard(chat, screen={**OTHER_GROUP_YES, "s/i:R20": "Yes"})
    last = chat.replies[-1].text
    assert last.startswith("Please book"), last
    assert "week" in last.splitlines()[0]
    assert "makes sense" not in last and "home plan" not in last.splitlines()[0]
    # The referral is said once, at the end, not half-way through setup.
    assert sum("Please book" in t for t in chat.transcript) == 1


# --- W2: describe what fits the trigger -------------------------------------------------------


async def test_W2_a_fever_is_not_called_a_possible_bone_stress_injury(chat: Chat) -> None:
    await onboard(
        chat,
        screen={"s/g:injury": "Yes, one or more", "s/i:R6": "Yes", "s/f:R6": "No"},
    )
    text = "\n".join(chat.transcript)
    assert "doctor today" in text
    assert "bone stress" not in text.lower()


async def test_W2_groin_pain_on_walking_may_name_a_bone_stress_injury(chat: Chat) -> None:
    await onboard(chat, screen={"s/g:bone": "Yes, one or more", "s/i:R9": "Yes"})
    assert "could be a sign of" in chat.text and "bone stress" in chat.text


# --- check-in safety ---------------------------------------------------------------------------


async def test_G5_the_daily_mini_screen_is_asked_every_checkin(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    clock.advance(days=1)
    asked = await checkin(chat)
    assert "s/m" in asked


# --- the red-flag table (section 1), item by item on the screen itself -------------------------

CONTENT = default_content()


def screen(answers: dict[str, str], *, preset: tuple[str, ...] = ()) -> ScreenOutcome:
    """Run the full screen with these answers (by screen question id); anything else
    asked is a "no". Returns the outcome the flow would act on."""
    data: dict[str, object] = {}
    screening.start_full(data, preset=preset, content=CONTENT)
    for _ in range(80):
        q = screening.next_question(data, CONTENT)
        if q is None:
            return screening.outcome(data, CONTENT)
        value = answers.get(q.qid, "no")
        assert value in [v for v, _ in q.options], (q.qid, value)
        screening.answer(data, q.qid, value, CONTENT)
    raise AssertionError("the screen never ended")


def yes(item: str, group: str, **more: str) -> dict[str, str]:
    return {f"g:{group}": "yes", f"i:{item}": "yes", **more}


def test_R1_saddle_numbness_is_an_emergency() -> None:
    assert screen(yes("R1", "nerves")).level == Level.EMERGENCY


def test_R2_a_new_bladder_or_bowel_change_is_an_emergency() -> None:
    assert screen(yes("R2", "nerves")).level == Level.EMERGENCY


def test_R3_both_legs_weak_is_an_emergency_one_leg_worsening_same_day() -> None:
    assert screen(yes("R3", "nerves", **{"f:R3": "both_legs"})).level == Level.EMERGENCY
    assert screen(yes("R3", "nerves", **{"f:R3": "one_leg_worse"})).level == Level.URGENT


def test_R4_a_fall_with_a_leg_that_cannot_bear_weight_is_an_emergency() -> None:
    assert screen(yes("R4", "injury", **{"f:R4": "cant_walk"})).level == Level.EMERGENCY
    assert screen(yes("R4", "injury", **{"f:R4": "looks_wrong"})).level == Level.EMERGENCY
    assert screen(yes("R4", "injury", **{"f:R4": "walk_painful"})).level == Level.URGENT


def test_R5_no_weight_bearing_is_an_emergency_a_limp_same_day() -> None:
    assert screen(yes("R5", "injury", **{"f:R5": "no_weight"})).level == Level.EMERGENCY
    assert screen(yes("R5", "injury", **{"f:R5": "limping"})).level == Level.URGENT


def test_R6_fever_with_a_hot_painful_hip_is_an_emergency_otherwise_same_day() -> None:
    assert screen(yes("R6", "injury", **{"f:R6": "hip_hot"})).level == Level.EMERGENCY
    assert screen(yes("R6", "injury", **{"f:R6": "not_hot"})).level == Level.URGENT


def test_R7_red_hot_swollen_skin_is_same_day_and_with_fever_an_emergency() -> None:
    assert screen(yes("R7", "injury")).level == Level.URGENT
    both = yes("R6", "injury", **{"f:R6": "not_hot", "i:R7": "yes"})
    assert screen(both).level == Level.EMERGENCY


def test_R8_a_painful_stuck_groin_lump_is_an_emergency_a_lump_alone_a_gp() -> None:
    assert screen(yes("R8", "injury", **{"f:R8": "serious"})).level == Level.EMERGENCY
    lump = screen(yes("R8", "injury", **{"f:R8": "lump_only"}))
    assert lump.level == Level.SOON and CONTENT.screen_item("R8").see == "gp"


def test_R9_groin_pain_on_walking_is_same_day() -> None:
    assert screen(yes("R9", "bone")).level == Level.URGENT


def test_R10_groin_pain_on_hopping_is_same_day_and_never_tested() -> None:
    assert screen(yes("R10", "bone")).level == Level.URGENT
    assert "don't try it" in CONTENT.screen_item("R10").question


def test_R11_rest_or_night_pain_in_any_position_is_same_day() -> None:
    assert screen(yes("R11", "bone")).level == Level.URGENT
    assert "lie on the sore side" in CONTENT.screen_item("R11").question


def test_R12_a_training_spike_with_worsening_groin_pain_is_a_doctor_within_3_days() -> None:
    assert screen(yes("R12", "bone")).level == Level.SOON_72H
    with_r9 = yes("R12", "bone", **{"i:R9": "yes"})
    assert screen(with_r9).level == Level.URGENT
    with_bone_risk = yes("R12", "bone", **{"g:other": "yes", "i:R13": "yes"})
    assert screen(with_bone_risk).level == Level.URGENT


def test_R13_a_bone_health_risk_is_a_doctor_soon() -> None:
    outcome = screen(yes("R13", "other"))
    assert outcome.level == Level.SOON and CONTENT.screen_item("R13").see == "doctor"


def test_R14_past_cancer_with_constant_or_night_pain_is_same_day() -> None:
    assert screen(yes("R14", "other", **{"f:R14": "constant"})).level == Level.URGENT
    assert screen(yes("R14", "other", **{"f:R14": "activity"})).level == Level.SOON_72H


def test_R15_unexplained_weight_loss_is_a_gp_soon_and_with_night_pain_same_day() -> None:
    assert screen(yes("R15", "other")).level == Level.SOON
    with_night = yes("R15", "other", **{"g:bone": "yes", "i:R11": "yes"})
    assert screen(with_night).level == Level.URGENT


def test_R16_sudden_or_severe_pain_is_same_day() -> None:
    assert screen(yes("R16", "bone")).level == Level.URGENT
    assert screen({}, preset=("R16",)).level == Level.URGENT  # from a 7/10 score (P9)


def test_R17_other_sore_joints_or_long_morning_stiffness_is_a_gp_soon() -> None:
    outcome = screen(yes("R17", "other"))
    assert outcome.level == Level.SOON and CONTENT.screen_item("R17").see == "gp"


def test_R20_a_deep_pinch_or_clicking_is_a_physio_soon_without_holding_the_plan() -> None:
    outcome = screen(yes("R20", "other"))
    item = CONTENT.screen_item("R20")
    assert outcome.level == Level.SOON and item.see == "physio" and not item.hold_plan


# --- G2-G4 --------------------------------------------------------------------------------------


def test_G3_not_sure_twice_keeps_nerve_items_emergencies_and_others_same_day() -> None:
    nerve = {"g:nerves": "unsure", "i:R1": "unsure", "c:R1": "unsure"}
    assert screen(nerve).level == Level.EMERGENCY
    fall = {"g:injury": "unsure", "i:R4": "unsure", "c:R4": "unsure"}
    assert screen(fall).level == Level.URGENT
    assert unsure_level(CONTENT.screen_item("R9")) == Level.URGENT


async def test_G2_the_plan_stays_paused_until_cleared_and_a_milder_flag_never_lowers_it(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, screen={"s/m": "Yes, one or more", "s/mi:nerves": "Yes", "s/i:R1": "Yes"})
    assert (await stored_profile(chat)).escalation == "EMERGENCY"
    await chat.send("today")
    assert "Cue:" not in chat.text and "paused" in chat.text
    await chat.send("checkin")  # clearance, not the check-in
    assert "emergency department" in chat.text
    await chat.answer_all("Yes, I've been seen", "Yes, I'm cleared")
    # The re-screen now finds only a same-day flag: the latch stays at EMERGENCY.
    await answer_flow(chat, {}, screen={"s/g:bone": "Yes, one or more", "s/i:R9": "Yes"})
    profile = await stored_profile(chat)
    assert profile.escalation == "EMERGENCY"
    assert "Today — phase" not in chat.text


async def test_G4_the_full_screen_comes_back_after_7_days(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    full_days = []
    for day in range(1, 9):
        clock.advance(days=1)
        asked = await checkin(chat)
        if "s/g:nerves" in asked:
            full_days.append(day)
    assert full_days == [7]


async def test_G4_a_pain_score_of_7_brings_the_full_screen_at_once(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("checkin")
    await chat.press("7")
    assert "safety questions" in chat.text and "None of these" in chat.labels


# --- referrals are followed up, and a held plan starts only when approved -------------------------


async def test_R18_the_plan_starts_once_the_clinician_approves_it(chat: Chat, clock: Clock) -> None:
    await onboard(chat, screen={**OTHER_GROUP_YES, "s/i:R18": "Yes"})
    clock.advance(days=3)
    await chat.send("checkin")  # a held plan has no check-in: are you seen yet?
    await chat.answer_all("Yes, I've been seen", "They want me to wait")
    assert (await stored_profile(chat)).plan_hold == "R18"
    await chat.send("today")
    await chat.press("I've been seen")
    await chat.answer_all("Yes, I've been seen", "Yes, go ahead", "None of these")
    profile = await stored_profile(chat)
    assert profile.plan_hold is None and profile.review is None
    assert profile.plan_started_on == local_day(clock)
    assert "Today — phase 1" in chat.text


async def test_R20_an_open_referral_is_followed_up_on_the_weekly_checkin(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat, screen={**OTHER_GROUP_YES, "s/i:R20": "Yes"})
    asked_days = []
    for day in range(1, 8):
        clock.advance(days=1)
        answers = {"review_check": "Yes, all good"} if day == 7 else {}
        if "review_check" in await checkin(chat, **answers):
            asked_days.append(day)
    assert asked_days == [7]
    assert (await stored_profile(chat)).review is None


def test_R21_six_weeks_of_rehab_without_better_mornings_recommends_a_physio() -> None:
    start = date(2026, 10, 1)
    profile = Profile(plan_started_on=start)
    first = [CheckinRecord(start + timedelta(days=d), pain_now=3) for d in range(7)]
    today = start + timedelta(weeks=6)
    same = [CheckinRecord(today - timedelta(days=d), pain_now=3) for d in range(7)]
    assert six_weeks_without_improvement([*first, *same], profile, today)
    better = [CheckinRecord(today - timedelta(days=d), pain_now=1) for d in range(7)]
    assert not six_weeks_without_improvement([*first, *better], profile, today)
    assert not six_weeks_without_improvement([*first, *same], profile, today - timedelta(days=1))


# --- W2: "could be a sign of" only where a clinician is needed the same day ----------------


def test_W2_could_be_a_sign_of_appears_only_in_escalation_wording() -> None:
    for key, text in CONTENT.messages.items():
        if "could be a sign of" in text or "could be a sign" in text:
            assert key.startswith(("escalate_", "could_be", "g1_")), key
    for item in CONTENT.screen.items:
        if item.could_be:
            assert item.yes_level is not None or item.follow_up is not None
            levels = (
                [item.yes_level] if item.yes_level else [o.level for o in item.follow_up.options]
            )  # type: ignore[union-attr]
            levels += [c.level for c in item.combinations]
            assert any(lv is not None and lv.escalates for lv in levels), item.id
