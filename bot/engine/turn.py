"""The input and output of one engine step, and the effects the service carries out.

The engine is a pure function of a `Turn`; everything that needs the database (saving a
check-in, drawing a chart from stored rows, exporting, deleting) comes back as an effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.engine.events import Inbound, Outbound
from bot.engine.state import Conversation, Profile


@dataclass(frozen=True)
class CheckinRecord:
    """One day's check-in. It reports the session of the day before (the run or the
    exercises) and this morning's pain, so `local_date` is the morning after the session.
    """

    local_date: date
    pain_now: int | None = None  # P_morning: pain or stiffness soon after getting up, 0-10
    ran: str | None = None  # "yes" | "no" (rows from before 0003: easy | hard | long)
    run_minutes: int | None = None  # how long that run was (RP3)
    pain_during: int | None = None  # P_during for running: worst pain during the run, 0-10
    exercises: str | None = None  # "done" | "none" (rows from before 0003: all | some)
    exercise_pain: int | None = None  # P_during for exercise: worst pain, 0-10 (P1)
    swelling: bool | None = None  # swelling or stiffness after the run (P7)
    run_sharp: bool | None = None  # the run's pain turned sharp or caused a limp (P2)
    isometric_worse: bool | None = None  # pain rose during or after the holds (P11)
    decision: str | None = None
    reason: str | None = None
    phase: int = 1
    level: int = 1

    @property
    def did_run(self) -> bool:
        return self.ran not in (None, "no")

    @property
    def did_exercises(self) -> bool:
        return self.exercises not in (None, "none")


@dataclass(frozen=True)
class ExerciseLog:
    local_date: date
    exercise_id: str
    outcome: str  # done | painful | skipped


@dataclass(frozen=True)
class WarmupRecord:
    id: int
    days: str
    run_time: str
    lead_minutes: int
    timezone: str


@dataclass(frozen=True)
class History:
    """Recent rows the decision rules need (the last ~35 local days)."""

    checkins: tuple[CheckinRecord, ...] = ()
    exercise_logs: tuple[ExerciseLog, ...] = ()


@dataclass(frozen=True)
class Turn:
    inbound: Inbound
    now: datetime  # aware UTC
    profile: Profile
    conversation: Conversation
    history: History = History()
    # Group chats: the chat's timezone and its warm-up schedules.
    team_timezone: str | None = None
    warmups: tuple[WarmupRecord, ...] = ()


# --- effects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveCheckin:
    local_date: date
    fields: dict[str, Any]


@dataclass(frozen=True)
class LogExercise:
    local_date: date
    exercise_id: str
    outcome: str


@dataclass(frozen=True)
class RecordEscalation:
    level: str
    trigger: str
    flow: str
    message: str


@dataclass(frozen=True)
class RecordScreening:
    kind: str
    answers: dict[str, Any]
    level: str


@dataclass(frozen=True)
class RecordPlanChange:
    from_phase: int
    from_level: int
    to_phase: int
    to_level: int
    decision: str
    reason: str


@dataclass(frozen=True)
class ClearEscalations:
    """A clinician cleared the runner and the screen was negative again (G2), or the
    runner reports being seen after a referral: the open escalation rows of these levels
    are marked cleared."""

    levels: tuple[str, ...] = ("EMERGENCY", "URGENT")


@dataclass(frozen=True)
class AcknowledgeEscalations:
    """The runner answered the follow-up about their escalation (W9)."""


@dataclass(frozen=True)
class SendChart:
    chat_id: str
    caption: str


@dataclass(frozen=True)
class SendExport:
    chat_id: str
    caption: str


@dataclass(frozen=True)
class RecordOutcome:
    """One answer of the weekly check (section 6): measure "groc" (item None) or "psfs"
    (item: the activity), scored on its scale."""

    local_date: date
    measure: str
    item: str | None
    score: int


@dataclass(frozen=True)
class SendPhysioSummary:
    """Make the one-page summary for a clinician and send it to the runner's private
    chat (from a group: the note in the group says where it went)."""

    caption: str


@dataclass(frozen=True)
class Snooze:
    """Ask again in `minutes` (from the reminder's snooze buttons)."""

    minutes: int


@dataclass(frozen=True)
class SkipToday:
    """No check-in today: no nudge, next reminder at the usual time tomorrow."""


@dataclass(frozen=True)
class DeleteUser:
    pass


@dataclass(frozen=True)
class SetTeamTimezone:
    timezone: str


@dataclass(frozen=True)
class AddWarmup:
    days: str
    run_time: str
    lead_minutes: int
    timezone: str


@dataclass(frozen=True)
class RemoveWarmup:
    schedule_id: int


Effect = (
    SaveCheckin
    | LogExercise
    | RecordEscalation
    | RecordScreening
    | RecordPlanChange
    | ClearEscalations
    | AcknowledgeEscalations
    | SendChart
    | SendExport
    | RecordOutcome
    | SendPhysioSummary
    | Snooze
    | SkipToday
    | DeleteUser
    | SetTeamTimezone
    | AddWarmup
    | RemoveWarmup
)


@dataclass
class Result:
    profile: Profile
    conversation: Conversation
    replies: list[Outbound] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
