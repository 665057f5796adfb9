"""`checkin`: the end of the daily check-in (content/data/flows/checkin.yaml) and the
prompts the scheduler starts (reminder, nudge, snooze, skip).

The questions are in the spec; here today's answers become the decision of
`bot.engine.rules.daily` and a change of plan position, the baseline is kept (2a), and the
decision is said with its one-line reason and today's session.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from bot.engine.context import Ctx
from bot.engine.events import Button, Topic
from bot.engine.flows import checkin_facts, interpreter, outcomes
from bot.engine.flows.clearance import begin_clearance, begin_review, review_done
from bot.engine.flows.interpreter import checkin_day, outcome
from bot.engine.flows.onboarding import begin_start
from bot.engine.payload import RedoCheckin, SendToday, SnoozeFor, encode
from bot.engine.payload import SkipToday as SkipPayload
from bot.engine.rules import daily
from bot.engine.rules.daily import Decision, PhaseMinimums
from bot.engine.rules.pain_monitoring import p1_too_painful, run_too_painful, updated_baseline
from bot.engine.rules.progression import LADDER_PHASE, TRAINING_PHASE, plan_shape
from bot.engine.rules.return_to_running import Gate, rp7_cadence_cue
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord, RecordPlanChange, SaveCheckin, SkipToday, Snooze
from content.schema import Level

CHECKIN = "checkin"
SNOOZE_MINUTES = (30, 60, 120)
REVIEW_REMINDER_EVERY = 3  # D: a plan waiting for a clinician asks "seen yet?" every 3 days


def begin_checkin(ctx: Ctx, args: str = "", *, lead: str | None = None) -> None:
    """`lead`: said first, when something other than the command started the check-in."""
    profile = ctx.profile
    if profile.plan_paused:
        begin_clearance(ctx)
        return
    if not profile.onboarded:
        ctx.say(ctx.t("setup_first"))
        begin_start(ctx)
        return
    if profile.plan_held:
        begin_review(ctx)
        return
    already = any(c.local_date == ctx.today for c in ctx.history.checkins)
    preface = ctx.t("checkin_again") if already else checkin_intro(ctx)
    if lead:
        preface = f"{lead}\n\n{preface}"
    interpreter.begin(ctx, CHECKIN, preface=preface)


# The answers of the shortest check-in (no run, no pain) and of a day with a run.
QUICKEST = {"pain_now": 0, "run_minutes": "no", "exercise_pain": 0}
WITH_A_RUN = {"pain_now": 2, "run_minutes": 30, "run_pain": 2, "after_run": "fine"}
WITH_A_RUN_AND_EXERCISE = {**WITH_A_RUN, "exercise_pain": 2, "holds": "fine"}


def checkin_intro(ctx: Ctx) -> str:
    """ "Evening check-in — 3 quick taps (5 if you ran)": the part of the runner's day and
    the number of taps today's check-in really takes, computed from the flow."""
    quickest = interpreter.planned_taps(ctx, CHECKIN, QUICKEST)
    most = interpreter.planned_taps(ctx, CHECKIN, WITH_A_RUN_AND_EXERCISE)
    part = ctx.t(f"part_of_day_{part_of_day(ctx.local_now.hour)}")
    if most == quickest:
        return ctx.t("checkin_intro_exact", part=part, taps=quickest)
    return ctx.t("checkin_intro", part=part, taps=quickest, most=most)


# Local hours where the parts of the day begin, for the wording only.
MORNING_FROM = 4
AFTERNOON_FROM = 12
EVENING_FROM = 18


def part_of_day(hour: int) -> str:
    if MORNING_FROM <= hour < AFTERNOON_FROM:
        return "morning"
    if AFTERNOON_FROM <= hour < EVENING_FROM:
        return "afternoon"
    return "evening"


def _answer(facts: dict[str, Any], fact: str, yes: str = "yes") -> bool | None:
    return None if fact not in facts else facts[fact] == yes


# What a check-in's decision changes in the profile: kept before it decides, and put back
# when the same day's check-in is changed, so the second decision starts where the first
# did (a changed answer never moves the plan twice). Referrals, escalations and the holds'
# easing are not put back: what a check-in raised for safety stays raised.
DECISION_FIELDS = frozenset(
    {
        "phase",
        "level",
        "phase_started_on",
        "level_started_on",
        "gate_asked_on",
        "gate_passed_on",
        "cross_train_until",
        "cross_train_for",
        "cadence_from",
        "last_physio_nudge_on",
        "baseline",
        "baseline_on",
    }
)


