"""Prebuilt Core statements run straight on the inline SQLite driver's cursor.

Hand-written because no library does this part: on SQLite a statement costs SQLite tens of
microseconds, while SQLAlchemy's execute path around it (cache key, compiled-cache lookup,
execution context, result metadata) costs several times that. Profiled with
bench/engine_throughput.py on the inline driver, `Connection.execute` was ~40% of a turn's
CPU and SQLite's own work ~6% (issue 14).

The hot path's statements are built once (`repository._prebuilt`), so what SQLAlchemy works
out on every call — the SQL text, the order of the parameters, each value's type conversion
both ways — is worked out once here, by SQLAlchemy's own compiler and type processors, and
each call is one `cursor.execute`. `before_cursor_execute` listeners still hear of every
statement (the benches count them), and errors come as SQLAlchemy raises them
(StatementError for a value refused, IntegrityError, OperationalError, ...), which is what
the callers' retry and outage handling look for.

Only what the hot path needs: positional (qmark) SQL, no expanding `IN` parameters and no
escaped parameter names (`plan_for` returns None for those; they go through SQLAlchemy).
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect

__all__ = ["Bound", "LeanResult", "Plan", "execute", "plan_for", "takes"]

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Plan:
    """One statement, compiled once for the SQLite dialect."""

    sql: str
    names: tuple[str, ...]  # parameter names, in the order of the `?` marks
    fixed: Mapping[str, Any]  # values bound in the statement itself
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]
    row: type[tuple[Any, ...]] | None  # None: the statement returns no rows
    # (column index, processor) of the result columns that have one: only those are
    # converted (most of a history row's columns are integers and strings, passed as is).
    converted: tuple[tuple[int, Callable[[Any], Any]], ...] = ()


class LeanResult:
    """What the hot path reads from a result: rows, scalars and the row count."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalars(self) -> LeanResult:
        return LeanResult([row[0] for row in self._rows], self.rowcount)

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


# A plan lives as long as its statement (the hot path's are built once and kept).
_PLANS: weakref.WeakKeyDictionary[Any, Plan | None] = weakref.WeakKeyDictionary()


def _row_class(keys: Sequence[str]) -> type[tuple[Any, ...]]:
    base = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
    names = tuple(keys)
    return type(
        "LeanRow",
        (base,),
        {"__slots__": (), "_mapping": property(lambda self: dict(zip(names, self, strict=True)))},
    )


def plan_for(stmt: Any, dialect: Dialect) -> Plan | None:
    """The statement's plan (worked out on first use), or None if it needs SQLAlchemy."""
    try:
        return _PLANS[stmt]
    except KeyError:
        plan = _PLANS[stmt] = _compile(stmt, dialect)
        return plan


def _compile(stmt: Any, dialect: Dialect) -> Plan | None:
    compiled: Any = stmt.compile(dialect=dialect)
    if compiled.positiontup is None or compiled.escaped_bind_names:
        return None
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    if any(bind.expanding for bind in compiled.binds.values()):
        return None
    names = tuple(compiled.positiontup)
    fixed = {
        name: compiled.binds[name].effective_value
        for name in names
        if not compiled.binds[name].required
    }
    processors = compiled._bind_processors
    binds = tuple(processors.get(name) for name in names)
    columns = compiled._result_columns
    results = tuple(entry[3]._cached_result_processor(dialect, None) for entry in columns)
    row = _row_class([entry[0] for entry in columns]) if columns else None
    converted = tuple((n, p) for n, p in enumerate(results) if p is not None)
    return Plan(str(compiled), names, fixed, binds, results, row, converted)


def _values(plan: Plan, params: Mapping[str, Any]) -> tuple[Any, ...]:
    fixed = plan.fixed
    out = []
    for name, process in zip(plan.names, plan.binds, strict=True):
        value = params[name] if name in params else fixed[name]
        out.append(process(value) if process is not None else value)
    return tuple(out)


def _row(plan: Plan, raw: Sequence[Any]) -> Any:
    assert plan.row is not None
    if not plan.converted:
        return plan.row(*raw)
    values = list(raw)
    for n, process in plan.converted:
        values[n] = process(values[n])
    return plan.row(*values)


def takes(plan: Plan, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> bool:
    """Whether `execute` runs this call. A batch whose rows come back (INSERT ...
    RETURNING) does not: SQLAlchemy sends it as one multi-row INSERT, a cursor could only
    send it row by row."""
    return plan.row is None or isinstance(params, Mapping) or len(params) <= 1


@dataclass(frozen=True)
class Bound:
    """What `execute` needs of a connection, looked up once per transaction (each lookup
    walks SQLAlchemy's proxies: a few percent of a turn when done per statement)."""

    connection: Connection
    raw: Any  # the sqlite3 connection
    listeners: Any  # before_cursor_execute listeners, None when there are none
    hide: bool  # hide parameters in errors, as SQLAlchemy's own errors do
    dbapi_error: type[Exception]

    @classmethod
    def of(cls, connection: Connection) -> Bound:
        raw = connection.connection.driver_connection
        assert raw is not None
        listeners = connection.dispatch.before_cursor_execute
        return cls(
            connection,
            raw,
            listeners if listeners else None,
            connection.engine.hide_parameters,
            connection.dialect.loaded_dbapi.Error,
        )


def execute(
    bound: Bound | Connection,
    plan: Plan,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> LeanResult:
    """Run `plan` with one set of parameters or a batch (see `takes`), on the connection's
    open transaction."""
    if not isinstance(bound, Bound):
        bound = Bound.of(bound)
    connection, raw, listeners, hide = bound.connection, bound.raw, bound.listeners, bound.hide
    batch = [params] if isinstance(params, Mapping) else list(params)
    try:
        values = [_values(plan, p) for p in batch]
    except Exception as error:  # a type processor refused a value
        message = f"({type(error).__module__}.{type(error).__qualname__}) {error}"
        raise exc.StatementError(message, plan.sql, params, error, hide_parameters=hide) from error
    dbapi_error = bound.dbapi_error
    cursor = raw.cursor()
    try:
        if plan.row is None and len(values) > 1:
            if listeners is not None:
                listeners(connection, cursor, plan.sql, values, None, True)
            cursor.executemany(plan.sql, values)
            return LeanResult([], cursor.rowcount)
        rows: list[Any] = []
        counts = []
        for one in values:
            if listeners is not None:
                listeners(connection, cursor, plan.sql, one, None, False)
            cursor.execute(plan.sql, one)
            if plan.row is not None:
                rows.extend(_row(plan, r) for r in cursor.fetchall())
            counts.append(cursor.rowcount)
        # -1 as in the DBAPI when SQLite counts nothing (a SELECT).
        known = [c for c in counts if c >= 0]
        return LeanResult(rows, sum(known) if known else -1)
    except dbapi_error as error:
        raise exc.DBAPIError.instance(
            plan.sql, params, error, dbapi_error, hide_parameters=hide
        ) from error
    finally:
        cursor.close()
