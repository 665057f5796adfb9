"""Clinical rules section 4: entry criteria for running (RR1-RR6) and the rules while
running (RP1-RP8).

RR2-RR5 are questions of the check-in flow (content/data/flows/checkin.yaml, tagged with
their ids); the predicates here read the answers. RP5 (no acute:chronic ratio) is a
prohibition and has no code (see the registry's NOT_APPLICABLE).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.engine.rules.pain_monitoring import p2_met, p3_morning_after
from bot.engine.rules.registry import content_rule, rule
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord

RR_PAIN_CEILING = 2  # RR2-RR5: pain at 2/10 or less
RR_GATE_RETRY = timedelta(days=7)  # D: the gate questions come back weekly until met
RP2_REPEATS = 2  # each ladder level at least twice
RP3_SPIKE = 1.10  # no single run longer than 110% of the longest in the last 30 days
RP3_WINDOW = timedelta(days=30)
RP4_STEADY_WEEK = timedelta(days=7)  # the week a new intensity arrives, volume stays put
RP6_STEADY = timedelta(days=14)  # two weeks at the target easy volume before hills/speed
RP7_STEADY_WEEK = timedelta(days=7)  # cadence comes in a week with no volume increase
RP8_WATCH = ("R5", "R9", "R11")  # limp, groin pain on walking, night pain

for _id, _summary in {
    "RR2": "Before running: a brisk 30-minute walk with no limp, pain 2/10 or less and no "
    "rise the next morning.",
    "RR3": "Before running: standing 30 s on the sore leg, pelvis level, pain 2/10 or less.",
    "RR4": "Before running: 10 single-leg squats or step-downs each side at 2/10 or less.",
    "RR5": "Only after RR1-RR4: 10-20 gentle hops on the spot at 2/10 or less with no rise "
    "the next morning.",
}.items():
    content_rule(_id, "4a", _summary, "flows/checkin.yaml")


@dataclass(frozen=True)
class Gate:
    """The phase 2 -> 3 answers of today's check-in (None: not asked today)."""

    walk: bool | None = None  # RR2
    stand: bool | None = None  # RR3
    single_leg: bool | None = None  # RR4
    hops: bool | None = None  # RR5

    @property
    def strength_checks_passed(self) -> bool:
        return bool(self.walk and self.stand and self.single_leg)


@rule(
    "RR1",
    "4a",
    "Running starts only with a clear screen, no referral waiting, and "
    "a clinician's clearance if an URGENT flag ever fired.",
)
def rr1_clear_to_run(profile: Profile) -> bool:
    if profile.escalation is not None or profile.review is not None:
        return False
    if profile.last_urgent_on is None:
        return True
    return profile.run_cleared_on is not None and profile.run_cleared_on >= profile.last_urgent_on


@rule("RR5", "4a")
def rr5_hops_ready(hops_fine: bool | None, today: CheckinRecord, baseline: float | None) -> bool:
    """The hops stayed at 2/10 or less and this morning (the next one) is not above baseline."""
    return bool(hops_fine) and p3_morning_after(today, baseline) == "met"


@rule(
    "RR6",
    "4a",
    "Phase 2's exit criteria are met (the strength checks, after the weeks the phase needs).",
)
@rule(
    "3e.2",
    "3e",
    "Phase 2 ends after at least 6 weeks with the walking, single-leg stand "
    "and step-down checks passed (RR2-RR4).",
)
def rr6_strength_phase_done(profile: Profile, today: date, min_days: int) -> bool:
    started = profile.phase_started_on
    return (
        profile.gate_passed_on is not None
        and started is not None
        and (today - started).days >= min_days
    )


def gate_due(profile: Profile, today: date, at_top: bool, min_days: int) -> bool:
    """Ask the strength checks (RR2-RR4): top of phase 2, long enough, not asked this week."""
    started = profile.phase_started_on
    if profile.phase != 2 or not at_top or profile.gate_passed_on is not None:
        return False
    if started is None or (today - started).days < min_days or not rr1_clear_to_run(profile):
        return False
    return profile.gate_asked_on is None or today - profile.gate_asked_on >= RR_GATE_RETRY