def _start_from_before_today(ctx: Ctx, day: date) -> None:
    """Put back the plan as it stood before this day's first decision (a changed
    check-in), then remember it for a further change."""
    profile = ctx.profile
    kept = profile.before_checkin
    if kept is not None and kept.get("date") == day.isoformat():
        fields = {k: v for k, v in kept.items() if k in DECISION_FIELDS}
        restored = Profile.model_validate({**profile.model_dump(mode="json"), **fields})
        for name in DECISION_FIELDS:
            setattr(profile, name, getattr(restored, name))
    snapshot = profile.model_dump(mode="json", include=set(DECISION_FIELDS))
    profile.before_checkin = {"date": day.isoformat(), **snapshot}


@outcome(CHECKIN, "decided")
def _decided(ctx: Ctx, facts: dict[str, Any]) -> None:
    profile = ctx.profile
    content = ctx.content
    day = checkin_day(ctx)
    was = (profile.phase, profile.level)  # where the plan is now (after a first decision)
    _start_from_before_today(ctx, day)
    referrals = interpreter.pending_referrals(ctx)
    record = checkin_facts.record(day, facts, profile.phase, profile.level)
    earlier = sorted(
        (c for c in ctx.history.checkins if c.local_date < day), key=lambda c: c.local_date
    )
    extra: list[str] = []

    if facts.get("review_check") == "yes" and not referrals:
        review_done(ctx)
    # P11: holds that raised the pain are lighter until a session where they don't.
    if record.isometric_worse:
        profile.isometric_eased = True
    elif facts.get("holds") == "fine":
        profile.isometric_eased = False
    gate = Gate(
        walk=_answer(facts, "gate_rr2"),
        stand=_answer(facts, "gate_rr3"),
        single_leg=_answer(facts, "gate_rr4"),
        hops=_answer(facts, "gate_rr5"),
    )
    if "gate_rr3" in facts:
        profile.gate_asked_on = day
        if gate.strength_checks_passed and profile.gate_passed_on is None:
            profile.gate_passed_on = day
            extra.append(ctx.t("gate_passed"))

    shape = plan_shape(content, profile.presentation)
    minimums = PhaseMinimums({n: p.min_days for n, p in content.phases.items()})
    stages = content.phases[TRAINING_PHASE].stages
    stage = stages[min(profile.level, len(stages)) - 1] if stages else None
    intensity = profile.phase == TRAINING_PHASE and stage is not None and stage.intensity
    result = daily.decide(
        record, earlier, profile, shape, minimums, gate, stage_is_intensity=intensity
    )
    moved = (result.phase, result.level) != (profile.phase, profile.level)
    if (result.phase, result.level) != was:
        ctx.effect(
            RecordPlanChange(
                was[0],
                was[1],
                result.phase,
                result.level,
                result.decision.value,
                result.reason,
            )
        )
    if moved:
        if result.phase != profile.phase:
            profile.phase_started_on = day
            if result.phase == LADDER_PHASE:
                profile.gate_passed_on = profile.gate_asked_on = None
        profile.phase, profile.level = result.phase, result.level
        profile.level_started_on = day
    if result.cross_train_until:
        profile.cross_train_until = result.cross_train_until
        profile.cross_train_for = _aggravating(record)
        extra.append(ctx.t("lowest_level"))
    if profile.cadence_from is None and rp7_cadence_cue(profile, day):
        profile.cadence_from = day
    if result.refer:
        profile.last_physio_nudge_on = day
        interpreter.refer(
            ctx,
            CHECKIN,
            rule="P8" if result.reason in ("two_back_offs", "no_progress") else "R21",
            level=Level.SOON,
            reason=ctx.t(f"review_{result.reason}"),
        )
        referrals = interpreter.pending_referrals(ctx)
    new_baseline = updated_baseline(profile, [*earlier, record], day)
    if new_baseline is not None:
        profile.baseline, profile.baseline_on = new_baseline
    # Every answer column, so a changed check-in leaves nothing of the first one behind.
    ctx.effect(
        SaveCheckin(
            local_date=day,
            fields={
                **checkin_facts.all_columns(facts),
                "decision": result.decision.value,
                "reason": result.reason,
            },
        )
    )
    ctx.finish()

    headline = ctx.t(_headline(result))
    lines = [f"{headline}\n{ctx.t(f'reason_{result.reason}')}"]
    if moved and (result.phase, result.level) < (record.phase, record.level):
        # Said only when a step really was dropped (at the first level nothing is).
        lines.append(ctx.t("stepped_back", phase=result.phase, level=result.level))
    lines += extra
    if result.decision == Decision.PROGRESS and result.phase != record.phase:
        phase = content.phases[result.phase]
        lines.append(ctx.t("phase_changed", phase=phase.number, name=phase.name, goal=phase.goal))
    # The decision, then the card one tap away (not re-sent in full), and a way to
    # change today's answers.
    buttons = [[Button(ctx.t("opt_change_checkin"), encode(RedoCheckin()))]]
    if not (profile.plan_paused or profile.plan_held):
        buttons.insert(0, [Button(ctx.t("opt_todays_exercises"), encode(SendToday()))])
    referral = interpreter.referral_text(ctx, referrals)
    ctx.say("\n\n".join(lines), topic=Topic.DECISION, buttons=[] if referral else buttons)
    if referral:
        ctx.say(referral, topic=Topic.REFERRAL, buttons=buttons)
    outcomes.offer_weekly(ctx, escalated_today=bool(referrals))  # section 6, weekly


