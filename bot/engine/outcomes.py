"""Outcome measures (clinical rules section 6): when to ask them and what a change means.

Section 6's table has no row ids, so the project numbers the rows it uses (see
docs/clinical-basis.md): O1 NPRS (the daily pain scores), O2 PSFS (activities the runner
names and scores 0-10), O3 GROC (a 7-point global rating of change), O4 the frequency
rule (at most 5 items a week). The other rows (COS-GT items, HAGOS, iHOT-12, VISA-G) are
not asked: multi-item questionnaires or licences not verified.

Everything here is pure. The thresholds only choose words for what the coach says; no
plan decision depends on them, and none of them is a diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import mean

from bot.engine.rules.registry import rule
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord

WEEK_DAYS = 7  # O2/O3: weekly
MAX_WEEKLY_ITEMS = 5  # O4: at most 5 outcome items a week
MAX_ACTIVITIES = 3  # O2: the runner names up to 3 activities (GROC + 3 = 4 <= 5)
NPRS_MUCH_BETTER = 2  # O1: 2 points (about 30%) = "much better"
NPRS_MINIMAL = 1  # O1: 1 point (about 15%) = the smallest change that matters
PSFS_MDC_MEAN = 2  # O2: minimal detectable change of the mean score
PSFS_MDC_ITEM = 3  # O2: ... and of a single activity
GROC_MEANINGFUL = 2  # O3: a 2-point rating is the change the lateral-hip trial counted
PSFS_MIN, PSFS_MAX = 0, 10

assert 1 + MAX_ACTIVITIES <= MAX_WEEKLY_ITEMS  # O4 holds for the weekly check as built


@rule(
    "O4",
    "6",
    "The weekly check (one global rating and up to three activity scores) comes at most "
    "once a week, from a week after the plan began, never on a day with an escalation.",
)
def weekly_check_due(profile: Profile, today: date, escalated_today: bool) -> bool:
    """Offer the weekly check today? A week after the plan began (or after the last
    check, asked or skipped), never while the plan is paused or waiting for a clinician,
    and never on a day with an escalation or referral."""
    if not profile.onboarded or profile.plan_paused or profile.plan_held or escalated_today:
        return False
    if profile.escalated_on == today or profile.review_since == today:
        return False
    since = profile.outcomes_on or profile.plan_started_on
    if since is None:
        return False
    return (today - since).days >= WEEK_DAYS


@dataclass(frozen=True)
class Change:
    """One measure's change from its first value, and whether it counts (beats the
    measure's threshold)."""

    first: float
    now: float
    meaningful: bool

    @property
    def delta(self) -> float:
        return self.now - self.first


@rule("O3", "6", "A global rating of 2 or more steps better counts as a real improvement.")
def groc_meaningful(score: int) -> bool:
    return score >= GROC_MEANINGFUL


def groc_worse(score: int) -> bool:
    """O3 mirrored: 2 or more steps worse."""
    return score <= -GROC_MEANINGFUL


@rule(
    "O2",
    "6",
    "Activity scores: a change of 2 points in the average, or 3 in one activity, is more "
    "than measurement noise.",
)
def psfs_change(first: Mapping[str, int], now: Mapping[str, int]) -> Change | None:
    """The mean change over the activities scored both times (None: none in common)."""
    common = [a for a in now if a in first]
    if not common:
        return None
    before = mean(first[a] for a in common)
    after = mean(now[a] for a in common)
    return Change(before, after, abs(after - before) >= PSFS_MDC_MEAN)


def psfs_item_changed(first: int, now: int) -> bool:
    """O2: one activity's own threshold."""
    return abs(now - first) >= PSFS_MDC_ITEM


@rule(
    "O1",
    "6",
    "Morning pain: 2 points lower than at the start counts as much better, 1 point as the "
    "smallest change that matters.",
)
def nprs_change(
    checkins: Sequence[CheckinRecord], baseline: float | None, today: date
) -> Change | None:
    """This week's mean morning pain against the baseline (2a)."""
    week = [
        c.pain_now
        for c in checkins
        if c.pain_now is not None and today - timedelta(days=WEEK_DAYS) < c.local_date <= today
    ]
    if baseline is None or not week:
        return None
    now = mean(week)
    return Change(baseline, now, abs(now - baseline) >= NPRS_MUCH_BETTER)


def nprs_words(change: Change) -> tuple[str, float] | None:
    """The message key and the size of the change to say, or None when it is too small."""
    drop = change.first - change.now
    if drop >= NPRS_MUCH_BETTER:
        return "outcomes_pain_better", drop
    if drop >= NPRS_MINIMAL:
        return "outcomes_pain_some", drop
    if -drop >= NPRS_MUCH_BETTER:
        return "outcomes_pain_worse", -drop
    return None


def psfs_words(change: Change) -> str:
    if not change.meaningful:
        return "outcomes_psfs_steady"
    return "outcomes_psfs_better" if change.delta > 0 else "outcomes_psfs_worse"


def groc_words(score: int) -> str:
    if groc_meaningful(score):
        return "outcomes_groc_better"
    if groc_worse(score):
        return "outcomes_groc_worse"
    return "outcomes_groc_small"


def points(value: float) -> str:
    """A change in points as said to the runner: whole numbers without ".0"."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"
