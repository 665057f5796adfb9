"""Queries for the scheduler and for sending: due check-ins, nudges and warm-ups, the outbox.

Every function takes a `Repository` (one transaction) and never commits. Claims use
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several clock processes (or several
dispatchers) each take different rows; SQLite ignores the clause, and its BEGIN IMMEDIATE
write lock already serializes whole transactions.

A claimed row is 'sending' with a random `claim_token` and a `lease_until`. Every mark names
the token, so a sender whose lease ran out (and whose row another sender took over) changes
nothing and learns that it lost the claim. A chat's messages go out in order: a row is only
claimed when no older row of the same chat is still pending or sending.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Table,
    bindparam,
    case,
    delete,
    false,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import aliased
from sqlalchemy.orm.exc import StaleDataError

from bot.storage.models import OutboxMessage, TeamChat, User, WarmupSchedule
from bot.storage.repository import Repository

__all__ = [
    "DUE_USER_COLUMNS",
    "FAILED",
    "PENDING",
    "REPLY",
    "SENDING",
    "SENT",
    "ClaimedMessage",
    "NewMessage",
    "NewReply",
    "add_message",
    "add_messages",
    "add_replies",
    "claim_due_checkins",
    "claim_due_nudges",
    "claim_due_rows",
    "claim_due_warmups",
    "claim_messages",
    "cleanup_outbox",
    "existing_keys",
    "fail_pending_for_target",
    "forget_sent_replies",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_team_chat_unreachable",
    "mark_user_unreachable",
    "message_exists",
    "move_chat",
    "new_token",
    "next_due",
    "release",
    "release_expired_claims",
    "renew",
    "renew_each",
    "write_users",
]

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNSENT = (PENDING, SENDING)
REPLY = "reply"  # the kind of a row holding a reply to what someone did


def new_token() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class ClaimedMessage:
    """A snapshot of an outbox row taken for sending (plain values, no session needed)."""

    id: int
    platform: str
    chat_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    user_id: int | None
    team_chat_id: int | None
    token: str = ""


@dataclass(frozen=True)
class NewReply:
    """A reply a turn stores with its answer."""

    idempotency_key: str
    platform: str
    chat_id: str
    payload: dict[str, Any]
    user_id: int | None = None
    team_chat_id: int | None = None


# --- due work -------------------------------------------------------------------------------


async def claim_due_checkins(repo: Repository, now: datetime, limit: int) -> list[User]:
    """Users whose check-in prompt is due, locked for this transaction. Paused and
    unreachable users are never claimed."""
    stmt = (
        select(User)
        .where(
            User.next_checkin_at <= now,
            User.paused == false(),
            User.unreachable == false(),
        )
        .order_by(User.next_checkin_at, User.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list(await repo.session.scalars(stmt))


async def claim_due_nudges(repo: Repository, now: datetime, limit: int) -> list[User]:
    """Users whose nudge is due, locked for this transaction (paused/unreachable: none)."""
    stmt = (
        select(User)
        .where(
            User.next_nudge_at <= now,
            User.paused == false(),
            User.unreachable == false(),
        )
        .order_by(User.next_nudge_at, User.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list(await repo.session.scalars(stmt))


async def claim_due_warmups(
    repo: Repository, now: datetime, limit: int
) -> list[tuple[WarmupSchedule, TeamChat]]:
    """Warm-up schedules whose card is due (schedule rows locked), with their chat."""
    stmt = (
        select(WarmupSchedule, TeamChat)
        .join(TeamChat, TeamChat.id == WarmupSchedule.team_chat_id)
        .where(WarmupSchedule.next_warmup_at <= now, TeamChat.unreachable == false())
        .order_by(WarmupSchedule.next_warmup_at, WarmupSchedule.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WarmupSchedule)
        .execution_options(populate_existing=True)
    )
    result = await repo.session.execute(stmt)
    return [(row[0], row[1]) for row in result.all()]


# --- the outbox -----------------------------------------------------------------------------


async def message_exists(repo: Repository, idempotency_key: str) -> bool:
    found = await repo.session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)
    )
    return found is not None


async def add_message(
    repo: Repository,
    *,
    idempotency_key: str,
    platform: str,
    chat_id: str,
    kind: str,
    payload: dict[str, Any],
    not_before: datetime,
    user_id: int | None = None,
    team_chat_id: int | None = None,
) -> bool:
    """Insert a message unless one with the same key exists; True if inserted."""
    table = cast(Table, OutboxMessage.__table__)
    stmt = (
        repo._insert(table)
        .values(
            idempotency_key=idempotency_key,
            platform=platform,
            chat_id=chat_id,
            user_id=user_id,
            team_chat_id=team_chat_id,
            kind=kind,
            payload=payload,
            status=PENDING,
            not_before=not_before,
            attempts=0,
            created_at=not_before,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    result = cast(CursorResult[Any], await repo.session.execute(stmt))
    return result.rowcount == 1


_REPLY_INSERTS: dict[str, Any] = {}


def _reply_insert(repo: Repository) -> Any:
    """One INSERT for every reply, with its status decided in SQL: 'sending' (claimed by the
    caller) unless an older message to the same chat still waits, then 'pending'. Rows of
    the same turn carry the caller's token and never hold each other back. Built once per
    dialect: the same statement each time is compiled once and sent as one batch."""
    dialect = repo.dialect_name
    if dialect not in _REPLY_INSERTS:
        table = cast(Table, OutboxMessage.__table__)
        older = aliased(OutboxMessage)
        waiting = (
            select(older.id)
            .where(
                # Own names: a parameter used twice breaks batched sends on asyncpg.
                older.platform == bindparam("same_platform"),
                older.chat_id == bindparam("same_chat_id"),
                # Not IN (...): an expanding parameter cannot be sent as one batch.
                or_(older.status == PENDING, older.status == SENDING),
                or_(older.claim_token.is_(None), older.claim_token != bindparam("same_token")),
            )
            .exists()
        )
        _REPLY_INSERTS[dialect] = (
            repo._insert(table)
            .values(
                idempotency_key=bindparam("key"),
                platform=bindparam("platform"),
                chat_id=bindparam("chat_id"),
                user_id=bindparam("user_id"),
                team_chat_id=bindparam("team_chat_id"),
                kind=REPLY,
                payload=bindparam("payload", type_=table.c.payload.type),
                status=case((waiting, PENDING), else_=bindparam("claimed")),
                not_before=bindparam("now", type_=table.c.not_before.type),
                attempts=0,
                created_at=bindparam("created_at", type_=table.c.created_at.type),
                claim_token=bindparam("token"),
                lease_until=bindparam("lease_until", type_=table.c.lease_until.type),
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(table.c.id, table.c.idempotency_key, table.c.status)
        )
    return _REPLY_INSERTS[dialect]


async def add_replies(
    repo: Repository,
    replies: Sequence[NewReply],
    *,
    now: datetime,
    token: str | None,
    lease_until: datetime,
) -> list[tuple[int, ClaimedMessage]]:
    """Store a turn's replies in one statement. With a `token`, each reply whose chat has no
    older message still waiting is stored already claimed ('sending') for the caller, who
    sends it at once; the others wait ('pending') for the dispatcher, so a chat's messages
    keep their order. Returns the claimed ones with their index in `replies`, in order."""
    if not replies:
        return []
    params = [
        {
            "key": r.idempotency_key,
            "platform": r.platform,
            "chat_id": r.chat_id,
            "user_id": r.user_id,
            "team_chat_id": r.team_chat_id,
            "payload": r.payload,
            "now": now,
            "created_at": now,
            "token": token,
            "same_platform": r.platform,
            "same_chat_id": r.chat_id,
            "same_token": token,
            "lease_until": lease_until if token is not None else None,
            "claimed": SENDING if token is not None else PENDING,
        }
        for r in replies
    ]
    stmt = _reply_insert(repo)
    result = await repo.core(stmt, params, few=True)
    stored = {str(r[1]): (int(r[0]), str(r[2])) for r in cast(Any, result.all())}
    claimed = []
    for n, reply in enumerate(replies):
        id_, state = stored.get(reply.idempotency_key, (None, None))
        if id_ is not None and state == SENDING:
            claimed.append(
                (
                    n,
                    ClaimedMessage(
                        id=id_,
                        platform=reply.platform,
                        chat_id=reply.chat_id,
                        kind=REPLY,
                        payload=reply.payload,
                        attempts=0,
                        user_id=reply.user_id,
                        team_chat_id=reply.team_chat_id,
                        token=token or "",
                    ),
                )
            )
    return claimed


async def release_expired_claims(repo: Repository, now: datetime) -> int:
    """Rows left in 'sending' past their lease (the process died) become pending again."""
    result = await repo.core(_stmt("release_expired"), {"now": now})
    return result.rowcount


def _platform_params(platforms: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Which prebuilt variant and parameters pick these platforms: one platform (the usual
    deployment) is an equality the SQLite hot path runs without SQLAlchemy; several are an
    IN list."""
    if len(platforms) == 1:
        return "one", {"platform": platforms[0]}
    return "many", {"platforms": list(platforms)}


