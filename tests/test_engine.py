"""Stories on the pure engine: no database, no platform, `now` passed in."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.engine import machine
from bot.engine.events import Inbound, InboundKind
from bot.engine.payload import ShowExercise, encode
from bot.engine.rules.daily import Decision, PhaseMinimums, PlanDecision
from bot.engine.rules.daily import decide as decide_day
from bot.engine.rules.progression import plan_shape
from bot.engine.rules.return_to_running import Gate
from bot.engine.session import build_session
from bot.engine.state import Conversation, Profile
from bot.engine.turn import CheckinRecord, Turn
from content.loader import default_content
from content.schema import Level

CONTENT = default_content()
TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def profile(**kw: object) -> Profile:
    base: dict[str, object] = {
        "onboarded": True,
        "presentation": "outside",
        "timezone": "Europe/Berlin",
        "phase_started_on": TODAY - timedelta(days=3),
        "level_started_on": TODAY - timedelta(days=3),
        "plan_started_on": TODAY - timedelta(days=3),
        "baseline": 2.0,
        "baseline_on": TODAY - timedelta(days=3),
    }
    base.update(kw)
    return Profile.model_validate(base)


def day(offset: int, **kw: object) -> CheckinRecord:
    """A check-in `offset` days from TODAY: by default a calm morning (2/10, the baseline)
    after a session of exercises at 2/10 and no run."""
    fields: dict[str, object] = {
        "pain_now": 2,
        "ran": "no",
        "exercises": "done",
        "exercise_pain": 2,
    }
    fields.update(kw)
    return CheckinRecord(local_date=TODAY + timedelta(days=offset), **fields)  # type: ignore[arg-type]


SHAPE = plan_shape(CONTENT, "outside")
MINIMUMS = PhaseMinimums({n: ph.min_days for n, ph in CONTENT.phases.items()})


def decide(
    today: CheckinRecord, earlier: list[CheckinRecord], p: Profile, gate: Gate | None = None
) -> PlanDecision:
    return decide_day(today, earlier, p, SHAPE, MINIMUMS, gate)


def today_text(p: Profile) -> str:
    inbound = Inbound("console", "e1", "u", "u", InboundKind.COMMAND, command="today")
    result = machine.step(Turn(inbound, NOW, p, Conversation()), CONTENT)
    return "\n".join(r.text for r in result.replies)


# --- what a runner is given -----------------------------------------------------------------


@pytest.mark.parametrize("phase", [1, 2, 3, 4])
@pytest.mark.parametrize("presentation", ["outside", "mixed"])
def test_a_runner_with_outside_of_hip_pain_never_gets_an_across_the_body_stretch(
    phase: int, presentation: str
) -> None:
    p = profile(phase=phase, presentation=presentation)
    session = build_session(CONTENT, p, TODAY, (), ())
    ids = {item.exercise.id for item in session.items}
    assert "tfl_itb_stretch" not in ids
    assert CONTENT.exercises["tfl_itb_stretch"].name not in today_text(p)


def test_a_runner_with_front_of_hip_pain_may_get_that_stretch_in_a_later_phase() -> None:
    sessions = [
        build_session(CONTENT, profile(phase=ph, presentation="front"), TODAY, (), ())
        for ph in (2, 3)
    ]
    assert any(item.exercise.id == "tfl_itb_stretch" for s in sessions for item in s.items)


def exercise_text(p: Profile, exercise_id: str) -> str:
    """What a runner sees on tapping that exercise's number on today's card."""
    payload = encode(ShowExercise(NOW.date(), exercise_id))
    inbound = Inbound("console", "e2", "u", "u", InboundKind.BUTTON, payload=payload)
    result = machine.step(Turn(inbound, NOW, p, Conversation()), CONTENT)
    return "\n".join(r.text for r in result.replies)


def test_outside_of_hip_clamshells_say_to_lie_on_the_pain_free_side() -> None:
    runner = profile(presentation="outside")
    assert "Clamshell" in today_text(runner)
    assert "pain-free side" in exercise_text(runner, "clamshell")


def test_a_runner_whose_plan_is_paused_gets_no_exercises() -> None:
    text = today_text(profile(escalation=Level.URGENT))
    assert "paused" in text and "Cue:" not in text


def test_the_walk_run_ladder_never_schedules_two_run_days_in_a_row() -> None:
    p = profile(phase=3, level=2)
    reported_a_run_today = (day(0, ran="yes", pain_during=1, phase=3, level=2),)
    assert "rest or cross-train" in build_session(CONTENT, p, TODAY, (), reported_a_run_today).run
    assert "ladder step 2" in build_session(CONTENT, p, TODAY, (), ()).run


def test_a_review_pending_at_72h_means_no_running() -> None:
    session = build_session(CONTENT, profile(review=Level.SOON_72H), TODAY, (), ())
    assert "no running" in session.run


# --- the daily decision (pain-monitoring rules) ----------------------------------------------


def test_six_out_of_ten_during_a_run_backs_off() -> None:
    result = decide(day(0, ran="yes", pain_during=6), [day(-1)], profile(level=2))
    assert result.decision == Decision.BACK_OFF and result.level == 1


def test_four_or_five_during_a_run_holds() -> None:
    result = decide(day(0, ran="yes", pain_during=4), [day(-1)], profile())
    assert result.decision == Decision.HOLD and result.reason == "run_pain_moderate"


def test_morning_two_points_above_baseline_backs_off() -> None:
    result = decide(day(0, pain_now=4), [day(-3), day(-2), day(-1)], profile(level=2))
    assert result.decision == Decision.BACK_OFF and result.reason == "morning_much_worse"


def test_morning_a_point_above_baseline_holds_and_the_second_such_morning_backs_off() -> None:
    history = [day(-4), day(-3), day(-2)]
    first = decide(day(-1, pain_now=3), history, profile())
    assert first.decision == Decision.HOLD and first.reason == "morning_bit_worse"
    second = decide(day(0, pain_now=3), [*history, day(-1, pain_now=3, decision="hold")], profile())
    assert second.decision == Decision.BACK_OFF and second.reason == "morning_worse_48h"


def test_two_good_sessions_at_a_level_progress_one_step() -> None:
    result = decide(day(0), [day(-1)], profile(level=1))
    assert result.decision == Decision.PROGRESS and (result.phase, result.level) == (1, 2)


def test_one_good_session_is_not_enough() -> None:
    assert decide(day(0), [], profile()).decision == Decision.HOLD


def test_no_progress_before_there_is_a_baseline() -> None:
    result = decide(day(0), [day(-1)], profile(baseline=None, baseline_on=None))
    assert result.reason == "learning_baseline"


def test_backing_off_at_the_lowest_level_swaps_in_cross_training() -> None:
    result = decide(day(0, ran="yes", pain_during=6), [day(-1)], profile(level=1))
    assert result.decision == Decision.BACK_OFF
    assert result.cross_train_until == TODAY + timedelta(days=2)


def test_a_second_back_off_within_two_weeks_recommends_a_physio() -> None:
    earlier = [day(-5, decision="back_off", reason="run_pain_high"), day(-1)]
    result = decide(day(0, ran="yes", pain_during=6), earlier, profile(level=2))
    assert result.decision == Decision.SEE_CLINICIAN and result.refer
    assert result.reason == "two_back_offs"


def test_a_rising_weekly_mean_backs_off() -> None:
    last_week = [day(-13 + i, pain_now=1) for i in range(6)]
    this_week = [day(-6 + i, pain_now=3) for i in range(6)]
    result = decide(day(0, pain_now=3), [*last_week, *this_week], profile(baseline=3.0, level=2))
    assert result.decision == Decision.BACK_OFF and result.reason == "weekly_rise"


def test_a_settled_week_at_the_top_of_phase_one_moves_to_the_strength_phase() -> None:
    top = SHAPE.top(1)
    week = [day(-i, level=top) for i in range(6, 0, -1)]
    p = profile(level=top, phase_started_on=TODAY - timedelta(days=14))
    result = decide(day(0, level=top), week, p)
    assert (result.decision, result.phase, result.level) == (Decision.PROGRESS, 2, 1)


def test_phase_two_needs_the_running_checks_and_the_hop_check_before_the_ladder() -> None:
    top = SHAPE.top(2)
    p = profile(phase=2, level=top, phase_started_on=TODAY - timedelta(days=50))
    history = [day(-1, phase=2, level=top)]
    assert decide(day(0, phase=2, level=top), history, p).decision == Decision.HOLD
    passed = p.model_copy(update={"gate_passed_on": TODAY - timedelta(days=1)})
    hops = decide(day(0, phase=2, level=top), history, passed, Gate(hops=True))
    assert (hops.phase, hops.level) == (3, 1)


def test_each_ladder_step_is_run_twice_before_moving_up() -> None:
    p = profile(phase=3, level=1)
    run = {"ran": "yes", "pain_during": 1, "phase": 3, "level": 1}
    assert decide(day(0, **run), [day(-1, phase=3, level=1)], p).reason == "ladder_repeat"
    assert (
        decide(day(0, **run), [day(-2, **run), day(-1, phase=3, level=1)], p).reason
        == "ladder_step"
    )


# --- the engine stays platform-neutral ---------------------------------------------------------


def test_nothing_outside_the_adapters_imports_a_platform_library() -> None:
    root = Path(__file__).parents[1] / "bot"
    offenders = []
    for path in root.rglob("*.py"):
        if "adapters" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("telegram", "slack_bolt", "slack_sdk") for n in names):
                offenders.append(str(path))
    assert offenders == []
