"""The daily load decision: progress, hold, back off or see a clinician.

Pain-monitoring rules P1-P8 and the return-to-run rules RP1-RP2 of the clinical rules,
as pure functions of the check-in, the recent history and the plan position. Red flags
(P9, P10) are dealt with by the screen before this runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from statistics import mean, median

from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord

MORNING_DELTA = {"better": -1, "same": 0, "bit_worse": 1, "much_worse": 2}
RUN_PAIN_OK = 3  # P2: running pain must stay at or under 3/10
RUN_PAIN_MAX = 5  # P1/P7: above 5/10 is too much
LEVELS_PER_PHASE = {1: 2, 2: 3, 3: 7, 4: 4}


class Decision(StrEnum):
    PROGRESS = "progress"
    HOLD = "hold"
    BACK_OFF = "back_off"
    SEE_CLINICIAN = "see_clinician"


@dataclass(frozen=True)
class PlanDecision:
    decision: Decision
    reason: str  # a message key: "reason_<reason>"
    phase: int
    level: int
    cross_train_until: date | None = None
    recommend_review: bool = False  # P8 / R21: suggest a physio


def baseline(checkins: list[CheckinRecord]) -> float | None:
    """Usual morning pain: median of the settled mornings among the last two weeks."""
    calm = [
        c.pain_now for c in checkins if c.pain_now is not None and c.morning in ("better", "same")
    ]
    if len(calm) < 3:
        calm = [c.pain_now for c in checkins if c.pain_now is not None]
    if not calm:
        return None
    return float(median(calm[-3:] if len(calm) >= 3 else calm))


def morning_delta(c: CheckinRecord, base: float | None) -> int:
    """How far this morning is above usual: the runner's own words, or the numbers."""
    said = MORNING_DELTA.get(c.morning or "same", 0)
    if base is None or c.pain_now is None:
        return said
    measured = round(c.pain_now - base)
    return max(said, min(measured, 2))


def weekly_rise(checkins: list[CheckinRecord], today: date) -> bool:
    """P4: the 7-day mean of morning pain rose by a point or more on the week before."""
    this_week = [
        c.pain_now
        for c in checkins
        if c.pain_now is not None and 0 <= (today - c.local_date).days < 7
    ]
    last_week = [
        c.pain_now
        for c in checkins
        if c.pain_now is not None and 7 <= (today - c.local_date).days < 14
    ]
    if len(this_week) < 3 or len(last_week) < 3:
        return False
    return mean(this_week) - mean(last_week) >= 1


def _good_day(c: CheckinRecord, base: float | None) -> bool:
    run_ok = c.ran in (None, "no") or (c.pain_during is not None and c.pain_during <= RUN_PAIN_OK)
    return run_ok and morning_delta(c, base) <= 0 and c.exercises in ("all", "some")