async def _chats_with_a_reply(repo: Repository, platforms: Sequence[str], limit: int) -> list[str]:
    """Chats where a reply waits, oldest first (found through the index on status and kind:
    replies that wait are few, even when thousands of reminders do)."""
    variant, params = _platform_params(platforms)
    result = await repo.core(_stmt(f"replied:{variant}"), {**params, "limit": limit})
    return list(dict.fromkeys(result.scalars().all()))


async def claim_messages(
    repo: Repository,
    now: datetime,
    platforms: Sequence[str],
    limit: int,
    lease_until: datetime,
    token: str | None = None,
) -> list[ClaimedMessage]:
    """Take up to `limit` pending rows due at `now` for the given platforms, each the oldest
    unsent message of its chat, and mark them 'sending' under `token` until `lease_until`;
    the caller commits before sending anything.

    Chats where a reply waits come first (the reply itself, or the older message it waits
    behind), then everything else oldest first: a runner who taps during a burst of
    thousands of reminders is answered before the burst is through.

    Prebuilt Core statements, no ORM objects: the dispatcher claims one row per
    transaction, and the ORM's load and flush cost several times the statements."""
    if not platforms:
        return []
    token = token or new_token()
    variant, params = _platform_params(platforms)
    rows: list[Any] = []
    replied = await _chats_with_a_reply(repo, platforms, 50)
    if replied:
        # The reply itself, or the older message of its chat it waits behind.
        found = await repo.core(
            _stmt(f"first_of:{variant}"),
            {**params, "now": now, "chat_ids": replied, "limit": limit},
        )
        rows += found.all()
    if len(rows) < limit:
        taken = {row.id for row in rows}
        found = await repo.core(
            _stmt(f"due:{variant}"), {**params, "now": now, "limit": limit - len(rows) + len(taken)}
        )
        rows += [row for row in found.all() if row.id not in taken][: limit - len(rows)]
    if rows:
        marks = [{"b_id": row.id, "token": token, "lease_until": lease_until} for row in rows]
        await repo.core(_stmt("claim"), marks)
    return [
        ClaimedMessage(
            id=row.id,
            platform=row.platform,
            chat_id=row.chat_id,
            kind=row.kind,
            payload=dict(row.payload),
            attempts=row.attempts,
            user_id=row.user_id,
            team_chat_id=row.team_chat_id,
            token=token,
        )
        for row in rows
    ]


