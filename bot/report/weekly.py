"""The Sunday summary: the runner's week in one message with the progress chart.

It is sent on the runner's local Sunday evening (the scheduler's tick, scheduler/weekly.py)
unless they turned it off in settings. One message: the chart image with a caption that
stays inside Telegram's 1024-character caption limit (Slack's file comment allows more),
so no platform has to split it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from bot.charts import render_progress_chart
from bot.engine import outcomes as om
from bot.engine.localtime import next_occurrence
from bot.report.data import ReportData
from content.loader import Content

SUNDAY = 6
SUMMARY_TIME = time(19, 0)  # local Sunday evening
CAPTION_MAX = 1024  # Telegram's caption limit (UTF-16 code units); the tightest platform
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def next_summary_at(tz: str, after: datetime) -> datetime:
    """The next local Sunday evening strictly after `after` (UTC, DST-safe)."""
    return next_occurrence(SUMMARY_TIME, tz, after, days=frozenset({SUNDAY}))


def caption_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def reason_text(content: Content, reason: str | None) -> str:
    if not reason:
        return ""
    key = f"reason_{reason}"
    return content.message(key) if key in content.messages else reason


def decision_word(content: Content, decision: str) -> str:
    key = f"decision_word_{decision}"
    return content.message(key) if key in content.messages else decision


def outcome_change_text(content: Content, data: ReportData) -> str | None:
    """The latest weekly check against the first one, in section 6's terms."""
    groc = [s for s in data.scores if s.measure == "groc"]
    psfs = [s for s in data.scores if s.measure == "psfs" and s.item]
    parts: list[str] = []
    if groc:
        last = groc[-1].score
        parts.append(content.message(om.groc_words(last)))
    if psfs:
        first: dict[str, int] = {}
        latest: dict[str, int] = {}
        times: dict[str, int] = {}
        for s in psfs:
            assert s.item is not None
            first.setdefault(s.item, s.score)
            latest[s.item] = s.score
            times[s.item] = times.get(s.item, 0) + 1
        rescored = {a: v for a, v in latest.items() if times[a] > 1}
        change = om.psfs_change(first, rescored)
        if change is not None:
            parts.append(
                content.message(om.psfs_words(change), change=om.points(abs(change.delta)))
            )
    return " ".join(parts) if parts else None


def weekly_text(content: Content, data: ReportData, end: date) -> str:
    t = content.message
    start = end - timedelta(days=6)
    week = data.days_between(start, end)
    checkins = sum(d.checked_in for d in week)
    done = sum(d.done for d in week)
    runs = [d for d in week if d.ran]
    longest = max((d.run_minutes or 0 for d in runs), default=0)
    head = [
        t("weekly_title", start=f"{start:%d %b}", end=f"{end:%d %b}"),
        t("weekly_checkins", n=checkins),
        t("weekly_exercises", n=done),
        t("weekly_runs", n=len(runs), longest=longest) if runs else t("weekly_runs_none"),
    ]
    decided = [d for d in week if d.decision]
    lines = [
        t(
            "weekly_decision_line",
            day=_WEEKDAYS[d.day.weekday()],
            decision=decision_word(content, d.decision or ""),
            reason=reason_text(content, d.reason),
        )
        for d in decided
    ]
    change = outcome_change_text(content, data)
    tail = [t("weekly_outcome", change=change) if change else t("weekly_outcome_none")]
    if data.profile.plan_paused:
        tail.append(t("weekly_paused"))
    tail.append(t("weekly_footer"))

    def compose(shown: list[str], hidden: int) -> str:
        block = [t("weekly_decisions"), *shown] if decided else [t("weekly_decisions_none")]
        if hidden:
            block.append(t("weekly_decisions_more", n=hidden))
        return "\n".join(head) + "\n\n" + "\n".join(block) + "\n\n" + "\n".join(tail)

    # The most recent decisions first to go in; older ones fold into "and N more".
    for keep in range(len(lines), -1, -1):
        text = compose(lines[len(lines) - keep :], len(lines) - keep)
        if caption_length(text) <= CAPTION_MAX:
            return text
    return compose([], len(lines))[: CAPTION_MAX - 1] + "…"


def weekly_chart(content: Content, data: ReportData, end: date) -> bytes:
    start = end - timedelta(days=27)
    return render_progress_chart(
        data.points(start, end), title=content.message("weekly_chart_title"), end=end
    )
