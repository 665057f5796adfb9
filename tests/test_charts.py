"""Stories about the four-week progress picture a runner asks for with /progress."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from io import BytesIO
from typing import Any

import matplotlib.image
import matplotlib.pyplot as plt
import pytest
from numpy.typing import NDArray

from bot.charts import DayPoint, build_series, render_progress_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TODAY = date(2026, 6, 4)


def four_weeks_of_recovery() -> list[DayPoint]:
    """A runner settling from 6/10 to 1/10, running every other day, skipping some days."""
    points = []
    for i in range(28):
        day = TODAY - timedelta(days=27 - i)
        if i in (5, 6, 13):
            continue  # no check-in at all
        morning = max(0, 6 - i // 5)
        run = morning + 1 if i % 2 == 0 else None
        points.append(DayPoint(day, morning, run, sessions_done=i % 4))
    return points


def decode(png: bytes) -> NDArray[Any]:  # (height, width, channels)
    return matplotlib.image.imread(BytesIO(png), format="png")


def test_runner_gets_a_real_phone_sized_picture_of_four_weeks() -> None:
    png = render_progress_chart(four_weeks_of_recovery())

    assert png.startswith(PNG_SIGNATURE)
    height, width = decode(png).shape[:2]
    assert 560 <= height <= 640
    assert 960 <= width <= 1040


def test_new_runner_with_no_check_ins_still_gets_a_picture() -> None:
    png = render_progress_chart([])
    assert png.startswith(PNG_SIGNATURE)
    assert decode(png).shape[:2] == (600, 1000)


def test_runner_after_their_first_check_in_gets_a_picture() -> None:
    png = render_progress_chart([DayPoint(TODAY, 4, None, 2)], title="Your first day")
    assert png.startswith(PNG_SIGNATURE)


def test_days_without_a_check_in_are_gaps_not_pain_free_days() -> None:
    points = [
        DayPoint(TODAY - timedelta(days=2), 5, 6, 3),
        DayPoint(TODAY, 0, None, 0),  # a genuine zero, logged
    ]
    series = build_series(points)

    assert len(series.days) == 28
    assert series.days[-1] == TODAY
    assert series.days[0] == TODAY - timedelta(days=27)
    assert series.morning_pain[-3:] == (5, None, 0)
    assert series.run_pain[-3:] == (6, None, None)
    assert series.sessions_done[-3:] == (3, 0, 0)
    assert series.morning_pain[:25] == (None,) * 25


def test_window_can_end_on_the_runners_today_to_show_recent_silence() -> None:
    series = build_series(
        [
            DayPoint(TODAY - timedelta(days=30), 3, None, 1),
            DayPoint(TODAY - timedelta(days=10), 4, None, 1),
        ],
        end=TODAY,
    )
    assert series.days[-1] == TODAY
    assert series.morning_pain.count(4) == 1
    assert 3 not in series.morning_pain  # older than 28 days: left out


def test_no_points_means_an_empty_series() -> None:
    series = build_series([])
    assert series.days == ()
    assert series.is_empty


@pytest.mark.parametrize("days", [0, -1])
def test_a_window_needs_at_least_one_day(days: int) -> None:
    with pytest.raises(ValueError):
        build_series([], end=TODAY, days=days)


def test_rendering_leaves_no_pyplot_figures_behind() -> None:
    plt.close("all")
    for _ in range(3):
        render_progress_chart(four_weeks_of_recovery())
    assert plt.get_fignums() == []


def test_two_chats_can_ask_for_charts_at_the_same_time() -> None:
    results: list[bytes] = []
    errors: list[BaseException] = []

    def draw() -> None:
        try:
            results.append(render_progress_chart(four_weeks_of_recovery()))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(results) == 4
    assert all(r.startswith(PNG_SIGNATURE) for r in results)
