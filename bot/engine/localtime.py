"""Local wall-clock times in IANA zones, without surprises around DST changes.

A runner's intent is "07:30 where I live", stored as a zone name plus a local time. The
scheduler stores the next firing as a UTC instant, and this module is the one place that
turns intent into instants. Rules (see DESIGN.md): a time that does not exist on a
spring-forward day fires at the first valid minute after the gap; a time that exists twice
on a fall-back day fires once, at its first occurrence.

Everything here is pure: no clock reads, `after` is passed in.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

__all__ = [
    "COMMON_TIMEZONES",
    "format_local",
    "local_date",
    "next_occurrence",
    "parse_clock",
    "to_local",
    "valid_timezone",
    "zone_for_city",
]

# Offered as one-tap buttons; anything else is typed or comes from the platform (Slack `tz`).
COMMON_TIMEZONES: tuple[str, ...] = (
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Asia/Tokyo",
)

# Fixed English names: strftime("%a") follows the process locale, which we do not control.
_WEEKDAY_ABBR: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# A weekday filter can skip up to six days, and a gap can push a time past midnight; the
# window leaves room for both so the loop below always finds an answer.
_SEARCH_DAYS = 10


def _zone(tz: str) -> ZoneInfo:
    # ZoneInfo caches instances per key itself, so this is cheap on every call.
    return ZoneInfo(tz)


def _require_aware(instant: datetime) -> None:
    # A naive datetime would silently be read as the server's local time; refuse instead.
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("expected an aware datetime (with tzinfo)")


def to_local(instant: datetime, tz: str) -> datetime:
    """The wall-clock reading of `instant` in zone `tz` (aware, tzinfo = that zone)."""
    _require_aware(instant)
    return instant.astimezone(_zone(tz))


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date in zone `tz` at `instant` (e.g. for "one check-in per local day")."""
    return to_local(instant, tz).date()


def format_local(instant: datetime, tz: str) -> str:
    """Short human form, e.g. "Thu 07:30 (Europe/Berlin)"."""
    local = to_local(instant, tz)
    return f"{_WEEKDAY_ABBR[local.weekday()]} {local:%H:%M} ({tz})"


