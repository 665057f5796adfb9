"""Clinical rules section 4: entry criteria (RR1-RR6) and the walk-run ladder (RP1-RP8)."""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.engine.flows.interpreter import FlowError, check_content
from bot.engine.rules import daily
from bot.engine.rules.daily import PhaseMinimums, PlanDecision
from bot.engine.rules.progression import plan_shape
from bot.engine.rules.return_to_running import rr1_clear_to_run
from bot.engine.session import build_session
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord
from content.loader import default_content
from content.schema import Level
from tests.chat_driver import Chat, Clock, checkin, local_day, onboard

CONTENT = default_content()
ROOT = Path(__file__).resolve().parents[1]


def decide(today: CheckinRecord, earlier: list[CheckinRecord], p: Profile) -> PlanDecision:
    shape = plan_shape(CONTENT, "outside")
    minimums = PhaseMinimums({n: ph.min_days for n, ph in CONTENT.phases.items()})
    return daily.decide(today, earlier, p, shape, minimums)


async def on_the_ladder(chat: Chat, clock: Clock, level: int, baseline: float = 2.0) -> None:
    await onboard(chat)
    today = clock.now.date()
    await chat.update_profile(
        phase=3,
        level=level,
        baseline=baseline,
        baseline_on=today,
        phase_started_on=today,
        level_started_on=today,
    )


async def test_RP2_the_ladder_holds_after_a_run_whose_next_morning_was_above_baseline(
    chat: Chat, clock: Clock
) -> None:
    await on_the_ladder(chat, clock, level=2)
    for _ in range(2):
        clock.advance(days=2)
        await checkin(chat, pain="3", ran="25 min", run_pain="2")
    profile, _ = await chat.stored()
    assert profile.level == 2
    assert "Progress" not in chat.text


async def test_RP1_the_day_after_a_ladder_run_is_a_rest_day(chat: Chat, clock: Clock) -> None:
    await on_the_ladder(chat, clock, level=2)
    clock.advance(days=1)
    await checkin(chat, pain="2", ran="25 min", run_pain="2")
    await chat.send("today")
    assert "rest or cross-train today" in chat.text


async def test_RP3_the_next_run_is_capped_at_110_percent_of_the_longest_in_30_days(
    chat: Chat, clock: Clock
) -> None:
    await on_the_ladder(chat, clock, level=6)  # the ladder says 25 minutes
    clock.advance(days=1)
    await checkin(chat, pain="2", ran="20 min", run_pain="2")
    clock.advance(days=1)
    await chat.send("today")
    assert "22 min" in chat.text  # 110% of 20


# --- section 4a: entry criteria, asked at the top of phase 2 -----------------------------------


async def at_the_top_of_phase_2(chat: Chat, clock: Clock, *, weeks: int = 7) -> None:
    await onboard(chat)
    today = clock.now.date()
    top = plan_shape(CONTENT, "outside").top(2)
    await chat.update_profile(
        phase=2,
        level=top,
        baseline=2.0,
        baseline_on=today,
        plan_started_on=today - timedelta(weeks=weeks + 2),
        phase_started_on=today - timedelta(weeks=weeks),
        level_started_on=today - timedelta(days=10),
    )
    for days_ago in (2, 1, 0):  # good days at the top of the phase, waiting for the checks
        await chat.seed_checkin(
            today - timedelta(days=days_ago),
            pain_now=2,
            ran="no",
            exercises="done",
            exercise_pain=1,
            decision="hold",
            reason="strength_block",
        )
    clock.advance(days=1)


async def test_RR3_the_running_checks_start_with_the_single_leg_stand(
    chat: Chat, clock: Clock
) -> None:
    await at_the_top_of_phase_2(chat, clock)
    asked = await checkin(chat, gate_rr3="Not yet")
    assert "gate_rr4" not in asked and "gate_rr2" not in asked
    profile, _ = await chat.stored()
    assert profile.phase == 2 and profile.gate_passed_on is None


async def test_RR4_single_leg_squats_or_step_downs_come_next(chat: Chat, clock: Clock) -> None:
    await at_the_top_of_phase_2(chat, clock)
    asked = await checkin(chat, gate_rr3="Yes", gate_rr4="Not yet")
    assert "gate_rr2" not in asked
    assert (await chat.stored())[0].gate_passed_on is None


async def test_RR2_a_brisk_walk_completes_the_strength_checks_and_the_hop_check_follows(
    chat: Chat, clock: Clock
) -> None:
    await at_the_top_of_phase_2(chat, clock)
    await checkin(chat, gate_rr3="Yes", gate_rr4="Yes", gate_rr2="Yes")
    profile, _ = await chat.stored()
    assert profile.gate_passed_on == local_day(clock) and profile.phase == 2
    assert "hops on the spot" in chat.text


async def test_RR5_hops_at_2_of_10_and_a_settled_morning_open_the_ladder(
    chat: Chat, clock: Clock
) -> None:
    await at_the_top_of_phase_2(chat, clock)
    await checkin(chat, gate_rr3="Yes", gate_rr4="Yes", gate_rr2="Yes")
    clock.advance(days=1)
    await checkin(chat, pain="2", gate_rr5="Yes, 2/10 or less")
    profile, _ = await chat.stored()
    assert (profile.phase, profile.level) == (3, 1)
    assert "walk–run ladder" in chat.text


