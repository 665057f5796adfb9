"""`settings`, `pause`, `resume`, `export`, `delete` and `help`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.engine.context import Ctx
from bot.engine.dates import format_day, parse_until
from bot.engine.flows import outcomes
from bot.engine.flows.interpreter import region_words
from bot.engine.flows.preferences import ask_reminder, ask_timezone, set_reminder, set_timezone
from bot.engine.localtime import format_local, next_occurrence, parse_clock, to_local
from bot.engine.regions import country_name
from bot.engine.state import Profile
from bot.engine.turn import DeleteUser, SendExport

SETTINGS = "settings"
DELETE = "delete"
PAUSE = "pause"
PAUSE_FREE = "until"  # the pause question also takes a typed date ("until 12 Jan")
PAUSE_CHOICES = {"3d": 3, "1w": 7, "2w": 14}  # option value -> days


def next_checkin_text(ctx: Ctx) -> str:
    profile = ctx.profile
    if not profile.reminder_time or not profile.timezone:
        return ctx.t("next_checkin_none")
    if profile.reminders_paused(ctx.today):
        if profile.paused_until is None:
            return ctx.t("next_checkin_paused")
        at = first_checkin_on(
            profile.reminder_time, profile.timezone, profile.paused_until, ctx.now
        )
        return ctx.t("next_checkin_after_pause", when=format_local(at, profile.timezone))
    at = next_checkin_at(profile.reminder_time, profile.timezone, ctx.now)
    return ctx.t("next_checkin", when=format_local(at, profile.timezone))


def next_checkin_at(reminder_time: str, timezone: str, now: datetime) -> datetime:
    clock = parse_clock(reminder_time)
    assert clock is not None
    return next_occurrence(clock, timezone, now)


def first_checkin_on(reminder_time: str, timezone: str, day: date, now: datetime) -> datetime:
    """The first reminder that falls on local date `day` or later (and after `now`): when
    a pause until `day` ends, in the runner's own zone."""
    eve = datetime.combine(day - timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(timezone))
    at = next_checkin_at(reminder_time, timezone, max(now, eve.astimezone(UTC)))
    while to_local(at, timezone).date() < day:
        at = next_checkin_at(reminder_time, timezone, at)
    return at


def next_prompt_at(profile: Profile, now: datetime) -> datetime | None:
    """When the scheduler next prompts this runner: the next reminder, or the first one
    after a dated pause; None without reminders or while paused until they resume."""
    if not profile.reminder_time or not profile.timezone:
        return None
    if not (profile.onboarded or profile.plan_paused):
        return None
    if profile.paused:
        if profile.paused_until is None:
            return None
        return first_checkin_on(profile.reminder_time, profile.timezone, profile.paused_until, now)
    return next_checkin_at(profile.reminder_time, profile.timezone, now)


def settings(ctx: Ctx, args: str = "") -> None:
    if not ctx.profile.onboarded and not ctx.profile.plan_paused:
        ctx.say(ctx.t("setup_first_short"))
        return
    _show_settings(ctx)


def _show_settings(ctx: Ctx, preface: str | None = None) -> None:
    profile = ctx.profile
    number, _ = region_words(ctx)
    country = country_name(profile.country) if profile.country else None
    summary = ctx.t(
        "settings_summary",
        reminder=profile.reminder_time or ctx.t("settings_off"),
        zone=profile.timezone or ctx.t("settings_unset"),
        country=country or ctx.t("settings_unset"),
        number=number,
        nudges=ctx.t("settings_on") if profile.nudges else ctx.t("settings_off"),
        paused=_paused_text(ctx),
        next=next_checkin_text(ctx),
    )
    options = [
        ("time", ctx.t("opt_set_time")),
        ("tz", ctx.t("opt_set_zone")),
        ("country", ctx.t("opt_set_country")),
        ("nudges", ctx.t("opt_toggle_nudges")),
        *_outcome_options(ctx),
        ("done", ctx.t("opt_done")),
    ]
    text = f"{preface}\n\n{summary}" if preface else summary
    ctx.ask(SETTINGS, "menu", text, options, columns=2)


def _outcome_options(ctx: Ctx) -> list[tuple[str, str]]:
    """The Sunday summary switch and the summary for a physio (issue 13)."""
    if ctx.content.outcomes is None:
        return []
    return [("weekly", ctx.t("opt_toggle_weekly")), ("summary", ctx.t("opt_physio_summary"))]


def answer_settings(ctx: Ctx, qid: str, value: str) -> None:
    if qid == "menu":
        if value == "done":
            ctx.finish()
            ctx.say(ctx.t("settings_saved"))
        elif value == "time":
            ask_reminder(ctx, SETTINGS, "time")
        elif value == "tz":
            ask_timezone(ctx, SETTINGS, "tz")
        elif value == "country":
            options = []
            if ctx.profile.country:
                options.append(
                    (ctx.profile.country, country_name(ctx.profile.country) or ctx.profile.country)
                )
            ctx.ask(
                SETTINGS, "country", ctx.t("country_question"), options, columns=1, free="country"
            )
        elif value == "nudges":
            ctx.profile.nudges = not ctx.profile.nudges
            _show_settings(ctx, ctx.t("nudges_on") if ctx.profile.nudges else ctx.t("nudges_off"))
        elif value == "weekly":
            ctx.profile.weekly_summary = not ctx.profile.weekly_summary
            on = ctx.profile.weekly_summary
            _show_settings(ctx, ctx.t("weekly_on") if on else ctx.t("weekly_off"))
        elif value == "summary":
            ctx.finish()
            outcomes.summary(ctx)
        return
    if qid == "time":
        _show_settings(ctx, set_reminder(ctx, value))
        return
    if qid == "tz":
        _show_settings(ctx, set_timezone(ctx, value))
        return
    if qid == "country":
        ctx.profile.country = value
        _show_settings(ctx, ctx.t("country_set", country=country_name(value) or value))
        return
    raise ValueError(f"settings has no question {qid!r}")


