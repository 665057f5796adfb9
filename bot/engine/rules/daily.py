"""Today's load decision: section 2's rules in order, with progression and running on top.

Back off (P7, with P8's count), else hold (P6), else one step up when P5 is met (or, at
the top of a phase, the phase gate of 3e / section 4a), and finally P8's and R21's "no
progress" checks. A red flag never reaches this function (P9, P10: the screen escalates
first). Everything is pure: the check-in, the earlier ones, the profile, the plan shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from bot.engine.rules import pain_monitoring as pm
from bot.engine.rules import return_to_running as rtr
from bot.engine.rules.progression import (
    LADDER_PHASE,
    STRENGTH_PHASE,
    TRAINING_PHASE,
    PlanShape,
    phase1_done,
    phase3_done,
)
from bot.engine.rules.screen import six_weeks_without_improvement
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord


class Decision(StrEnum):
    PROGRESS = "progress"
    HOLD = "hold"
    BACK_OFF = "back_off"
    SEE_CLINICIAN = "see_clinician"


# Holds that mean P5 was met but the phase has no further step (P8 counts them as progress).
P5_MET_AT_TOP = {
    "settling_week",
    "phase_exit_pending",
    "strength_block",
    "ladder_top",
    "training_steady",
    "awaiting_review",
    "awaiting_clearance",
}


@dataclass(frozen=True)
class PlanDecision:
    decision: Decision
    reason: str  # a message key: "reason_<reason>"
    phase: int
    level: int
    cross_train_until: date | None = None
    refer: bool = False  # P8 / R21: recommend a sports physio
    backed_off: bool = False  # the load went down (a back-off, or one under the referral)


@dataclass(frozen=True)
class PhaseMinimums:
    """The fewest days in a phase before its exit is checked (content phases.yaml)."""

    days: dict[int, int]


def decide(
    today: CheckinRecord,
    earlier: Sequence[CheckinRecord],
    profile: Profile,
    shape: PlanShape,
    minimums: PhaseMinimums,
    gate: rtr.Gate | None = None,
    stage_is_intensity: bool = False,
) -> PlanDecision:
    """`earlier`: the check-ins before today's, oldest first."""
    gate = gate or rtr.Gate()
    history = [c for c in earlier if c.local_date < today.local_date]
    baseline = profile.baseline
    reading = pm.read(today, history, baseline)
    day = today.local_date
    phase, level = profile.phase, profile.level

    if reading.regress:
        return _back_off(reading.regress[0], history, profile, day)
    if reading.hold:
        result = PlanDecision(Decision.HOLD, reading.hold[0], phase, level)
    else:
        result = _forward(today, history, profile, shape, minimums, gate, stage_is_intensity)
    return _stalled(result, history, profile, day)


def _back_off(
    reason: str, history: Sequence[CheckinRecord], profile: Profile, day: date
) -> PlanDecision:
    phase, level = profile.phase, profile.level
    if level > 1:
        result = PlanDecision(Decision.BACK_OFF, reason, phase, level - 1, backed_off=True)
    else:
        # P7: already at the lowest level: pain-free cross-training for a few days.
        until = day + timedelta(days=pm.P7_CROSS_TRAIN_DAYS - 1)
        result = PlanDecision(
            Decision.BACK_OFF, reason, phase, level, cross_train_until=until, backed_off=True
        )
    if profile.review is None and pm.p8_two_regressions(history, day):
        return PlanDecision(
            Decision.SEE_CLINICIAN,
            "two_back_offs",
            result.phase,
            result.level,
            result.cross_train_until,
            refer=True,
            backed_off=True,
        )
    return result


