"""Read-only figures for /metrics: how full the outbox is and how long its oldest due
message has waited. One grouped query per scrape, served by the outbox's (status,
not_before) index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from bot.storage import outbox
from bot.storage.models import OutboxMessage
from bot.storage.repository import Repository

__all__ = ["OutboxStats", "outbox_stats"]


@dataclass(frozen=True)
class OutboxStats:
    depth: dict[str, int]  # platform -> messages pending or being sent
    oldest_due: dict[str, datetime]  # platform -> not_before of the oldest due pending one


async def outbox_stats(repo: Repository, now: datetime) -> OutboxStats:
    due = (OutboxMessage.status == outbox.PENDING) & (OutboxMessage.not_before <= now)
    rows = await repo.session.execute(
        select(
            OutboxMessage.platform,
            func.count(),
            # typed, so the UTC TypeDecorator reads the result (SQLite returns text).
            func.min(case((due, OutboxMessage.not_before)), type_=OutboxMessage.not_before.type),
        )
        .where(OutboxMessage.status.in_((outbox.PENDING, outbox.SENDING)))
        .group_by(OutboxMessage.platform)
    )
    depth: dict[str, int] = {}
    oldest: dict[str, datetime] = {}
    for platform, count, first_due in rows:
        depth[platform] = int(count)
        if first_due is not None:
            oldest[platform] = first_due
    return OutboxStats(depth=depth, oldest_due=oldest)