async def next_due(repo: Repository, platforms: Sequence[str]) -> datetime | None:
    """When the dispatcher next has something to do: the earliest `not_before` of a row it
    could claim (the first unsent of its chat), or the earliest lease of a row being sent
    (it is released when that runs out). None when nothing waits."""
    if not platforms:
        return None
    variant, params = _platform_params(platforms)
    pending = (await repo.core(_stmt(f"next_pending:{variant}"), params)).scalar()
    lease = (await repo.core(_stmt(f"next_lease:{variant}"), params)).scalar()
    times = [t for t in (pending, lease) if t is not None]
    return min(times) if times else None


def _still_held() -> tuple[Any, ...]:
    """The row `b_id`, while it is still being sent under the claim `token`."""
    return (
        _outbox.c.id == bindparam("b_id"),
        _outbox.c.status == SENDING,
        _outbox.c.claim_token == bindparam("token"),
    )


async def _set(repo: Repository, message: ClaimedMessage, **values: Any) -> bool:
    """Change a row we still hold; False if we no longer do (our lease ran out and another
    sender took it over: that one decides)."""
    names = tuple(sorted(values))
    stmt = _set_stmt(names)
    params = {f"v_{k}": values[k] for k in names}
    result = await repo.core(stmt, {**params, "b_id": message.id, "token": message.token})
    return result.rowcount == 1