def decide(
    today: CheckinRecord,
    earlier: list[CheckinRecord],
    profile: Profile,
    *,
    phase_gate_passed: bool = False,
) -> PlanDecision:
    """Decide today's plan. `earlier` holds the previous check-ins, oldest first."""
    history = [c for c in earlier if c.local_date < today.local_date]
    base = profile.baseline if profile.baseline is not None else baseline(history[-14:])
    delta = morning_delta(today, base)
    phase, level = profile.phase, profile.level

    def back_off(reason: str) -> PlanDecision:
        regress_count = sum(
            1
            for c in history
            if c.decision == Decision.BACK_OFF and (today.local_date - c.local_date).days < 14
        )
        if level > 1:
            result = PlanDecision(Decision.BACK_OFF, reason, phase, level - 1)
        else:
            # P7: already at the lowest level -> pain-free cross-training for a few days.
            until = today.local_date + timedelta(days=2)
            result = PlanDecision(Decision.BACK_OFF, reason, phase, level, cross_train_until=until)
        if regress_count >= 1:  # P8: a second back-off within 14 days
            return PlanDecision(
                Decision.SEE_CLINICIAN,
                "two_back_offs",
                result.phase,
                result.level,
                result.cross_train_until,
                recommend_review=True,
            )
        return result

    def hold(reason: str) -> PlanDecision:
        return PlanDecision(Decision.HOLD, reason, phase, level)

    # P7 and P3: signs the last load was too much.
    if (today.pain_now or 0) >= 7 or (today.pain_during or 0) >= 7:
        return back_off("pain_severe")
    if today.ran not in (None, "no") and (today.pain_during or 0) > RUN_PAIN_MAX:
        return back_off("run_pain_high")
    if delta >= 2:
        return back_off("morning_much_worse")
    if delta == 1 and history:
        yesterday = history[-1]
        if (today.local_date - yesterday.local_date).days == 1 and morning_delta(
            yesterday, base
        ) >= 1:
            return back_off("morning_worse_48h")
    if weekly_rise([*history, today], today.local_date):
        return back_off("weekly_rise")

    # P6: hold when the signals are mixed.
    if today.ran not in (None, "no") and (today.pain_during or 0) > RUN_PAIN_OK:
        return hold("run_pain_moderate")
    if delta == 1:
        return hold("morning_bit_worse")
    if today.exercises == "none":
        return hold("exercises_missed")

    # P5: two good sessions in a row at this level.
    at_level = [c for c in history if c.phase == phase and c.level == level]
    if not at_level or not _good_day(at_level[-1], base) or not _good_day(today, base):
        return hold("need_two_good_days")
    if profile.level_started_on and (today.local_date - profile.level_started_on).days < 2:
        return hold("need_two_good_days")
    return _progress(today, history, profile, phase_gate_passed=phase_gate_passed)


def _progress(
    today: CheckinRecord, history: list[CheckinRecord], profile: Profile, *, phase_gate_passed: bool
) -> PlanDecision:
    phase, level = profile.phase, profile.level
    top = LEVELS_PER_PHASE[phase]
    days_in_phase = (
        (today.local_date - profile.phase_started_on).days if profile.phase_started_on else 0
    )
    review_pending = profile.review is not None

    if phase == 1:
        if level < top:
            return PlanDecision(Decision.PROGRESS, "two_good_days", 1, level + 1)
        # Phase 1 exit: a settled week with low morning pain.
        week = [c for c in [*history, today] if (today.local_date - c.local_date).days < 7]
        settled = (
            days_in_phase >= 7
            and len(week) >= 5
            and all((c.pain_now or 0) <= 3 for c in week)
            and not weekly_rise([*history, today], today.local_date)
        )
        if settled:
            return PlanDecision(Decision.PROGRESS, "phase_one_done", 2, 1)
        return PlanDecision(Decision.HOLD, "settling_week", 1, level)
    if phase == 2:
        if level < top:
            return PlanDecision(Decision.PROGRESS, "two_good_days", 2, level + 1)
        if review_pending:
            return PlanDecision(Decision.HOLD, "awaiting_review", 2, level)
        if days_in_phase >= 42 and phase_gate_passed:
            return PlanDecision(Decision.PROGRESS, "phase_two_done", 3, 1)
        return PlanDecision(Decision.HOLD, "strength_block", 2, level)
    if phase == 3:
        if review_pending:
            return PlanDecision(Decision.HOLD, "awaiting_review", 3, level)
        if today.ran in (None, "no"):
            return PlanDecision(Decision.HOLD, "ladder_needs_runs", 3, level)
        # RP2: each ladder level twice with P2 and P3 met before moving up.
        runs_at_level = [
            c
            for c in [*history, today]
            if c.phase == 3 and c.level == level and c.ran not in (None, "no")
        ]
        if len(runs_at_level) < 2:
            return PlanDecision(Decision.HOLD, "ladder_repeat", 3, level)
        if level < top:
            return PlanDecision(Decision.PROGRESS, "ladder_step", 3, level + 1)
        if days_in_phase >= 21:
            return PlanDecision(Decision.PROGRESS, "phase_three_done", 4, 1)
        return PlanDecision(Decision.HOLD, "ladder_repeat", 3, level)
    # Phase 4: one new stimulus at a time.
    if level < top:
        return PlanDecision(Decision.PROGRESS, "training_step", 4, level + 1)
    return PlanDecision(Decision.HOLD, "keep_strength", 4, level)
