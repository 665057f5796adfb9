"""A user row as plain values, for the turn's hot path.

Loading a `User` through the ORM (identity map, instance state, change tracking) cost a
turn more than all of its SQL on SQLite (issue 14). A turn reads the row once, changes it in
memory and writes it back with one UPDATE, so it needs none of that: it reads and writes a
`UserRecord` (`Repository.load_user`, `Repository.save_user`), which has the same attributes
as a `User`, so code that only reads a user takes either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.storage.models import User

__all__ = ["USER_COLUMNS", "AnyUser", "UserRecord"]


@dataclass(slots=True, eq=False)
class UserRecord:
    id: int
    platform: str
    platform_user_id: str
    chat_id: str
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    timezone: str | None
    reminder_time: str | None
    paused: bool
    unreachable: bool
    next_checkin_at: datetime | None
    next_nudge_at: datetime | None
    profile: dict[str, Any]
    conversation: dict[str, Any]
    # The row's version when read, moved on by each write: an UPDATE finding another
    # version means another turn for this person committed first (StaleDataError).
    version: int
    # The values as the database holds them (in USER_COLUMNS order), when known: `save_user`
    # then writes only the columns that differ (a JSON column: one given a new value).
    stored: tuple[Any, ...] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, user: User) -> UserRecord:
        """A plain copy of an ORM row (one just created, say)."""
        return cls(**{name: getattr(user, name) for name in USER_COLUMNS})

    @classmethod
    def read(cls, row: tuple[Any, ...]) -> UserRecord:
        """A row of USER_COLUMNS as read from the database."""
        record = cls(*row)
        record.stored = tuple(row)
        return record

    def __repr__(self) -> str:
        return f"<UserRecord id={self.id} {self.platform}:{self.platform_user_id}>"


USER_COLUMNS: tuple[str, ...] = tuple(
    name for name in UserRecord.__dataclass_fields__ if name != "stored"
)

AnyUser = User | UserRecord
