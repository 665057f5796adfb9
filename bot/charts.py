"""The progress picture a runner gets for /progress: four weeks of pain and exercise.

Rendered with matplotlib's object API (a `Figure` plus an Agg canvas), never pyplot: pyplot
keeps a global registry of open figures, which leaks memory in a long-running server and is
not safe when two chats ask for a chart at once. Without pyplot no GUI backend is ever
selected, so this works headless without touching matplotlib's global backend setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from io import BytesIO

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

__all__ = ["ChartSeries", "DayPoint", "build_series", "render_progress_chart"]

WINDOW_DAYS = 28
OK_ZONE_MAX = 3  # clinical rules P1/P2: pain up to 3/10 counts as "safe"

# 10 x 6 inches at 100 dpi = 1000 x 600 px: wide enough for 28 days, and a 5:3 picture
# fills a phone screen in landscape and still reads when shown inline in portrait.
_FIG_INCHES = (10.0, 6.0)
_DPI = 100

_MORNING_COLOUR = "#1f4e79"
_RUN_COLOUR = "#d9480f"
_SESSIONS_COLOUR = "#b7c4cf"
_OK_COLOUR = "#2b8a3e"
_RUN_NUDGE = 0.22  # in days
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class DayPoint:
    """What one runner logged on one local day."""

    day: date
    morning_pain: int | None  # 0-10 at the morning check-in; None = not answered
    run_pain: int | None  # 0-10 during a run; None = no run (or not answered)
    sessions_done: int  # exercises logged done that day


@dataclass(frozen=True)
class ChartSeries:
    """One value per calendar day of the window; None means "nothing logged", not zero."""

    days: tuple[date, ...]
    morning_pain: tuple[int | None, ...]
    run_pain: tuple[int | None, ...]
    sessions_done: tuple[int, ...]

    @property
    def has_pain_data(self) -> bool:
        return any(v is not None for v in (*self.morning_pain, *self.run_pain))

    @property
    def is_empty(self) -> bool:
        return not self.has_pain_data and not any(self.sessions_done)


def build_series(
    points: Sequence[DayPoint], *, end: date | None = None, days: int = WINDOW_DAYS
) -> ChartSeries:
    """Lay `points` onto the `days` calendar days ending at `end` (default: the last point).

    Days with no point keep None for pain so the chart shows a gap: a missed check-in is
    not a pain-free day. Points outside the window are dropped; if a day appears twice the
    later point wins (the caller's list is in logging order).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if end is None:
        if not points:
            return ChartSeries(days=(), morning_pain=(), run_pain=(), sessions_done=())
        end = max(p.day for p in points)
    window = tuple(end - timedelta(days=days - 1 - i) for i in range(days))
    by_day = {p.day: p for p in points}
    picked = [by_day.get(d) for d in window]
    return ChartSeries(
        days=window,
        morning_pain=tuple(p.morning_pain if p else None for p in picked),
        run_pain=tuple(p.run_pain if p else None for p in picked),
        sessions_done=tuple(max(p.sessions_done, 0) if p else 0 for p in picked),
    )


def _as_floats(values: Sequence[int | None]) -> list[float]:
    # NaN is how matplotlib is told "no value here": lines break and no marker is drawn.
    return [math.nan if v is None else float(v) for v in values]


def _day_label(day: date) -> str:
    # Two-letter weekdays: 28 three-letter names at a phone-readable size collide.
    return f"{_WEEKDAYS[day.weekday()][:2]}\n{day.day}"


def render_progress_chart(
    points: Sequence[DayPoint],
    *,
    title: str = "Last 28 days",
    end: date | None = None,
) -> bytes:
    """PNG bytes (about 1000 x 600 px) of the last 28 days ending at `end`
    (default: the latest point's day; pass the runner's local today to show recent gaps).

    Morning pain is a line with markers, pain during runs is markers only, exercises done
    are bars on a second axis, and the 0-3 "OK zone" is shaded. No data gives a chart that
    says "No check-ins yet". Safe to call from several threads at once.
    """
    series = build_series(points, end=end)
    fig = Figure(figsize=_FIG_INCHES, dpi=_DPI)
    FigureCanvasAgg(fig)  # attaches itself to fig; needed before savefig without pyplot
    fig.set_facecolor("white")

    pain_ax = fig.add_axes((0.075, 0.14, 0.85, 0.66))
    sessions_ax = pain_ax.twinx()
    # Bars live on the twin axis but must sit behind the pain marks, so the pain axis goes
    # on top with a transparent background.
    pain_ax.set_zorder(sessions_ax.get_zorder() + 1)
    pain_ax.patch.set_visible(False)

    fig.text(0.075, 0.935, title, fontsize=22, fontweight="bold", ha="left", va="center")

    n = len(series.days)
    xs = list(range(n))
    pain_ax.set_ylim(-0.3, 10.3)
    pain_ax.set_yticks(range(0, 11, 2))
    pain_ax.set_ylabel("Pain (0-10)", fontsize=15)
    pain_ax.tick_params(axis="y", labelsize=14)
    pain_ax.axhspan(0, OK_ZONE_MAX, color=_OK_COLOUR, alpha=0.09, lw=0)
    pain_ax.grid(axis="y", color="#e5e5e5", lw=0.8)
    for side in ("top", "right"):
        pain_ax.spines[side].set_visible(False)
    for side in ("top", "left"):
        sessions_ax.spines[side].set_visible(False)

    if n:
        pain_ax.set_xlim(-0.6, n - 0.4)
        pain_ax.set_xticks(xs)
        pain_ax.set_xticklabels([_day_label(d) for d in series.days], fontsize=12)
        sessions = series.sessions_done
        sessions_ax.bar(xs, sessions, width=0.7, color=_SESSIONS_COLOUR, zorder=1)
        # Keep bars in the lower part of the chart so they never hide the pain marks.
        top = max(3, *sessions) if sessions else 3
        sessions_ax.set_ylim(0, top * 2.2)
        pain_ax.plot(
            xs,
            _as_floats(series.morning_pain),
            color=_MORNING_COLOUR,
            lw=2.5,
            marker="o",
            markersize=8,
            zorder=3,
        )
        pain_ax.plot(
            # Nudged right so a run score equal to that morning's does not hide it.
            [x + _RUN_NUDGE for x in xs],
            _as_floats(series.run_pain),
            linestyle="none",
            color=_RUN_COLOUR,
            marker="D",
            markersize=9,
            markeredgecolor="white",
            zorder=4,
        )
    else:
        pain_ax.set_xticks([])
        sessions_ax.set_ylim(0, 3 * 2.2)

    sessions_ax.set_ylabel("Exercises done", fontsize=15, color="#5f6f7c")
    sessions_ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    sessions_ax.tick_params(axis="y", labelsize=13, colors="#5f6f7c")

    if series.is_empty:
        pain_ax.text(
            0.5,
            0.55,
            "No check-ins yet",
            transform=pain_ax.transAxes,
            fontsize=22,
            color="#777777",
            ha="center",
            va="center",
        )

    handles = [
        Line2D([], [], color=_MORNING_COLOUR, lw=2.5, marker="o", markersize=8),
        Line2D([], [], color=_RUN_COLOUR, ls="none", marker="D", markersize=9),
        Patch(color=_SESSIONS_COLOUR),
        Patch(color=_OK_COLOUR, alpha=0.2),
    ]
    labels = ["Morning pain", "Pain during run", "Exercises done", "OK zone (0-3)"]
    fig.legend(
        handles,
        labels,
        loc="center right",
        bbox_to_anchor=(0.925, 0.855),
        ncol=4,
        fontsize=13,
        handletextpad=0.4,
        columnspacing=1.2,
        frameon=False,
    )

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white")
    return buffer.getvalue()
