"""Calendar dates a person types ("2 weeks", "until 12 Jan", "till monday"), and the one
short way the coach writes a date back ("Mon 12 Jan").

Pure and bounded: `today` is passed in (the runner's local date), input longer than a
short phrase is not read, and every number is length-checked before it is converted.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from bot.engine.parse import NUMBER_WORDS

MAX_INPUT = 40  # "until the 12th of January 2027" fits; longer is not a date
MAX_AHEAD = timedelta(days=366)  # a pause longer than a year is a typo, not a plan

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = tuple(m.capitalize() for m in _MONTHS)
# "a week", "an hour" as well as the counts a person types in words.
_NUMBER_WORDS = {**NUMBER_WORDS, "a": 1, "an": 1}
_UNITS = {"d": 1, "day": 1, "days": 1, "w": 7, "wk": 7, "wks": 7, "week": 7, "weeks": 7}
_LEAD = re.compile(r"^(?:for|until|till|til|to|up to|on|the)\s+")
_SPAN = re.compile(r"^(\d{1,3}|[a-z]+)\s*(d|days?|w|wks?|weeks?|months?)$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_MONTH = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+([a-z]{3,9})\.?(?:\s+(\d{4}))?$")
_MONTH_DAY = re.compile(r"^([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$")


def format_day(day: date) -> str:
    """E.g. "Mon 12 Jan" (fixed English names: strftime follows the process locale)."""
    return f"{_WEEKDAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]}"


def parse_until(text: str, today: date) -> date | None:
    """The first day after a pause that `text` names, strictly after `today` and within a
    year: "2 weeks" (today + 14), "10 days", "a month", "tomorrow", "monday" (the next
    one), "12 Jan", "jan 12th", "12 January 2027", "2027-01-12". A day and month without a
    year that has passed this year means next year's. None when it is not such a date."""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        return None
    cleaned = re.sub(r"\s+", " ", text.strip().lower())
    while True:
        stripped = _LEAD.sub("", cleaned)
        if stripped == cleaned:
            break
        cleaned = stripped
    found = _read(cleaned, today)
    if found is None or not today < found <= today + MAX_AHEAD:
        return None
    return found


def _read(text: str, today: date) -> date | None:
    if text == "tomorrow":
        return today + timedelta(days=1)
    if text in ("next week", "a week"):
        return today + timedelta(days=7)
    weekday = _weekday(text.removeprefix("next "))
    if weekday is not None:
        ahead = (weekday - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    span = _SPAN.match(text)
    if span:
        count = _count(span.group(1))
        if count is None:
            return None
        unit = span.group(2)
        if unit.startswith("month"):
            return _add_months(today, count)
        return today + timedelta(days=count * _UNITS[unit])
    iso = _ISO.match(text)
    if iso:
        return _date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    for pattern, day_group, month_group in ((_DAY_MONTH, 1, 2), (_MONTH_DAY, 2, 1)):
        match = pattern.match(text)
        if not match:
            continue
        month = _month(match.group(month_group))
        if month is None:
            return None
        day = int(match.group(day_group))
        if match.group(3):
            return _date(int(match.group(3)), month, day)
        found = _date(today.year, month, day)
        if found is not None and found <= today:
            found = _date(today.year + 1, month, day)
        return found
    return None


def _count(word: str) -> int | None:
    if word.isascii() and word.isdigit():
        return int(word) if len(word) <= 3 else None
    return _NUMBER_WORDS.get(word)


def _weekday(word: str) -> int | None:
    for n, name in enumerate(_WEEKDAYS):
        full = calendar.day_name[n].lower()
        if word in (name, full) or (len(word) >= 3 and full.startswith(word)):
            return n
    return None


def _month(word: str) -> int | None:
    for n, name in enumerate(_MONTHS, start=1):
        full = calendar.month_name[n].lower()
        if word == full or (word[:3] == name and full.startswith(word)):
            return n
    return None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _add_months(day: date, months: int) -> date | None:
    if months > 12:
        return None
    year, month = divmod(day.month - 1 + months, 12)
    last = calendar.monthrange(day.year + year, month + 1)[1]
    return date(day.year + year, month + 1, min(day.day, last))