def _paused_text(ctx: Ctx) -> str:
    profile = ctx.profile
    if not profile.reminders_paused(ctx.today):
        return ctx.t("settings_no")
    if profile.paused_until is None:
        return ctx.t("settings_yes")
    return ctx.t("settings_paused_until", day=format_day(profile.paused_until))


def pause(ctx: Ctx, args: str = "") -> None:
    """`pause 2 weeks`, `pause until 12 Jan`: reminders stop and start again by themselves
    on that local day. `pause` alone asks how long (a conversation in progress is
    replaced, as by any question); with a date it answers at once and a waiting question
    stays where it was."""
    waiting = ctx.conv.waiting
    if args.strip():
        until = parse_until(args, ctx.today)
        if until is not None or args.strip().lower() in OPEN_ENDED:
            _pause_until(ctx, until)
            if waiting:
                ctx.repeat_question(preface=ctx.t("still_waiting"))
            return
        _ask_pause(ctx, preface=ctx.t("pause_not_a_date"))
        return
    _ask_pause(ctx)


OPEN_ENDED = ("indefinitely", "until i resume", "until further notice", "for now")


def _ask_pause(ctx: Ctx, preface: str | None = None) -> None:
    ctx.conv.data = {}
    options = [(value, ctx.t(f"opt_pause_{value}")) for value in PAUSE_CHOICES]
    options.append(("open", ctx.t("opt_pause_open")))
    if ctx.profile.reminders_paused(ctx.today):
        options.append(("resume", ctx.t("opt_resume_now")))
        preface = "\n\n".join(p for p in (preface, _paused_now(ctx)) if p)
    ctx.ask(
        PAUSE,
        "how_long",
        ctx.t("pause_question"),
        options,
        columns=2,
        free=PAUSE_FREE,
        preface=preface,
    )


def typed_pause(ctx: Ctx, text: str) -> str | None:
    """A date typed at the pause question, as the answer value "yyyy-mm-dd"."""
    if text.strip().lower() in OPEN_ENDED:
        return "open"
    until = parse_until(text, ctx.today)
    return until.isoformat() if until is not None else None


def answer_pause(ctx: Ctx, qid: str, value: str) -> None:
    ctx.finish()
    if value == "resume":
        resume(ctx)
        return
    if value == "open":
        _pause_until(ctx, None)
        return
    days = PAUSE_CHOICES.get(value)
    until = ctx.today + timedelta(days=days) if days else date.fromisoformat(value)
    _pause_until(ctx, until)


def _pause_until(ctx: Ctx, until: date | None) -> None:
    ctx.profile.paused = True
    ctx.profile.paused_until = until
    ctx.say(_paused_now(ctx))


def _paused_now(ctx: Ctx) -> str:
    profile = ctx.profile
    if profile.paused_until is None:
        return ctx.t("paused")
    if profile.reminder_time and profile.timezone:
        at = first_checkin_on(
            profile.reminder_time, profile.timezone, profile.paused_until, ctx.now
        )
        when = to_local(at, profile.timezone).strftime("%H:%M")
        return ctx.t("paused_until", day=format_day(profile.paused_until), time=when)
    return ctx.t("paused_until_no_reminder", day=format_day(profile.paused_until))


def resume(ctx: Ctx, args: str = "") -> None:
    ctx.profile.paused = False
    ctx.profile.paused_until = None
    text = ctx.t("resumed", next=next_checkin_text(ctx))
    if ctx.profile.plan_paused:
        text += "\n\n" + ctx.t("resumed_but_escalated")
    ctx.say(text)


def export(ctx: Ctx, args: str = "") -> None:
    ctx.say(ctx.t("export_intro"))
    ctx.effect(SendExport(chat_id=ctx.chat_id, caption=ctx.t("export_caption")))


def begin_delete(ctx: Ctx, args: str = "") -> None:
    ctx.conv.data = {}
    ctx.ask(
        DELETE,
        "confirm",
        ctx.t("delete_question"),
        [("yes", ctx.t("opt_delete_yes")), ("no", ctx.t("opt_delete_no"))],
        columns=1,
    )


def answer_delete(ctx: Ctx, qid: str, value: str) -> None:
    ctx.finish()
    if value == "yes":
        ctx.effect(DeleteUser())
        ctx.say(ctx.t("deleted"))
    else:
        ctx.say(ctx.t("delete_cancelled"))


def help_text(ctx: Ctx, args: str = "") -> None:
    key = "help_group" if ctx.in_group else "help"
    ctx.say(ctx.t(key), private=False)