@functools.cache
def _set_stmt(names: tuple[str, ...]) -> Any:
    # One statement per set of columns (a handful: sent, retry, failed, released), built once.
    return (
        update(_outbox)
        .where(*_still_held())
        .values(
            claim_token=None,
            lease_until=None,
            **{k: bindparam(f"v_{k}", type_=_outbox.c[k].type) for k in names},
        )
    )


async def _forget(repo: Repository, message: ClaimedMessage) -> bool:
    """A reply that is delivered (or given up) is deleted: its text may be personal."""
    result = await repo.core(_forget_stmt(), {"b_id": message.id, "token": message.token})
    return result.rowcount == 1


_FORGET: list[Any] = []


def _forget_stmt() -> Any:
    # Built once: the reply settle runs after every turn that sent something.
    if not _FORGET:
        # One row per parameter set, not IN (...): a batch of one prebuilt statement,
        # which SQLite's hot path runs without SQLAlchemy.
        _FORGET.append(delete(_outbox).where(*_still_held()))
    return _FORGET[0]


async def forget_sent_replies(repo: Repository, messages: Sequence[ClaimedMessage]) -> int:
    """Delete delivered replies we still hold, in one batch; returns how many were still
    ours (where the driver counts a batch's rows; else -1)."""
    if not messages:
        return 0
    params = [{"b_id": m.id, "token": m.token} for m in messages]
    result = await repo.core(_forget_stmt(), params)
    return result.rowcount


async def mark_sent(repo: Repository, message: ClaimedMessage, at: datetime) -> bool:
    if message.kind == REPLY:
        return await _forget(repo, message)
    return await _set(repo, message, status=SENT, sent_at=at, last_error=None)


async def mark_retry(
    repo: Repository, message: ClaimedMessage, not_before: datetime, error: str, attempts: int
) -> bool:
    return await _set(
        repo,
        message,
        status=PENDING,
        not_before=not_before,
        last_error=error[:200],
        attempts=attempts,
    )


async def mark_failed(repo: Repository, message: ClaimedMessage, error: str, attempts: int) -> bool:
    if message.kind == REPLY:
        return await _forget(repo, message)
    return await _set(repo, message, status=FAILED, last_error=error[:200], attempts=attempts)


async def release(
    repo: Repository, messages: Sequence[ClaimedMessage], not_before: datetime
) -> int:
    """Hand rows we hold but did not send back to the dispatcher (still in order)."""
    released = 0
    for message in messages:
        released += int(await _set(repo, message, status=PENDING, not_before=not_before))
    return released


async def renew(
    repo: Repository, messages: Sequence[ClaimedMessage], lease_until: datetime
) -> bool:
    """Hold rows we still hold for longer (their sends are queued behind others of this
    process); False if any of them is no longer ours."""
    return len(await renew_each(repo, messages, lease_until)) == len(messages)


# Rows renewed per statement: two parameters each, far below every driver's limit.
RENEW_CHUNK = 500


