"""The one-page "Summary for my physio" PDF.

Built with matplotlib's PDF backend (`FigureCanvasPdf`) rather than reportlab: matplotlib
is already a dependency (bot/charts.py), so the summary adds no new library to install,
audit or keep up to date, and the 6-week pain chart is drawn on the same page as vector
graphics by the same code that draws the chat charts. The page is laid out by hand, which
for one fixed page is little code. Fonts are embedded as TrueType (`pdf.fonttype` 42), so
the text can be selected, searched and read back by tools (tests use pypdf).

The page is 8.27 x 11.0 inches: the width of A4 and the height of US Letter, the part both
paper sizes share, so it prints on either without scaling or clipping and reads the same on
a phone. Everything is in the runner's local dates; no platform id appears anywhere. It is
only ever sent to the runner's private chat.

Long lists shrink the type first and then fold their oldest lines into "…and N more", so
the summary always stays on one page (the export holds every row).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from datetime import date, timedelta
from io import BytesIO

import matplotlib
from matplotlib.backends.backend_pdf import FigureCanvasPdf
from matplotlib.figure import Figure

from bot.report.data import ReportData
from bot.report.weekly import decision_word, reason_text
from content.loader import Content

PAGE_INCHES = (8.27, 11.0)  # A4's width x Letter's height: fits both
MARGIN = 0.6  # inches
CHART_HEIGHT = 2.1  # inches
SIZES = (9.0, 8.5, 8.0, 7.5, 7.0, 6.5)  # body type sizes tried, largest first
TITLE_SIZE = 15.0
LINE = 1.32  # line height as a multiple of the type size
MAX_LIST = 12  # lines a list shows before folding when even the smallest type does not fit
_MORNING = "#1f4e79"
_RUN = "#d9480f"
_EXERCISE = "#2b8a3e"


@dataclass(frozen=True)
class Row:
    text: str
    style: str = "body"  # body | head | note | chart


def _date(day: date) -> str:
    return f"{day:%d %b %Y}"


def _answer_word(content: Content, value: str) -> str:
    key = {"yes": "opt_yes", "no": "opt_no", "unsure": "opt_unsure"}.get(value)
    return content.message(key) if key else value


def _setup_lines(content: Content, data: ReportData) -> list[str]:
    answers = data.profile.setup_answers
    lines: list[str] = []
    locations = {loc.id: loc.label for loc in content.triage.locations}
    if "loc" in answers:
        lines.append(f"{content.triage.location_question} — {locations.get(answers['loc'], '')}")
    for q in content.triage.questions:
        if q.id in answers:
            lines.append(f"{q.question} — {_answer_word(content, answers[q.id])}")
    running = answers.get("running") or data.profile.running
    if running and f"opt_run_{running}" in content.messages:
        lines.append(
            f"{content.message('running_question')} — {content.message(f'opt_run_{running}')}"
        )
    if "r21" in answers:
        lines.append(f"{content.message('r21_question')} — {_answer_word(content, answers['r21'])}")
    return lines


def _screen_summary(content: Content, item_id: str) -> str | None:
    try:
        return content.screen_item(item_id).summary
    except KeyError:
        return None


def _flag_lines(content: Content, data: ReportData) -> list[str]:
    t = content.message
    lines: list[str] = []
    for day, item, answer in data.red_flag_answers:
        summary = _screen_summary(content, item)
        if summary is None:
            continue
        lines.append(f"{_date(day)}: {item} ({summary}) — {_answer_word(content, answer)}")
    for flag in data.flags:
        what = "; ".join(
            f"{tid} {_screen_summary(content, tid) or ''}".strip()
            for tid in flag.trigger.split(",")
        )
        lines.append(t("pdf_flag_line", day=_date(flag.day), level=flag.level, what=what))
    return lines


def _change_lines(content: Content, data: ReportData) -> list[str]:
    return [
        content.message(
            "pdf_change_line",
            day=_date(c.day),
            from_phase=c.from_phase,
            from_level=c.from_level,
            to_phase=c.to_phase,
            to_level=c.to_level,
            decision=decision_word(content, c.decision),
            reason=reason_text(content, c.reason),
        )
        for c in data.changes
    ]


def _score_lines(content: Content, data: ReportData) -> list[str]:
    t = content.message
    labels = {p.value: p.label for p in content.outcomes.groc} if content.outcomes else {}
    lines = []
    for s in data.scores:
        if s.measure == "groc":
            lines.append(
                t("pdf_groc_line", day=_date(s.day), score=s.score, label=labels.get(s.score, ""))
            )
        else:
            lines.append(t("pdf_psfs_line", day=_date(s.day), activity=s.item or "", score=s.score))
    return lines


def _sections(content: Content, data: ReportData) -> list[tuple[str | None, list[str]]]:
    """(heading, lines) in page order; the chart goes where the heading is pdf_trend."""
    t = content.message
    profile = data.profile
    where = t(f"pdf_where_{profile.presentation}") if profile.presentation else t("pdf_none")
    days = data.days
    checkins = sum(d.checked_in for d in days)
    runs = [d for d in days if d.ran]
    phase = content.phases.get(profile.phase)
    plan = t(
        "pdf_plan",
        phase=profile.phase,
        name=phase.name if phase else "",
        level=profile.level,
    )
    return [
        (
            None,
            [
                t("pdf_for", name=data.name),
                t("pdf_period", start=_date(data.start), end=_date(data.today), zone=data.timezone),
                t("pdf_where", where=where),
            ],
        ),
        (t("pdf_started"), _setup_lines(content, data) or [t("pdf_none")]),
        (t("pdf_flags"), _flag_lines(content, data) or [t("pdf_none")]),
        ("pdf_trend", []),
        (t("pdf_changes"), [plan, *(_change_lines(content, data) or [t("pdf_none")])]),
        (
            None,
            [
                t(
                    "pdf_adherence",
                    checkins=checkins,
                    days=len(days),
                    done=sum(d.done for d in days),
                    painful=sum(d.painful for d in days),
                    skipped=sum(d.skipped for d in days),
                ),
                t(
                    "pdf_runs",
                    n=len(runs),
                    total=sum(d.run_minutes or 0 for d in runs),
                    longest=max((d.run_minutes or 0 for d in runs), default=0),
                ),
            ],
        ),
        (t("pdf_outcomes"), _score_lines(content, data) or [t("pdf_none")]),
    ]


def _wrap(text: str, size: float) -> list[str]:
    # DejaVu Sans averages about 0.55 em per character.
    width = PAGE_INCHES[0] - 2 * MARGIN
    chars = max(40, int(width * 72 / (size * 0.55)))
    return textwrap.wrap(text, chars, subsequent_indent="   ") or [""]


def _layout(
    content: Content, data: ReportData, size: float, fold: int | None
) -> tuple[list[Row], float]:
    rows: list[Row] = []
    for heading, lines in _sections(content, data):
        if heading == "pdf_trend":
            rows.append(Row(content.message("pdf_trend"), "head"))
            rows.append(Row("", "chart"))
            continue
        if heading is not None:
            rows.append(Row(heading, "head"))
        shown = lines
        if fold is not None and len(lines) > fold:
            hidden = len(lines) - fold + 1
            shown = [f"…and {hidden} earlier lines (in the export)", *lines[-(fold - 1) :]]
        for line in shown:
            rows += [Row(part) for part in _wrap(line, size)]
    height = 0.0
    for row in rows:
        height += CHART_HEIGHT if row.style == "chart" else size * LINE / 72
        if row.style == "head":
            height += size * 0.5 / 72
    return rows, height


def render_summary_pdf(content: Content, data: ReportData) -> bytes:
    """The summary as PDF bytes (one page)."""
    t = content.message
    page_w, page_h = PAGE_INCHES
    top = MARGIN + TITLE_SIZE * 1.6 / 72 + 2 * 9 * LINE / 72  # title and statement
    available = page_h - top - MARGIN - 2 * 7 * LINE / 72  # footer
    chosen: tuple[list[Row], float] | None = None
    for fold in (None, MAX_LIST, MAX_LIST // 2):
        for size in SIZES:
            rows, height = _layout(content, data, size, fold)
            if height <= available:
                chosen = (rows, size)
                break
        if chosen is not None:
            break
    if chosen is None:
        rows, _ = _layout(content, data, SIZES[-1], 2)
        chosen = (rows, SIZES[-1])
    rows, size = chosen

    with matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}):
        fig = Figure(figsize=PAGE_INCHES)
        FigureCanvasPdf(fig)
        x = MARGIN / page_w

        def y(inches: float) -> float:
            return 1 - inches / page_h

        cursor = MARGIN
        fig.text(x, y(cursor), t("pdf_title"), fontsize=TITLE_SIZE, weight="bold", va="top")
        cursor += TITLE_SIZE * 1.6 / 72
        for part in _wrap(t("pdf_made_by"), 8.5):
            fig.text(x, y(cursor), part, fontsize=8.5, style="italic", va="top", color="#444")
            cursor += 8.5 * LINE / 72
        cursor = max(cursor, top)
        for row in rows:
            if row.style == "chart":
                _chart(fig, content, data, cursor, size)
                cursor += CHART_HEIGHT
                continue
            if row.style == "head":
                cursor += size * 0.5 / 72
                fig.text(x, y(cursor), row.text, fontsize=size + 1, weight="bold", va="top")
            else:
                fig.text(x, y(cursor), row.text, fontsize=size, va="top")
            cursor += size * LINE / 72
        footer = page_h - MARGIN - 7 * LINE / 72
        for part in _wrap(t("pdf_made_by"), 7):
            fig.text(x, y(footer), part, fontsize=7, va="top", color="#555")
            footer += 7 * LINE / 72
        out = BytesIO()
        fig.savefig(out, format="pdf", metadata={"Title": t("pdf_title"), "Creator": "hipcoach"})
    return out.getvalue()


def _chart(fig: Figure, content: Content, data: ReportData, cursor: float, size: float) -> None:
    """The 6-week pain trend: morning, during runs and during exercises (0-10)."""
    page_w, page_h = PAGE_INCHES
    height = CHART_HEIGHT - 0.45
    ax = fig.add_axes(
        (
            (MARGIN + 0.35) / page_w,
            1 - (cursor + height + 0.05) / page_h,
            (page_w - 2 * MARGIN - 0.5) / page_w,
            height / page_h,
        )
    )
    days = list(data.days)
    xs = list(range(len(days)))

    def series(values: list[int | None]) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]

    t = content.message
    ax.plot(
        xs,
        series([d.morning for d in days]),
        color=_MORNING,
        marker="o",
        ms=3,
        lw=1.4,
        label=t("pdf_pain_morning"),
    )
    ax.plot(
        xs,
        series([d.run_pain if d.ran else None for d in days]),
        color=_RUN,
        marker="s",
        ms=3.5,
        lw=0,
        label=t("pdf_pain_run"),
    )
    ax.plot(
        xs,
        series([d.exercise_pain for d in days]),
        color=_EXERCISE,
        marker="^",
        ms=3,
        lw=0.9,
        ls="--",
        label=t("pdf_pain_exercise"),
    )
    ax.set_ylim(0, 10)
    ax.set_yticks(range(0, 11, 2))
    ax.set_xlim(-0.5, len(days) - 0.5)
    ticks = [i for i, d in enumerate(days) if d.day.weekday() == 0] or [0]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{days[i].day:%d %b}" for i in ticks], fontsize=size - 1)
    ax.tick_params(axis="y", labelsize=size - 1)
    ax.grid(axis="y", color="#ddd", lw=0.6)
    ax.legend(loc="upper right", fontsize=size - 1.5, ncol=3, frameon=False)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)


def period_days(data: ReportData) -> int:
    return (data.today - data.start + timedelta(days=1)).days
