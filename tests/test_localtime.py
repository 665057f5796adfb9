"""Stories about when a runner's daily check-in fires, wherever and whenever they live."""

from __future__ import annotations

import time as perf
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.engine.localtime import (
    COMMON_TIMEZONES,
    format_local,
    local_date,
    next_occurrence,
    parse_clock,
    to_local,
    valid_timezone,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
SYDNEY = "Australia/Sydney"
KOLKATA = "Asia/Kolkata"
CHATHAM = "Pacific/Chatham"
LORD_HOWE = "Australia/Lord_Howe"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def walk(
    local: time,
    tz: str,
    start: datetime,
    count: int,
    *,
    days: frozenset[int] | None = None,
) -> list[datetime]:
    """The next `count` firings, each computed from the previous one like the scheduler."""
    fired: list[datetime] = []
    after = start
    for _ in range(count):
        after = next_occurrence(local, tz, after, days=days)
        fired.append(after)
    return fired


# --- a Berlin runner at 07:30 -------------------------------------------------------------


def test_berlin_runner_gets_exactly_one_check_in_each_day_at_0730_through_both_dst_changes() -> (
    None
):
    fired = walk(time(7, 30), BERLIN, utc(2026, 3, 1), 300)
    local = [to_local(f, BERLIN) for f in fired]

    assert all(f.tzinfo is UTC for f in fired)
    assert all(x.time() == time(7, 30) for x in local)
    dates = [x.date() for x in local]
    assert dates == [date(2026, 3, 1) + timedelta(days=i) for i in range(300)]
    # The UTC instant moves with the clocks: 06:30 in winter, 05:30 in summer.
    by_date = dict(zip(dates, fired, strict=True))
    assert by_date[date(2026, 3, 28)] == utc(2026, 3, 28, 6, 30)
    assert by_date[date(2026, 3, 29)] == utc(2026, 3, 29, 5, 30)
    assert by_date[date(2026, 10, 24)] == utc(2026, 10, 24, 5, 30)
    assert by_date[date(2026, 10, 25)] == utc(2026, 10, 25, 6, 30)


def test_a_time_lost_to_spring_forward_fires_when_the_clock_lands_at_0300() -> None:
    fired = next_occurrence(time(2, 30), BERLIN, utc(2026, 3, 28, 12))

    assert fired == utc(2026, 3, 29, 1, 0)
    assert to_local(fired, BERLIN).time() == time(3, 0)
    # And the day after, the runner is back to 02:30.
    assert to_local(next_occurrence(time(2, 30), BERLIN, fired), BERLIN) == datetime(
        2026, 3, 30, 2, 30, tzinfo=ZoneInfo(BERLIN)
    )


def test_a_time_that_happens_twice_at_fall_back_fires_once_at_the_first() -> None:
    first = next_occurrence(time(2, 30), BERLIN, utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, before the clocks go back

    second_would_be = utc(2026, 10, 25, 1, 30)  # 02:30 CET
    next_day = utc(2026, 10, 26, 1, 30)
    assert next_occurrence(time(2, 30), BERLIN, first) == next_day
    # Asking from anywhere in the repeated hour never gives the second 02:30 either.
    for minutes in (1, 30, 59, 61):
        assert next_occurrence(time(2, 30), BERLIN, first + timedelta(minutes=minutes)) == (
            next_day
        )
    assert second_would_be not in walk(time(2, 30), BERLIN, utc(2026, 10, 20), 10)


def test_tuesday_thursday_club_run_at_1745_in_berlin() -> None:
    tue_thu = frozenset({1, 3})
    fired = walk(time(17, 45), BERLIN, utc(2026, 3, 23), 4, days=tue_thu)

    assert fired == [
        utc(2026, 3, 24, 16, 45),  # Tue, CET
        utc(2026, 3, 26, 16, 45),  # Thu, CET
        utc(2026, 3, 31, 15, 45),  # Tue, CEST after the change on Sunday
        utc(2026, 4, 2, 15, 45),  # Thu
    ]
    assert [format_local(f, BERLIN) for f in fired[:2]] == [
        "Tue 17:45 (Europe/Berlin)",
        "Thu 17:45 (Europe/Berlin)",
    ]


# --- New York, Sydney, Kolkata, Chatham, Lord Howe ----------------------------------------


def test_new_york_runner_through_march_8_and_november_1_2026() -> None:
    assert next_occurrence(time(7, 0), NEW_YORK, utc(2026, 3, 7, 13)) == utc(2026, 3, 8, 11)
    # 02:30 does not exist on March 8: the clock jumps from 02:00 to 03:00 EDT.
    assert next_occurrence(time(2, 30), NEW_YORK, utc(2026, 3, 7, 12)) == utc(2026, 3, 8, 7)
    # 01:30 happens twice on November 1: first in EDT (05:30 UTC), then in EST.
    first = next_occurrence(time(1, 30), NEW_YORK, utc(2026, 10, 31, 12))
    assert first == utc(2026, 11, 1, 5, 30)
    assert next_occurrence(time(1, 30), NEW_YORK, first) == utc(2026, 11, 2, 6, 30)


def test_sydney_runner_in_the_southern_hemisphere() -> None:
    # DST ends on 5 April 2026 (03:00 AEDT -> 02:00 AEST).
    mornings = walk(time(7, 30), SYDNEY, utc(2026, 4, 3, 12), 3)
    assert mornings == [utc(2026, 4, 3, 20, 30), utc(2026, 4, 4, 21, 30), utc(2026, 4, 5, 21, 30)]
    first = next_occurrence(time(2, 30), SYDNEY, utc(2026, 4, 4, 6))
    assert first == utc(2026, 4, 4, 15, 30)  # the 02:30 AEDT, not the 02:30 AEST an hour later
    assert next_occurrence(time(2, 30), SYDNEY, first) == utc(2026, 4, 5, 16, 30)
    # DST starts on 4 October 2026 (02:00 AEST -> 03:00 AEDT).
    gap = next_occurrence(time(2, 30), SYDNEY, utc(2026, 10, 3, 6))
    assert gap == utc(2026, 10, 3, 16, 0)
    assert to_local(gap, SYDNEY).time() == time(3, 0)


def test_kolkata_runner_is_always_at_the_same_utc_time() -> None:
    fired = walk(time(7, 30), KOLKATA, utc(2026, 1, 1), 366)
    assert {(f.hour, f.minute) for f in fired} == {(2, 0)}  # +05:30, no DST
    assert to_local(fired[0], KOLKATA).date() == date(2026, 1, 1)


def test_chatham_islands_gap_from_0245_to_0345_on_27_september_2026() -> None:
    # 02:45 +12:45 becomes 03:45 +13:45 at 14:00 UTC on the 26th.
    for wanted in (time(2, 45), time(3, 0), time(3, 44)):
        fired = next_occurrence(wanted, CHATHAM, utc(2026, 9, 26))
        assert fired == utc(2026, 9, 26, 14, 0)
        assert to_local(fired, CHATHAM).time() == time(3, 45)
    assert to_local(next_occurrence(time(3, 45), CHATHAM, utc(2026, 9, 26)), CHATHAM) == (
        datetime(2026, 9, 27, 3, 45, tzinfo=ZoneInfo(CHATHAM))
    )
    assert next_occurrence(time(2, 44), CHATHAM, utc(2026, 9, 26)) == utc(2026, 9, 26, 13, 59)


def test_chatham_islands_repeated_hour_on_5_april_2026_fires_once() -> None:
    first = next_occurrence(time(3, 0), CHATHAM, utc(2026, 4, 4))
    assert first == utc(2026, 4, 4, 13, 15)  # 03:00 at +13:45
    assert to_local(first, CHATHAM).utcoffset() == timedelta(hours=13, minutes=45)
    following = next_occurrence(time(3, 0), CHATHAM, first)
    assert following == utc(2026, 4, 5, 14, 15)  # 6 April 03:00 at +12:45, a day later
    assert to_local(following, CHATHAM).date() == date(2026, 4, 6)


def test_lord_howe_island_half_hour_dst_shift() -> None:
    # 4 October 2026: 02:00 +10:30 -> 02:30 +11.
    gap = next_occurrence(time(2, 15), LORD_HOWE, utc(2026, 10, 3))
    assert to_local(gap, LORD_HOWE).time() == time(2, 30)
    assert gap == utc(2026, 10, 3, 15, 30)
    # 5 April 2026: 02:00 +11 -> 01:30 +10:30, so 01:45 happens twice.
    first = next_occurrence(time(1, 45), LORD_HOWE, utc(2026, 4, 4))
    assert first == utc(2026, 4, 4, 14, 45)
    assert next_occurrence(time(1, 45), LORD_HOWE, first) == utc(2026, 4, 5, 15, 15)


def test_runner_who_flies_to_new_york_on_the_morning_us_clocks_change() -> None:
    # Set up in Berlin, then switches to New York at 05:00 UTC on 8 March 2026 (midnight
    # in New York, two hours before the change). The next check-in is computed afresh.
    changed_at = utc(2026, 3, 8, 5)
    fired = next_occurrence(time(7, 30), NEW_YORK, changed_at)
    assert fired == utc(2026, 3, 8, 11, 30)  # 07:30 EDT, not 12:30 (EST arithmetic)
    assert local_date(fired, NEW_YORK) == date(2026, 3, 8)


def test_runner_who_moves_to_berlin_on_the_day_berlin_springs_forward() -> None:
    changed_at = utc(2026, 3, 29, 0, 30)  # 01:30 CET, before the 02:00 jump
    assert next_occurrence(time(7, 30), BERLIN, changed_at) == utc(2026, 3, 29, 5, 30)
    assert next_occurrence(time(2, 15), BERLIN, changed_at) == utc(2026, 3, 29, 1, 0)


def test_after_may_be_given_in_any_zone_and_seconds_are_ignored() -> None:
    after_in_tokyo = datetime(2026, 6, 1, 14, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 05:00 UTC
    fired = next_occurrence(time(7, 30, 45, 9), BERLIN, after_in_tokyo)
    assert fired == utc(2026, 6, 1, 5, 30)


def test_the_same_instant_is_not_returned_twice() -> None:
    at = utc(2026, 6, 1, 5, 30)  # exactly 07:30 in Berlin
    assert next_occurrence(time(7, 30), BERLIN, at) == utc(2026, 6, 2, 5, 30)


def test_america_nuuk_gap_across_midnight_still_gives_one_check_in_per_local_day() -> None:
    # On 28 March 2026 Nuuk jumps from 23:00 straight to 00:00 on the 29th.
    fired = walk(time(23, 30), "America/Nuuk", utc(2026, 3, 27, 12), 4)
    local = [to_local(f, "America/Nuuk") for f in fired]
    assert [(x.date(), x.time()) for x in local] == [
        (date(2026, 3, 27), time(23, 30)),
        (date(2026, 3, 29), time(0, 0)),  # the 28th's check-in, first minute after the gap
        (date(2026, 3, 30), time(23, 30)),
        (date(2026, 3, 31), time(23, 30)),
    ]


@pytest.mark.parametrize(
    ("after", "days"),
    [
        (datetime(2026, 1, 1, 7, 30), None),  # naive: would silently use server time
        (utc(2026, 1, 1), frozenset()),
        (utc(2026, 1, 1), frozenset({7})),
        (utc(2026, 1, 1), frozenset({-1})),
    ],
)
def test_programming_mistakes_are_refused_loudly(
    after: datetime, days: frozenset[int] | None
) -> None:
    with pytest.raises(ValueError):
        next_occurrence(time(7, 30), BERLIN, after, days=days)


# --- helpers for display ------------------------------------------------------------------


def test_local_date_and_format_follow_the_runners_zone() -> None:
    late_saturday_utc = utc(2026, 3, 28, 23, 30)
    assert local_date(late_saturday_utc, BERLIN) == date(2026, 3, 29)
    assert local_date(late_saturday_utc, NEW_YORK) == date(2026, 3, 28)
    assert format_local(utc(2026, 3, 26, 6, 30), BERLIN) == "Thu 07:30 (Europe/Berlin)"
    assert to_local(late_saturday_utc, KOLKATA).utcoffset() == timedelta(hours=5, minutes=30)


def test_common_timezones_are_all_real_and_canonical() -> None:
    assert len(COMMON_TIMEZONES) == 8
    assert all(valid_timezone(z) == z for z in COMMON_TIMEZONES)


# --- what runners type --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("7:30", time(7, 30)),
        ("07:30", time(7, 30)),
        ("0730", time(7, 30)),
        ("7.30", time(7, 30)),
        ("7", time(7, 0)),
        ("7am", time(7, 0)),
        ("7 AM", time(7, 0)),
        ("7:30 pm", time(19, 30)),
        ("7:30PM", time(19, 30)),
        ("19:30", time(19, 30)),
        ("noon", time(12, 0)),
        ("Noon ", time(12, 0)),
        ("12am", time(0, 0)),
        ("12:15 pm", time(12, 15)),
        ("0:00", time(0, 0)),
        ("23:59", time(23, 59)),
    ],
)
def test_runner_types_a_time_the_way_people_do(typed: str, expected: time) -> None:
    assert parse_clock(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "25:00",
        "24:00",
        "7:60",
        "19pm",
        "0am",
        "abc",
        "",
        "   ",
        "7:3",
        "7::30",
        "tomorrow 7",
        "٧:٣٠",
        "7:30\x00",
        "-7:30",
        "7,5",
    ],
)
def test_things_that_are_not_a_time_are_not_guessed(typed: str) -> None:
    assert parse_clock(typed) is None


