"""Reads and writes for the outcome measures and the summaries (issue 13).

Like `outbox`, every function takes a `Repository` (one transaction) and never commits.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select

from bot.storage.models import (
    Escalation,
    OutcomeAnswer,
    PlanChange,
    Screening,
    User,
    WeeklySummary,
)
from bot.storage.repository import Repository
from bot.storage.types import utcnow


async def add_outcome(
    repo: Repository, user_id: int, local_date: date, measure: str, item: str | None, score: int
) -> None:
    repo.session.add(
        OutcomeAnswer(
            user_id=user_id,
            local_date=local_date,
            measure=measure,
            item=item,
            score=score,
            created_at=utcnow(),
        )
    )
    await repo.session.flush()


async def outcome_answers(repo: Repository, user_id: int) -> list[OutcomeAnswer]:
    stmt = (
        select(OutcomeAnswer)
        .where(OutcomeAnswer.user_id == user_id)
        .order_by(OutcomeAnswer.local_date, OutcomeAnswer.id)
    )
    return list(await repo.session.scalars(stmt))


async def escalations(repo: Repository, user_id: int) -> list[Escalation]:
    stmt = select(Escalation).where(Escalation.user_id == user_id).order_by(Escalation.id)
    return list(await repo.session.scalars(stmt))


async def screenings(repo: Repository, user_id: int) -> list[Screening]:
    stmt = select(Screening).where(Screening.user_id == user_id).order_by(Screening.id)
    return list(await repo.session.scalars(stmt))


async def plan_changes(repo: Repository, user_id: int) -> list[PlanChange]:
    stmt = select(PlanChange).where(PlanChange.user_id == user_id).order_by(PlanChange.id)
    return list(await repo.session.scalars(stmt))


# --- the Sunday summary's schedule -------------------------------------------------------------


async def summary_due_at(repo: Repository, user_id: int) -> tuple[bool, datetime | None]:
    """(whether the user has a schedule row, its next time)."""
    row = await repo.session.get(WeeklySummary, user_id)
    return (row is not None, row.next_at if row is not None else None)


async def set_summary_due(repo: Repository, user_id: int, at: datetime | None) -> None:
    row = await repo.session.get(WeeklySummary, user_id)
    if row is None:
        repo.session.add(WeeklySummary(user_id=user_id, next_at=at))
    elif row.next_at != at:
        row.next_at = at
    await repo.session.flush()


async def claim_due_summaries(
    repo: Repository, now: datetime, limit: int
) -> list[tuple[WeeklySummary, User]]:
    """Summaries due at `now`, rows locked for this transaction (skipped by other clock
    processes on PostgreSQL), with their user."""
    stmt = (
        select(WeeklySummary, User)
        .join(User, User.id == WeeklySummary.user_id)
        .where(WeeklySummary.next_at <= now)
        .order_by(WeeklySummary.next_at, WeeklySummary.user_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WeeklySummary)
        .execution_options(populate_existing=True)
    )
    result = await repo.session.execute(stmt)
    return [(row[0], row[1]) for row in result.all()]
