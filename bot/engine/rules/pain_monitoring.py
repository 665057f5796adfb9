"""Clinical rules section 2: the pain-monitoring model (baseline 2a, P1-P11).

Each check-in reports yesterday's session (the run and the exercises) and this morning's
pain. These predicates read one check-in against the runner's baseline and the recent
history; `bot.engine.rules.daily.decide` combines them into today's decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import mean, median

from bot.engine.rules.registry import rule
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord

# Thresholds on the 0-10 pain scale, named by the rule that sets them.
P1_SAFE = 3  # exercise pain up to 3/10 is safe ...
P1_TOO_MUCH = 5  # ... up to 5/10 acceptable; above 5 is too much (P1, P7)
P2_RUN_CEILING = 3  # running pain stays at or under 3/10
P3_HOLD_ABOVE = 1  # a morning one point above baseline holds (P3, P6)
P3_REGRESS_ABOVE = 2  # two or more above baseline regresses (P3, P7)
P4_WEEKLY_RISE = 1.0  # the 7-day mean of morning pain rose by a point or more
P4_WEEK = 7
P4_MIN_MORNINGS = 3  # D: a week's mean needs at least three mornings to compare
P5_SESSIONS = 2  # good sessions at the current level before a step up
P7_CROSS_TRAIN_DAYS = 3  # already at the lowest level: 2-3 days of cross-training
P8_WINDOW = timedelta(days=14)
P8_REGRESSIONS = 2
P9_SEVERE = 7  # pain of 7/10 or more goes to the red-flag table (R16)
BASELINE_MORNINGS = 3  # 2a: median of the first three calm mornings ...
BASELINE_EVERY = timedelta(days=14)  # ... recomputed every two weeks
P10_ITEMS = ("R9", "R10", "R11")  # bone-stress signs that take a runner out of P1-P8


# --- baseline (2a) --------------------------------------------------------------------------


def aggravated(c: CheckinRecord) -> bool:
    """A day whose session was too much by the measures that need no baseline: pain above
    5/10 during it, swelling or stiffness after the run, or pain of 7/10 or more."""
    return (
        p1_too_painful(c)
        or run_too_painful(c)
        or bool(c.swelling)
        or p9_severe(c.pain_now)
        or c.decision in ("escalated", "back_off", "see_clinician")
    )


def updated_baseline(
    profile: Profile, checkins: Sequence[CheckinRecord], today: date
) -> tuple[float, date] | None:
    """The new (baseline, computed on) when one is due, or None to keep the current one.

    First: the median morning pain of the first three calm check-ins since the plan
    began. Then every two weeks: the same over the fortnight just ended. Until three calm
    mornings exist the old baseline stays (or there is none yet).
    """
    if profile.baseline is not None and profile.baseline_on is not None:
        if today - profile.baseline_on < BASELINE_EVERY:
            return None
        since: date | None = today - BASELINE_EVERY + timedelta(days=1)
    else:
        since = profile.plan_started_on
    calm = [
        c.pain_now
        for c in sorted(checkins, key=lambda c: c.local_date)
        if c.pain_now is not None
        and c.local_date <= today
        and (since is None or c.local_date >= since)
        and not aggravated(c)
    ]
    if len(calm) < BASELINE_MORNINGS:
        return None
    return float(median(calm[:BASELINE_MORNINGS])), today


# --- the session ----------------------------------------------------------------------------


@rule(
    "P1",
    "2",
    "Exercise pain up to 3/10 is safe, 4-5 acceptable; above 5 that exercise "
    "stops for the day and comes back easier next session.",
)
def p1_too_painful(c: CheckinRecord) -> bool:
    return c.exercise_pain is not None and c.exercise_pain > P1_TOO_MUCH


@rule("P1", "2")
def p1_met(c: CheckinRecord) -> bool | None:
    """None when there were no exercises to judge."""
    if not c.did_exercises or c.exercise_pain is None:
        return None
    return c.exercise_pain <= P1_TOO_MUCH


def run_too_painful(c: CheckinRecord) -> bool:
    return c.did_run and c.pain_during is not None and c.pain_during > P1_TOO_MUCH


@rule(
    "P2",
    "2",
    "Running pain stays at 3/10 or less and does not turn sharp or cause a "
    "limp; a limp goes to R5.",
)
def p2_met(c: CheckinRecord) -> bool | None:
    """None when there was no run to judge."""
    if not c.did_run:
        return None
    return c.pain_during is not None and c.pain_during <= P2_RUN_CEILING and not c.run_sharp


@rule(
    "P3",
    "2",
    "The morning after: at or below baseline may progress, one above holds, "
    "two above (or still above 48 hours on) backs off.",
)
def p3_morning_after(c: CheckinRecord, baseline: float | None) -> str | None:
    """ "met", "hold" or "regress"; None until there is a baseline to compare with."""
    if baseline is None or c.pain_now is None:
        return None
    above = c.pain_now - baseline
    if above >= P3_REGRESS_ABOVE:
        return "regress"
    if above >= P3_HOLD_ABOVE:
        return "hold"
    return "met"


@rule("P3", "2")
def p3_still_above_at_48h(
    today: CheckinRecord, yesterday: CheckinRecord | None, baseline: float | None
) -> bool:
    """This morning and yesterday's both above baseline, and yesterday did not already
    back off for it (one aggravation is counted once)."""
    if baseline is None or yesterday is None or today.pain_now is None:
        return False
    if (today.local_date - yesterday.local_date).days != 1 or yesterday.pain_now is None:
        return False
    if yesterday.decision in ("back_off", "see_clinician"):
        return False
    return today.pain_now > baseline and yesterday.pain_now > baseline


@rule(
    "P4",
    "2",
    "The 7-day mean of morning pain up a point or more on the week before: "
    "back off one level and say so.",
)
def p4_weekly_rise(checkins: Iterable[CheckinRecord], today: date) -> bool:
    rows = list(checkins)
    this_week = [
        c.pain_now
        for c in rows
        if c.pain_now is not None and 0 <= (today - c.local_date).days < P4_WEEK
    ]
    last_week = [
        c.pain_now
        for c in rows
        if c.pain_now is not None and P4_WEEK <= (today - c.local_date).days < 2 * P4_WEEK
    ]
    if len(this_week) < P4_MIN_MORNINGS or len(last_week) < P4_MIN_MORNINGS:
        return False
    if any(c.reason == "weekly_rise" and 0 < (today - c.local_date).days < P4_WEEK for c in rows):
        return False  # the same rising week backs off once
    return mean(this_week) - mean(last_week) >= P4_WEEKLY_RISE


@rule("P11", "2", "Holds that raised the pain: the holds stop that day and are lighter next time.")
def p11_holds_raised_pain(c: CheckinRecord) -> bool:
    return bool(c.isometric_worse)


@dataclass(frozen=True)
class Reading:
    """What one check-in says about the session before it (section 2b)."""

    session: bool  # a run or exercises to judge
    regress: tuple[str, ...]  # P7 triggers, as reason keys
    hold: tuple[str, ...]  # P6 (and P2) triggers, as reason keys
    p3: str | None

    @property
    def good(self) -> bool:
        """P1 and P2 met, P3 met the morning after, nothing that holds or backs off."""
        return self.session and not self.regress and not self.hold and self.p3 == "met"


@rule(
    "P6",
    "2",
    "Hold the level on run pain of 4-5, a morning one point above baseline, "
    "or fewer than two good sessions at this level.",
)
def p6_hold_reasons(c: CheckinRecord, p3: str | None) -> tuple[str, ...]:
    reasons = []
    if c.did_run and c.pain_during is not None and P2_RUN_CEILING < c.pain_during <= P1_TOO_MUCH:
        reasons.append("run_pain_moderate")
    if c.did_run and c.run_sharp:
        reasons.append("run_sharp")  # P2: the run should have stopped
    if p3 == "hold":
        reasons.append("morning_bit_worse")
    if c.isometric_worse:
        reasons.append("holds_raised_pain")  # P11: no step up on holds that hurt
    return tuple(reasons)


@rule(
    "P7",
    "2",
    "A run or exercise pain above 5/10, a morning two points above baseline, "
    "above baseline two mornings running, a weekly rise, or swelling or stiffness after a "
    "run: back off one level (cross-training for 2-3 days at the lowest).",
)
def p7_regress_reasons(
    c: CheckinRecord,
    p3: str | None,
    yesterday: CheckinRecord | None,
    baseline: float | None,
    history: Sequence[CheckinRecord],
) -> tuple[str, ...]:
    reasons = []
    if run_too_painful(c):
        reasons.append("run_pain_high")
    if p1_too_painful(c):
        reasons.append("exercise_pain_high")
    if c.did_run and c.swelling:
        reasons.append("swelling_after_run")
    if p3 == "regress":
        reasons.append("morning_much_worse")
    elif p3_still_above_at_48h(c, yesterday, baseline):
        reasons.append("morning_worse_48h")
    if p4_weekly_rise([*history, c], c.local_date):
        reasons.append("weekly_rise")
    return tuple(reasons)


def read(c: CheckinRecord, history: Sequence[CheckinRecord], baseline: float | None) -> Reading:
    """`history` holds the earlier check-ins, oldest first."""
    yesterday = history[-1] if history else None
    p3 = p3_morning_after(c, baseline)
    return Reading(
        session=c.did_run or c.did_exercises,
        regress=p7_regress_reasons(c, p3, yesterday, baseline, history),
        hold=p6_hold_reasons(c, p3),
        p3=p3,
    )


# --- escalation ------------------------------------------------------------------------------


@rule(
    "P8",
    "2",
    "Two back-offs within 14 days, or 14 days without progress: a sports "
    "physio (R21), each said in its own words.",
)
def p8_two_regressions(history: Iterable[CheckinRecord], today: date) -> bool:
    """Today's back-off is the second within 14 days."""
    earlier = sum(
        1
        for c in history
        if c.decision in ("back_off", "see_clinician")
        and c.reason not in ("no_progress", "six_weeks")
        and timedelta(0) < today - c.local_date < P8_WINDOW
    )
    return earlier + 1 >= P8_REGRESSIONS


@rule("P8", "2")
def p8_no_progress(
    history: Iterable[CheckinRecord], profile: Profile, today: date, p5_met_reasons: set[str]
) -> bool:
    """No step forward (or P5 met at a phase's top) for 14 days since the plan began, the
    last step, or the last time a physio was recommended for this."""
    anchors = [profile.plan_started_on, profile.last_physio_nudge_on]
    anchors += [
        c.local_date for c in history if c.decision == "progress" or c.reason in p5_met_reasons
    ]
    known = [a for a in anchors if a is not None]
    if not known:
        return False
    return today - max(known) >= P8_WINDOW


@rule(
    "P9",
    "2",
    "Any morning, run or exercise pain of 7/10 or more goes straight to the "
    "red-flag screen as R16 (same day).",
)
def p9_severe(pain: int | None) -> bool:
    return pain is not None and pain >= P9_SEVERE


@rule(
    "P10",
    "2",
    "Groin pain on walking or standing, rest or night pain, or hop pain "
    "(R9-R11): no load decision at all, escalate.",
)
def p10_out_of_scope(screen_answers: dict[str, str]) -> bool:
    return any(screen_answers.get(item) in ("yes", "unsure") for item in P10_ITEMS)
