"""Clinical rules P5 (one variable, one step), 3b (dose ranges) and 3e (phase gates).

A plan position is (phase, level). In phases 1 and 2 a level is one step of every
exercise's own progression (content/data/exercises.yaml, `progress`): each step raises one
variable of that exercise (reps, or sets, or hold time, or load) by one step, within the
ranges of 3b. A phase has as many levels as its longest progression, so a runner meeting
P5 always gets a next step until only the phase's exit criteria are left. Phase 3's levels
are the walk-run ladder (section 4b); phase 4's are its stages (distance, hills, speed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.engine.rules.pain_monitoring import p3_morning_after, p4_weekly_rise
from bot.engine.rules.registry import rule
from bot.engine.turn import CheckinRecord
from content.loader import Content
from content.schema import Dosage, Exercise

PHASE1_MORNING_MAX = 3  # 3e: phase 1 ends with morning pain at 3/10 or lower ...
PHASE1_SETTLED_DAYS = 7  # ... for 7 days with P3 met and the weekly mean not rising
PHASE1_MIN_CHECKINS = 5  # D: of those 7 days, at least 5 with a check-in
PHASE3_SETTLED = timedelta(days=14)  # 3e: P3 met for 2 weeks of running
STRENGTH_PHASE = 2
LADDER_PHASE = 3
TRAINING_PHASE = 4


def dose_values(ex: Exercise) -> list[Dosage]:
    """Every dose of the exercise's progression, the starting dose first."""
    return ex.doses


def dose_steps(ex: Exercise) -> int:
    return len(dose_values(ex)) - 1


def first_phase_of(content: Content, exercise_id: str) -> int:
    return min(p.number for p in content.phases.values() if exercise_id in p.exercises)


@rule(
    "P5",
    "2",
    "Two good sessions at this level, each with a settled next morning and no "
    "weekly rise: one step up, one variable (reps, or load, or hold, or run time).",
)
def dose_for(content: Content, ex: Exercise, phase: int, level: int) -> Dosage:
    """The exercise's dose at a plan position: one step per level in the phase where it
    starts; an exercise carried on from an earlier phase keeps its top dose."""
    doses = dose_values(ex)
    if first_phase_of(content, ex.id) < phase or phase > STRENGTH_PHASE:
        return doses[-1]
    return doses[min(level - 1, len(doses) - 1)]


@dataclass(frozen=True)
class PlanShape:
    """How many levels each phase has for this runner's exercises."""

    levels: dict[int, int]

    def top(self, phase: int) -> int:
        return self.levels[phase]


def plan_shape(content: Content, presentation: str | None) -> PlanShape:
    key = ("plan_shape", presentation)
    if key not in content.memo:
        content.memo[key] = _plan_shape(content, presentation)
    shape: PlanShape = content.memo[key]
    return shape


def _plan_shape(content: Content, presentation: str | None) -> PlanShape:
    levels: dict[int, int] = {}
    for number in (1, STRENGTH_PHASE):
        new = [
            ex
            for ex in content.exercises_for(number, presentation or "mixed")
            if first_phase_of(content, ex.id) == number
        ]
        levels[number] = 1 + max((dose_steps(ex) for ex in new), default=0)
    levels[LADDER_PHASE] = len(content.ladder)
    levels[TRAINING_PHASE] = max(1, len(content.phases[TRAINING_PHASE].stages))
    return PlanShape(levels)


# --- phase gates (3e) ------------------------------------------------------------------------


@rule(
    "3e.1",
    "3e",
    "Phase 1 ends after 7 days with settled mornings (P3), no weekly rise "
    "and morning pain at 3/10 or lower.",
)
def phase1_done(
    checkins: Sequence[CheckinRecord],
    today: date,
    baseline: float | None,
    phase_started_on: date | None,
) -> bool:
    if phase_started_on is None or (today - phase_started_on).days < PHASE1_SETTLED_DAYS:
        return False
    week = [c for c in checkins if 0 <= (today - c.local_date).days < PHASE1_SETTLED_DAYS]
    if len(week) < PHASE1_MIN_CHECKINS:
        return False
    settled = all(
        p3_morning_after(c, baseline) == "met"
        and c.pain_now is not None
        and c.pain_now <= PHASE1_MORNING_MAX
        for c in week
    )
    return settled and not p4_weekly_rise(checkins, today)


@rule(
    "3e.3",
    "3e",
    "Phase 3 ends with 30 minutes of easy continuous running done twice and "
    "two weeks of runs whose next mornings were settled.",
)
def phase3_done(
    checkins: Sequence[CheckinRecord],
    today: date,
    baseline: float | None,
    phase_started_on: date | None,
    min_days: int,
) -> bool:
    if phase_started_on is None or (today - phase_started_on).days < min_days:
        return False
    fortnight = [
        c for c in checkins if c.did_run and timedelta(0) <= today - c.local_date < PHASE3_SETTLED
    ]
    return bool(fortnight) and all(p3_morning_after(c, baseline) == "met" for c in fortnight)
