"""Queries for the scheduler: due check-ins, nudges and warm-ups, and the outbox.

Every function takes a `Repository` (one transaction) and never commits. Claims use
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several clock processes (or several
dispatchers) each take different rows; SQLite ignores the clause, and its BEGIN IMMEDIATE
write lock already serializes whole transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, false, select, update

from bot.storage.models import OutboxMessage, TeamChat, User, WarmupSchedule
from bot.storage.repository import Repository

__all__ = [
    "FAILED",
    "PENDING",
    "SENDING",
    "SENT",
    "ClaimedMessage",
    "add_message",
    "claim_due_checkins",
    "claim_due_nudges",
    "claim_due_warmups",
    "claim_messages",
    "cleanup_outbox",
    "fail_pending_for_target",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_team_chat_unreachable",
    "mark_user_unreachable",
    "message_exists",
    "release_expired_claims",
]

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"


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


async def release_expired_claims(repo: Repository, now: datetime) -> int:
    """Rows left in 'sending' past their lease (the process died) become pending again."""
    result = cast(
        CursorResult[Any],
        await repo.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == SENDING, OutboxMessage.not_before <= now)
            .values(status=PENDING, last_error="ClaimExpired")
        ),
    )
    return result.rowcount


async def claim_messages(
    repo: Repository,
    now: datetime,
    platforms: Sequence[str],
    limit: int,
    lease_until: datetime,
) -> list[ClaimedMessage]:
    """Take up to `limit` pending rows due at `now` for the given platforms and mark them
    'sending' with a lease; the caller commits before sending anything."""
    if not platforms:
        return []
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == PENDING,
            OutboxMessage.not_before <= now,
            OutboxMessage.platform.in_(list(platforms)),
        )
        .order_by(OutboxMessage.not_before, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    rows = list(await repo.session.scalars(stmt))
    for row in rows:
        row.status = SENDING
        row.not_before = lease_until
    await repo.session.flush()
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
        )
        for row in rows
    ]


async def _set(repo: Repository, message_id: int, **values: Any) -> bool:
    # Only a row we still hold as 'sending' is changed: if its lease expired and another
    # dispatcher took it, that one decides.
    result = cast(
        CursorResult[Any],
        await repo.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == SENDING)
            .values(**values)
        ),
    )
    return result.rowcount == 1


async def mark_sent(repo: Repository, message_id: int, at: datetime) -> bool:
    return await _set(repo, message_id, status=SENT, sent_at=at, last_error=None)


async def mark_retry(
    repo: Repository, message_id: int, not_before: datetime, error: str, attempts: int
) -> bool:
    return await _set(
        repo,
        message_id,
        status=PENDING,
        not_before=not_before,
        last_error=error[:200],
        attempts=attempts,
    )


async def mark_failed(repo: Repository, message_id: int, error: str, attempts: int) -> bool:
    return await _set(repo, message_id, status=FAILED, last_error=error[:200], attempts=attempts)


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
    result = cast(
        CursorResult[Any],
        await repo.session.execute(
            update(OutboxMessage)
            .where(target, OutboxMessage.status == PENDING)
            .values(status=FAILED, last_error=error[:200])
        ),
    )
    return result.rowcount


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
