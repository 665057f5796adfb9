"""Column types shared by every table.

All timestamps go through `UTCDateTime` so the rest of the code only ever sees aware UTC
datetimes, whatever the database returns (SQLite has no timezone support at all).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["JSONType", "UTCDateTime", "json_dumps", "json_loads", "utcnow"]


def utcnow() -> datetime:
    """The current instant as an aware UTC datetime (used for column defaults)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant in time, stored in UTC and returned as an aware UTC datetime.

    Naive datetimes are refused on write: their meaning depends on the machine's local zone,
    which is exactly the ambiguity this type exists to remove.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime expects a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} refused: pass an aware datetime (UTC)"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores text; keeping the offset out makes stored values sort and compare
            # as plain strings, which index range scans (next_*_at <= now) depend on.
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, this type's check and conversion and SQLite's own text formatting in
        one step: the two processors in a row were ~5% of a turn's CPU there (a turn binds
        a dozen timestamps). The text is the one SQLite's DATETIME writes
        (tests/test_storage_lean.py compares them)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Only SQLite gets here: what we wrote was UTC with the offset stripped.
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_text(value: datetime | None) -> str | None:
    """`UTCDateTime.process_bind_param` then SQLite DATETIME's format, fused."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"UTCDateTime expects a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} refused: pass an aware datetime (UTC)"
        )
    # The UTC wall time, as "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's storage format).
    return (value.replace(tzinfo=None) - offset).isoformat(" ", "microseconds")


# JSONB on PostgreSQL (binary, indexable, compact); plain JSON text everywhere else.
JSONType: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


def json_dumps(value: Any) -> str:
    """JSON columns' text (the engine's `json_serializer`): orjson, which writes a turn's
    profile, conversation and replies several times faster than the json module (issue 14:
    encoding them was ~7% of a turn's CPU). What orjson refuses (an integer beyond 64 bits)
    goes through the json module as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


def json_loads(text: str | bytes) -> Any:
    return orjson.loads(text)