def test_a_pasted_wall_of_junk_is_rejected_quickly() -> None:
    junk = "7:30" + "x" * 10_000
    started = perf.perf_counter()
    assert parse_clock(junk) is None
    assert parse_clock("9" * 10_000) is None
    assert perf.perf_counter() - started < 0.05


@given(st.text(max_size=200))
def test_parse_clock_never_raises(text: str) -> None:
    result = parse_clock(text)
    assert result is None or isinstance(result, time)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("America/New York", "America/New_York"),
        ("  america / new york ", "America/New_York"),
        ("UTC", "UTC"),
        ("Asia/Kolkata", "Asia/Kolkata"),
        ("Pacific/Chatham", "Pacific/Chatham"),
    ],
)
def test_runner_names_a_timezone_loosely(typed: str, expected: str) -> None:
    assert valid_timezone(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "Berlin",
        "Europe/Atlantis",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe/Berlin\x00",
        "localtime",
        "x" * 10_000,
        "Europe/",
        "🏃",
    ],
)
def test_things_that_are_not_a_timezone_are_rejected(typed: str) -> None:
    assert valid_timezone(typed) is None


@given(st.text(max_size=100))
def test_valid_timezone_never_raises(text: str) -> None:
    result = valid_timezone(text)
    assert result is None or ZoneInfo(result).key == result