def _first_instant_after_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant that skipped over the nonexistent wall time `wall`.

    For a time inside a gap, fold=0 maps with the offset before the transition and fold=1
    with the offset after it, so the two UTC readings bracket the transition. Local time
    is below `wall` before the transition and above it after, which makes the transition
    the first instant whose local reading passes `wall`: a plain bisection finds it.
    """
    naive = wall.replace(tzinfo=None)
    a = wall.replace(fold=0).astimezone(UTC)
    b = wall.replace(fold=1).astimezone(UTC)
    lo, hi = min(a, b), max(a, b)
    # Invariant: local(lo) < wall (or lo is the bracket start), local(hi) > wall.
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            break
        if mid.astimezone(zone).replace(tzinfo=None) > naive:
            hi = mid
        else:
            lo = mid
    # Modern transitions sit on whole minutes; rounding up keeps old LMT-era data honest
    # about "first valid minute" without ever landing back inside the gap.
    if hi.second or hi.microsecond:
        hi = hi.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return hi


def _occurrence_on(day: date, local: time, zone: ZoneInfo) -> datetime:
    """The single UTC instant at which `local` fires on local date `day`."""
    wall = datetime.combine(day, local, tzinfo=zone)  # fold=0: first of an ambiguous pair
    instant = wall.astimezone(UTC)
    round_trip = instant.astimezone(zone).replace(tzinfo=None)
    if round_trip == wall.replace(tzinfo=None):
        return instant
    return _first_instant_after_gap(wall, zone)


def next_occurrence(
    local: time,
    tz: str,
    after: datetime,
    *,
    days: frozenset[int] | None = None,
) -> datetime:
    """First instant strictly after `after` at which the clock in `tz` shows `local`.

    Seconds and any tzinfo on `local` are ignored. `days` limits firing to those weekdays
    (0=Mon .. 6=Sun). A nonexistent local time fires at the first valid minute after the
    gap; an ambiguous one fires only at its first occurrence, so asking again from that
    instant gives the next day's. Returns an aware UTC datetime.

    Raises ValueError for a naive `after` or a bad `days` set, and the zoneinfo error for
    an unknown zone (callers validate zone names with `valid_timezone` first).
    """
    _require_aware(after)
    if days is not None:
        if not days:
            raise ValueError("days must not be empty (use None for every day)")
        if any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise ValueError("days must be weekday numbers 0 (Mon) .. 6 (Sun)")
    zone = _zone(tz)
    clock = time(local.hour, local.minute)
    after_utc = after.astimezone(UTC)
    # Start a day early: a time pushed past midnight by a gap belongs to the previous date.
    start = after_utc.astimezone(zone).date() - timedelta(days=1)
    for offset in range(_SEARCH_DAYS):
        day = start + timedelta(days=offset)
        if not _fires_on(day, days):
            continue
        candidate = _occurrence_on(day, clock, zone)
        if _local_day(candidate, zone) == day and _spilled_into(day, clock, zone, days):
            # Yesterday's time fell in a gap that ended after midnight, so today already
            # had its one check-in at the first valid minute; a second would break the
            # scheduler's one-per-local-day promise (and its idempotency key).
            continue
        if candidate > after_utc:
            return candidate
    # Unreachable with real tz data (every week has each weekday); fail loudly, not silently.
    raise RuntimeError(f"no occurrence of {clock} in {tz} within {_SEARCH_DAYS} days")


def _fires_on(day: date, days: frozenset[int] | None) -> bool:
    return days is None or day.weekday() in days


def _local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def _spilled_into(day: date, clock: time, zone: ZoneInfo, days: frozenset[int] | None) -> bool:
    """Whether the previous day's occurrence was pushed past midnight onto `day`.

    Only happens where a spring-forward gap spans midnight (e.g. America/Nuuk jumps from
    23:00 to 00:00), and only for clock times inside that gap.
    """
    previous = day - timedelta(days=1)
    if not _fires_on(previous, days):
        return False
    return _local_day(_occurrence_on(previous, clock, zone), zone) == day


# --- user input ---------------------------------------------------------------------------

_MAX_CLOCK_INPUT = 16  # "12:30 p.m." and friends fit; anything longer is not a clock time
_CLOCK_RE = re.compile(
    r"(?P<h>[0-9]{1,2})(?:[:.h]?(?P<m>[0-9]{2}))?\s*(?P<ampm>a\.?m\.?|p\.?m\.?|a|p)?",
    re.ASCII,
)
_WORDS = {"noon": time(12, 0), "midday": time(12, 0), "midnight": time(0, 0)}


def parse_clock(text: str) -> time | None:
    """Read a time of day typed by a person: "7:30", "0730", "7.30", "7am", "7:30 pm",
    "19:30", "noon". Returns None for anything that is not clearly a valid time."""
    if not isinstance(text, str) or len(text) > _MAX_CLOCK_INPUT:
        # Length check first so a pasted essay costs nothing.
        return None
    cleaned = text.strip().lower()
    if cleaned in _WORDS:
        return _WORDS[cleaned]
    match = _CLOCK_RE.fullmatch(cleaned)
    if match is None:
        return None
    hour = int(match["h"])
    minute = int(match["m"]) if match["m"] else 0
    if minute > 59:
        return None
    ampm = match["ampm"]
    if ampm:
        if not 1 <= hour <= 12:
            return None  # "19pm" or "0am" is a typo we should not guess at
        if ampm.startswith("a"):
            hour = 0 if hour == 12 else hour
        else:
            hour = 12 if hour == 12 else hour + 12
    elif hour > 23:
        return None
    return time(hour, minute)


# Present in some system zoneinfo directories but not zones anyone lives in.
_NOT_USER_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_MAX_TZ_INPUT = 64  # the longest IANA key is ~32 characters


@lru_cache(maxsize=1)
def _zone_keys_by_folded_name() -> dict[str, str]:
    # available_timezones() walks the filesystem; do it once per process.
    return {key.casefold(): key for key in available_timezones() if key not in _NOT_USER_ZONES}


@lru_cache(maxsize=1)
def _zones_by_city() -> dict[str, str]:
    """The last part of each zone name, lower-cased ("berlin"), to the first zone in
    alphabetical order that ends with it ("Europe/Berlin"). Built once, like the name index."""
    index: dict[str, str] = {}
    for key in sorted(_zone_keys_by_folded_name().values()):
        index.setdefault(key.rsplit("/", 1)[-1].lower(), key)
    return index


def zone_for_city(city: str) -> str | None:
    """The zone named after a city ("new_york" -> "America/New_York"), or None."""
    return _zones_by_city().get(city)


def valid_timezone(name: str) -> str | None:
    """The canonical IANA key for `name` ("europe/berlin", "America/New York" and "UTC"
    are fine), or None if it is not a real zone. Never raises."""
    if not isinstance(name, str) or len(name) > _MAX_TZ_INPUT or not name.isprintable():
        return None
    # Only ever used as a dictionary lookup, so path tricks like "../" cannot reach a file.
    folded = re.sub(r"\s*/\s*", "/", name.strip())
    folded = re.sub(r"\s+", "_", folded).casefold()
    return _zone_keys_by_folded_name().get(folded)
