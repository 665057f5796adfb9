"""Which country a timezone belongs to, from the tz database's own tables.

Used to say "Germany (Europe/Berlin)" back to a runner and to pick sensible defaults; it is
a hint, never a decision, so unknown or country-less zones simply give None.

Data comes from the `tzdata` package (a declared dependency) so answers do not depend on the
host; the system's /usr/share/zoneinfo is a fallback for trimmed installs.
"""

from __future__ import annotations

import importlib.resources
from functools import lru_cache
from pathlib import Path

from bot.engine.localtime import valid_timezone

__all__ = ["country_for_timezone", "country_name"]

_SYSTEM_ZONEINFO = Path("/usr/share/zoneinfo")

# Old names whose link target, since tzdata merged look-alike zones in 2022, lives in another
# country (e.g. "Iceland" now links to Africa/Abidjan). These say where the name points.
_ALIAS_COUNTRY: dict[str, str | None] = {
    "Iceland": "IS",
    "Africa/Timbuktu": "ML",
    "Atlantic/Jan_Mayen": "SJ",
    "America/Coral_Harbour": "CA",
    "Antarctica/South_Pole": "AQ",
    "Pacific/Johnston": "UM",
    "Pacific/Ponape": "FM",
    "Pacific/Truk": "FM",
    "Pacific/Yap": "FM",
    # POSIX-style rule names describe an offset, not a place.
    "CET": None,
    "MET": None,
    "EET": None,
    "WET": None,
    "EST": None,
    "MST": None,
    "HST": None,
    "EST5EDT": None,
    "CST6CDT": None,
    "MST7MDT": None,
    "PST8PDT": None,
}
# iso3166.tab favours brevity; the one a runner would find odd is the UK's.
_NAME_OVERRIDES: dict[str, str] = {"GB": "United Kingdom"}
_MAX_LINK_HOPS = 4  # tzdata.zi links point straight at zones today; allow a little chaining


def _read_table(name: str) -> str | None:
    """Text of a tzdata table file, from the tzdata package or else the system copy."""
    try:
        resource = importlib.resources.files("tzdata").joinpath("zoneinfo", name)
        return resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, OSError):
        pass
    try:
        return (_SYSTEM_ZONEINFO / name).read_text(encoding="utf-8")
    except OSError:
        return None


def _rows(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [
        line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    # zone.tab columns: code, coordinates, zone name, optional comment.
    return {row[2]: row[0] for row in _rows(_read_table("zone.tab")) if len(row) >= 3}


@lru_cache(maxsize=1)
def _links() -> dict[str, str]:
    # The compact tzdata.zi lists every backward-compatible name as "L Target Alias".
    links: dict[str, str] = {}
    for line in (_read_table("tzdata.zi") or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            links[parts[2]] = parts[1]
    return links


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    return {row[0]: row[1] for row in _rows(_read_table("iso3166.tab")) if len(row) >= 2}


def country_for_timezone(tz: str) -> str | None:
    """ISO 3166 alpha-2 code of the country zone `tz` is in ("Europe/Berlin" -> "DE").

    Old names are followed to their current zone ("Asia/Calcutta" -> "IN"). UTC, Etc/*
    and unknown names give None. Never raises.
    """
    if not isinstance(tz, str) or not tz or len(tz) > 64:
        return None
    countries = _zone_countries()
    # Accept the same loose spellings the settings flow accepts ("europe/berlin").
    name = tz if tz in countries else (valid_timezone(tz) or tz)
    for _ in range(_MAX_LINK_HOPS):
        if name in countries:
            return countries[name]
        if name in _ALIAS_COUNTRY:
            return _ALIAS_COUNTRY[name]
        target = _links().get(name)
        if target is None:
            return None
        name = target
    return None


def country_name(code: str) -> str | None:
    """English short name for an ISO alpha-2 code ("DE" -> "Germany"), as the tz database
    spells it (so it may contain "&"; escape it for markup); None if unknown."""
    if not isinstance(code, str):
        return None
    key = code.strip().upper()
    return _NAME_OVERRIDES.get(key) or _country_names().get(key)