async def renew_each(
    repo: Repository, messages: Sequence[ClaimedMessage], lease_until: datetime
) -> set[int]:
    """Renew each row's claim; the ids of those still ours. One statement per few hundred
    rows, which returns the ids it renewed (not every driver counts a batch's rows): in a
    burst the process holds thousands of replies waiting in its pacing, and renewing them
    row by row was ~3% of the bot's CPU (bench 2)."""
    kept: set[int] = set()
    for start in range(0, len(messages), RENEW_CHUNK):
        chunk = messages[start : start + RENEW_CHUNK]
        params = {"held": [(m.id, m.token) for m in chunk], "lease_until": lease_until}
        result = await repo.core(_stmt("renew_many"), params)
        kept.update(int(row[0]) for row in result.all())
    return kept


async def move_chat(
    repo: Repository,
    platform: str,
    old_chat_id: str,
    new_chat_id: str,
    team_chat_id: int | None = None,
) -> int:
    """Messages still waiting for a chat that moved (a group became a supergroup) go to its
    new id; `team_chat_id` re-points them to the team chat that now has that id."""
    values: dict[str, Any] = {"chat_id": new_chat_id}
    if team_chat_id is not None:
        values["team_chat_id"] = team_chat_id
    result = cast(
        CursorResult[Any],
        await repo.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.platform == platform,
                OutboxMessage.chat_id == old_chat_id,
                OutboxMessage.status.in_(UNSENT),
            )
            .values(**values)
        ),
    )
    return result.rowcount


async def fail_pending_for_target(
    repo: Repository, *, user_id: int | None, team_chat_id: int | None, error: str
) -> int:
    """Give up the other pending messages to a target the platform says is gone."""
    if user_id is not None:
        target = OutboxMessage.user_id == user_id
    elif team_chat_id is not None:
        target = OutboxMessage.team_chat_id == team_chat_id
    else:
        return 0
    # Replies that can no longer reach anyone are dropped (their text may be personal).
    dropped = cast(
        CursorResult[Any],
        await repo.session.execute(
            delete(OutboxMessage).where(
                target, OutboxMessage.status == PENDING, OutboxMessage.kind == REPLY
            )
        ),
    )
    result = cast(
        CursorResult[Any],
        await repo.session.execute(
            update(OutboxMessage)
            .where(target, OutboxMessage.status == PENDING)
            .values(status=FAILED, last_error=error[:200])
        ),
    )
    return result.rowcount + dropped.rowcount


async def mark_user_unreachable(repo: Repository, user_id: int) -> None:
    """No more reminders until the person writes again (the service clears the flag)."""
    await repo.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(unreachable=True, next_nudge_at=None, version=User.version + 1)
        .execution_options(synchronize_session=False)
    )


async def mark_team_chat_unreachable(repo: Repository, team_chat_id: int) -> None:
    await repo.session.execute(
        update(TeamChat)
        .where(TeamChat.id == team_chat_id)
        .values(unreachable=True)
        .execution_options(synchronize_session=False)
    )


async def cleanup_outbox(repo: Repository, older_than: datetime) -> int:
    """Delete sent and failed messages created before `older_than`; returns how many."""
    result = cast(
        CursorResult[Any],
        await repo.session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status.in_([SENT, FAILED]), OutboxMessage.created_at < older_than
            )
        ),
    )
    return result.rowcount


