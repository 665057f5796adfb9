"""What one send attempt of an outbox row means for that row, for both paths that send.

A turn's own process sends the replies it just committed (`Coach.deliver`); the dispatcher
(scheduler/core.py) sends everything else: reminders, and replies that could not go at
once. Both make one attempt per claimed row and record its outcome here, under the claim:

- delivered: a reminder is marked 'sent'; a reply is deleted (its text may be personal);
- RetryAfter (429): pending again after the platform's retry_after, not counted as a failure;
- TransientFailure or an unexpected error: pending again after a backoff (5 s doubling,
  capped at 30 minutes), given up after MAX_ATTEMPTS;
- PermanentFailure (the person blocked the bot, the chat is gone): failed, with every other
  waiting message to that target, and the target marked unreachable;
- any other DeliveryError (this message can never be sent as it is): failed, target kept.

A mark that matches no row means another sender took the row over after our lease ran out;
`record` returns False and the caller stops, rather than overwrite that sender's decision.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.delivery import DeliveryError, PermanentFailure, RetryAfter, TransientFailure
from bot.storage import outbox
from bot.storage.repository import Repository

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "LEASE",
    "MAX_ATTEMPTS",
    "LostClaim",
    "Outcome",
    "backoff",
    "lease_from_env",
    "outcome_of",
    "record",
]

MAX_ATTEMPTS = 8  # transient failures before a message is given up
BACKOFF_BASE = 5.0  # seconds; doubled per attempt
BACKOFF_MAX = 30 * 60.0
# How long a claim holds a row that is being sent. A row is claimed just before its send,
# which takes seconds at most (python-telegram-bot's timeouts), so after a crash only the
# messages then in flight wait this long before another sender takes them.
LEASE = timedelta(seconds=30)
LEASE_ENV = "HIPCOACH_SENDING_LEASE_SECONDS"


def lease_from_env() -> timedelta:
    """The claim lease, read from the environment each time (tests and operators change
    it while a process runs); the parse is cached by the variable's text, as every turn
    asks for it."""
    return _lease_of(os.environ.get(LEASE_ENV, ""))


@functools.lru_cache(maxsize=8)
def _lease_of(raw: str) -> timedelta:
    raw = raw.strip()
    try:
        seconds = float(raw) if raw else LEASE.total_seconds()
    except ValueError:
        return LEASE
    return timedelta(seconds=seconds) if seconds > 0 else LEASE


def backoff(attempts: int) -> timedelta:
    """Delay before retry number `attempts` (1, 2, ...) after a transient failure."""
    return timedelta(seconds=min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX))


class LostClaim(Exception):
    """A mark matched no row: our lease ran out and another sender holds the row now."""


@dataclass(frozen=True)
class Outcome:
    """What to write to a claimed row after one attempt."""

    status: str  # "sent" | "retry" | "failed" | "gone"
    attempts: int
    error: str = ""
    not_before: datetime | None = None

    @property
    def keeps_order(self) -> bool:
        """Must this chat's later messages wait? (Yes unless this one is settled.)"""
        return self.status == "retry"


def outcome_of(
    error: BaseException | None, message: outbox.ClaimedMessage, now: datetime
) -> Outcome:
    if error is None:
        return Outcome("sent", message.attempts)
    name = type(error).__name__
    if isinstance(error, RetryAfter):
        seconds = max(float(error.seconds), 1.0)
        return Outcome("retry", message.attempts, name, now + timedelta(seconds=seconds))
    if isinstance(error, PermanentFailure):
        return Outcome("gone", message.attempts, name)
    attempts = message.attempts + 1
    undeliverable = isinstance(error, DeliveryError) and not isinstance(error, TransientFailure)
    if undeliverable or attempts >= MAX_ATTEMPTS:
        return Outcome("failed", attempts, name)
    return Outcome("retry", attempts, name, now + backoff(attempts))


async def record(
    repo: Repository, message: outbox.ClaimedMessage, outcome: Outcome, at: datetime
) -> bool:
    """Write `outcome` to the row; False if we no longer hold it."""
    if outcome.status == "sent":
        return await outbox.mark_sent(repo, message, at)
    if outcome.status == "retry":
        assert outcome.not_before is not None
        return await outbox.mark_retry(
            repo, message, outcome.not_before, outcome.error, outcome.attempts
        )
    held = await outbox.mark_failed(repo, message, outcome.error, outcome.attempts)
    if held and outcome.status == "gone":
        await outbox.fail_pending_for_target(
            repo, user_id=message.user_id, team_chat_id=message.team_chat_id, error=outcome.error
        )
        if message.user_id is not None:
            await outbox.mark_user_unreachable(repo, message.user_id)
        elif message.team_chat_id is not None:
            await outbox.mark_team_chat_unreachable(repo, message.team_chat_id)
    return held
