"""The Sunday summary's part of the tick: due rows of `weekly_summaries`, one message each.

Like check-ins: the due time lives in the database (indexed), rows are claimed with
`FOR UPDATE SKIP LOCKED`, the message goes to the outbox under the idempotency key
"summary:<user>:<local date>" in the transaction that advances the next time, and a
summary due more than 3 hours ago (downtime) is skipped to the next Sunday.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.engine.localtime import local_date
from bot.engine.state import Profile
from bot.payload import encode
from bot.report.summaries import wants_weekly, weekly_message
from bot.report.weekly import next_summary_at
from bot.storage import outbox, reports
from bot.storage.db import Database

if TYPE_CHECKING:
    from bot.service import Coach

log = logging.getLogger("hipcoach.scheduler")

GRACE = timedelta(hours=3)
KIND = "summary"


async def drain_summaries(db: Database, coach: Coach, now: datetime, batch: int) -> int:
    queued = 0
    for _ in range(10_000):  # a bound, not a limit anyone reaches
        async with db.transaction() as repo:
            due = await reports.claim_due_summaries(repo, now, batch)
            for row, user in due:
                profile = Profile.model_validate(user.profile or {})
                if not wants_weekly(profile) or not profile.timezone:
                    row.next_at = None
                    continue
                tz = profile.timezone
                assert row.next_at is not None
                late = now - row.next_at > GRACE
                if not (late or user.paused or user.unreachable):
                    key = f"summary:{user.id}:{local_date(row.next_at, tz).isoformat()}"
                    if not await outbox.message_exists(repo, key):
                        message = await weekly_message(repo, coach.content, user, now)
                        if message is not None:
                            queued += int(
                                await outbox.add_message(
                                    repo,
                                    idempotency_key=key,
                                    platform=user.platform,
                                    chat_id=message.chat_id,
                                    kind=KIND,
                                    payload=encode(message),
                                    not_before=now,
                                    user_id=user.id,
                                )
                            )
                elif late:
                    log.info("weekly summary skipped (late) user=%s", user.id)
                row.next_at = next_summary_at(tz, now)
            await repo.session.flush()
        if len(due) < batch:
            break
    return queued
