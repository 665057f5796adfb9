"""Today's session as a compact card: shared by `today`, the end of setup and clearance.

The card lists the day's exercises with what is done so far (ticks) and one numbered
button per exercise. A number opens that exercise's details (steps, cue, stop-if) in the
same message, with the buttons that log it and one back to the card; logging shows the
card again with its tick, in place. So a session is one message however many taps it
takes, and short enough for a phone.
"""

from __future__ import annotations

from datetime import date

from bot.engine.context import Ctx
from bot.engine.events import Button, Topic
from bot.engine.payload import ShowExercise, ShowToday, encode
from bot.engine.session import OUTCOMES, Session, SessionItem, build_session, log_payload
from bot.engine.tips import tip_for

CARD_ROW = 3  # number buttons per row: a thumb's width each on a phone
CARD_ROW_WIDE = 4  # ... when a session has more than two rows of three
CARD_ROWS_NARROW = 2
# What each logged outcome looks like on the card and on its number button.
MARKS = {"done": "✅", "painful": "⚠️", "skipped": "⏭"}
TODO_MARK = "▫️"


def current_session(ctx: Ctx) -> Session:
    return build_session(
        ctx.content,
        ctx.profile,
        ctx.today,
        ctx.history.exercise_logs,
        ctx.history.checkins,
    )


def logged_on(ctx: Ctx, day: date, extra: tuple[str, str] | None = None) -> dict[str, str]:
    """exercise id -> the last outcome logged on `day` (with this turn's entry, if any)."""
    logged = {
        log.exercise_id: log.outcome for log in ctx.history.exercise_logs if log.local_date == day
    }
    if extra is not None:
        logged[extra[0]] = extra[1]
    return logged


def render_card(
    ctx: Ctx, session: Session, day: date, logged: dict[str, str]
) -> tuple[str, list[list[Button]]]:
    phase = ctx.content.phases[session.phase]
    lines = [
        ctx.t("today_header", phase=phase.number, name=phase.name, level=session.level),
        ctx.t("today_running", advice=session.run),
    ]
    if session.exercises_swapped:
        lines += ["", ctx.t("today_cross_train_instead")]
    elif not session.items:
        lines += ["", ctx.t("today_no_exercises")]
    if session.holds_stopped:
        lines += ["", ctx.t("today_holds_stopped")]
    numbers: list[Button] = []
    if session.items:
        lines.append("")
    for n, item in enumerate(session.items, start=1):
        ex = item.exercise
        outcome = logged.get(ex.id)
        mark = MARKS.get(outcome or "", TODO_MARK)
        extra = " " + ctx.t("today_easier_mark") if item.swapped_from or item.eased else ""
        lines.append(f"{mark} {n}. {ex.name} — {item.dosage.render()}{extra}")
        label = f"{n} {MARKS[outcome]}" if outcome in MARKS else str(n)
        numbers.append(Button(label, encode(ShowExercise(day, ex.id))))
    if session.items:
        ids = {item.exercise.id for item in session.items}
        done = sum(1 for ex_id, outcome in logged.items() if ex_id in ids and outcome == "done")
        lines += ["", ctx.t("today_card_footer", done=done, total=len(session.items))]
    width = CARD_ROW if len(numbers) <= CARD_ROWS_NARROW * CARD_ROW else CARD_ROW_WIDE
    buttons = [numbers[i : i + width] for i in range(0, len(numbers), width)]
    return "\n".join(lines), buttons


def render_detail(
    ctx: Ctx, session: Session, day: date, number: int, logged: dict[str, str]
) -> tuple[str, list[list[Button]]]:
    """One exercise of the card: how to do it, the cue and when to stop, and its log
    buttons; "back" shows the card again."""
    item: SessionItem = session.items[number - 1]
    ex = item.exercise
    lines = [f"{number}. {ex.name} — {item.dosage.render()}"]
    if item.swapped_from:
        lines.append(ctx.t("today_swapped"))
    if item.eased:
        lines.append(ctx.t("today_holds_eased").strip())
    lines.append("")
    lines += [f"{step_no}) {step}" for step_no, step in enumerate(ex.steps, start=1)]
    lines += ["", ctx.t("today_cue", cue=ex.cue)]
    lines += list(item.notes)
    lines += [ctx.t("today_stop_if", stop_if=ex.stop_if), "", ctx.t("today_pain_limit")]
    outcome = logged.get(ex.id)
    if outcome:
        lines.append(ctx.t("today_logged_already", outcome=ctx.t(f"log_outcome_{outcome}")))
    log_row = [
        Button(ctx.t(f"log_{name}_label"), log_payload(day, ex.id, code))
        for code, name in OUTCOMES.items()
    ]
    back = [Button(ctx.t("opt_back_to_card"), encode(ShowToday(day)))]
    return "\n".join(lines), [log_row, back]


def tip_line(ctx: Ctx, day: date) -> str:
    """The day's tip among those that fit the runner's presentation and phase."""
    tip = tip_for(ctx.content, ctx.profile.presentation, current_session(ctx).phase, day)
    return ctx.t("today_tip", tip=tip.text) if tip is not None else ""


def card_text(ctx: Ctx, preface: str | None = None) -> tuple[str, list[list[Button]]]:
    session = current_session(ctx)
    text, buttons = render_card(ctx, session, ctx.today, logged_on(ctx, ctx.today))
    tip = tip_line(ctx, ctx.today)
    if tip:
        text = f"{text}\n\n{tip}"
    if preface:
        text = f"{preface}\n\n{text}"
    return text, buttons


def send_today(ctx: Ctx, preface: str | None = None) -> None:
    """Today's card; never while the plan is paused or waiting for a clinician."""
    if ctx.profile.plan_paused or ctx.profile.plan_held:
        return
    text, buttons = card_text(ctx, preface)
    ctx.say(text, buttons=buttons, topic=Topic.SESSION)


def outcome_label(ctx: Ctx, code: str) -> str:
    return ctx.t(f"log_outcome_{OUTCOMES[code]}")