def _aggravating(record: CheckinRecord) -> str:
    """P7 at the lowest level swaps the activity that was too much for cross-training."""
    run = run_too_painful(record) or bool(record.did_run and record.swelling)
    exercise = p1_too_painful(record)
    if run and not exercise:
        return "run"
    if exercise and not run:
        return "exercises"
    return "all"


def _headline(result: daily.PlanDecision) -> str:
    if result.decision == Decision.SEE_CLINICIAN and not result.backed_off:
        return "decision_see_clinician_hold"
    return f"decision_{result.decision.value}"


# --- reminders the bot starts itself ------------------------------------------------------


def reminder(ctx: Ctx, kind: str) -> None:
    """The scheduled prompt: the first check-in question with snooze and skip buttons.

    After an escalation the prompt asks whether they were seen instead (W8, G2), from the
    day after; a plan waiting for a clinician (R18/R19) asks every few days whether they
    have been seen. Sends nothing when there is nothing to ask.
    """
    profile = ctx.profile
    welcome: str | None = None
    if profile.paused and profile.paused_until is not None:
        if profile.reminders_paused(ctx.today):
            return  # the scheduler fires no earlier than the day, but a nudge might
        # The dated pause ends today (the runner's local day): reminders are on again.
        profile.paused, profile.paused_until = False, None
        welcome = ctx.t("pause_over")
    if profile.plan_paused:
        if kind == "checkin" and profile.escalated_on != ctx.today:
            begin_clearance(ctx)
        return
    if not profile.onboarded or profile.paused:
        return
    if profile.plan_held:
        since = profile.review_since or ctx.today
        days = (ctx.today - since).days
        if kind == "checkin" and days > 0 and days % REVIEW_REMINDER_EVERY == 0:
            begin_review(ctx)
        return
    if any(c.local_date == ctx.today and c.decision for c in ctx.history.checkins):
        return
    if kind == "nudge":
        started_today = ctx.conv.data.get("date") == ctx.today.isoformat()
        if ctx.conv.flow == CHECKIN and started_today and ctx.conv.waiting:
            ctx.repeat_question(preface=ctx.t("nudge_intro"))
            _add_snooze_row(ctx)
        return
    intro = ctx.t("reminder_intro")
    interpreter.begin(ctx, CHECKIN, preface=f"{welcome}\n\n{intro}" if welcome else intro)
    if ctx.conv.flow == CHECKIN:
        _add_snooze_row(ctx)


def _add_snooze_row(ctx: Ctx) -> None:
    row = tuple(Button(ctx.t(f"opt_snooze_{m}"), encode(SnoozeFor(m))) for m in SNOOZE_MINUTES)
    skip = (Button(ctx.t("opt_skip_today"), encode(SkipPayload())),)
    last = ctx.replies[-1]
    ctx.replies[-1] = replace(last, buttons=(*last.buttons, row, skip))


def snooze(ctx: Ctx, minutes: int) -> None:
    ctx.effect(Snooze(minutes))
    at = ctx.local_now + timedelta(minutes=minutes)
    ctx.say(ctx.t("snoozed", time=at.strftime("%H:%M")))


def skip_today(ctx: Ctx) -> None:
    ctx.effect(SkipToday())
    if ctx.conv.flow == CHECKIN:
        ctx.finish()
    ctx.say(ctx.t("skipped_today"))
