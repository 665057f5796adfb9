"""All reads and writes the application makes, bound to one session and one transaction.

Get one from `Database.transaction()`; nothing here commits. Write methods flush so that
ids exist and constraint violations surface at the call, not at commit time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Select,
    String,
    Table,
    bindparam,
    delete,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.attributes import flag_modified, set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key
from sqlalchemy.util.concurrency import greenlet_spawn

from bot.storage import lean
from bot.storage.models import (
    Base,
    Checkin,
    Escalation,
    ExerciseLog,
    OutboxMessage,
    OutcomeAnswer,
    PlanChange,
    ProcessedEvent,
    Screening,
    TeamChat,
    User,
    WarmupSchedule,
    WeeklySummary,
)
from bot.storage.records import USER_COLUMNS, AnyUser, UserRecord
from bot.storage.types import utcnow

__all__ = ["CHECKIN_FIELDS", "Repository"]

ModelT = TypeVar("ModelT", bound=DeclarativeBase)

# Columns a caller may set through upsert_checkin (the key and timestamps are managed here).
CHECKIN_FIELDS: frozenset[str] = frozenset(c.key for c in Checkin.__table__.columns) - {
    "id",
    "user_id",
    "local_date",
    "created_at",
    "updated_at",
}

# String columns that name a person by their platform id rather than by users.id.
_PERSON_STRING_COLUMNS: frozenset[str] = frozenset({"platform_user_id", "created_by"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _row_dict(obj: Base) -> dict[str, Any]:
    table = cast(Table, obj.__table__)
    return {c.key: _jsonable(getattr(obj, c.key)) for c in table.columns}


def _refers_to_users(table: Table) -> list[str]:
    """Names of the columns of `table` that hold a users.id."""
    names = {fk.parent.name for fk in table.foreign_keys if fk.column.table.name == "users"}
    if "user_id" in table.columns:
        names.add("user_id")
    return sorted(names)


class Repository:
    """Typed data access for one unit of work (see module docstring)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._async_connection = connection
        assert connection.sync_connection is not None  # started by Database.transaction
        self._connection: Connection = connection.sync_connection
        self.dialect_name: str = connection.dialect.name
        self._session: AsyncSession | None = None
        self._bound: lean.Bound | None = None  # the inline SQLite driver's, at first use

    @property
    def session(self) -> AsyncSession:
        """An ORM session on this transaction, made at first use: a turn that only runs
        prebuilt statements (`core`) never pays for one. It joins the transaction and
        never commits it (`Database.transaction` does, after `flush`)."""
        if self._session is None:
            self._session = AsyncSession(
                bind=self._async_connection,
                expire_on_commit=False,
                join_transaction_mode="rollback_only",
            )
        return self._session

    async def flush(self) -> None:
        """Write what the ORM session holds (before the transaction commits)."""
        if self._session is not None:
            await self._session.flush()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def core(
        self, stmt: Any, params: Any = None, *, few: bool = False
    ) -> CursorResult[Any] | lean.LeanResult:
        """Run a prebuilt Core statement on this transaction's connection, skipping the
        ORM's execute path (it costs more than the statement on SQLite). No autoflush: the
        hot paths that use this write nothing through the ORM first.

        On SQLite the driver never waits (bot/storage/sqlite_inline.py), so the statement
        runs straight on the loop, on the cursor with the plan worked out for it once
        (bot/storage/lean.py); elsewhere through SQLAlchemy's greenlet bridge. Only for
        statements built once: a plan is kept for as long as its statement lives.

        `few`: `params` is a batch of a few rows (one turn's replies). On SQLite these go
        row by row on the cursor even when rows come back, cheaper than SQLAlchemy's one
        multi-row INSERT; a large batch (the tick's) stays one statement."""
        if self._connection.dialect.driver == "hipcoach_inline":
            plan = lean.plan_for(stmt, self._connection.dialect)
            given = {} if params is None else params
            if plan is not None and (few or lean.takes(plan, given)):
                if self._bound is None:
                    self._bound = lean.Bound.of(self._connection)
                return lean.execute(self._bound, plan, given)
            return self._connection.execute(stmt, params)
        return await greenlet_spawn(self._connection.execute, stmt, params)

    # --- infrastructure -------------------------------------------------------------------

    async def ping(self) -> None:
        """Run SELECT 1 (for /healthz); raises if the database is unreachable."""
        await self.session.execute(text("SELECT 1"))

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        # Both dialects' inserts support ON CONFLICT; pick the one that compiles here.
        if self.dialect_name == "postgresql":
            return postgresql.insert(table)
        if self.dialect_name == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"unsupported database dialect {self.dialect_name!r}")

    async def _one_or_none(self, stmt: Select[ModelT]) -> ModelT | None:
        return (await self.session.scalars(stmt)).one_or_none()

    async def _add_or_reread(self, obj: ModelT, reread: Select[ModelT]) -> ModelT:
        """Insert `obj`; if a concurrent transaction inserted the same unique key first,
        return that row instead. The SAVEPOINT keeps the outer transaction usable."""
        try:
            async with self.session.begin_nested():
                self.session.add(obj)
            return obj
        except IntegrityError:
            existing = await self._one_or_none(reread.execution_options(populate_existing=True))
            if existing is None:
                raise  # not a duplicate (e.g. a foreign key violation)
            return existing

    # --- dedup ----------------------------------------------------------------------------

    async def claim_event(self, platform: str, event_id: str) -> bool:
        """Record a platform event id; False if it was already handled.

        The record commits with the rest of the transaction, so a turn that fails leaves
        the event unclaimed and a redelivery is handled again. A concurrent transaction
        claiming the same id waits for this one and then gets False.
        """
        stmt = _prebuilt(self.dialect_name, "claim_event", self._claim_event_stmt)
        params = {"platform": platform, "event_id": event_id, "created_at": utcnow()}
        result = await self.core(stmt, params)
        return result.rowcount == 1

    def _claim_event_stmt(self) -> Any:
        table = cast(Table, ProcessedEvent.__table__)
        return (
            self._insert(table)
            .values(
                platform=bindparam("platform"),
                event_id=bindparam("event_id"),
                created_at=bindparam("created_at", type_=table.c.created_at.type),
            )
            .on_conflict_do_nothing(index_elements=["platform", "event_id"])
        )

    async def cleanup_events(self, older_than: datetime) -> int:
        """Forget processed event ids recorded before `older_than`; returns how many."""
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.created_at < older_than)
            ),
        )
        return result.rowcount

    # --- users ----------------------------------------------------------------------------

    async def get_user(
        self, platform: str, platform_user_id: str, *, lock: bool = True
    ) -> User | None:
        """The user, or None. `lock` takes the row lock on PostgreSQL (SELECT ... FOR
        UPDATE) so that concurrent turns for this user queue behind this transaction."""
        stmt = _prebuilt(self.dialect_name, f"get_user:{lock}", lambda: _get_user_stmt(lock=lock))
        params = {"platform": platform, "platform_user_id": platform_user_id}
        return (await self.session.scalars(stmt, params)).one_or_none()

    async def load_user(self, platform: str, platform_user_id: str) -> UserRecord | None:
        """The user as plain values (a turn's read; see bot/storage/records.py), locked on
        PostgreSQL like `get_user`. Written back with `save_user`."""
        stmt = _prebuilt(self.dialect_name, "load_user", _load_user_stmt)
        params = {"platform": platform, "platform_user_id": platform_user_id}
        row = (await self.core(stmt, params)).first()
        return None if row is None else UserRecord.read(row)

    async def get_user_by_id(self, user_id: int, *, lock: bool = True) -> User | None:
        return await self.session.get(
            User, user_id, with_for_update=lock or None, populate_existing=lock
        )

    async def create_user(
        self,
        platform: str,
        platform_user_id: str,
        chat_id: str,
        display_name: str | None = None,
    ) -> User:
        """Create the user (flushed, so `id` is set). If another transaction created the
        same user meanwhile, return that row (locked) instead."""
        user = User(
            platform=platform,
            platform_user_id=platform_user_id,
            chat_id=chat_id,
            display_name=display_name,
            profile={},
            conversation={},
        )
        reread = (
            select(User)
            .where(User.platform == platform, User.platform_user_id == platform_user_id)
            .with_for_update()
        )
        return await self._add_or_reread(user, reread)

    async def save_user(self, user: AnyUser) -> None:
        """Write the user's changes now (bumping `version` and `updated_at`).

        A `User`'s JSON columns are always written: in-place edits of a dict are invisible
        to change tracking, and losing a conversation step silently is worse than one wider
        UPDATE. A `UserRecord` read by `load_user` writes only the columns that differ from
        what was read (its JSON columns: those given a new value; nothing edits them in
        place): an unchanged profile is not encoded again, and an unchanged reminder time
        leaves its index alone. Raises StaleDataError if the row changed since `user` was
        loaded.

        One prebuilt UPDATE ... WHERE id AND version, not the ORM's flush (which costs
        several times the statement itself); the object is then marked clean with the
        values written, so the session never writes it a second time.
        """
        if isinstance(user, UserRecord):
            values = {key: getattr(user, key) for key in _USER_WRITTEN}
            stored = user.stored
            if stored is not None:
                values = {
                    key: value
                    for key, value in values.items()
                    if _differs(value, stored[_USER_INDEX[key]])
                }
            user.updated_at = await self._update_user(user.id, user.version, values)
            user.version += 1
            user.stored = tuple(getattr(user, name) for name in USER_COLUMNS)
            return
        state = inspect(user)
        if not state.persistent or state.session is not self.session.sync_session:
            self.session.add(user)
            unloaded = _unloaded(user)
            for key in ("profile", "conversation"):
                if key not in unloaded:
                    flag_modified(user, key)
            await self.session.flush()
            return
        if _unloaded(user):  # expired (a rolled-back savepoint): read back what is missing
            await self.session.refresh(user, list(_unloaded(user)))
        values = {key: getattr(user, key) for key in _USER_WRITTEN}
        # No autoflush: it would write the same changes first through the ORM, and this
        # UPDATE would then find the version moved on.
        now = await self._update_user(user.id, user.version, values)
        for key, value in values.items():
            set_committed_value(user, key, value)
        set_committed_value(user, "updated_at", now)
        set_committed_value(user, "version", user.version + 1)

    async def _update_user(self, user_id: int, version: int, values: dict[str, Any]) -> datetime:
        now = utcnow()
        params = {**values, "updated_at": now, "b_id": user_id, "b_version": version}
        # One statement per set of columns written (a turn writes one of a handful).
        names = tuple(sorted(values))
        stmt = _prebuilt(
            self.dialect_name, f"save_user:{','.join(names)}", lambda: _save_user_stmt(names)
        )
        result = await self.core(stmt, params)
        if result.rowcount != 1:
            raise StaleDataError(
                f"UPDATE statement on table 'users' expected to update 1 row(s); "
                f"{result.rowcount} were matched."
            )
        return now

    async def list_users(self) -> list[User]:
        """Every user, ordered by id (small deployments, admin tools)."""
        return list(await self.session.scalars(select(User).order_by(User.id)))

    # --- check-ins and exercise logs ------------------------------------------------------

    async def upsert_checkin(self, user_id: int, local_date: date, **fields: Any) -> Checkin:
        """Create or edit the check-in for `local_date` with the given column values.

        Creating one requires `phase` and `level`. Editing sets only the given fields.
        The user row's version moves on too: a Coach keeps the history of a user's last
        turn until it does (bot/kept_history.py). A turn's own writes (`write_checkin`)
        move it on with the turn's `save_user`.
        """
        unknown = set(fields) - CHECKIN_FIELDS
        if unknown:
            raise TypeError(f"unknown check-in fields: {sorted(unknown)}")
        stmt = (
            select(Checkin)
            .where(Checkin.user_id == user_id, Checkin.local_date == local_date)
            .with_for_update()
        )
        checkin = await self._one_or_none(stmt)
        if checkin is None:
            missing = {"phase", "level"} - set(fields)
            if missing:
                raise ValueError(f"a new check-in needs {sorted(missing)}")
            new = Checkin(user_id=user_id, local_date=local_date, **fields)
            checkin = await self._add_or_reread(new, stmt)
            if checkin is new:
                await self._history_written(user_id)
                return checkin
        for key, value in fields.items():
            setattr(checkin, key, value)
        if "answers" in fields:
            flag_modified(checkin, "answers")
        await self.session.flush()
        await self._history_written(user_id)
        return checkin

    async def _history_written(self, user_id: int) -> None:
        """A check-in or exercise log written outside a turn: move the user row's version
        on (a copy of the row loaded in this session follows), so no Coach starts the next
        turn from the history it kept."""
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(version=User.version + 1)
            .execution_options(synchronize_session=False)
        )
        # Set as committed, not as a change: the ORM manages `version` (version_id_col) and
        # would otherwise write it again at the next flush.
        loaded = self.session.sync_session.identity_map.get(identity_key(User, user_id))
        if loaded is not None and "version" in inspect(loaded).dict:
            set_committed_value(loaded, "version", loaded.version + 1)

    async def write_checkin(
        self, user_id: int, local_date: date, fields: Mapping[str, Any], *, new: bool
    ) -> None:
        """The turn's check-in write in one statement, without reading the row first (the
        turn already knows whether it exists). `new`: INSERT ... ON CONFLICT DO UPDATE
        (needs `phase` and `level`; a concurrent insert of the same day is then edited);
        otherwise an UPDATE of the given fields."""
        unknown = set(fields) - CHECKIN_FIELDS
        if unknown:
            raise TypeError(f"unknown check-in fields: {sorted(unknown)}")
        if new:
            missing = {"phase", "level"} - set(fields)
            if missing:
                raise ValueError(f"a new check-in needs {sorted(missing)}")
        names = tuple(sorted(fields))
        # One statement per set of fields (a turn writes one of a handful), built once.
        stmt = _prebuilt(
            self.dialect_name,
            f"write_checkin:{'new' if new else 'old'}:{','.join(names)}",
            lambda: self._write_checkin_stmt(names, new=new),
        )
        now = utcnow()
        params = {f"v_{k}": fields[k] for k in names}
        params.update(b_user_id=user_id, b_local_date=local_date, b_now=now, b_now2=now)
        await self.core(stmt, params)

    def _write_checkin_stmt(self, names: tuple[str, ...], *, new: bool) -> Any:
        table = cast(Table, Checkin.__table__)
        values = {k: bindparam(f"v_{k}", type_=table.c[k].type) for k in names}
        user_id = bindparam("b_user_id", type_=table.c.user_id.type)
        local_date = bindparam("b_local_date", type_=table.c.local_date.type)
        if not new:
            return (
                update(table)
                .where(table.c.user_id == user_id, table.c.local_date == local_date)
                .values(updated_at=bindparam("b_now", type_=table.c.updated_at.type), **values)
            )
        insert_stmt = self._insert(table).values(
            user_id=user_id,
            local_date=local_date,
            created_at=bindparam("b_now", type_=table.c.created_at.type),
            updated_at=bindparam("b_now2", type_=table.c.updated_at.type),
            **values,
        )
        return insert_stmt.on_conflict_do_update(
            index_elements=["user_id", "local_date"],
            set_={
                **{k: insert_stmt.excluded[k] for k in names},
                "updated_at": insert_stmt.excluded.updated_at,
            },
        )

    async def write_exercise(
        self, user_id: int, local_date: date, exercise_id: str, outcome: str
    ) -> None:
        """log_exercise in one statement: insert, or replace a different outcome (and its
        timestamp); the same outcome again changes nothing."""
        stmt = _prebuilt(self.dialect_name, "write_exercise", self._write_exercise_stmt)
        params = {
            "user_id": user_id,
            "local_date": local_date,
            "exercise_id": exercise_id,
            "outcome": outcome,
            "created_at": utcnow(),
        }
        await self.core(stmt, params)

    def _write_exercise_stmt(self) -> Any:
        table = cast(Table, ExerciseLog.__table__)
        insert_stmt = self._insert(table).values(
            user_id=bindparam("user_id"),
            local_date=bindparam("local_date", type_=table.c.local_date.type),
            exercise_id=bindparam("exercise_id"),
            outcome=bindparam("outcome"),
            created_at=bindparam("created_at", type_=table.c.created_at.type),
        )
        return insert_stmt.on_conflict_do_update(
            index_elements=["user_id", "local_date", "exercise_id"],
            set_={
                "outcome": insert_stmt.excluded.outcome,
                "created_at": insert_stmt.excluded.created_at,
            },
            where=table.c.outcome != insert_stmt.excluded.outcome,
        )

    async def history_rows(
        self, user_ids: Sequence[int], start: date, end: date
    ) -> tuple[list[Row[Any]], list[Row[Any]]]:
        """Check-in and exercise-log rows (plain rows, no ORM objects) of these users with
        start <= local_date <= end, oldest first: one query per table however many users
        (the tick loads a whole batch's history at once)."""
        if len(user_ids) == 1:
            key = "history_one"
            params: dict[str, Any] = {"user_id": user_ids[0], "start": start, "end": end}
        else:
            key = "history_many"
            params = {"user_ids": list(user_ids), "start": start, "end": end}
        c_stmt, l_stmt = _prebuilt(self.dialect_name, key, lambda: _history_stmts(key))
        found_checkins = list((await self.core(c_stmt, params)).all())
        found_logs = list((await self.core(l_stmt, params)).all())
        return found_checkins, found_logs

    async def get_checkin(self, user_id: int, local_date: date) -> Checkin | None:
        return await self._one_or_none(
            select(Checkin).where(Checkin.user_id == user_id, Checkin.local_date == local_date)
        )

    async def checkins_between(self, user_id: int, start: date, end: date) -> list[Checkin]:
        """Check-ins with start <= local_date <= end, oldest first."""
        stmt = (
            select(Checkin)
            .where(
                Checkin.user_id == user_id,
                Checkin.local_date >= start,
                Checkin.local_date <= end,
            )
            .order_by(Checkin.local_date)
        )
        return list(await self.session.scalars(stmt))

    async def latest_checkins(self, user_id: int, n: int) -> list[Checkin]:
        """The `n` most recent check-ins, newest first."""
        stmt = (
            select(Checkin)
            .where(Checkin.user_id == user_id)
            .order_by(Checkin.local_date.desc())
            .limit(n)
        )
        return list(await self.session.scalars(stmt))

    async def log_exercise(
        self, user_id: int, local_date: date, exercise_id: str, outcome: str
    ) -> ExerciseLog:
        """Record an exercise outcome; logging the same exercise again that day replaces
        the outcome (and its timestamp). The user row's version moves on, as with
        `upsert_checkin`."""
        stmt = (
            select(ExerciseLog)
            .where(
                ExerciseLog.user_id == user_id,
                ExerciseLog.local_date == local_date,
                ExerciseLog.exercise_id == exercise_id,
            )
            .with_for_update()
        )
        log = await self._one_or_none(stmt)
        if log is None:
            log = await self._add_or_reread(
                ExerciseLog(
                    user_id=user_id,
                    local_date=local_date,
                    exercise_id=exercise_id,
                    outcome=outcome,
                ),
                stmt,
            )
        if log.outcome != outcome:
            log.outcome = outcome
            log.created_at = utcnow()
            await self.session.flush()
        await self._history_written(user_id)
        return log

    async def exercise_logs_between(
        self, user_id: int, start: date, end: date
    ) -> list[ExerciseLog]:
        """Exercise logs with start <= local_date <= end, oldest first."""
        stmt = (
            select(ExerciseLog)
            .where(
                ExerciseLog.user_id == user_id,
                ExerciseLog.local_date >= start,
                ExerciseLog.local_date <= end,
            )
            .order_by(ExerciseLog.local_date, ExerciseLog.id)
        )
        return list(await self.session.scalars(stmt))

    # --- safety and plan history ----------------------------------------------------------

    async def add_escalation(
        self,
        user_id: int,
        *,
        level: str,
        trigger: str,
        flow: str,
        message: str,
        created_at: datetime | None = None,
    ) -> Escalation:
        escalation = Escalation(
            user_id=user_id,
            level=level,
            trigger=trigger,
            flow=flow,
            message=message,
            created_at=created_at or utcnow(),
        )
        self.session.add(escalation)
        await self.session.flush()
        return escalation

    async def open_escalations(self, user_id: int) -> list[Escalation]:
        """Escalations not yet cleared (acknowledged or not), oldest first."""
        stmt = (
            select(Escalation)
            .where(Escalation.user_id == user_id, Escalation.cleared_at.is_(None))
            .order_by(Escalation.created_at, Escalation.id)
        )
        return list(await self.session.scalars(stmt))

    async def acknowledge_escalations(self, user_id: int, at: datetime) -> int:
        """Mark open, unacknowledged escalations as acknowledged; returns how many."""
        return await self._update_escalations(
            user_id, at, "acknowledged_at", Escalation.acknowledged_at.is_(None)
        )

    async def clear_escalations(
        self, user_id: int, at: datetime, levels: tuple[str, ...] | None = None
    ) -> int:
        """Mark open escalations (of these levels, or all) as cleared, e.g. after a
        clinician's clearance or a referral's visit; returns how many."""
        extra = Escalation.level.in_(levels) if levels is not None else None
        return await self._update_escalations(user_id, at, "cleared_at", extra)

    async def _update_escalations(
        self, user_id: int, at: datetime, column: str, extra: ColumnElement[bool] | None
    ) -> int:
        conditions = [Escalation.user_id == user_id, Escalation.cleared_at.is_(None)]
        if extra is not None:
            conditions.append(extra)
        stmt = (
            update(Escalation)
            .where(*conditions)
            .values({column: at})
            .execution_options(synchronize_session="fetch")
        )
        result = cast(CursorResult[Any], await self.session.execute(stmt))
        return result.rowcount

    async def add_screening(
        self,
        user_id: int,
        *,
        kind: str,
        answers: dict[str, Any],
        level: str,
        created_at: datetime | None = None,
    ) -> Screening:
        screening = Screening(
            user_id=user_id,
            kind=kind,
            answers=answers,
            level=level,
            created_at=created_at or utcnow(),
        )
        self.session.add(screening)
        await self.session.flush()
        return screening

    async def add_plan_change(
        self,
        user_id: int,
        *,
        from_phase: int,
        from_level: int,
        to_phase: int,
        to_level: int,
        decision: str,
        reason: str,
        created_at: datetime | None = None,
    ) -> PlanChange:
        change = PlanChange(
            user_id=user_id,
            from_phase=from_phase,
            from_level=from_level,
            to_phase=to_phase,
            to_level=to_level,
            decision=decision,
            reason=reason,
            created_at=created_at or utcnow(),
        )
        self.session.add(change)
        await self.session.flush()
        return change

    # --- export and delete ----------------------------------------------------------------

    def _created_by_user(self, user: User) -> ColumnElement[bool]:
        # created_by is a platform user id, only meaningful within the chat's platform.
        return (WarmupSchedule.created_by == user.platform_user_id) & (
            WarmupSchedule.team_chat_id.in_(
                select(TeamChat.id).where(TeamChat.platform == user.platform)
            )
        )

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Every row about the user, JSON-serialisable (dates and datetimes as ISO 8601).

        Keys: user, checkins, exercise_logs, escalations, screenings, plan_changes,
        warmup_schedules (the team warm-ups this person set up), outbox (reminders the
        bot queued or sent to them), outcome_answers (the weekly outcome check),
        weekly_summaries (when the next Sunday summary is due).
        Raises LookupError if there is no such user.
        """
        user = await self.session.get(User, user_id)
        if user is None:
            raise LookupError(f"no user {user_id}")

        async def rows(model: type[Base], order: Any) -> list[dict[str, Any]]:
            column = cast(Table, model.__table__).c.user_id
            found = await self.session.scalars(
                select(model).where(column == user_id).order_by(order)
            )
            return [_row_dict(obj) for obj in found]

        warmups = await self.session.scalars(
            select(WarmupSchedule).where(self._created_by_user(user)).order_by(WarmupSchedule.id)
        )
        return {
            "user": _row_dict(user),
            "checkins": await rows(Checkin, Checkin.local_date),
            "exercise_logs": await rows(ExerciseLog, ExerciseLog.id),
            "escalations": await rows(Escalation, Escalation.id),
            "screenings": await rows(Screening, Screening.id),
            "plan_changes": await rows(PlanChange, PlanChange.id),
            "warmup_schedules": [_row_dict(w) for w in warmups],
            "outbox": await rows(OutboxMessage, OutboxMessage.id),
            "outcome_answers": await rows(OutcomeAnswer, OutcomeAnswer.id),
            "weekly_summaries": await rows(WeeklySummary, WeeklySummary.user_id),
        }

    async def delete_user(self, user_id: int) -> bool:
        """Remove every row about the user; False if there was no such user.

        Child rows are deleted explicitly (every table with a users.id column, so tables
        added later are covered) rather than trusting ON DELETE CASCADE alone, which SQLite
        silently skips on a connection without PRAGMA foreign_keys. Team warm-ups the
        person set up stay for the team, with `created_by` cleared.
        """
        user = await self.session.get(User, user_id)
        if user is None:
            return False
        await self.session.execute(
            update(WarmupSchedule)
            .where(self._created_by_user(user))
            .values(created_by=None)
            .execution_options(synchronize_session="fetch")
        )
        for table in reversed(Base.metadata.sorted_tables):
            if table.name == "users":
                continue
            for column in _refers_to_users(table):
                await self.session.execute(delete(table).where(table.c[column] == user_id))
        await self.session.execute(
            delete(User).where(User.id == user_id).execution_options(synchronize_session=False)
        )
        self.session.expunge(user)
        return True

    async def row_counts_for_user(self, user_id: int, platform_user_id: str) -> dict[str, int]:
        """For EVERY table in the metadata, how many rows refer to the user: by a users.id
        column, or by a `platform_user_id` / `created_by` string column. Tables that cannot
        refer to a person report 0. Used to prove that delete leaves nothing behind."""
        counts: dict[str, int] = {}
        for table in Base.metadata.sorted_tables:
            conditions: list[ColumnElement[bool]] = []
            if table.name == "users":
                conditions.append(table.c.id == user_id)
            conditions.extend(table.c[name] == user_id for name in _refers_to_users(table))
            conditions.extend(
                column == platform_user_id
                for column in table.columns
                if column.name in _PERSON_STRING_COLUMNS and isinstance(column.type, String)
            )
            where = or_(*conditions) if conditions else false()
            count = await self.session.scalar(select(func.count()).select_from(table).where(where))
            counts[table.name] = int(count or 0)
        return counts

    # --- team chats and warm-ups ----------------------------------------------------------

    async def get_team_chat(
        self, platform: str, chat_id: str, *, lock: bool = True
    ) -> TeamChat | None:
        stmt = select(TeamChat).where(TeamChat.platform == platform, TeamChat.chat_id == chat_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return await self._one_or_none(stmt)

    async def get_team_chat_by_id(self, team_chat_id: int) -> TeamChat | None:
        return await self.session.get(TeamChat, team_chat_id)

    async def get_or_create_team_chat(
        self, platform: str, chat_id: str, title: str | None = None
    ) -> TeamChat:
        """The team chat (locked on PostgreSQL), created if new; a changed title is kept."""
        chat = await self.get_team_chat(platform, chat_id)
        if chat is None:
            reread = (
                select(TeamChat)
                .where(TeamChat.platform == platform, TeamChat.chat_id == chat_id)
                .with_for_update()
            )
            chat = await self._add_or_reread(
                TeamChat(platform=platform, chat_id=chat_id, title=title, conversation={}),
                reread,
            )
        if title is not None and chat.title != title:
            chat.title = title
            await self.session.flush()
        return chat

    async def move_team_chat(
        self, platform: str, old_chat_id: str, new_chat_id: str
    ) -> TeamChat | None:
        """The chat now lives at `new_chat_id` (a Telegram group became a supergroup): its
        warm-ups, timezone and conversation move there. If the new id already has a row (a
        message from the supergroup came first), the old chat's schedules and settings are
        merged into it and the old row goes. Returns the chat at the new id, if any."""
        old = await self.get_team_chat(platform, old_chat_id)
        new = await self.get_team_chat(platform, new_chat_id)
        if old is None:
            return new
        if new is None:
            old.chat_id = new_chat_id
            await self.session.flush()
            return old
        await self.session.execute(
            update(WarmupSchedule)
            .where(WarmupSchedule.team_chat_id == old.id)
            .values(team_chat_id=new.id)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.team_chat_id == old.id)
            .values(team_chat_id=new.id)
        )
        new.timezone = new.timezone or old.timezone
        new.title = new.title or old.title
        if not new.conversation:
            new.conversation = dict(old.conversation or {})
            flag_modified(new, "conversation")
        new.unreachable = False
        await self.session.delete(old)
        await self.session.flush()
        return new

    async def save_team_chat(self, chat: TeamChat) -> None:
        """Write the chat's changes now (its conversation JSON always, as in save_user)."""
        self.session.add(chat)
        if "conversation" not in _unloaded(chat):
            flag_modified(chat, "conversation")
        await self.session.flush()

    async def add_warmup(
        self,
        team_chat_id: int,
        days: str,
        run_time: str,
        lead_minutes: int,
        timezone: str,
        created_by: str | None,
        next_warmup_at: datetime | None,
    ) -> WarmupSchedule:
        schedule = WarmupSchedule(
            team_chat_id=team_chat_id,
            days=days,
            run_time=run_time,
            lead_minutes=lead_minutes,
            timezone=timezone,
            created_by=created_by,
            next_warmup_at=next_warmup_at,
        )
        self.session.add(schedule)
        await self.session.flush()
        return schedule

    async def list_warmups(self, team_chat_id: int) -> list[WarmupSchedule]:
        stmt = (
            select(WarmupSchedule)
            .where(WarmupSchedule.team_chat_id == team_chat_id)
            .order_by(WarmupSchedule.id)
        )
        return list(await self.session.scalars(stmt))

    async def remove_warmup(self, team_chat_id: int, schedule_id: int) -> bool:
        """Delete one schedule of this chat; False if it is not there (or another chat's)."""
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                delete(WarmupSchedule)
                .where(
                    WarmupSchedule.id == schedule_id,
                    WarmupSchedule.team_chat_id == team_chat_id,
                )
                .execution_options(synchronize_session="fetch")
            ),
        )
        return result.rowcount == 1

    async def save_warmup(self, schedule: WarmupSchedule) -> None:
        """Write a schedule's changes now (e.g. an advanced next_warmup_at)."""
        self.session.add(schedule)
        await self.session.flush()

    # --- scoped ids (one tenant of a platform, e.g. a Slack workspace) --------------------

    async def set_scope_reachable(
        self, platform: str, prefix: str, reachable: bool
    ) -> tuple[int, int]:
        """Mark every user and team chat of `platform` whose id starts with `prefix`
        reachable or not; returns (users, team chats) changed. Unreachable ones get no
        reminders and no warm-up cards (the scheduler does not claim them)."""
        values: dict[str, Any] = {"unreachable": not reachable, "version": User.version + 1}
        if not reachable:
            values["next_nudge_at"] = None
        users = cast(
            CursorResult[Any],
            await self.session.execute(
                update(User)
                .where(
                    User.platform == platform,
                    User.platform_user_id.startswith(prefix, autoescape=True),
                    User.unreachable == reachable,
                )
                .values(values)
                .execution_options(synchronize_session=False)
            ),
        )
        chats = cast(
            CursorResult[Any],
            await self.session.execute(
                update(TeamChat)
                .where(
                    TeamChat.platform == platform,
                    TeamChat.chat_id.startswith(prefix, autoescape=True),
                    TeamChat.unreachable == reachable,
                )
                .values(unreachable=not reachable)
                .execution_options(synchronize_session=False)
            ),
        )
        return users.rowcount, chats.rowcount

    async def scope_unscoped_ids(self, platform: str, prefix: str, separator: str) -> int:
        """Prefix every id of `platform` stored without a scope (no `separator` in it)
        with `prefix`: users (and their chats), team chats, warm-up creators and outbox
        targets. A row whose scoped twin already exists is left as it is. Returns how
        many rows changed. Idempotent: a second run finds nothing to do."""

        def unscoped(column: Any) -> ColumnElement[bool]:
            return ~column.contains(separator, autoescape=True)

        def scoped(value: str) -> str:
            return value if separator in value else prefix + value

        changed = 0
        users = list(
            await self.session.scalars(
                select(User)
                .where(User.platform == platform, unscoped(User.platform_user_id))
                .with_for_update()
            )
        )
        taken = set(
            await self.session.scalars(
                select(User.platform_user_id).where(
                    User.platform == platform,
                    User.platform_user_id.in_([prefix + u.platform_user_id for u in users]),
                )
            )
        )
        for user in users:
            if prefix + user.platform_user_id in taken:
                continue
            user.platform_user_id = prefix + user.platform_user_id
            user.chat_id = scoped(user.chat_id)
            changed += 1
        chats = list(
            await self.session.scalars(
                select(TeamChat)
                .where(TeamChat.platform == platform, unscoped(TeamChat.chat_id))
                .with_for_update()
            )
        )
        taken = set(
            await self.session.scalars(
                select(TeamChat.chat_id).where(
                    TeamChat.platform == platform,
                    TeamChat.chat_id.in_([prefix + c.chat_id for c in chats]),
                )
            )
        )
        for chat in chats:
            if prefix + chat.chat_id not in taken:
                chat.chat_id = prefix + chat.chat_id
                changed += 1
        await self.session.flush()
        platform_chats = select(TeamChat.id).where(TeamChat.platform == platform)
        for stmt in (
            update(WarmupSchedule)
            .where(
                WarmupSchedule.team_chat_id.in_(platform_chats),
                WarmupSchedule.created_by.is_not(None),
                unscoped(WarmupSchedule.created_by),
            )
            .values(created_by=literal(prefix) + WarmupSchedule.created_by),
            update(OutboxMessage)
            .where(OutboxMessage.platform == platform, unscoped(OutboxMessage.chat_id))
            .values(chat_id=literal(prefix) + OutboxMessage.chat_id),
        ):
            result = cast(
                CursorResult[Any],
                await self.session.execute(stmt.execution_options(synchronize_session=False)),
            )
            changed += result.rowcount
        return changed