async def test_RR5_hops_that_hurt_keep_the_runner_in_phase_2(chat: Chat, clock: Clock) -> None:
    await at_the_top_of_phase_2(chat, clock)
    await checkin(chat, gate_rr3="Yes", gate_rr4="Yes", gate_rr2="Yes")
    clock.advance(days=1)
    await checkin(chat, gate_rr5="It hurt more")
    assert (await chat.stored())[0].phase == 2


async def test_RR6_the_checks_wait_for_the_weeks_phase_2_needs(chat: Chat, clock: Clock) -> None:
    await at_the_top_of_phase_2(chat, clock, weeks=3)
    asked = await checkin(chat)
    assert "gate_rr3" not in asked


def test_RR1_running_needs_a_clinicians_clearance_after_any_urgent_flag() -> None:
    day = date(2026, 11, 26)
    assert rr1_clear_to_run(Profile())
    flagged = Profile(last_urgent_on=day - timedelta(days=30))
    assert not rr1_clear_to_run(flagged)
    cleared = flagged.model_copy(update={"run_cleared_on": day - timedelta(days=20)})
    assert rr1_clear_to_run(cleared)
    assert not rr1_clear_to_run(cleared.model_copy(update={"review": Level.SOON}))


# --- section 4c: while running ------------------------------------------------------------------


def session_run(profile: Profile, checkins: list[CheckinRecord], day: date) -> str:
    return build_session(CONTENT, profile, day, (), checkins).run


def test_RP4_the_week_hills_arrive_the_run_times_stay_put() -> None:
    day = date(2026, 11, 26)
    run = CheckinRecord(day - timedelta(days=3), ran="yes", run_minutes=30, pain_during=1)
    base = {"onboarded": True, "phase": 4, "presentation": "outside"}
    hills = Profile.model_validate({**base, "level": 2, "level_started_on": day})
    assert "no longer than last week's" in session_run(hills, [run], day)
    assert "30 min" in session_run(hills, [run], day)
    later = hills.model_copy(update={"level_started_on": day - timedelta(days=10)})
    assert "33 min" in session_run(later, [run], day)


def test_RP5_no_acute_chronic_ratio_is_computed() -> None:
    """No name in the code (function, variable, attribute) computes or holds one."""
    pattern = re.compile(r"acwr|acute.{0,3}chronic|workload_ratio", re.IGNORECASE)
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "name", None) or getattr(node, "id", None)
            name = name or getattr(node, "attr", None) or getattr(node, "arg", None)
            if isinstance(name, str) and pattern.search(name):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_RP6_hills_come_back_only_after_two_settled_weeks() -> None:
    day = date(2026, 11, 26)
    p = Profile(
        onboarded=True,
        phase=4,
        level=1,
        baseline=2.0,
        level_started_on=day - timedelta(days=10),
        phase_started_on=day - timedelta(days=10),
        plan_started_on=day - timedelta(days=100),
    )
    runs = [
        CheckinRecord(
            day - timedelta(days=d),
            pain_now=2,
            ran="yes",
            run_minutes=30,
            pain_during=1,
            phase=4,
            level=1,
        )
        for d in range(16, 0, -2)
    ]
    today = CheckinRecord(day, pain_now=2, ran="yes", run_minutes=30, pain_during=1, phase=4)
    assert decide(today, runs, p).reason == "training_steady"
    settled = p.model_copy(update={"level_started_on": day - timedelta(days=15)})
    assert decide(today, runs, settled).reason == "stage_step"
    one_bad = [
        *runs[:-1],
        CheckinRecord(
            day - timedelta(days=2),
            pain_now=4,
            ran="yes",
            run_minutes=30,
            pain_during=1,
            phase=4,
            level=1,
        ),
    ]
    assert decide(today, one_bad, settled).reason == "training_steady"


def test_RP7_the_cadence_cue_comes_in_a_week_without_a_step_up() -> None:
    day = date(2026, 11, 26)
    p = Profile(onboarded=True, phase=3, level=3, level_started_on=day - timedelta(days=2))
    assert "steps a minute" not in session_run(p, [], day)
    steady = p.model_copy(update={"level_started_on": day - timedelta(days=7)})
    assert "steps a minute" in session_run(steady, [], day)
    introduced = p.model_copy(update={"cadence_from": day - timedelta(days=1)})
    assert "steps a minute" in session_run(introduced, [], day)


async def test_RP8_a_limp_on_the_ladder_goes_back_to_the_red_flag_table(
    chat: Chat, clock: Clock
) -> None:
    await on_the_ladder(chat, clock, level=3)
    clock.advance(days=1)
    await checkin(
        chat,
        screen={
            "s/m": "Yes, one or more",
            "s/mi:walking": "Yes",
            "s/i:R5": "Yes",
            "s/f:R5": "I can walk, but I'm limping",
        },
    )
    profile, _ = await chat.stored()
    assert profile.escalation == "URGENT"
    assert "Today — phase" not in chat.text


def test_RP8_the_daily_screen_must_reach_limp_walking_and_night_pain() -> None:
    content = CONTENT
    mini = [m.model_copy(update={"rows": ["R6"]}) for m in content.screen.mini]
    broken = replace(content, screen=content.screen.model_copy(update={"mini": mini}))
    with pytest.raises(FlowError, match="RP8"):
        check_content(broken)


async def test_RP3_a_typed_duration_is_read_as_minutes(chat: Chat, clock: Clock) -> None:
    await on_the_ladder(chat, clock, level=6)
    clock.advance(days=1)
    await checkin(chat, pain="2", ran="I ran about 20 mins", run_pain="2")
    clock.advance(days=1)
    await chat.send("today")
    assert "22 min" in chat.text