async def list_messages(repo: Repository, **filters: Any) -> list[OutboxMessage]:
    """Outbox rows matching column == value filters, oldest first (tests, admin tools)."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in filters.items():
        stmt = stmt.where(getattr(OutboxMessage, name) == value)
    return list(await repo.session.scalars(stmt))


# --- set-based tick -------------------------------------------------------------------------
# The tick handles a whole batch of due users with a handful of statements (claim, existing
# keys, history, outbox rows, user rows) instead of ~8 per user. Plain rows and prebuilt
# Core statements: no ORM objects for hundreds of users at once.

_users = cast(Table, User.__table__)
_outbox = cast(Table, OutboxMessage.__table__)

# What a reminder needs of a user (and all that the tick writes back).
DUE_USER_COLUMNS: tuple[str, ...] = (
    "id",
    "platform",
    "platform_user_id",
    "chat_id",
    "timezone",
    "reminder_time",
    "paused",
    "next_checkin_at",
    "next_nudge_at",
    "profile",
    "conversation",
    "version",
)
_TICK_WRITTEN: tuple[str, ...] = (
    "timezone",
    "reminder_time",
    "paused",
    "next_checkin_at",
    "next_nudge_at",
    "profile",
    "conversation",
)


def _claim_rows_stmt(column: str) -> Any:
    due = _users.c[column]
    return (
        select(*(_users.c[name] for name in DUE_USER_COLUMNS))
        .where(
            due <= bindparam("now", type_=due.type),
            _users.c.paused == false(),
            _users.c.unreachable == false(),
        )
        .order_by(due, _users.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
    )


@functools.cache
def _stmt(name: str) -> Any:
    """The dispatcher's and the reply settle's statements, built once each (Core on the
    table: an ORM statement re-plans its synchronisation on every call)."""
    table = _outbox
    when = bindparam("now", type_=table.c.not_before.type)
    lease = bindparam("lease_until", type_=table.c.lease_until.type)
    variant = name.rpartition(":")[2]
    on_platforms = (
        table.c.platform == bindparam("platform")
        if variant == "one"
        else table.c.platform.in_(bindparam("platforms", expanding=True))
    )
    if name == "release_expired":
        return (
            update(table)
            .where(table.c.status == SENDING, table.c.lease_until <= when)
            .values(status=PENDING, claim_token=None, lease_until=None, last_error="ClaimExpired")
        )
    if name.startswith("replied:"):
        return (
            select(table.c.chat_id)
            .where(table.c.status == PENDING, table.c.kind == REPLY, on_platforms)
            .order_by(table.c.not_before)
            .limit(bindparam("limit"))
        )
    # No older message of the same chat is still pending or being sent. A scalar
    # subquery, so the database looks it up per candidate row through the chat index (as an
    # anti-join on a table without statistics, PostgreSQL planned it as a scan of the whole
    # outbox per row).
    older = table.alias("older")
    first_of_chat = table.c.id == (
        select(func.min(older.c.id))
        .where(
            older.c.platform == table.c.platform,
            older.c.chat_id == table.c.chat_id,
            or_(older.c.status == PENDING, older.c.status == SENDING),
        )
        .correlate(table)
        .scalar_subquery()
    )
    if name.startswith("next_pending:"):
        return (
            select(table.c.not_before)
            .where(table.c.status == PENDING, on_platforms, first_of_chat)
            .order_by(table.c.not_before)
            .limit(1)
        )
    if name.startswith("next_lease:"):
        return select(func.min(table.c.lease_until)).where(table.c.status == SENDING, on_platforms)
    if name.startswith(("first_of:", "due:")):
        stmt = select(*(table.c[k] for k in _CLAIMED_COLUMNS)).where(
            table.c.status == PENDING, table.c.not_before <= when, on_platforms, first_of_chat
        )
        if name.startswith("first_of:"):
            stmt = stmt.where(table.c.chat_id.in_(bindparam("chat_ids", expanding=True)))
        stmt = stmt.order_by(table.c.not_before, table.c.id).limit(bindparam("limit"))
        return stmt.with_for_update(skip_locked=True, of=table)
    if name == "claim":
        return (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(status=SENDING, claim_token=bindparam("token"), lease_until=lease)
        )
    if name == "renew_many":
        held = tuple_(table.c.id, table.c.claim_token).in_(bindparam("held", expanding=True))
        return (
            update(table)
            .where(held, table.c.status == SENDING)
            .values(lease_until=lease)
            .returning(table.c.id)
        )
    raise KeyError(name)


_CLAIMED_COLUMNS = (
    "id",
    "platform",
    "chat_id",
    "kind",
    "payload",
    "attempts",
    "user_id",
    "team_chat_id",
)

_TICK_STMTS: dict[str, Any] = {}


def _tick_stmt(repo: Repository, name: str) -> Any:
    key = f"{repo.dialect_name}:{name}"
    if key not in _TICK_STMTS:
        if name in ("next_checkin_at", "next_nudge_at"):
            _TICK_STMTS[key] = _claim_rows_stmt(name)
        elif name == "existing":
            _TICK_STMTS[key] = select(_outbox.c.idempotency_key).where(
                _outbox.c.idempotency_key.in_(bindparam("keys", expanding=True))
            )
        elif name == "insert":
            _TICK_STMTS[key] = (
                repo._insert(_outbox)
                .values(
                    idempotency_key=bindparam("key"),
                    platform=bindparam("platform"),
                    chat_id=bindparam("chat_id"),
                    user_id=bindparam("user_id"),
                    team_chat_id=None,
                    kind=bindparam("kind"),
                    payload=bindparam("payload", type_=_outbox.c.payload.type),
                    status=PENDING,
                    not_before=bindparam("now", type_=_outbox.c.not_before.type),
                    attempts=0,
                    created_at=bindparam("created_at", type_=_outbox.c.created_at.type),
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(_outbox.c.idempotency_key)
            )
        elif name == "users":
            _TICK_STMTS[key] = (
                update(_users)
                .where(
                    _users.c.id == bindparam("b_id"),
                    _users.c.version == bindparam("b_version"),
                )
                .values(
                    {
                        **{c: bindparam(c, type_=_users.c[c].type) for c in _TICK_WRITTEN},
                        "updated_at": bindparam("updated_at", type_=_users.c.updated_at.type),
                        "version": _users.c.version + 1,
                    }
                )
            )
        else:
            raise KeyError(name)
    return _TICK_STMTS[key]


async def claim_due_rows(repo: Repository, column: str, now: datetime, limit: int) -> list[Any]:
    """Up to `limit` users whose `column` (next_checkin_at or next_nudge_at) is due, as plain
    rows in DUE_USER_COLUMNS, locked for this transaction (paused/unreachable: none)."""
    stmt = _tick_stmt(repo, column)
    result = await repo.core(stmt, {"now": now, "limit": limit})
    return list(result.all())


async def existing_keys(repo: Repository, keys: Sequence[str]) -> set[str]:
    """Which of these idempotency keys the outbox already holds (one query)."""
    if not keys:
        return set()
    result = await repo.core(_tick_stmt(repo, "existing"), {"keys": list(keys)})
    return set(result.scalars().all())


@dataclass(frozen=True)
class NewMessage:
    """A reminder the tick queues."""

    idempotency_key: str
    platform: str
    chat_id: str
    kind: str
    payload: dict[str, Any]
    user_id: int


async def add_messages(repo: Repository, messages: Sequence[NewMessage], now: datetime) -> set[str]:
    """Insert messages in one batch, each unless its key exists; returns the keys inserted."""
    if not messages:
        return set()
    params = [
        {
            "key": m.idempotency_key,
            "platform": m.platform,
            "chat_id": m.chat_id,
            "user_id": m.user_id,
            "kind": m.kind,
            "payload": m.payload,
            "now": now,
            "created_at": now,
        }
        for m in messages
    ]
    result = await repo.core(_tick_stmt(repo, "insert"), params)
    return set(result.scalars().all())


async def write_users(repo: Repository, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Write each user's new state (the _TICK_WRITTEN columns, by id and the version read) in
    one batch, bumping version. The rows are locked by the claim, so none can have moved on;
    if one did anyway, raise, and the tick redoes the batch one by one."""
    if not rows:
        return
    params = [
        {
            **{c: row[c] for c in _TICK_WRITTEN},
            "updated_at": now,
            "b_id": row["id"],
            "b_version": row["version"],
        }
        for row in rows
    ]
    result = await repo.core(_tick_stmt(repo, "users"), params)
    sane = repo.session.get_bind().dialect.supports_sane_multi_rowcount
    if sane and result.rowcount >= 0 and result.rowcount != len(rows):
        raise StaleDataError(f"tick wrote {result.rowcount} of {len(rows)} user rows")
