"""Today's session: the exercises for the runner's phase and presentation, dosed to level."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord, ExerciseLog
from content.loader import Content
from content.schema import Dosage, Exercise

OUTCOMES = {"d": "done", "p": "painful", "s": "skipped"}
SESSION_KINDS = ("isometric", "strength", "mobility", "stretch", "plyo")


@dataclass(frozen=True)
class SessionItem:
    exercise: Exercise
    dosage: Dosage
    notes: tuple[str, ...]  # presentation-specific changes
    swapped_from: str | None = None  # the exercise it replaces after a painful set


@dataclass(frozen=True)
class Session:
    phase: int
    level: int
    items: tuple[SessionItem, ...]
    run: str  # what to do about running today


def dose_for_level(dosage: Dosage, level: int, kind: str) -> Dosage:
    """One variable, one step per level (P5): more reps, or a longer hold for isometrics."""
    steps = max(0, level - 1)
    if steps == 0:
        return dosage
    if kind == "isometric" and dosage.hold_seconds is not None:
        return dosage.model_copy(update={"hold_seconds": min(dosage.hold_seconds + 5 * steps, 60)})
    if dosage.reps is not None and kind in ("strength", "plyo"):
        return dosage.model_copy(update={"reps": min(dosage.reps + 2 * steps, 20)})
    return dosage


def build_session(
    content: Content,
    profile: Profile,
    today: date,
    logs: tuple[ExerciseLog, ...],
    checkins: tuple[CheckinRecord, ...],
) -> Session:
    presentation = profile.presentation or "mixed"
    last_outcome: dict[str, str] = {}
    for log in sorted(logs, key=lambda entry: entry.local_date):
        if log.local_date < today:
            last_outcome[log.exercise_id] = log.outcome
    items: list[SessionItem] = []
    for ex in content.exercises_for(profile.phase, presentation):
        if ex.kind not in SESSION_KINDS:
            continue
        chosen, swapped = ex, None
        # P1: too painful last time -> the easier version this time.
        if last_outcome.get(ex.id) == "painful" and ex.easier:
            easier = content.exercises[ex.easier]
            if not easier.avoided_for(presentation):
                chosen, swapped = easier, ex.id
        if any(item.exercise.id == chosen.id for item in items):
            continue
        items.append(
            SessionItem(
                exercise=chosen,
                dosage=dose_for_level(
                    chosen.dosage, profile.level if profile.phase < 3 else 1, chosen.kind
                ),
                notes=tuple(chosen.modification_for(presentation)),
                swapped_from=swapped,
            )
        )
    return Session(
        phase=profile.phase,
        level=profile.level,
        items=tuple(items),
        run=run_advice(content, profile, today, checkins),
    )


def run_advice(
    content: Content, profile: Profile, today: date, checkins: tuple[CheckinRecord, ...]
) -> str:
    if profile.running_blocked:
        return content.message("run_none_until_seen")
    if profile.cross_train_until and today <= profile.cross_train_until:
        return content.message(
            "run_cross_train", until=profile.cross_train_until.strftime("%a %d %b")
        )
    if profile.phase == 3:
        yesterday_run = any(
            (today - c.local_date).days == 1 and c.ran not in (None, "no") for c in checkins
        )
        if yesterday_run:
            return content.message("run_rest_day")
        step = content.ladder[min(profile.level, len(content.ladder)) - 1]
        return content.message("run_ladder", level=step.level, session=step.session)
    phase = content.phases[profile.phase]
    if profile.review is not None:
        return content.message("run_no_increase") + " " + phase.running
    return phase.running


def log_payload(day: date, exercise_id: str, outcome_code: str) -> str:
    return f"x:l:{day.strftime('%Y%m%d')}:{exercise_id}:{outcome_code}"