def _unloaded(obj: Base) -> frozenset[str]:
    return frozenset(inspect(obj).unloaded)


# Columns save_user writes (every one a turn or the scheduler may change).
_USER_WRITTEN: frozenset[str] = frozenset(
    {
        "chat_id",
        "display_name",
        "timezone",
        "reminder_time",
        "paused",
        "unreachable",
        "next_checkin_at",
        "next_nudge_at",
        "profile",
        "conversation",
    }
)
_USER_INDEX: dict[str, int] = {name: n for n, name in enumerate(USER_COLUMNS)}

# Statements built once per dialect and reused: SQLAlchemy then finds the compiled form in
# its cache at once, without building and hashing a new expression each call.
_PREBUILT: dict[tuple[str, str], Any] = {}


def _prebuilt(dialect: str, name: str, build: Callable[[], Any]) -> Any:
    key = (dialect, name)
    stmt = _PREBUILT.get(key)
    if stmt is None:
        stmt = _PREBUILT[key] = build()
    return stmt


def _get_user_stmt(*, lock: bool) -> Any:
    # Built once: building the WHERE clause cost more than the ORM's cached load.
    stmt = select(User).where(
        User.platform == bindparam("platform"),
        User.platform_user_id == bindparam("platform_user_id"),
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return stmt


def _load_user_stmt() -> Any:
    table = cast(Table, User.__table__)
    return (
        select(*(table.c[name] for name in USER_COLUMNS))
        .where(
            table.c.platform == bindparam("platform"),
            table.c.platform_user_id == bindparam("platform_user_id"),
        )
        .with_for_update()
    )


def _differs(value: Any, stored: Any) -> bool:
    """Whether a column must be written: a JSON value given anew (never edited in place),
    any other value not equal to the stored one."""
    if isinstance(value, dict | list):
        return value is not stored
    return bool(value != stored) or type(value) is not type(stored)


def _save_user_stmt(names: tuple[str, ...]) -> Any:
    table = cast(Table, User.__table__)
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values(
            {
                **{key: bindparam(key, type_=table.c[key].type) for key in names},
                "updated_at": bindparam("updated_at", type_=table.c.updated_at.type),
                "version": table.c.version + 1,
            }
        )
    )


