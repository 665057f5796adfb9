"""`today`, exercise logging and `progress`."""

from __future__ import annotations

from datetime import date, timedelta
from statistics import mean

from bot.engine.context import Ctx
from bot.engine.events import Button
from bot.engine.flows.common import current_session, outcome_label, send_today
from bot.engine.session import OUTCOMES
from bot.engine.turn import CheckinRecord, LogExercise, SendChart


def today(ctx: Ctx, args: str = "") -> None:
    if ctx.profile.plan_paused:
        ctx.say(
            ctx.t("plan_paused"),
            buttons=[[Button(ctx.t("opt_been_checked"), "x:c")]],
        )
        return
    if not ctx.profile.onboarded:
        ctx.say(ctx.t("setup_first_short"), buttons=[[Button(ctx.t("opt_set_up"), "x:s")]])
        return
    send_today(ctx)


def log_exercise(ctx: Ctx, payload: str) -> bool:
    """Handle an `x:l:<yyyymmdd>:<exercise>:<d|p|s>` button; False if it is not valid."""
    parts = payload.split(":")
    if len(parts) != 5:
        return False
    _, _, day_text, exercise_id, code = parts
    if (
        code not in OUTCOMES
        or not (day_text.isascii() and day_text.isdigit())
        or len(day_text) != 8
    ):
        return False
    if exercise_id not in ctx.content.exercises:
        return False
    if ctx.profile.plan_paused or not ctx.profile.onboarded:
        if ctx.conv.waiting:
            return False  # an old session's button in the middle of setup: expired
        today(ctx)
        return True
    session = current_session(ctx)
    ids = [item.exercise.id for item in session.items]
    if exercise_id not in ids:
        return False
    if day_text != ctx.today.strftime("%Y%m%d"):
        ctx.say(ctx.t("log_other_day"))
        send_today(ctx)
        return True
    outcome = OUTCOMES[code]
    ctx.effect(LogExercise(local_date=ctx.today, exercise_id=exercise_id, outcome=outcome))
    done = {
        log.exercise_id
        for log in ctx.history.exercise_logs
        if log.local_date == ctx.today and log.outcome == "done" and log.exercise_id != exercise_id
    }
    if outcome == "done":
        done.add(exercise_id)
    name = ctx.content.exercises[exercise_id].name
    line = ctx.t("log_saved", name=name, outcome=outcome_label(ctx, code))
    count = ctx.t("log_count", done=len(done & set(ids)), total=len(ids))
    if outcome == "painful":
        line += "\n" + ctx.t("log_painful_advice")
    ctx.say(f"{line}\n{count}")
    return True


def progress(ctx: Ctx, args: str = "") -> None:
    if not ctx.profile.onboarded:
        ctx.say(ctx.t("setup_first_short"), buttons=[[Button(ctx.t("opt_set_up"), "x:s")]])
        return
    day = ctx.today
    checkins = sorted(ctx.history.checkins, key=lambda c: c.local_date)
    window = [c for c in checkins if (day - c.local_date).days < 28]
    sessions = {
        log.local_date
        for log in ctx.history.exercise_logs
        if log.outcome == "done" and (day - log.local_date).days < 28
    }
    phase = ctx.content.phases[ctx.profile.phase]
    lines = [
        ctx.t("progress_header", phase=phase.number, name=phase.name, level=ctx.profile.level),
        ctx.t("progress_streak", days=_days(checkin_streak([c.local_date for c in checkins], day))),
        ctx.t("progress_sessions", sessions=_days(len(sessions)), checkins=_days(len(window))),
        trend_line(ctx, checkins, day),
    ]
    if ctx.profile.plan_paused:
        lines.append(ctx.t("plan_paused_short"))
    text = "\n".join(lines)
    ctx.say(text)
    ctx.effect(SendChart(chat_id=ctx.chat_id, caption=ctx.t("chart_caption")))


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def checkin_streak(days: list[date], today: date) -> int:
    """Consecutive days with a check-in, ending today or yesterday; rest days count too."""
    have = set(days)
    cursor = today if today in have else today - timedelta(days=1)
    streak = 0
    while cursor in have:
        streak += 1
        cursor -= timedelta(days=1)
    return streak


def trend_line(ctx: Ctx, checkins: list[CheckinRecord], day: date) -> str:
    this_week = [
        c.pain_now for c in checkins if c.pain_now is not None and (day - c.local_date).days < 7
    ]
    last_week = [
        c.pain_now
        for c in checkins
        if c.pain_now is not None and 7 <= (day - c.local_date).days < 14
    ]
    if not this_week:
        return ctx.t("progress_trend_none")
    now_mean = round(mean(this_week), 1)
    if not last_week:
        return ctx.t("progress_trend_first", now=now_mean)
    before = round(mean(last_week), 1)
    key = "down" if now_mean < before else "up" if now_mean > before else "flat"
    return ctx.t(f"progress_trend_{key}", now=now_mean, before=before)
