"""Stories about telling a runner which country their timezone points at."""

from __future__ import annotations

from zoneinfo import available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.engine.regions import country_for_timezone, country_name


@pytest.mark.parametrize(
    ("tz", "country"),
    [
        ("Europe/Berlin", "DE"),
        ("Europe/London", "GB"),
        ("America/New_York", "US"),
        ("America/Los_Angeles", "US"),
        ("Asia/Kolkata", "IN"),
        ("Australia/Sydney", "AU"),
        ("Australia/Lord_Howe", "AU"),
        ("Pacific/Chatham", "NZ"),
        ("Asia/Tokyo", "JP"),
    ],
)
def test_runner_in_a_well_known_zone_is_placed_in_the_right_country(tz: str, country: str) -> None:
    assert country_for_timezone(tz) == country


@pytest.mark.parametrize(
    ("old_name", "country"),
    [
        ("Asia/Calcutta", "IN"),  # the name many phones and old Slack profiles still send
        ("US/Eastern", "US"),
        ("US/Pacific", "US"),
        ("Europe/Kiev", "UA"),
        ("Australia/NSW", "AU"),
        ("NZ-CHAT", "NZ"),
        ("GB", "GB"),
        # Old names whose link now points at a look-alike zone in another country.
        ("Iceland", "IS"),
        ("Pacific/Truk", "FM"),
    ],
)
def test_old_zone_names_still_find_their_country(old_name: str, country: str) -> None:
    assert country_for_timezone(old_name) == country


def test_loosely_typed_zone_names_are_understood_like_in_settings() -> None:
    assert country_for_timezone("europe/berlin") == "DE"
    assert country_for_timezone("America/New York") == "US"


@pytest.mark.parametrize(
    "tz",
    [
        "UTC",
        "Etc/UTC",
        "Etc/GMT+5",
        "GMT",
        "Zulu",
        "EST",
        "CET",
        "PST8PDT",
        "junk",
        "",
        "../../etc/passwd",
        "Europe/Berlin\x00",
        "x" * 10_000,
    ],
)
def test_zones_without_a_country_and_junk_give_none(tz: str) -> None:
    assert country_for_timezone(tz) is None


def test_country_names_read_like_people_say_them() -> None:
    assert country_name("DE") == "Germany"
    assert country_name("in") == "India"
    assert country_name("GB") == "United Kingdom"
    assert country_name("ZZ") is None
    assert country_name("") is None


def test_every_real_zone_answers_without_raising_and_codes_have_names() -> None:
    for tz in available_timezones():
        code = country_for_timezone(tz)
        if code is not None:
            assert len(code) == 2 and code.isupper()
            assert country_name(code), f"{tz} -> {code} has no name"


@given(st.text(max_size=80))
def test_country_lookup_never_raises(text: str) -> None:
    code = country_for_timezone(text)
    assert code is None or len(code) == 2
