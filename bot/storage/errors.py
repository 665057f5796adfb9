"""Database errors sorted by what to do about them: wait, or give up on this one event.

An outage (the server restarting, a dropped connection, a timeout, SQLite's lock held too
long, a deadlock or serialization failure) passes: the same event will work later, so it
is waited out and nothing a runner sent is dropped. A permanent error (the data itself: a
value the column cannot hold, a constraint it breaks) fails the same way every time:
retrying it would block everyone behind it, forever. PostgreSQL says which is which in its
SQLSTATE class; SQLite in its exception class.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc

__all__ = ["is_outage", "is_permanent"]

# PostgreSQL SQLSTATE classes (the first two characters).
_OUTAGE_CLASSES = frozenset({"08", "53", "57", "58", "40", "55"})  # connection, resources,
# operator intervention (shutdown), system/I-O, transaction rollback (deadlock,
# serialization), object not in prerequisite state (lock not available)
_PERMANENT_CLASSES = frozenset({"22", "23"})  # data exception, integrity constraint violation


def _sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    for candidate in (error, orig, getattr(orig, "__cause__", None), error.__cause__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def is_outage(error: BaseException) -> bool:
    """Will the same work succeed once the database is back?"""
    if isinstance(error, TimeoutError | ConnectionError | OSError | exc.TimeoutError):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    code = _sqlstate(error)
    if code is not None:
        return code[:2] in _OUTAGE_CLASSES
    if isinstance(error, exc.InterfaceError | exc.DisconnectionError):
        return True
    orig = getattr(error, "orig", None)
    if isinstance(orig, sqlite3.OperationalError):
        return True  # database is locked, disk I/O error, unable to open
    return isinstance(error, exc.OperationalError) or isinstance(
        orig, TimeoutError | ConnectionError | OSError
    )


def is_permanent(error: BaseException) -> bool:
    """Does this event fail the same way each time, because of its data?"""
    if is_outage(error):
        return False
    code = _sqlstate(error)
    if code is not None:
        return code[:2] in _PERMANENT_CLASSES
    if isinstance(error, exc.DataError | exc.IntegrityError):
        return True
    orig = getattr(error, "orig", None)
    if isinstance(orig, sqlite3.IntegrityError | sqlite3.DataError):
        return True
    # A value the driver cannot even encode (a lone surrogate), caught before the database.
    if isinstance(error, UnicodeError):
        return True
    return isinstance(error, exc.StatementError) and isinstance(orig, UnicodeError | ValueError)