# --- properties over every zone -----------------------------------------------------------

ZONES = sorted(z for z in available_timezones() if valid_timezone(z) == z)
WINDOW_START = utc(2025, 1, 1)
WINDOW_END = utc(2028, 12, 31)

zones = st.sampled_from(ZONES)
clock_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
afters = st.datetimes(
    min_value=WINDOW_START.replace(tzinfo=None),
    max_value=WINDOW_END.replace(tzinfo=None),
    timezones=st.just(UTC),
)
weekday_sets = st.none() | st.frozensets(st.integers(0, 6), min_size=1)


def _stands_for(fired: datetime, wanted: time, tz: str) -> date | None:
    """The local date whose `wanted` time `fired` represents, or None if it is neither that
    wall time nor the first minute after a gap that swallowed it."""
    zone = ZoneInfo(tz)
    local = fired.astimezone(zone)
    if local.time() == wanted:
        return local.date()
    just_before = (fired - timedelta(seconds=1)).astimezone(zone)
    if just_before.utcoffset() == local.utcoffset() or local.second:
        return None  # not at a transition, so it is simply the wrong time
    for day in (local.date(), local.date() - timedelta(days=1)):
        intended = datetime.combine(day, wanted)
        if just_before.replace(tzinfo=None) < intended < local.replace(tzinfo=None):
            return day
    return None


