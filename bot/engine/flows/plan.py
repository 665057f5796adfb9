"""`today`, exercise logging and `progress`."""

from __future__ import annotations

from datetime import date, timedelta
from statistics import mean

from bot.engine.context import Ctx
from bot.engine.events import Button, Topic
from bot.engine.flows.common import (
    current_session,
    logged_on,
    outcome_label,
    render_card,
    render_detail,
    send_today,
)
from bot.engine.payload import (
    BeenChecked,
    BeenSeen,
    LogEntry,
    SetUp,
    ShowExercise,
    ShowToday,
    encode,
)
from bot.engine.turn import CheckinRecord, LogExercise, SendChart

PROGRESS_DAYS = 28  # the summary and chart cover four weeks
WEEK = 7  # the trend compares this week's mornings with last week's
TWO_WEEKS = 2 * WEEK


def today(ctx: Ctx, args: str = "") -> None:
    if ctx.profile.plan_paused:
        ctx.say(
            ctx.t("plan_paused"),
            buttons=[[Button(ctx.t("opt_been_checked"), encode(BeenChecked()))]],
            topic=Topic.CLEARANCE,
        )
        return
    if not ctx.profile.onboarded:
        ctx.say(
            ctx.t("setup_first_short"), buttons=[[Button(ctx.t("opt_set_up"), encode(SetUp()))]]
        )
        return
    if ctx.profile.plan_held:
        ctx.say(
            ctx.t("plan_held"),
            buttons=[[Button(ctx.t("opt_been_seen"), encode(BeenSeen()))]],
            topic=Topic.CLEARANCE,
        )
        return
    send_today(ctx)


def log_exercise(ctx: Ctx, entry: LogEntry) -> bool:
    """Log one exercise of a day's session; False if the button is not valid. Logged from
    the card (or its detail view) the card is shown again in place, with its tick."""
    if entry.exercise_id not in ctx.content.exercises:
        return False
    if ctx.profile.plan_paused or not ctx.profile.onboarded or ctx.profile.plan_held:
        if ctx.conv.waiting:
            return False  # an old session's button in the middle of setup: expired
        today(ctx)
        return True
    session = current_session(ctx)
    ids = [item.exercise.id for item in session.items]
    if entry.exercise_id not in ids and not (
        ctx.profile.isometric_stopped_on == ctx.today
        and ctx.content.exercises[entry.exercise_id].kind == "isometric"
    ):
        return False
    if entry.day != ctx.today:
        # Another day's card stays as it was (it is that day's record); today's comes new.
        send_today(ctx, preface=ctx.t("log_other_day"))
        return True
    outcome = entry.outcome
    ctx.effect(LogExercise(local_date=ctx.today, exercise_id=entry.exercise_id, outcome=outcome))
    logged = logged_on(ctx, ctx.today, (entry.exercise_id, outcome))
    done = {ex_id for ex_id, result in logged.items() if result == "done"}
    exercise = ctx.content.exercises[entry.exercise_id]
    lines = [ctx.t("log_saved", name=exercise.name, outcome=outcome_label(ctx, entry.code))]
    if outcome == "painful" and exercise.kind == "isometric":
        # P11: holds that raise the pain stop for the day and are lighter next time.
        ctx.profile.isometric_stopped_on = ctx.today
        ctx.profile.isometric_eased = True
        lines.append(ctx.t("today_holds_stopped"))
    elif outcome == "painful":
        lines.append(ctx.t("log_painful_advice"))
    if ctx.turn.inbound.message_ref is None:
        # Logged from somewhere that is not the card (a home screen): a short note.
        lines.append(ctx.t("log_count", done=len(done & set(ids)), total=len(ids)))
        ctx.say("\n".join(lines))
        return True
    _show_card(ctx, preface="\n".join(lines), logged=logged)
    return True


def _show_card(
    ctx: Ctx, *, preface: str | None = None, logged: dict[str, str] | None = None
) -> None:
    """Today's card in place of the pressed message (rebuilt: a P11 stop changes it)."""
    session = current_session(ctx)
    text, buttons = render_card(
        ctx, session, ctx.today, logged if logged is not None else logged_on(ctx, ctx.today)
    )
    if preface:
        text = f"{preface}\n\n{text}"
    ctx.edit(text, buttons=buttons, topic=Topic.SESSION)


def show_exercise(ctx: Ctx, pressed: ShowExercise) -> bool:
    """A number on the card: that exercise's details, in place; False if not valid."""
    if not _plan_open(ctx):
        return _plan_closed(ctx)
    if pressed.day != ctx.today:
        send_today(ctx, preface=ctx.t("log_other_day"))
        return True
    session = current_session(ctx)
    ids = [item.exercise.id for item in session.items]
    if pressed.exercise_id not in ids:
        _show_card(ctx)  # e.g. the holds stopped for today since the card was sent
        return True
    text, buttons = render_detail(
        ctx, session, ctx.today, ids.index(pressed.exercise_id) + 1, logged_on(ctx, ctx.today)
    )
    ctx.edit(text, buttons=buttons, topic=Topic.SESSION)
    return True


def show_card(ctx: Ctx, pressed: ShowToday) -> bool:
    """Back from an exercise's details to the card."""
    if not _plan_open(ctx):
        return _plan_closed(ctx)
    if pressed.day != ctx.today:
        send_today(ctx, preface=ctx.t("log_other_day"))
        return True
    _show_card(ctx)
    return True


def send_card(ctx: Ctx) -> None:
    """Today's card as a new message (the button under a check-in's decision)."""
    if not _plan_open(ctx):
        today(ctx)
        return
    send_today(ctx)


def _plan_closed(ctx: Ctx) -> bool:
    """An old card's button while there is no plan to show (paused for a clinician, not
    set up): say why, as `today` does; mid-setup it is an expired button."""
    if ctx.conv.waiting:
        return False
    today(ctx)
    return True


def _plan_open(ctx: Ctx) -> bool:
    p = ctx.profile
    return p.onboarded and not p.plan_paused and not p.plan_held


def progress(ctx: Ctx, args: str = "") -> None:
    if not ctx.profile.onboarded:
        ctx.say(
            ctx.t("setup_first_short"), buttons=[[Button(ctx.t("opt_set_up"), encode(SetUp()))]]
        )
        return
    day = ctx.today
    checkins = sorted(ctx.history.checkins, key=lambda c: c.local_date)
    window = [c for c in checkins if (day - c.local_date).days < PROGRESS_DAYS]
    sessions = {
        log.local_date
        for log in ctx.history.exercise_logs
        if log.outcome == "done" and (day - log.local_date).days < PROGRESS_DAYS
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
        c.pain_now for c in checkins if c.pain_now is not None and (day - c.local_date).days < WEEK
    ]
    last_week = [
        c.pain_now
        for c in checkins
        if c.pain_now is not None and WEEK <= (day - c.local_date).days < TWO_WEEKS
    ]
    if not this_week:
        return ctx.t("progress_trend_none")
    now_mean = round(mean(this_week), 1)
    if not last_week:
        return ctx.t("progress_trend_first", now=now_mean)
    before = round(mean(last_week), 1)
    key = "down" if now_mean < before else "up" if now_mean > before else "flat"
    return ctx.t(f"progress_trend_{key}", now=now_mean, before=before)
