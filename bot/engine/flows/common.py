"""Today's session as a message: shared by `today`, the end of a check-in and setup."""

from __future__ import annotations

from datetime import date

from bot.engine.context import Ctx
from bot.engine.events import Button, Topic
from bot.engine.session import OUTCOMES, Session, build_session, log_payload
from bot.engine.tips import tip_for


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
    if session.exercises_swapped:
        lines += ["", ctx.t("today_cross_train_instead")]
    elif not session.items:
        lines += ["", ctx.t("today_no_exercises")]
    if session.holds_stopped:
        lines += ["", ctx.t("today_holds_stopped")]
    for n, item in enumerate(session.items, start=1):
        ex = item.exercise
        lines += ["", f"{n}. {ex.name} — {item.dosage.render()}"]
        if item.swapped_from:
            lines.append("   " + ctx.t("today_swapped"))
        if item.eased:
            lines.append(ctx.t("today_holds_eased"))
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
    tip = tip_for(ctx.content, ctx.profile.presentation, session.phase, day)
    if tip is not None:
        lines += ["", ctx.t("today_tip", tip=tip.text)]
    return "\n".join(lines), buttons


def send_today(ctx: Ctx, preface: str | None = None) -> None:
    """Today's session; never while the plan is paused or waiting for a clinician."""
    if ctx.profile.plan_paused or ctx.profile.plan_held:
        return
    session = current_session(ctx)
    text, buttons = render_session(ctx, session, ctx.today)
    if preface:
        text = f"{preface}\n\n{text}"
    ctx.say(text, buttons=buttons, topic=Topic.SESSION)


def outcome_label(ctx: Ctx, code: str) -> str:
    return ctx.t(f"log_outcome_{OUTCOMES[code]}")
