"""Pieces several flows share: the pain scale, the screen loop, escalation, rendering."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from bot.engine import screening
from bot.engine.context import Ctx
from bot.engine.events import Button
from bot.engine.session import OUTCOMES, Session, build_session, log_payload
from bot.engine.turn import RecordEscalation, RecordScreening
from content.schema import Level

SCREEN_PREFIX = "s/"


def pain_options() -> list[tuple[str, str]]:
    return [(str(n), str(n)) for n in range(11)]


def ask_pain(ctx: Ctx, flow: str, qid: str, text: str, preface: str | None = None) -> None:
    ctx.ask(flow, qid, text, pain_options(), columns=6, preface=preface)


# --- the screen inside a flow -------------------------------------------------------------


def ask_screen(ctx: Ctx, flow: str, preface: str | None = None) -> bool:
    """Ask the next screen question; False when the screen is complete."""
    q = screening.next_question(ctx.conv.data, ctx.content)
    if q is None:
        return False
    columns = 1 if q.qid.startswith(("g:", "m", "f:")) else 3
    ctx.ask(flow, SCREEN_PREFIX + q.qid, q.text, q.options, columns=columns, preface=preface)
    return True


def screen_step(
    ctx: Ctx,
    flow: str,
    qid: str,
    value: str,
    on_done: Callable[[screening.ScreenOutcome], None],
) -> None:
    """Feed one screen answer; ask the next question or hand the outcome back."""
    screening.answer(ctx.conv.data, qid[len(SCREEN_PREFIX) :], value, ctx.content)
    if ask_screen(ctx, flow):
        return
    result = screening.outcome(ctx.conv.data, ctx.content)
    kind = ctx.conv.data["scr"]["kind"]
    ctx.effect(RecordScreening(kind=kind, answers=result.answers, level=result.level.value))
    if kind in ("full", "start", "clearance"):
        ctx.profile.last_full_screen_on = ctx.today
    on_done(result)


# --- escalation ---------------------------------------------------------------------------


def region_words(ctx: Ctx) -> tuple[str, str]:
    """(emergency number words, same-day route) for the runner's country (W4)."""
    if ctx.profile.country:
        region = ctx.content.region(ctx.profile.country)
        if ctx.profile.country in ctx.content.regions.countries:
            return region.emergency, region.same_day
    default = ctx.content.regions.default
    return ctx.t("unknown_emergency_number", number=default.emergency), default.same_day


def escalate(ctx: Ctx, result: screening.ScreenOutcome, flow: str) -> None:
    """Send the escalation message for a flagged screen and latch the plan (G2, W3, W9)."""
    level = result.level
    number, route = region_words(ctx)
    summary = result.summary or ctx.t("summary_generic")
    key = {
        Level.EMERGENCY: "escalate_emergency",
        Level.URGENT: "escalate_urgent",
        Level.SOON_72H: "escalate_soon_72h",
        Level.SOON: "escalate_soon",
    }[level]
    text = ctx.t(key, emergency=number, route=route, summary=summary, reason=summary)
    if level.escalates:
        ctx.profile.escalation = Level.worst(ctx.profile.escalation, level)
        ctx.profile.escalated_on = ctx.today
        ctx.finish()
    else:
        ctx.profile.review = Level.worst(ctx.profile.review, level)
        ctx.profile.review_reason = summary
    ctx.effect(
        RecordEscalation(
            level=level.value, trigger=",".join(result.triggers), flow=flow, message=text
        )
    )
    ctx.say(text)


# --- today's session ------------------------------------------------------------------------


def current_session(ctx: Ctx) -> Session:
    return build_session(
        ctx.content,
        ctx.profile,
        ctx.today,
        ctx.history.exercise_logs,
        ctx.history.checkins,
    )


def render_session(ctx: Ctx, session: Session, day: date) -> tuple[str, list[list[Button]]]:
    phase = ctx.content.phases[session.phase]
    lines = [
        ctx.t("today_header", phase=phase.number, name=phase.name, level=session.level),
        "",
        ctx.t("today_running", advice=session.run),
    ]
    buttons: list[list[Button]] = []
    if not session.items:
        lines += ["", ctx.t("today_no_exercises")]
    for n, item in enumerate(session.items, start=1):
        ex = item.exercise
        lines += ["", f"{n}. {ex.name} — {item.dosage.render()}"]
        if item.swapped_from:
            lines.append("   " + ctx.t("today_swapped"))
        lines.append("   " + ctx.t("today_cue", cue=ex.cue))
        lines += ["   " + note for note in item.notes]
        lines.append("   " + ctx.t("today_stop_if", stop_if=ex.stop_if))
        buttons.append(
            [
                Button(ctx.t("log_done_button", n=n), log_payload(day, ex.id, "d")),
                Button(ctx.t("log_painful_button", n=n), log_payload(day, ex.id, "p")),
                Button(ctx.t("log_skip_button", n=n), log_payload(day, ex.id, "s")),
            ]
        )
    if session.items:
        lines += ["", ctx.t("today_footer")]
    tips = ctx.content.tips
    tip = tips[day.toordinal() % len(tips)]
    lines += ["", ctx.t("today_tip", tip=tip.text)]
    return "\n".join(lines), buttons


def send_today(ctx: Ctx, preface: str | None = None) -> None:
    session = current_session(ctx)
    text, buttons = render_session(ctx, session, ctx.today)
    if preface:
        text = f"{preface}\n\n{text}"
    ctx.say(text, buttons=buttons)


def outcome_label(ctx: Ctx, code: str) -> str:
    return ctx.t(f"log_outcome_{OUTCOMES[code]}")
