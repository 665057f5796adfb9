"""The scheduler: a due-work tick, the outbox dispatcher and a daily cleanup.

APScheduler (AsyncIOScheduler, in-memory job store) only drives three fixed jobs; what is
due lives in the database (`users.next_checkin_at`, `users.next_nudge_at`,
`warmup_schedules.next_warmup_at`, all indexed), so a restart loses nothing and several
clock processes can share the work on PostgreSQL (`FOR UPDATE SKIP LOCKED`).

Tick (every ~30 s), per small batch in one transaction: claim due rows, run the engine's
reminder turn (which stores the user's new conversation state), write the prompt to the
outbox under an idempotency key, advance the next time. Rules:
- one prompt per local day: key "checkin:<user>:<local date>"; a snoozed re-ask adds
  ":snooze:<HHMM>" (the snoozed time, so a retried tick produces the same key);
- downtime: a check-in due more than 3 hours ago is skipped to its next occurrence (the
  most recent one is still sent if it is inside the 3 hour window); a warm-up whose run has
  already started is skipped;
- one nudge, 3 hours after an unanswered prompt, if the runner wants nudges, never at or
  after 21:00 local time;
- paused and unreachable users, and unreachable team chats, are not claimed at all; a
  pause until a date ("pause until 12 Jan") is not a paused row: its `next_checkin_at` is
  the first reminder on that local day, and that reminder turn ends the pause.

Dispatcher: a loop that drains the outbox, then sleeps until the earliest `not_before` of
a row it could claim (or a lease that runs out), at most `dispatch_seconds` (for rows other
processes queue); it wakes at once when this process queues something (a reply that could
not go at once, a tick's reminders). In a pass, `concurrency` workers each claim one row at
a time, just before sending it (the row becomes 'sending' under a claim token with a 30
second lease, HIPCOACH_SENDING_LEASE_SECONDS, committed *before* the platform is called),
send it within the platform's limits and mark it in its own short transaction
(bot/sending.py decides what the outcome means). Chats where a reply waits are claimed
first, and replies take their send slot ahead of reminders and cards: the pacing
(scheduler/ratelimit.py) is the process's one, shared with the replies `Coach.deliver`
sends at once. Only the oldest unsent message of a chat is ever claimed, so a chat's
messages (replies included) keep their order. A crash can leave only the messages then in
flight (up to `concurrency`) claimed: they go again once their lease runs out, and every
other row is sent as soon as a dispatcher runs. A mark that finds the row no longer ours
(our lease ran out, another dispatcher took it) stops the whole pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time as _time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, cast

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import metrics
from bot.delivery import DeliveryError, Pacer, RetryAfter, Sender
from bot.engine.events import Outbound
from bot.engine.flows.account import next_checkin_at
from bot.engine.flows.team import next_warmup_post, render_warmup_card
from bot.engine.localtime import local_date, to_local
from bot.engine.state import Profile
from bot.engine.turn import History
from bot.payload import decode, encode
from bot.report.summaries import ensure_weekly
from bot.sending import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    LEASE,
    MAX_ATTEMPTS,
    LostClaim,
    Outcome,
    backoff,
    lease_from_env,
    outcome_of,
    record,
)
from bot.service import UserState, history_from_rows, history_window
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.errors import is_outage
from bot.storage.models import TeamChat, User, WarmupSchedule
from bot.storage.repository import Repository
from scheduler.ratelimit import RateLimiter
from scheduler.weekly import drain_summaries

if TYPE_CHECKING:
    from bot.service import Coach

log = logging.getLogger("hipcoach.scheduler")

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "MAX_ATTEMPTS",
    "Scheduler",
    "SchedulerConfig",
    "backoff",
]

GRACE = timedelta(hours=3)  # downtime: reminders older than this are skipped
NUDGE_AFTER = timedelta(hours=3)
NUDGE_LATEST = time(21, 0)  # never nudge at or after this local time
EVENTS_KEEP = timedelta(days=7)
OUTBOX_KEEP = timedelta(days=30)
_ONE_TICK = timedelta(microseconds=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        log.warning("ignoring %s=%r (not a number)", name, raw)
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class SchedulerConfig:
    tick_seconds: float = 30.0
    # The dispatcher's longest sleep: it wakes earlier for the next due row and at once for
    # what this process queues; this bounds how late it sees rows other processes queue.
    dispatch_seconds: float = 2.0
    batch: int = 50  # due rows per tick transaction
    concurrency: int = 10  # sends in flight per dispatcher (each holds one claimed row)
    max_wait: float = 5.0  # longest in-process wait for a rate-limit slot
    lease_seconds: float = LEASE.total_seconds()  # how long a 'sending' claim is held

    @classmethod
    def from_env(cls) -> SchedulerConfig:
        return cls(
            tick_seconds=_env_seconds("HIPCOACH_TICK_SECONDS", 30.0),
            dispatch_seconds=_env_seconds("HIPCOACH_DISPATCH_SECONDS", 2.0),
            lease_seconds=lease_from_env().total_seconds(),
        )


def _first_after_day(reminder_time: str, tz: str, now: datetime, day: date) -> datetime:
    """The first regular reminder after `now` that falls on a local date after `day`."""
    nxt = next_checkin_at(reminder_time, tz, now)
    while local_date(nxt, tz) <= day:
        nxt = next_checkin_at(reminder_time, tz, nxt)
    return nxt


class _NeedsOneByOne(Exception):
    """The batch holds something only the one-by-one path handles."""


_KEEP: Any = object()  # a plan that leaves next_checkin_at as the turn left it


@dataclass
class _DueUser:
    """A due user's row, held in memory by the set-based tick (see `Coach.reminder_step`)."""

    id: int
    platform: str
    platform_user_id: str
    chat_id: str
    timezone: str | None
    reminder_time: str | None
    paused: bool
    next_checkin_at: datetime | None
    next_nudge_at: datetime | None
    profile: dict[str, Any]
    conversation: dict[str, Any]
    version: int


