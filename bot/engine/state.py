"""What the engine remembers about a runner and about the conversation in progress.

Both are stored as JSON by the storage layer; the engine reads and returns them whole.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from content.schema import Level


class Profile(BaseModel):
    """A runner's coaching profile: consent, triage result, plan position and preferences."""

    model_config = ConfigDict(extra="ignore")

    consented_at: datetime | None = None
    adult: bool | None = None
    onboarded: bool = False
    presentation: str | None = None  # front | outside | mixed | out_of_scope
    pain_location: str | None = None  # the triage location chosen (triage.yaml), for wording
    running: str | None = None  # none | easy | normal | building
    phase: int = 1
    level: int = 1
    phase_started_on: date | None = None
    level_started_on: date | None = None
    timezone: str | None = None
    country: str | None = None
    reminder_time: str | None = None  # "HH:MM" local, None = no reminders
    nudges: bool = True
    paused: bool = False  # the runner paused reminders themselves
    # ... until this local date (None: until they resume). On that day reminders start
    # again by themselves: the scheduler's next prompt is that day's reminder time.
    paused_until: date | None = None
    # Set by an EMERGENCY or URGENT answer: the plan stays paused until a clinician clears
    # the runner and the red-flag screen is negative again (clinical rules G2).
    escalation: Level | None = None
    escalated_on: date | None = None
    # SOON / SOON_72H: a review is recommended; running does not progress until seen.
    review: Level | None = None
    review_reason: str | None = None
    review_since: date | None = None
    # The day the plan began (setup finished, or a clinician approved it after R18/R19).
    plan_started_on: date | None = None
    # R18/R19: the hip plan waits for a clinician's approval; holds the rule id.
    plan_hold: str | None = None
    # Baseline (clinical rules 2a): median morning pain of the first calm check-ins,
    # recomputed every two weeks; `baseline_on` is the day it was computed.
    baseline: float | None = None
    baseline_on: date | None = None
    last_full_screen_on: date | None = None
    cross_train_until: date | None = None
    cross_train_for: str | None = None  # P7 at the lowest level: "run" | "exercises" | "all"
    # P8/R21: the day the coach last recommended a physio because the plan stalled.
    last_physio_nudge_on: date | None = None
    # G2/RR1: when an URGENT or EMERGENCY flag last fired, and when a clinician last said
    # the runner may exercise and run again.
    last_urgent_on: date | None = None
    run_cleared_on: date | None = None
    # P11: the holds raised the pain; the next holds are lighter until they settle.
    isometric_eased: bool = False
    isometric_stopped_on: date | None = None
    # Phase 2 -> 3 gate (RR2-RR5): when its questions were last asked, and the day the
    # walking, single-leg stand and step-down checks passed (the hop check comes next).
    gate_asked_on: date | None = None
    gate_passed_on: date | None = None
    # RP7: the day the cadence cue was introduced.
    cadence_from: date | None = None
    # The plan position and dates as they were before today's check-in decided, so a
    # changed check-in is decided again from the same start ({"date": ..., field: value}).
    before_checkin: dict[str, Any] | None = None
    # Section 6 outcome measures (bot/engine/outcomes.py): the day the weekly check was
    # last offered and answered or skipped; the activities the runner scores (up to 3, in
    # their words or a button's) and each one's first score.
    outcomes_on: date | None = None
    psfs_activities: list[str] = Field(default_factory=list)
    psfs_first: dict[str, int] = Field(default_factory=dict)
    # The Sunday summary (opt-out in settings).
    weekly_summary: bool = True
    # What setup asked about how it started and what provokes it: {question id: answer}.
    setup_answers: dict[str, str] = Field(default_factory=dict)

    def reminders_paused(self, today: date) -> bool:
        """Paused by the runner, and (for a dated pause) not yet at the day it ends."""
        if not self.paused:
            return False
        return self.paused_until is None or today < self.paused_until

    @property
    def plan_paused(self) -> bool:
        return self.escalation is not None

    @property
    def plan_held(self) -> bool:
        """R18/R19: setup is done but the hip plan waits for a clinician's approval."""
        return self.plan_hold is not None

    @property
    def running_blocked(self) -> bool:
        """No running at all until seen: escalations and SOON-72H reviews."""
        return self.escalation is not None or self.review == Level.SOON_72H


class Conversation(BaseModel):
    """The question waiting for an answer, if any, and what the flow has gathered so far."""

    model_config = ConfigDict(extra="ignore")

    flow: str | None = None
    qid: str | None = None
    turn: int = 0  # bumped with every question, so buttons of older questions are stale
    text: str = ""  # the question as sent, to ask it again after unexpected input
    # The whole message the question went out in (what it said first, like the privacy
    # statement or "I'll use 112 as the emergency number", then the question): answering
    # edits that message to this text plus the answer, so nothing informative is lost.
    shown: str = ""
    options: list[tuple[str, str]] = Field(default_factory=list)  # (value, label)
    columns: int = 2
    # Kind of typed text accepted besides the labels: "clock" | "timezone" | "country" |
    # "pain" | "minutes" | "words" (the options' own words, from the flow spec).
    free: str | None = None
    topic: str = "info"  # the Topic of the waiting question, so a re-ask keeps it
    back: bool = False  # the waiting question offers a Back button (see interpreter.back)
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def waiting(self) -> bool:
        return self.flow is not None and self.qid is not None

    def label_for(self, value: str) -> str | None:
        for v, label in self.options:
            if v == value:
                return label
        return None