def _stalled(
    result: PlanDecision, history: Sequence[CheckinRecord], profile: Profile, day: date
) -> PlanDecision:
    """P8's second half and R21's six weeks: a physio, in their own words."""
    if result.decision == Decision.PROGRESS or result.reason in P5_MET_AT_TOP:
        return result
    if profile.review is not None:
        return result
    if pm.p8_no_progress(history, profile, day, P5_MET_AT_TOP):
        reason = "no_progress"
    elif six_weeks_without_improvement(list(history), profile, day) and (
        profile.last_physio_nudge_on is None or day - profile.last_physio_nudge_on >= pm.P8_WINDOW
    ):
        reason = "six_weeks"
    else:
        return result
    return PlanDecision(
        Decision.SEE_CLINICIAN,
        reason,
        result.phase,
        result.level,
        result.cross_train_until,
        refer=True,
        backed_off=result.backed_off,
    )


def _at_level(records: Sequence[CheckinRecord], profile: Profile) -> list[CheckinRecord]:
    """Check-ins reporting sessions done at the current level (oldest first)."""
    started = profile.level_started_on
    return [
        c
        for c in records
        if c.phase == profile.phase
        and c.level == profile.level
        and (started is None or c.local_date > started)
    ]


def _forward(
    today: CheckinRecord,
    history: Sequence[CheckinRecord],
    profile: Profile,
    shape: PlanShape,
    minimums: PhaseMinimums,
    gate: rtr.Gate,
    stage_is_intensity: bool,
) -> PlanDecision:
    phase, level, day = profile.phase, profile.level, today.local_date
    baseline = profile.baseline
    everything = [*history, today]
    top = level >= shape.top(phase)

    def hold(reason: str) -> PlanDecision:
        return PlanDecision(Decision.HOLD, reason, phase, level)

    def step(reason: str, to_phase: int = phase, to_level: int | None = None) -> PlanDecision:
        new_level = level + 1 if to_level is None else to_level
        return PlanDecision(Decision.PROGRESS, reason, to_phase, new_level)

    if phase == LADDER_PHASE:
        if not today.did_run:
            return hold("ladder_needs_runs")
        runs = [c for c in _at_level(everything, profile) if c.did_run]
        if not rtr.rp2_ladder_ready(runs, baseline):
            return hold("ladder_repeat")
        if not rtr.rr1_clear_to_run(profile):
            return hold("awaiting_review")
        if not top:
            return step("ladder_step")
        started = profile.phase_started_on
        if phase3_done(everything, day, baseline, started, minimums.days[LADDER_PHASE]):
            return step("phase_three_done", TRAINING_PHASE, 1)
        return hold("ladder_top")

    if phase == TRAINING_PHASE:
        if not top and rtr.rp6_next_stimulus_ready(everything, profile, day, baseline):
            if not rtr.rr1_clear_to_run(profile):
                return hold("awaiting_review")
            return step("stage_step")
        return hold("training_steady")

    # Phases 1 and 2: P5 on the exercise sessions.
    if baseline is None:
        return hold("learning_baseline")
    if not (today.did_run or today.did_exercises):
        return hold("no_session")
    sessions = [c for c in _at_level(everything, profile) if c.did_run or c.did_exercises]
    recent = sessions[-pm.P5_SESSIONS :]
    good = len(recent) >= pm.P5_SESSIONS and all(
        pm.read(c, [h for h in history if h.local_date < c.local_date], baseline).good
        for c in recent
    )
    if not good:
        return hold("need_two_good_sessions")
    if not top:
        return step("two_good_sessions")
    if phase == 1:
        if phase1_done(everything, day, baseline, profile.phase_started_on):
            return step("phase_one_done", STRENGTH_PHASE, 1)
        return hold("settling_week")
    # Top of phase 2: the strength checks, then the hop check, then running (section 4a).
    if not rtr.rr1_clear_to_run(profile):
        return hold("awaiting_review")
    if not rtr.rr6_strength_phase_done(profile, day, minimums.days[STRENGTH_PHASE]):
        return hold("phase_exit_pending" if profile.gate_passed_on else "strength_block")
    if rtr.rr5_hops_ready(gate.hops, today, baseline):
        return step("phase_two_done", LADDER_PHASE, 1)
    return hold("phase_exit_pending")
