"""Today's session: the exercises for the runner's phase and presentation, dosed to level,
and what to do about running today.

No exercise content while the plan is paused by an escalation (section 0) or waits for a
clinician's approval (R18, R19).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.engine.payload import LOG_OUTCOMES, LogEntry, encode
from bot.engine.rules import return_to_running as rtr
from bot.engine.rules.progression import (
    LADDER_PHASE,
    TRAINING_PHASE,
    dose_for,
    dose_values,
)
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord, ExerciseLog
from content.loader import Content
from content.schema import Dosage, Exercise

OUTCOMES = LOG_OUTCOMES
NEXT_SESSION = timedelta(days=1)  # P1: an exercise with no easier form sits out one session
SESSION_KINDS = ("isometric", "strength", "mobility", "stretch", "plyo")


@dataclass(frozen=True)
class SessionItem:
    exercise: Exercise
    dosage: Dosage
    notes: tuple[str, ...]  # presentation-specific changes
    swapped_from: str | None = None  # the exercise it replaces after a painful set
    eased: bool = False  # P11: lighter holds after holds that raised the pain


@dataclass(frozen=True)
class Session:
    phase: int
    level: int
    items: tuple[SessionItem, ...]
    run: str  # what to do about running today
    holds_stopped: bool = False  # P11: today's holds raised the pain; no more today
    exercises_swapped: bool = False  # P7 at the lowest level: cross-training instead


def cross_training_instead_of_exercises(profile: Profile, today: date) -> bool:
    return (
        profile.cross_train_until is not None
        and today <= profile.cross_train_until
        and profile.cross_train_for in ("exercises", "all")
    )


def build_session(
    content: Content,
    profile: Profile,
    today: date,
    logs: Sequence[ExerciseLog],
    checkins: Sequence[CheckinRecord],
) -> Session:
    run = run_advice(content, profile, today, checkins)
    if profile.plan_paused or profile.plan_held or not profile.onboarded:
        return Session(profile.phase, profile.level, (), run)
    if cross_training_instead_of_exercises(profile, today):
        return Session(profile.phase, profile.level, (), run, exercises_swapped=True)
    presentation = profile.presentation or "mixed"
    planned = content.exercises_for(profile.phase, presentation)
    planned_ids = {ex.id for ex in planned}
    stopped = profile.isometric_stopped_on == today
    items: list[SessionItem] = []
    for ex in planned:
        if ex.kind not in SESSION_KINDS:
            continue
        if ex.kind == "isometric" and stopped:
            continue  # P11: the holds raised the pain today
        chosen, swapped = ex, None
        dosage = dose_for(content, ex, profile.phase, profile.level)
        painful_on = _regressed_since(ex, logs, today, planned_ids)
        if painful_on is not None:
            # P1: too painful last session -> an easier version until it is done without
            # pain: the easier exercise when it is not in the session already, otherwise
            # the same one a step lighter; with neither, it sits out the next session.
            easier = content.exercises[ex.easier] if ex.easier else None
            lighter = _one_step_lighter(ex, dosage)
            if easier and not easier.avoided_for(presentation) and easier.id not in planned_ids:
                chosen, dosage = easier, dose_for(content, easier, profile.phase, profile.level)
                swapped = ex.id
            elif lighter != dosage:
                dosage, swapped = lighter, ex.id
            elif today - painful_on <= NEXT_SESSION:
                continue
        if any(item.exercise.id == chosen.id for item in items):
            continue
        eased = chosen.kind == "isometric" and profile.isometric_eased
        if eased:
            dosage = _one_step_lighter(chosen, dosage)
        items.append(
            SessionItem(
                exercise=chosen,
                dosage=dosage,
                notes=tuple(chosen.modification_for(presentation)),
                swapped_from=swapped,
                eased=eased,
            )
        )
    return Session(profile.phase, profile.level, tuple(items), run, holds_stopped=stopped)


def _regressed_since(
    ex: Exercise, logs: Sequence[ExerciseLog], today: date, planned: set[str]
) -> date | None:
    """P1: the day it was logged too painful, while its easier version is not yet done
    since; None when it is not regressed."""
    painful = [
        log.local_date
        for log in logs
        if log.exercise_id == ex.id and log.outcome == "painful" and log.local_date < today
    ]
    if not painful:
        return None
    since = max(painful)
    substitute = ex.easier if ex.easier and ex.easier not in planned else ex.id
    done = any(
        log.exercise_id == substitute and log.outcome == "done" and since < log.local_date < today
        for log in logs
    )
    return None if done else since


def _one_step_lighter(ex: Exercise, dosage: Dosage) -> Dosage:
    """One step back along the exercise's progression (P1 regression, P11 lighter holds)."""
    doses = dose_values(ex)
    index = doses.index(dosage) if dosage in doses else 0
    return doses[max(0, index - 1)]


def isometrics_in_session_of(content: Content, profile: Profile, day: date) -> bool:
    """Did the session planned for `day` have isometric holds (P11 is asked only then)?"""
    if profile.plan_paused or profile.plan_held:
        return False
    if cross_training_instead_of_exercises(profile, day):
        return False
    return any(
        ex.kind == "isometric"
        for ex in content.exercises_for(profile.phase, profile.presentation or "mixed")
    )


def run_advice(
    content: Content, profile: Profile, today: date, checkins: Sequence[CheckinRecord]
) -> str:
    if profile.running_blocked:
        return content.message("run_none_until_seen")
    if (
        profile.cross_train_until
        and today <= profile.cross_train_until
        and profile.cross_train_for in (None, "run", "all")
    ):
        return content.message(
            "run_cross_train", until=profile.cross_train_until.strftime("%a %d %b")
        )
    cap = rtr.rp3_longest_allowed(checkins, today)
    planned: int | None = None
    extra: list[str] = []
    if profile.phase == LADDER_PHASE:
        if rtr.rp1_rest_today(checkins, today):
            return content.message("run_rest_day")
        step = content.ladder[min(profile.level, len(content.ladder)) - 1]
        text = content.message("run_ladder", level=step.level, session=step.session)
        planned = step.minutes
    elif profile.phase == TRAINING_PHASE:
        stages = content.phases[TRAINING_PHASE].stages
        stage = stages[min(profile.level, len(stages)) - 1]
        text = stage.running
        if rtr.rp4_hold_volume(profile, today, stage.intensity):
            extra.append(content.message("run_hold_volume"))
            cap = rtr.longest_recent_run(checkins, today)
    else:
        phase = content.phases[profile.phase]
        text = phase.running
        if profile.review is not None:
            text = content.message("run_no_increase") + " " + text
    if cap is not None and (planned is None or cap < planned):
        extra.append(content.message("run_cap", minutes=cap))
    if rtr.rp7_cadence_cue(profile, today):
        extra.append(content.message("run_cadence"))
    return " ".join([text, *extra])


def log_payload(day: date, exercise_id: str, outcome_code: str) -> str:
    return encode(LogEntry(day, exercise_id, outcome_code))
