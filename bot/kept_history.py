"""A user's history as a turn leaves it, worked out from the history it read and its writes.

The Coach keeps, with the engine values of a user's last turn, the check-ins and exercise
logs that turn's writes left in the database, so the next turn of the same user (a check-in
is ten turns in a few minutes) does not read them again: the two history queries and their
rows were ~8% of a turn's CPU on SQLite (issue 14). Hand-written because it mirrors our own
two statements (`Repository.write_checkin`, `Repository.write_exercise`): what each changes
in a row is applied here to the engine's values of that row.

Kept only while nothing else can have written those rows: the next turn uses it only when
the user row still has the version this turn wrote (every turn moves it on, and turns are
the only writers of check-ins and exercise logs), for the same local day (the history
window moves with it), and only once the turn has committed (bot/service.py).
tests/test_kept_history.py compares it with what the database returns after every turn.
"""

from __future__ import annotations

import bisect
from dataclasses import fields, replace
from datetime import date
from typing import Any

from bot.engine.turn import CheckinRecord, ExerciseLog, History

__all__ = ["KeptHistory"]

# The columns of a check-in row the engine reads (others, e.g. the raw answers, it does not).
_RECORD_FIELDS = frozenset(f.name for f in fields(CheckinRecord)) - {"local_date"}


class KeptHistory:
    """The rows of [start, end] as `history` had them, with a turn's writes applied."""

    def __init__(self, history: History, start: date, end: date) -> None:
        self._checkins = list(history.checkins)
        self._logs = list(history.exercise_logs)
        self._start, self._end = start, end
        self._changed = False
        self._history = history

    def has_checkin(self, day: date) -> bool:
        return any(c.local_date == day for c in self._checkins)

    def checkin(self, day: date, written: dict[str, Any], *, new: bool) -> None:
        """A check-in written for `day`: inserted with `written` (`new`, phase and level
        included), or those columns of the day's row updated."""
        if not self._start <= day <= self._end:
            return  # outside the window: the next turn does not read it either
        values = {k: v for k, v in written.items() if k in _RECORD_FIELDS}
        for n, record in enumerate(self._checkins):
            if record.local_date == day:
                self._checkins[n] = replace(record, **values)
                break
        else:
            # An insert: every column not written is NULL (phase and level are written).
            blank = dict.fromkeys(_RECORD_FIELDS - {"phase", "level"})
            record = CheckinRecord(local_date=day, **{**blank, **values})
            at = bisect.bisect_right([c.local_date for c in self._checkins], day)
            self._checkins.insert(at, record)
        self._changed = True

    def exercise(self, day: date, exercise_id: str, outcome: str) -> None:
        """An exercise logged: a new row goes after the day's others (rows are read in the
        order of their ids), an existing one changes its outcome in place."""
        if not self._start <= day <= self._end:
            return
        for n, log in enumerate(self._logs):
            if log.local_date == day and log.exercise_id == exercise_id:
                if log.outcome != outcome:
                    self._logs[n] = ExerciseLog(day, exercise_id, outcome)
                    self._changed = True
                return
        at = bisect.bisect_right([e.local_date for e in self._logs], day)
        self._logs.insert(at, ExerciseLog(day, exercise_id, outcome))
        self._changed = True

    def history(self) -> History:
        if not self._changed:
            return self._history
        return History(checkins=tuple(self._checkins), exercise_logs=tuple(self._logs))