HISTORY_CHECKIN_COLUMNS: tuple[str, ...] = (
    "user_id",
    "local_date",
    "pain_now",
    "ran",
    "run_minutes",
    "pain_during",
    "exercises",
    "exercise_pain",
    "swelling",
    "run_sharp",
    "isometric_worse",
    "decision",
    "reason",
    "phase",
    "level",
)


def _history_stmts(key: str) -> tuple[Any, Any]:
    checkins = cast(Table, Checkin.__table__)
    logs = cast(Table, ExerciseLog.__table__)
    start = bindparam("start", type_=checkins.c.local_date.type)
    end = bindparam("end", type_=checkins.c.local_date.type)

    def who(table: Table) -> Any:
        if key == "history_one":
            return table.c.user_id == bindparam("user_id")
        return table.c.user_id.in_(bindparam("user_ids", expanding=True))

    c_stmt = (
        select(*(checkins.c[name] for name in HISTORY_CHECKIN_COLUMNS))
        .where(who(checkins), checkins.c.local_date >= start, checkins.c.local_date <= end)
        .order_by(checkins.c.user_id, checkins.c.local_date)
    )
    l_stmt = (
        select(logs.c.user_id, logs.c.local_date, logs.c.exercise_id, logs.c.outcome)
        .where(who(logs), logs.c.local_date >= start, logs.c.local_date <= end)
        .order_by(logs.c.user_id, logs.c.local_date, logs.c.id)
    )
    return c_stmt, l_stmt
