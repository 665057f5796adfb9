"""`settings`, `pause`, `resume`, `export`, `delete` and `help`."""

from __future__ import annotations

from datetime import datetime

from bot.engine.context import Ctx
from bot.engine.flows import outcomes
from bot.engine.flows.interpreter import region_words
from bot.engine.flows.preferences import ask_reminder, ask_timezone, set_reminder, set_timezone
from bot.engine.localtime import format_local, next_occurrence, parse_clock
from bot.engine.regions import country_name
from bot.engine.turn import DeleteUser, SendExport

SETTINGS = "settings"
DELETE = "delete"


def next_checkin_text(ctx: Ctx) -> str:
    profile = ctx.profile
    if not profile.reminder_time or not profile.timezone:
        return ctx.t("next_checkin_none")
    if profile.paused:
        return ctx.t("next_checkin_paused")
    at = next_checkin_at(profile.reminder_time, profile.timezone, ctx.now)
    return ctx.t("next_checkin", when=format_local(at, profile.timezone))


def next_checkin_at(reminder_time: str, timezone: str, now: datetime) -> datetime:
    clock = parse_clock(reminder_time)
    assert clock is not None
    return next_occurrence(clock, timezone, now)


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
        paused=ctx.t("settings_yes") if profile.paused else ctx.t("settings_no"),
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


def pause(ctx: Ctx, args: str = "") -> None:
    ctx.profile.paused = True
    ctx.say(ctx.t("paused"))


def resume(ctx: Ctx, args: str = "") -> None:
    ctx.profile.paused = False
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