@dataclass
class _Plan:
    """One due user's reminder: its outbox key (None: nothing to send) and local day, and
    the next check-in time to store afterwards (_KEEP: as the turn leaves it)."""

    user: _DueUser
    kind: str
    key: str | None
    day: date | None
    next_checkin_at: Any


def _profile_zone(user: _DueUser) -> str | None:
    zone = (user.profile or {}).get("timezone")
    return zone if isinstance(zone, str) and zone else None


class Scheduler:
    """Fixed APScheduler jobs around `tick()`, `dispatch()` and `cleanup()`.

    `tick` and `dispatch` take `now` (tests inject time); the jobs pass `clock()`.
    """

    def __init__(
        self,
        db: Database,
        coach: Coach,
        senders: dict[str, Sender],
        *,
        clock: Callable[[], datetime] = utcnow,
        config: SchedulerConfig | None = None,
        limiter: Pacer | None = None,
    ) -> None:
        self.db = db
        self.coach = coach
        self.senders = metrics.counted_senders(senders)
        self.clock = clock
        self.config = config or SchedulerConfig.from_env()
        # The coach's pacing when it has one: replies and the dispatcher share the limits.
        self.limiter: Pacer = limiter or getattr(coach, "pacer", None) or RateLimiter()
        self._aps: AsyncIOScheduler | None = None
        self._stopping = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        aps = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone=UTC,
        )
        first = datetime.now(UTC)
        aps.add_job(
            self._job(self.tick),
            "interval",
            seconds=self.config.tick_seconds,
            id="tick",
            next_run_time=first,
        )
        aps.add_job(
            self._job(self.cleanup),
            "interval",
            hours=24,
            id="cleanup",
            next_run_time=first + timedelta(minutes=5),
        )
        aps.start()
        self._aps = aps
        if hasattr(self.coach, "on_queued"):
            self.coach.on_queued = self.wake
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="dispatcher")
        log.info(
            "scheduler started tick=%ss dispatch=%ss platforms=%s",
            self.config.tick_seconds,
            self.config.dispatch_seconds,
            ",".join(sorted(self.senders)) or "-",
        )

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking new work, let a running tick or send batch finish, then stop."""
        self._stopping = True
        self._wake.set()
        if self._aps is not None:
            self._aps.pause()
        if getattr(self.coach, "on_queued", None) == self.wake:
            self.coach.on_queued = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        log.info("scheduler stopped")

    def _job(self, work: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[bool]]:
        async def run() -> bool:
            if self._stopping:
                return False
            self._busy += 1
            self._idle.clear()
            try:
                await work()
                return True
            except Exception:
                log.exception("scheduler job %s failed", getattr(work, "__name__", work))
                return False
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()

        return run

    def wake(self) -> None:
        """Something was queued: the dispatcher looks at once instead of at its next due."""
        self._wake.set()

    async def _dispatch_loop(self) -> None:
        """Drain, then sleep until the next due row (or a wake-up); until shutdown."""
        dispatch = self._job(self.dispatch)
        while not self._stopping:
            self._wake.clear()
            wait = self.config.dispatch_seconds
            if await dispatch():
                try:
                    wait = await self.next_wait()
                except Exception:
                    log.exception("dispatcher: could not read the next due time")
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def next_wait(self, now: datetime | None = None) -> float:
        """Seconds until the dispatcher has something to do (0 = now), at most
        `dispatch_seconds` (rows another process queues wake nobody here)."""
        platforms = sorted(self.senders)
        if not platforms:
            return self.config.dispatch_seconds
        async with self.db.transaction(readonly=True) as repo:
            due = await outbox.next_due(repo, platforms)
        now = now or self.clock()
        if due is None:
            return self.config.dispatch_seconds
        return min(max(0.0, (due - now).total_seconds()), self.config.dispatch_seconds)

    # --- the due-work tick ----------------------------------------------------------------
    # Set-based per batch (`_batch`); the per-user methods below (`_checkin`, `_nudge`) are
    # the fall-back when a batch fails, and say the same rules one user at a time.

    @metrics.timed_tick
    async def tick(self, now: datetime | None = None) -> int:
        """Write every due reminder to the outbox; returns how many messages were queued."""
        now = now or self.clock()
        queued = 0
        queued += await self._drain(
            now, "next_checkin_at", outbox.claim_due_checkins, self._checkin
        )
        queued += await self._drain(now, "next_nudge_at", outbox.claim_due_nudges, self._nudge)
        queued += await self._drain_warmups(now)
        queued += await drain_summaries(self.db, self.coach, now, self.config.batch)
        if queued:
            log.info("tick queued=%d", queued)
            self.wake()
        return queued

    async def _drain(
        self,
        now: datetime,
        column: str,
        claim: Callable[[Repository, datetime, int], Awaitable[list[User]]],
        handle: Callable[[Repository, User, datetime], Awaitable[int]],
    ) -> int:
        """Batches of due users, each set-based in one transaction (`_batch`); a batch that
        fails is rolled back and done again one user at a time (`_one_by_one`), where a
        user whose reminder fails is skipped, so one broken row cannot stall the others."""
        queued = 0
        for _ in range(10_000):  # a bound, not a limit anyone reaches
            try:
                async with self.db.transaction() as repo:
                    rows = await outbox.claim_due_rows(repo, column, now, self.config.batch)
                    done = await self._batch(repo, column, rows, now)
                # Counted once the batch committed: a failed one is counted by the fallback.
                metrics.due_users(len(rows))
                queued += done
                count = len(rows)
            except Exception as error:
                if is_outage(error):
                    raise  # the job logs it; the next tick tries again
                log.warning("reminder batch failed (%s); doing it one by one", type(error).__name__)
                queued_one, count = await self._one_by_one(now, claim, handle)
                queued += queued_one
            if count < self.config.batch or self._stopping:
                break
        return queued

    async def _one_by_one(
        self,
        now: datetime,
        claim: Callable[[Repository, datetime, int], Awaitable[list[User]]],
        handle: Callable[[Repository, User, datetime], Awaitable[int]],
    ) -> tuple[int, int]:
        queued = 0
        async with self.db.transaction() as repo:
            users = await claim(repo, now, self.config.batch)
            for user in users:
                queued += await self._guarded(repo, user, now, handle)
        metrics.due_users(len(users))
        return queued, len(users)

    async def _batch(self, repo: Repository, column: str, rows: list[Any], now: datetime) -> int:
        """One batch of due users with a handful of statements: the keys already queued
        (one query), their history (one query per table), the engine in memory, the new
        reminders (one batch insert) and every user written once (one batch update)."""
        if not rows:
            return 0
        states = [_DueUser(**row._mapping) for row in rows]
        plans = [
            self._plan_checkin(u, now) if column == "next_checkin_at" else self._plan_nudge(u, now)
            for u in states
        ]
        keys = [p.key for p in plans if p.key is not None]
        taken = await outbox.existing_keys(repo, keys)
        turns = [p for p in plans if p.key is not None and p.key not in taken]
        histories = await self._histories(repo, [p.user for p in turns], now)
        messages: list[outbox.NewMessage] = []
        for plan in turns:
            user = plan.user
            assert plan.key is not None
            result = self.coach.reminder_step(user, histories[user.id], plan.kind, now)
            if result.effects:
                # Not something a reminder does today; the one-by-one path applies effects.
                raise _NeedsOneByOne(f"reminder turn with effects user={user.id}")
            self.coach.store_state(user, result, now)
            for n, reply in enumerate(result.replies):
                if reply.attachment is not None or reply.edit_ref is not None:
                    continue  # a reminder never carries these; never queue them
                messages.append(
                    outbox.NewMessage(
                        idempotency_key=plan.key if n == 0 else f"{plan.key}:{n}",
                        platform=user.platform,
                        chat_id=reply.chat_id or user.chat_id,
                        kind=plan.kind,
                        payload=encode(reply),
                        user_id=user.id,
                    )
                )
        inserted = await outbox.add_messages(repo, messages, now)
        for plan in plans:
            if plan.key in inserted and plan.kind == "checkin" and plan.day is not None:
                plan.user.next_nudge_at = self._nudge_time(plan.user, now, plan.day)
            if plan.next_checkin_at is not _KEEP:
                plan.user.next_checkin_at = cast(datetime | None, plan.next_checkin_at)
        await outbox.write_users(repo, [vars(u) for u in states], now)
        return len(inserted)

    async def _histories(
        self, repo: Repository, users: list[_DueUser], now: datetime
    ) -> dict[int, History]:
        """Each user's history window (their own local today), from one query per table."""
        if not users:
            return {}
        windows = {u.id: history_window(local_date(now, _profile_zone(u) or "UTC")) for u in users}
        start = min(w[0] for w in windows.values())
        end = max(w[1] for w in windows.values())
        checkins, logs = await repo.history_rows(list(windows), start, end)
        by_user_c: dict[int, list[Any]] = {uid: [] for uid in windows}
        by_user_l: dict[int, list[Any]] = {uid: [] for uid in windows}
        for row in checkins:
            lo, hi = windows[row.user_id]
            if lo <= row.local_date <= hi:
                by_user_c[row.user_id].append(row)
        for row in logs:
            lo, hi = windows[row.user_id]
            if lo <= row.local_date <= hi:
                by_user_l[row.user_id].append(row)
        return {uid: history_from_rows(by_user_c[uid], by_user_l[uid]) for uid in windows}

    def _plan_checkin(self, user: _DueUser, now: datetime) -> _Plan:
        """What `_checkin` decides before the turn, for a user held in memory."""
        due = user.next_checkin_at
        rt, tz = user.reminder_time, user.timezone
        if due is None or not rt or not tz:
            return _Plan(user, "checkin", None, None, None)
        snoozed = next_checkin_at(rt, tz, due - _ONE_TICK) != due
        if now - due > GRACE:
            recent = next_checkin_at(rt, tz, now - GRACE)
            if recent > now:
                log.info("checkin skipped (late) user=%s", user.id)
                return _Plan(user, "checkin", None, None, recent)
            due, snoozed = recent, False
        day = local_date(due, tz)
        key = f"checkin:{user.id}:{day.isoformat()}"
        if snoozed:
            key += f":snooze:{to_local(due, tz):%H%M}"
        return _Plan(user, "checkin", key, day, _first_after_day(rt, tz, now, day))

    def _plan_nudge(self, user: _DueUser, now: datetime) -> _Plan:
        """What `_nudge` decides before the turn, for a user held in memory."""
        moot, local_now = _take_nudge(user, now)
        key = None if moot else f"nudge:{user.id}:{local_now.date().isoformat()}"
        return _Plan(user, "nudge", key, None, _KEEP)

    async def _guarded(
        self,
        repo: Repository,
        user: User,
        now: datetime,
        handle: Callable[[Repository, User, datetime], Awaitable[int]],
    ) -> int:
        """One user's reminder in a savepoint: a failure skips that reminder (logged) so
        one broken row cannot stall everyone else's."""
        try:
            async with repo.session.begin_nested():
                return await handle(repo, user, now)
        except Exception:
            log.exception("reminder failed user=%s; skipping it", user.id)
        async with repo.session.begin_nested():
            await repo.session.refresh(user)
            self._skip(user, now)
            await repo.save_user(user)
        return 0

    @staticmethod
    def _skip(user: User, now: datetime) -> None:
        if user.next_checkin_at is not None and user.next_checkin_at <= now:
            user.next_checkin_at = (
                next_checkin_at(user.reminder_time, user.timezone, now)
                if user.reminder_time and user.timezone
                else None
            )
        if user.next_nudge_at is not None and user.next_nudge_at <= now:
            user.next_nudge_at = None

    async def _checkin(self, repo: Repository, user: User, now: datetime) -> int:
        due = user.next_checkin_at
        rt, tz = user.reminder_time, user.timezone
        if due is None or not rt or not tz:
            user.next_checkin_at = None
            await repo.save_user(user)
            return 0
        # A snooze moves next_checkin_at off the regular reminder time.
        snoozed = next_checkin_at(rt, tz, due - _ONE_TICK) != due
        if now - due > GRACE:
            # Downtime: skip to the most recent occurrence if it is still in the window.
            recent = next_checkin_at(rt, tz, now - GRACE)
            if recent > now:
                log.info("checkin skipped (late) user=%s", user.id)
                user.next_checkin_at = recent
                await repo.save_user(user)
                return 0
            due, snoozed = recent, False
        day = local_date(due, tz)
        key = f"checkin:{user.id}:{day.isoformat()}"
        if snoozed:
            key += f":snooze:{to_local(due, tz):%H%M}"
        queued = 0
        if not await outbox.message_exists(repo, key):
            replies = await self.coach.reminder_turn(repo, user, "checkin", now)
            queued = await self._enqueue(repo, user, "checkin", key, replies, now)
            if queued:
                user.next_nudge_at = self._nudge_time(user, now, day)
        user.next_checkin_at = _first_after_day(rt, tz, now, day)
        await repo.save_user(user)
        await ensure_weekly(repo, user, now)  # runners from before Sunday summaries
        return queued

    @staticmethod
    def _nudge_time(user: UserState, now: datetime, day: date) -> datetime | None:
        profile = Profile.model_validate(user.profile or {})
        if not profile.nudges or not user.timezone:
            return None
        at = now + NUDGE_AFTER
        local = to_local(at, user.timezone)
        if local.date() != day or local.time() >= NUDGE_LATEST:
            return None
        return at

    async def _nudge(self, repo: Repository, user: User, now: datetime) -> int:
        moot, local_now = _take_nudge(user, now)
        key = f"nudge:{user.id}:{local_now.date().isoformat()}"
        queued = 0
        if not moot and not await outbox.message_exists(repo, key):
            replies = await self.coach.reminder_turn(repo, user, "nudge", now)
            queued = await self._enqueue(repo, user, "nudge", key, replies, now)
        await repo.save_user(user)
        return queued

    async def _enqueue(
        self,
        repo: Repository,
        user: User,
        kind: str,
        key: str,
        replies: list[Outbound],
        now: datetime,
    ) -> int:
        queued = 0
        for n, reply in enumerate(replies):
            if reply.attachment is not None or reply.edit_ref is not None:
                continue  # a reminder never carries these; never queue them
            inserted = await outbox.add_message(
                repo,
                idempotency_key=key if n == 0 else f"{key}:{n}",
                platform=user.platform,
                chat_id=reply.chat_id or user.chat_id,
                kind=kind,
                payload=encode(reply),
                not_before=now,
                user_id=user.id,
            )
            queued += int(inserted)
        return queued

    async def _drain_warmups(self, now: datetime) -> int:
        queued = 0
        for _ in range(10_000):
            async with self.db.transaction() as repo:
                due = await outbox.claim_due_warmups(repo, now, self.config.batch)
                for schedule, chat in due:
                    queued += await self._warmup(repo, schedule, chat, now)
            if len(due) < self.config.batch or self._stopping:
                break
        return queued

    async def _warmup(
        self, repo: Repository, schedule: WarmupSchedule, chat: TeamChat, now: datetime
    ) -> int:
        due = schedule.next_warmup_at
        assert due is not None
        run_at = due + timedelta(minutes=schedule.lead_minutes)
        queued = 0
        if now > run_at:
            log.info("warmup skipped (run already started) schedule=%s", schedule.id)
        else:
            run_day = local_date(run_at, schedule.timezone)
            card = Outbound(chat_id=chat.chat_id, text=render_warmup_card(self.coach.content))
            inserted = await outbox.add_message(
                repo,
                idempotency_key=f"warmup:{schedule.id}:{run_day.isoformat()}",
                platform=chat.platform,
                chat_id=chat.chat_id,
                kind="warmup",
                payload=encode(card),
                not_before=now,
                team_chat_id=chat.id,
            )
            queued = int(inserted)
        schedule.next_warmup_at = next_warmup_post(
            schedule.days, schedule.run_time, schedule.lead_minutes, schedule.timezone, now
        )
        await repo.save_warmup(schedule)
        return queued

    # --- the dispatcher -------------------------------------------------------------------

    async def dispatch(self, now: datetime | None = None) -> int:
        """Send every pending message due at `now`; returns how many were sent."""
        base = now or self.clock()
        started = _time.monotonic()

        def at() -> datetime:
            # Injected time plus the real time this pass has taken (rate-limit waits).
            return base + timedelta(seconds=_time.monotonic() - started)

        platforms = sorted(self.senders)
        if not platforms:
            return 0
        async with self.db.transaction() as repo:
            released = await outbox.release_expired_claims(repo, base)
        if released:
            log.warning("outbox released %d expired claims", released)
        sent = 0
        broken: list[BaseException] = []  # a mark failed: the pass ends with that error
        lease = timedelta(seconds=self.config.lease_seconds)

        async def worker() -> None:
            nonlocal sent
            for _ in range(100_000):  # a bound, not a limit anyone reaches
                if self._stopping or broken:
                    return
                # One row at a time, claimed right before it is sent: after a crash only
                # the rows then in flight wait for their lease.
                # Due by now, not by the pass's start: a reply queued during a long pass (a
                # burst of reminders) is claimed in this pass, ahead of the rest.
                async with self.db.transaction() as repo:
                    claimed = await outbox.claim_messages(repo, at(), platforms, 1, at() + lease)
                if not claimed:
                    return
                try:
                    delivered = await self._deliver(claimed[0], at)
                except Exception as error:
                    # A mark failed (the database is away, or the row is no longer ours):
                    # send no more in this pass, or each would be sent again later.
                    broken.append(error)
                    raise
                sent += delivered  # not `sent += await ...`: workers interleave at the await

        results = await asyncio.gather(
            *(worker() for _ in range(self.config.concurrency)), return_exceptions=True
        )
        if broken and isinstance(broken[0], LostClaim):
            log.warning("outbox pass stopped: a claimed row was taken over by another sender")
            return sent
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sent

    async def _deliver(self, message: outbox.ClaimedMessage, at: Callable[[], datetime]) -> bool:
        sender = self.senders[message.platform]
        urgent = message.kind == outbox.REPLY  # replies go ahead of reminders and cards
        later = self.limiter.ready_in(message.platform, message.chat_id, urgent=urgent)
        if later > self.config.max_wait:
            # Too far away to hold the row while waiting (a 429 closed the chat, a group's
            # minute is full): put it back for then.
            outcome = Outcome(
                "retry", message.attempts, "RateLimited", at() + timedelta(seconds=later)
            )
            await self._mark(message, outcome, at())
            return False
        error: Exception | None = None
        try:
            payload = decode(message.chat_id, message.payload)
        except Exception as exc:  # a row that cannot be read is an outcome too
            error = exc
        if error is None:
            edit = payload.edit_ref is not None
            async with self.limiter.slot(
                message.platform, message.chat_id, urgent=urgent, edit=edit
            ):
                try:
                    await sender.send(payload)
                except Exception as exc:  # every failure is an outcome (bot/sending.py)
                    error = exc
        outcome = outcome_of(error, message, at())
        if isinstance(error, RetryAfter):
            self.limiter.retry_after(message.platform, message.chat_id, float(error.seconds))
            log.info("outbox retry-after id=%s seconds=%s", message.id, error.seconds)
        elif outcome.status == "gone":
            log.warning(
                "outbox permanent failure id=%s kind=%s error=%s",
                message.id,
                message.kind,
                outcome.error,
            )
        elif outcome.status == "failed":
            log.warning("outbox giving up id=%s after %d attempts", message.id, outcome.attempts)
        elif error is not None and not isinstance(error, DeliveryError):
            log.error("outbox sender error id=%s", message.id, exc_info=error)
        await self._mark(message, outcome, at())
        return outcome.status == "sent"

    async def _mark(self, message: outbox.ClaimedMessage, outcome: Outcome, at: datetime) -> None:
        async with self.db.transaction() as repo:
            held = await record(repo, message, outcome, at)
        if not held:
            raise LostClaim(f"outbox row {message.id} is held by another sender")

    # --- housekeeping ---------------------------------------------------------------------

    async def cleanup(self, now: datetime | None = None) -> tuple[int, int]:
        """Forget old processed event ids and old sent/failed outbox rows."""
        now = now or self.clock()
        async with self.db.transaction() as repo:
            events = await repo.cleanup_events(now - EVENTS_KEEP)
            messages = await outbox.cleanup_outbox(repo, now - OUTBOX_KEEP)
        log.info("cleanup events=%d outbox=%d", events, messages)
        return events, messages


def _take_nudge(user: _DueUser | User, now: datetime) -> tuple[bool, datetime]:
    """Clear the user's nudge and say whether it is moot (too late, another local day, past
    the latest nudge time, or nudges turned off), with the user's local time now."""
    due = user.next_nudge_at
    user.next_nudge_at = None
    tz = user.timezone or "UTC"
    local_now = to_local(now, tz)
    profile = Profile.model_validate(user.profile or {})
    moot = (
        due is None
        or now - due > GRACE
        or local_date(due, tz) != local_now.date()
        or local_now.time() >= NUDGE_LATEST
        or not profile.nudges
    )
    return moot, local_now