@settings(max_examples=300, deadline=None)
@given(tz=zones, wanted=clock_times, after=afters, days=weekday_sets)
def test_any_zone_any_time_fires_soon_after_at_the_right_wall_time(
    tz: str, wanted: time, after: datetime, days: frozenset[int] | None
) -> None:
    fired = next_occurrence(wanted, tz, after, days=days)

    assert fired.utcoffset() == timedelta(0)
    assert fired > after
    assert fired < after + (timedelta(days=2) if days is None else timedelta(days=8))
    intended = _stands_for(fired, wanted, tz)
    assert intended is not None
    if days is not None:
        assert intended.weekday() in days


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tz=zones, wanted=clock_times, after=afters, days=weekday_sets)
@example(tz="America/Nuuk", wanted=time(23, 30), after=utc(2026, 1, 1), days=None)
@example(tz="America/Nuuk", wanted=time(23, 0), after=utc(2026, 1, 1), days=frozenset({5, 6}))
@example(tz="Antarctica/Troll", wanted=time(1, 30), after=utc(2026, 1, 1), days=None)
@example(tz=CHATHAM, wanted=time(3, 0), after=utc(2026, 1, 1), days=None)
def test_a_year_of_firings_increases_with_at_most_one_per_local_day(
    tz: str, wanted: time, after: datetime, days: frozenset[int] | None
) -> None:
    fired = walk(wanted, tz, after, 400, days=days)

    assert all(a < b for a, b in pairwise(fired))
    local_dates = [local_date(f, tz) for f in fired]
    assert len(set(local_dates)) == len(local_dates)
    assert all(_stands_for(f, wanted, tz) is not None for f in fired)
