"""`checkin`: the daily one-tap questions, the safety mini-screen and today's decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from bot.engine import rules, screening
from bot.engine.context import Ctx
from bot.engine.events import Button
from bot.engine.flows.common import (
    SCREEN_PREFIX,
    ask_pain,
    ask_screen,
    escalate,
    screen_step,
    send_today,
)
from bot.engine.flows.onboarding import begin_clearance, begin_start
from bot.engine.rules import Decision
from bot.engine.turn import CheckinRecord, RecordPlanChange, SaveCheckin, SkipToday, Snooze
from content.schema import Level

CHECKIN = "checkin"
FULL_SCREEN_EVERY = timedelta(days=7)  # G4


def begin_checkin(ctx: Ctx, args: str = "") -> None:
    if ctx.profile.plan_paused:
        begin_clearance(ctx)
        return
    if not ctx.profile.onboarded:
        ctx.say(ctx.t("setup_first"))
        begin_start(ctx)
        return
    ctx.conv.data = {"date": ctx.today.isoformat()}
    already = any(c.local_date == ctx.today for c in ctx.history.checkins)
    preface = ctx.t("checkin_again") if already else ctx.t("checkin_intro")
    ask_pain(ctx, CHECKIN, "pain", ctx.t("pain_now_question"), preface=preface)


def _save(ctx: Ctx, **fields: object) -> None:
    ctx.effect(SaveCheckin(local_date=_day(ctx), fields=dict(fields)))


def _day(ctx: Ctx) -> date:
    # The check-in belongs to the day it started, even if it ends after midnight.
    return date.fromisoformat(ctx.conv.data.get("date", ctx.today.isoformat()))


def answer_checkin(ctx: Ctx, qid: str, value: str) -> None:
    data = ctx.conv.data
    if qid == "pain":
        data["pain_now"] = int(value)
        _save(ctx, pain_now=int(value), phase=ctx.profile.phase, level=ctx.profile.level)
        if int(value) >= 7:
            _start_full_screen(ctx, "pain_high_check")
            return
        _ask_ran(ctx)
        return
    if qid == "ran":
        data["ran"] = value
        _save(ctx, ran=value, **({"pain_during": None} if value == "no" else {}))
        if value == "no":
            _ask_morning(ctx)
        else:
            ask_pain(ctx, CHECKIN, "during", ctx.t("run_pain_question"))
        return
    if qid == "during":
        data["pain_during"] = int(value)
        _save(ctx, pain_during=int(value))
        if int(value) >= 7 and not data.get("screened"):
            _start_full_screen(ctx, "pain_high_check")
            return
        _ask_morning(ctx)
        return
    if qid == "morning":
        data["morning"] = value
        _save(ctx, morning=value)
        options = [
            ("all", ctx.t("opt_ex_all")),
            ("some", ctx.t("opt_ex_some")),
            ("none", ctx.t("opt_ex_none")),
        ]
        ctx.ask(CHECKIN, "exercises", ctx.t("exercises_question"), options, columns=3)
        return
    if qid == "exercises":
        data["exercises"] = value
        _save(ctx, exercises=value)
        if data.get("screened"):
            _after_questions(ctx)
            return
        last = ctx.profile.last_full_screen_on
        if last is None or ctx.today - last >= FULL_SCREEN_EVERY:
            screening.start_full(data, kind="full")
            ask_screen(ctx, CHECKIN, preface=ctx.t("weekly_screen_intro"))
        else:
            screening.start_mini(data)
            ask_screen(ctx, CHECKIN)
        return
    if qid.startswith(SCREEN_PREFIX):
        screen_step(ctx, CHECKIN, qid, value, lambda result: _after_screen(ctx, result))
        return
    if qid == "gate":
        data["gate"] = value
        _decide(ctx)
        return
    raise ValueError(f"check-in has no question {qid!r}")


def _start_full_screen(ctx: Ctx, preface_key: str) -> None:
    data = ctx.conv.data
    data["screened"] = True
    screening.start_full(data, kind="full")
    ask_screen(ctx, CHECKIN, preface=ctx.t(preface_key))


def _ask_ran(ctx: Ctx) -> None:
    options = [
        ("no", ctx.t("opt_ran_no")),
        ("easy", ctx.t("opt_ran_easy")),
        ("hard", ctx.t("opt_ran_hard")),
        ("long", ctx.t("opt_ran_long")),
    ]
    ctx.ask(CHECKIN, "ran", ctx.t("ran_question"), options, columns=2)


def _ask_morning(ctx: Ctx) -> None:
    options = [
        ("better", ctx.t("opt_morning_better")),
        ("same", ctx.t("opt_morning_same")),
        ("bit_worse", ctx.t("opt_morning_bit_worse")),
        ("much_worse", ctx.t("opt_morning_much_worse")),
    ]
    ctx.ask(CHECKIN, "morning", ctx.t("morning_question"), options, columns=2)


def _after_screen(ctx: Ctx, result: screening.ScreenOutcome) -> None:
    data = ctx.conv.data
    data["screen_level"] = result.level.value
    if result.level.escalates:
        _save(
            ctx,
            decision="escalated",
            reason=",".join(result.triggers),
            answers={"screen": result.answers},
        )
        escalate(ctx, result, CHECKIN)
        return
    if not result.clear:
        escalate(ctx, result, CHECKIN)
    if "exercises" not in data:
        # The full screen came early (high pain); carry on with the daily questions.
        _ask_ran(ctx)
        return
    _after_questions(ctx)


def _after_questions(ctx: Ctx) -> None:
    profile = ctx.profile
    phase_started = profile.phase_started_on
    at_top = profile.phase == 2 and profile.level >= rules.LEVELS_PER_PHASE[2]
    long_enough = phase_started is not None and (ctx.today - phase_started).days >= 42
    if at_top and long_enough and profile.review is None and "gate" not in ctx.conv.data:
        ctx.ask(
            CHECKIN,
            "gate",
            ctx.t("phase_gate_question"),
            [("yes", ctx.t("opt_gate_yes")), ("no", ctx.t("opt_gate_no"))],
            columns=1,
        )
        return
    _decide(ctx)


def _decide(ctx: Ctx) -> None:
    data = ctx.conv.data
    profile = ctx.profile
    day = _day(ctx)
    record = CheckinRecord(
        local_date=day,
        pain_now=data.get("pain_now"),
        ran=data.get("ran"),
        pain_during=data.get("pain_during"),
        morning=data.get("morning"),
        exercises=data.get("exercises"),
        phase=profile.phase,
        level=profile.level,
    )
    earlier = sorted(
        (c for c in ctx.history.checkins if c.local_date < day), key=lambda c: c.local_date
    )
    result = rules.decide(record, earlier, profile, phase_gate_passed=data.get("gate") == "yes")
    changed = (result.phase, result.level) != (profile.phase, profile.level)
    if changed:
        ctx.effect(
            RecordPlanChange(
                profile.phase,
                profile.level,
                result.phase,
                result.level,
                result.decision.value,
                result.reason,
            )
        )
        if result.phase != profile.phase:
            profile.phase_started_on = day
        profile.phase, profile.level = result.phase, result.level
        profile.level_started_on = day
    if result.cross_train_until:
        profile.cross_train_until = result.cross_train_until
    recent = [c for c in earlier if (day - c.local_date).days < 14] + [record]
    profile.baseline = rules.baseline(recent)
    _save(ctx, decision=result.decision.value, reason=result.reason)
    ctx.finish()

    headline = ctx.t(f"decision_{result.decision.value}")
    reason = ctx.t(f"reason_{result.reason}")
    lines = [f"{headline}\n{reason}"]
    if result.decision == Decision.PROGRESS and result.phase != record.phase:
        phase = ctx.content.phases[result.phase]
        lines.append(ctx.t("phase_changed", phase=phase.number, name=phase.name, goal=phase.goal))
    if result.recommend_review and profile.review is None:
        profile.review = Level.SOON
        profile.review_reason = reason
        profile.last_physio_nudge_on = day
        lines.append(ctx.t("escalate_soon", reason=ctx.t("review_no_progress")))
    ctx.say("\n\n".join(lines))
    send_today(ctx)


# --- reminders the bot starts itself ------------------------------------------------------

SNOOZE_MINUTES = (30, 60, 120)


def reminder(ctx: Ctx, kind: str) -> None:
    """The scheduled prompt: the first check-in question with snooze and skip buttons.

    After an escalation the prompt asks whether they were seen instead (W8, G2). Sends
    nothing when there is nothing to ask (already checked in, or a nudge that is moot).
    """
    if ctx.profile.plan_paused:
        # "Were you seen?" starts the day after the escalation, not hours later (W8).
        if kind == "checkin" and ctx.profile.escalated_on != ctx.today:
            begin_clearance(ctx)
        return
    if not ctx.profile.onboarded or ctx.profile.paused:
        return
    if any(c.local_date == ctx.today and c.decision for c in ctx.history.checkins):
        return
    if kind == "nudge":
        started_today = ctx.conv.data.get("date") == ctx.today.isoformat()
        if ctx.conv.flow == CHECKIN and started_today:
            ctx.repeat_question(preface=ctx.t("nudge_intro"))
            _add_snooze_row(ctx)
        return
    ctx.conv.data = {"date": ctx.today.isoformat()}
    ask_pain(ctx, CHECKIN, "pain", ctx.t("pain_now_question"), preface=ctx.t("reminder_intro"))
    _add_snooze_row(ctx)


def _add_snooze_row(ctx: Ctx) -> None:
    row = tuple(Button(ctx.t(f"opt_snooze_{m}"), f"x:z:{m}") for m in SNOOZE_MINUTES)
    skip = (Button(ctx.t("opt_skip_today"), "x:k"),)
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
