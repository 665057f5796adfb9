"""P5's one variable, one step, within the dose ranges of 3b, and the phase gates of 3e."""

from __future__ import annotations

import itertools
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from bot.engine.rules import daily
from bot.engine.rules.daily import Decision, PhaseMinimums
from bot.engine.rules.progression import dose_values, phase1_done, plan_shape
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord
from content.loader import DATA_DIR, ContentError, default_content, load_content

CONTENT = default_content()
TODAY = date(2026, 11, 26)
VARIABLES = ("sets", "reps", "hold_seconds", "load")
# The top of each range in clinical rules 3b, for the exercises that progress.
RANGES = {
    "iso_abduction_lying": {"hold_seconds": 10, "sets": 2, "reps": 10},
    "iso_abduction_standing": {"hold_seconds": 15, "reps": 5},
    "side_steps": {"reps": 15},
    "clamshell": {"reps": 15, "sets": 2},
    "single_leg_bridge": {"reps": 10, "sets": 2},
    "band_side_steps": {"reps": 10, "sets": 2},
    "split_squat": {"reps": 12, "sets": 3},
    "bulgarian_split_squat": {"reps": 12, "sets": 3},
    "single_leg_deadlift": {"reps": 12, "sets": 3},
    "step_down": {"reps": 12, "sets": 3},
}


@pytest.mark.parametrize("exercise_id", sorted(CONTENT.exercises))
def test_P5_each_step_changes_one_variable_of_an_exercise(exercise_id: str) -> None:
    doses = dose_values(CONTENT.exercises[exercise_id])
    for before, after in itertools.pairwise(doses):
        changed = [v for v in VARIABLES if getattr(before, v) != getattr(after, v)]
        assert len(changed) == 1, (exercise_id, before, after)


@pytest.mark.parametrize("exercise_id", sorted(RANGES))
def test_P5_doses_stay_within_the_ranges_of_3b(exercise_id: str) -> None:
    top = dose_values(CONTENT.exercises[exercise_id])[-1]
    for variable, limit in RANGES[exercise_id].items():
        assert getattr(top, variable) <= limit, (exercise_id, variable)
    assert len(dose_values(CONTENT.exercises[exercise_id])) > 1  # it does progress


def test_P5_every_phase_has_room_to_progress() -> None:
    shape = plan_shape(CONTENT, "outside")
    assert shape.top(1) >= 4 and shape.top(2) >= 6
    assert shape.top(3) == len(CONTENT.ladder) == 7


def good(day: date, phase: int, level: int) -> CheckinRecord:
    return CheckinRecord(
        day, pain_now=2, ran="no", exercises="done", exercise_pain=2, phase=phase, level=level
    )


def test_P5_a_runner_meeting_P5_steps_up_until_only_the_exit_criteria_remain() -> None:
    """Good days from phase 1 level 1: a step every second good day until the top, then
    the phase's exit (a settled week) is the only thing left."""
    shape = plan_shape(CONTENT, "outside")
    minimums = PhaseMinimums({n: p.min_days for n, p in CONTENT.phases.items()})
    start = TODAY - timedelta(days=40)
    profile = Profile(
        onboarded=True,
        presentation="outside",
        baseline=2.0,
        baseline_on=start,
        plan_started_on=start,
        phase_started_on=start,
        level_started_on=start,
    )
    history: list[CheckinRecord] = []
    reasons = []
    for n in range(1, 25):
        day = start + timedelta(days=n)
        record = good(day, profile.phase, profile.level)
        result = daily.decide(record, history, profile, shape, minimums)
        history.append(
            CheckinRecord(
                **{**record.__dict__, "decision": result.decision.value, "reason": result.reason}
            )
        )
        reasons.append(result.reason)
        if (result.phase, result.level) != (profile.phase, profile.level):
            changes = {"phase": result.phase, "level": result.level, "level_started_on": day}
            if result.phase != profile.phase:
                changes["phase_started_on"] = day
            profile = profile.model_copy(update=changes)
        if profile.phase == 2:
            break
    steps = reasons.count("two_good_sessions")
    assert steps == shape.top(1) - 1
    assert set(reasons) <= {
        "need_two_good_sessions",
        "two_good_sessions",
        "settling_week",
        "phase_one_done",
    }
    assert reasons[-1] == "phase_one_done"
    assert Decision.SEE_CLINICIAN.value not in [h.decision for h in history]


def test_3e_phase_1_ends_after_a_settled_week_with_low_mornings() -> None:
    week = [good(TODAY - timedelta(days=d), 1, 5) for d in range(6, -1, -1)]
    assert phase1_done(week, TODAY, 2.0, TODAY - timedelta(days=10))
    assert not phase1_done(week, TODAY, 2.0, TODAY - timedelta(days=5))  # too soon
    high = [*week[:-1], CheckinRecord(TODAY, pain_now=4, phase=1, level=5)]
    assert not phase1_done(high, TODAY, 4.0, TODAY - timedelta(days=10))  # 4/10 mornings


def test_a_dose_range_that_does_not_rise_is_refused_at_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "exercises.yaml"
    exercises = yaml.safe_load(path.read_text(encoding="utf-8"))
    clam = next(e for e in exercises if e["id"] == "clamshell")
    clam["progress"][0]["to"] = 8  # below the starting 10 reps
    path.write_text(yaml.safe_dump(exercises), encoding="utf-8")
    with pytest.raises(ContentError, match="range must rise"):
        load_content(data)