def hop_check_due(profile: Profile, today: date) -> bool:
    """RR5 comes the check-in after the strength checks passed."""
    return (
        profile.phase == 2
        and profile.gate_passed_on is not None
        and profile.gate_passed_on < today
        and rr1_clear_to_run(profile)
    )


# --- while running ---------------------------------------------------------------------------


@rule(
    "RP1",
    "4c",
    "On the ladder, never two run days in a row: the day after a run is a "
    "rest or cross-training day.",
)
def rp1_rest_today(checkins: Sequence[CheckinRecord], today: date) -> bool:
    """Today's check-in reported a run (yesterday's, or earlier today)."""
    return any(c.local_date == today and c.did_run for c in checkins)


@rule(
    "RP2",
    "4c",
    "A ladder level moves up only after two runs at it with running pain in "
    "bounds (P2) and a next morning not above baseline (P3).",
)
def rp2_ladder_ready(runs_at_level: Sequence[CheckinRecord], baseline: float | None) -> bool:
    """`runs_at_level`: the check-ins reporting runs done at the current level, oldest
    first, today's last. The last two must both be good."""
    recent = list(runs_at_level)[-RP2_REPEATS:]
    return len(recent) >= RP2_REPEATS and all(
        p2_met(c) and not c.swelling and p3_morning_after(c, baseline) == "met" for c in recent
    )


@rule(
    "RP3",
    "4c",
    "No run longer than 110% of the longest in the last 30 days: the coach "
    "asks how long each run was and caps the next one.",
)
def rp3_longest_allowed(checkins: Sequence[CheckinRecord], today: date) -> int | None:
    """Minutes the next run may last; None with no timed run in the last 30 days."""
    longest = longest_recent_run(checkins, today)
    if longest is None:
        return None
    return math.floor(longest * RP3_SPIKE)


def longest_recent_run(checkins: Sequence[CheckinRecord], today: date) -> int | None:
    recent = [
        c.run_minutes
        for c in checkins
        if c.did_run and c.run_minutes and timedelta(0) <= today - c.local_date <= RP3_WINDOW
    ]
    return max(recent) if recent else None


@rule(
    "RP4",
    "4c",
    "Weekly volume rises gently, and never in the same week as more "
    "intensity: the first week of hills or speed keeps run times where they were.",
)
def rp4_hold_volume(profile: Profile, today: date, stage_is_intensity: bool) -> bool:
    started = profile.level_started_on
    return stage_is_intensity and started is not None and today - started < RP4_STEADY_WEEK


@rule(
    "RP6",
    "4c",
    "Hills, then speed, come back one at a time, each after two weeks at the "
    "stage before with settled mornings after every run.",
)
def rp6_next_stimulus_ready(
    checkins: Sequence[CheckinRecord], profile: Profile, today: date, baseline: float | None
) -> bool:
    started = profile.level_started_on
    if started is None or today - started < RP6_STEADY:
        return False
    runs = [c for c in checkins if c.did_run and c.local_date > started]
    return bool(runs) and all(p3_morning_after(c, baseline) == "met" for c in runs)


@rule(
    "RP7",
    "4c",
    "The cadence cue (about 5% quicker steps, at most 10%) comes in a week "
    "with no step up in running, and stays.",
)
def rp7_cadence_cue(profile: Profile, today: date) -> bool:
    if profile.phase < 3:
        return False
    if profile.cadence_from is not None and profile.cadence_from <= today:
        return True
    started = profile.level_started_on
    return started is not None and today - started >= RP7_STEADY_WEEK


@rule(
    "RP8",
    "4c",
    "While running, the daily screen watches for a limp, groin pain on "
    "walking or night pain, and sends any of them to section 1 (R5, R9, R11).",
)
def rp8_watch_items() -> tuple[str, ...]:
    """The screen items the daily mini-screen must reach (checked at start-up)."""
    return RP8_WATCH
