"""The coach service: one inbound event -> one transaction -> replies in the outbox.

`record(inbound)` loads the stored state, runs the pure engine step, carries out its
effects, and stores the new state, the dedup record and the replies (as outbox rows) in
one transaction. Replies are as durable as answers: nothing is sent before they commit.

`deliver(handled, send)` then sends the replies this process holds, at once, in order,
through the adapter's `send` (one attempt each, raising the errors of bot/delivery.py), and
records each outcome (bot/sending.py). A reply that could not go out stays in the outbox:
the dispatcher of `hipcoach run` or `hipcoach clock` sends it, after the platform's
retry_after or a backoff, and a process killed between the commit and the send leaves its
replies to the dispatcher once their short lease runs out. A chat's replies keep their
order: when an older message to the chat is still waiting, new replies wait behind it.

`handle(inbound, send)` is the two in a row, which is what adapters call; without `send`
the replies are left to the dispatcher. The steps stay separate so a caller can confirm an
update as soon as it is recorded and send later.

The same platform event recorded twice is handled once (dedup on the platform's own id).
A database outage raises (the caller waits it out and tries again); an event the database
refuses for good (a value or constraint it breaks) fails once: it is recorded as handled,
with a short apology to the person, so it cannot block everyone behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from cachetools import LRUCache
from sqlalchemy import Row
from sqlalchemy.orm.exc import StaleDataError

from bot import export, metrics, sending
from bot.charts import DayPoint, render_progress_chart
from bot.delivery import DeliveryError, Pacer, RetryAfter
from bot.engine import machine
from bot.engine.events import Attachment, ChatKind, Inbound, InboundKind, Outbound
from bot.engine.flows.account import next_checkin_at, next_prompt_at
from bot.engine.flows.team import next_warmup_post
from bot.engine.localtime import local_date
from bot.engine.state import Conversation, Profile
from bot.engine.turn import (
    AcknowledgeEscalations,
    AddWarmup,
    CheckinRecord,
    ClearEscalations,
    DeleteUser,
    ExerciseLog,
    History,
    LogExercise,
    RecordEscalation,
    RecordOutcome,
    RecordPlanChange,
    RecordScreening,
    RemoveWarmup,
    Result,
    SaveCheckin,
    SendChart,
    SendExport,
    SendPhysioSummary,
    SetTeamTimezone,
    SkipToday,
    Snooze,
    Turn,
    WarmupRecord,
)
from bot.holds import Holds
from bot.kept_history import KeptHistory
from bot.payload import encode
from bot.report import summaries
from bot.sanitize import sanitize_inbound
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.errors import is_outage, is_permanent
from bot.storage.models import User
from bot.storage.records import AnyUser, UserRecord
from bot.storage.repository import Repository
from content.loader import Content, default_content

log = logging.getLogger("hipcoach.service")

HISTORY_DAYS = 35
TURN_ATTEMPTS = 4
# Users whose engine values are kept between turns (a few KB each): the people in the
# middle of a check-in on a club's server.
STATE_CACHE_SIZE = 2048
# A reply send is not started with less lease than this (or a third of it) left: it could
# outlast the claim, and the dispatcher would send the reply a second time.
SEND_MARGIN = timedelta(seconds=10)
# Delivered replies are gathered this long (at most a quarter of a claim's lease) into one
# deleting transaction when no turn takes them first: while a burst's replies drain at
# Telegram's 30 a second, one small transaction each was ~3% of the bot's CPU (bench 2).
FORGET_GATHER_SECONDS = 0.5

Send = Callable[[Outbound], Awaitable[None]]
# A user row as it was written: id, when the user was created (SQLite can give a deleted
# user's id to the next one) and version.
StateKey = tuple[int, datetime, int]
# What a turn leaves to keep once its transaction has committed.
Kept = list[tuple[StateKey, "_KnownState"]]


class UserState(Protocol):
    """What a turn reads and writes of a user: a `User` row, or the tick's plain copy."""

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


@dataclass(frozen=True)
class Handled:
    """One recorded event: what the coach said, and the outbox rows this process holds to
    send now (the others wait for the dispatcher)."""

    replies: tuple[Outbound, ...] = ()
    claimed: tuple[tuple[outbox.ClaimedMessage, Outbound], ...] = ()
    lease_until: datetime | None = None
    duplicate: bool = False


def utcnow() -> datetime:
    return datetime.now(UTC)


def _skip_rest_of_today(user: AnyUser, profile: Profile, now: datetime) -> None:
    """Move a pending prompt (regular or snoozed) that falls on today to the next day."""
    zone, clock = profile.timezone, profile.reminder_time
    if user.next_checkin_at is None or not zone or not clock:
        return
    today = local_date(now, zone)
    nxt = user.next_checkin_at
    while local_date(nxt, zone) <= today:
        nxt = next_checkin_at(clock, zone, max(nxt, now))
    user.next_checkin_at = nxt


@dataclass(frozen=True)
class _KnownState:
    """A user's engine values after their last (committed) turn, the JSON written for them,
    and their history as that turn left it on its local day (bot/kept_history.py)."""

    profile: Profile
    conversation: Conversation
    profile_json: dict[str, Any]
    conversation_json: dict[str, Any]
    today: date
    history: History

    def holds(self, user: AnyUser) -> bool:
        return user.profile == self.profile_json and user.conversation == self.conversation_json


def _conversation_json(conversation: Conversation) -> dict[str, Any]:
    """The conversation as stored. Its `data` is plain JSON the flows keep (a screen's
    queue and answers, the lines gathered so far), put in as it is: pydantic inspects each
    value of an `Any` field to dump it, the biggest part of a turn's dump. Were a flow to
    leave a value there that JSON turns into something else (a date, a tuple), the row
    would read back different from what was written and the Coach's kept values would not
    be used (`_KnownState.holds`): it is checked, not assumed."""
    dumped = conversation.model_dump(mode="json", exclude={"data"})
    dumped["data"] = conversation.data
    return dumped


def _forgettable(row: outbox.ClaimedMessage, outcome: sending.Outcome) -> bool:
    """A delivered reply: its row is deleted (what it said may be personal)."""
    return outcome.status == "sent" and row.kind == outbox.REPLY


def history_window(today: date) -> tuple[date, date]:
    """The local dates (both included) whose rows `load_history` reads."""
    return today - timedelta(days=HISTORY_DAYS), today + timedelta(days=1)


async def load_history(repo: Repository, user_id: int, today: date) -> History:
    """The recent rows the engine's decisions need, as engine values."""
    start, end = history_window(today)
    checkins, logs = await repo.history_rows([user_id], start, end)
    return history_from_rows(checkins, logs)


def history_from_rows(checkins: Iterable[Row[Any]], logs: Iterable[Row[Any]]) -> History:
    """Engine values from `Repository.history_rows` rows of one user (oldest first)."""
    return History(
        checkins=tuple(
            CheckinRecord(
                local_date=c.local_date,
                pain_now=c.pain_now,
                ran=c.ran,
                run_minutes=c.run_minutes,
                pain_during=c.pain_during,
                exercises=c.exercises,
                exercise_pain=c.exercise_pain,
                swelling=c.swelling,
                run_sharp=c.run_sharp,
                isometric_worse=c.isometric_worse,
                decision=c.decision,
                reason=c.reason,
                phase=c.phase,
                level=c.level,
            )
            for c in checkins
        ),
        exercise_logs=tuple(ExerciseLog(e.local_date, e.exercise_id, e.outcome) for e in logs),
    )


class Coach:
    """Platform-neutral entry point used by every adapter."""

    def __init__(
        self,
        db: Database,
        content: Content | None = None,
        clock: Callable[[], datetime] = utcnow,
        pacer: Pacer | None = None,
    ) -> None:
        self.db = db
        self.content = content or default_content()
        self.clock = clock
        # The process's one pacing per platform (scheduler/ratelimit.py), shared with its
        # dispatcher: replies count against the same limits as reminders, and go first.
        self.pacer = pacer
        # Called once replies were left in the outbox for the dispatcher (committed, or
        # handed back after an attempt): the scheduler of this process wakes at once.
        self.on_queued: Callable[[], None] | None = None
        # The replies this process claimed and has not sent yet, their claims kept alive.
        self.holds = Holds(db, self.clock, sending.lease_from_env)
        # Delivered replies not yet deleted (`_forget_soon`), and the task that will.
        self._unforgotten: list[outbox.ClaimedMessage] = []
        self._forgetting: asyncio.Task[None] | None = None
        self._forget_now: asyncio.Event | None = None  # set: stop gathering (flush)
        # The engine's values of the users who just had a turn, by `StateKey`, with the
        # JSON they were written as: used only while the row still holds exactly that JSON
        # (an edit by hand or by a migration may not move the version on). The next turn
        # then skips validating the row's JSON again (a check-in is ten turns in a few
        # minutes; comparing two dicts costs a fraction of that). Safe because the step
        # never changes its input (tests/test_engine_purity.py): an entry is only read.
        # With them, the history the turn left (bot/kept_history.py): that is not checked
        # against the tables, so whatever writes check-ins or exercise logs outside a turn
        # moves the user's version on (`Repository.upsert_checkin`; by hand or in a data
        # migration: `UPDATE users SET version = version + 1`).
        self._states: LRUCache[StateKey, _KnownState] = LRUCache(maxsize=STATE_CACHE_SIZE)

    async def handle(
        self,
        inbound: Inbound,
        send: Send | None = None,
        *,
        fallback: Sequence[Outbound] = (),
    ) -> list[Outbound]:
        """Record the event (once), then send its replies through `send` at once; without
        `send` they are left to the dispatcher. Returns what the coach said.

        `fallback`: the replies to give when the engine has nothing to say to this (first)
        delivery, e.g. an unknown slash command in a channel, which must not go unanswered
        even though channel chatter does. A duplicate delivery gets no fallback either."""
        handled = await self.record(inbound, claim=send is not None, fallback=fallback)
        if send is not None:
            await self.deliver(handled, send)
        return list(handled.replies)

    @metrics.observe_turn
    async def record(
        self,
        inbound: Inbound,
        *,
        claim: bool = True,
        fallback: Sequence[Outbound] = (),
        token: str | None = None,
    ) -> Handled:
        """Run and store one event's turn with its replies, in one transaction; a duplicate
        delivery records nothing. `claim`: hold the replies for this process to send.

        `token`: the claim token to hold them with (default: a new one). Replies still being
        sent under the same token do not hold these back, so a caller that sends one chat's
        replies in order itself can claim the next turn's before the last ones went out."""
        inbound = sanitize_inbound(inbound)
        claim_token = (token or outbox.new_token()) if claim else None
        for attempt in range(1, TURN_ATTEMPTS + 1):
            try:
                handled = await self._handle_once(inbound, claim_token, fallback)
                self._hold(handled)
                if len(handled.claimed) < len(handled.replies):
                    self._queued()  # some wait for the dispatcher
                return handled
            except StaleDataError:
                # Another turn for the same person committed first: run ours on its result.
                log.info(
                    "turn retry platform=%s event=%s attempt=%d",
                    inbound.platform,
                    inbound.event_id,
                    attempt,
                )
            except Exception as error:
                if not is_permanent(error):
                    raise  # an outage: the caller waits and delivers the event again
                log.warning(
                    "turn refused by the database platform=%s event=%s error=%s",
                    inbound.platform,
                    inbound.event_id,
                    type(error).__name__,
                )
                handled = await self._refused(inbound, claim_token)
                self._hold(handled)
                if len(handled.claimed) < len(handled.replies):
                    self._queued()
                return handled
        raise RuntimeError(f"could not serialise turn for event {inbound.event_id}")

    def _hold(self, handled: Handled) -> None:
        if handled.claimed:
            assert handled.lease_until is not None
            self.holds.hold((row for row, _ in handled.claimed), handled.lease_until)

    async def deliver(self, handled: Handled, send: Send) -> bool:
        """Send the replies this process holds, in order, one attempt each; record every
        outcome in one transaction. Returns whether they are done with: False when some
        were left to the dispatcher (a 429, the claim running out), so that a caller
        holding the chat's next replies hands those back too (`hand_back`)."""
        try:
            return await self._deliver_held(handled, send)
        finally:
            self.holds.drop(row for row, _ in handled.claimed)

    async def _deliver_held(self, handled: Handled, send: Send) -> bool:
        if not handled.claimed:
            return True
        assert handled.lease_until is not None
        lease = sending.lease_from_env()
        margin = min(SEND_MARGIN, lease / 3)
        done: list[tuple[outbox.ClaimedMessage, sending.Outcome]] = []
        rest: list[outbox.ClaimedMessage] = []
        for n, (row, message) in enumerate(handled.claimed):
            ahead = timedelta(seconds=self._ready_in(row))
            # Kept alive while it waits (bot/holds.py); None once another sender took it.
            lease_until = self.holds.until(row) or handled.lease_until
            if self.clock() + ahead + margin > lease_until:
                held = [r for r, _ in handled.claimed[n:]]
                # Queued behind this process's own sends (a chat's chain, a club's burst):
                # hold the rows longer and go on. A slot further away than a claim can wait
                # (a 429 closed the chat), or rows no longer ours: the dispatcher takes over.
                renewed_until = self.clock() + lease
                if ahead + margin >= lease or not await self._renew(held, renewed_until):
                    rest = held
                    break
                self.holds.renewed(held, renewed_until)
            error: Exception | None = None
            try:
                await self._paced_send(row, message, send)
            except Exception as exc:  # every failure is an outcome (bot/sending.py)
                error = exc
            outcome = sending.outcome_of(error, row, self.clock())
            done.append((row, outcome))
            if isinstance(error, DeliveryError):
                log.info(
                    "reply not sent platform=%s id=%s error=%s next=%s",
                    row.platform,
                    row.id,
                    type(error).__name__,
                    outcome.status,
                )
            elif error is not None:  # not a platform's answer: a bug in the sender
                log.error(
                    "reply sender error platform=%s id=%s", row.platform, row.id, exc_info=error
                )
            if outcome.keeps_order:
                rest = [r for r, _ in handled.claimed[n + 1 :]]  # after this one, in order
                break
        sent = [row for row, outcome in done if _forgettable(row, outcome)]
        others = [(row, outcome) for row, outcome in done if not _forgettable(row, outcome)]
        later = sent if self.db.is_sqlite else []  # see _forget_soon
        at_once = [] if later else sent
        if others or rest or at_once:  # what the dispatcher must know of at once
            await self._settle(others, rest, sent=at_once)
        if later:
            # Gathered only while more of this process's replies wait to go (a drain):
            # the last one of a chat's turn is recorded at once, so a crash right after
            # it does not send it again.
            self._forget_soon(later, gather=len(self.holds) > len(handled.claimed))
        if rest or any(outcome.status == "retry" for _, outcome in done):
            self._queued()
            return False
        return True

    async def _renew(self, rows: list[outbox.ClaimedMessage], until: datetime) -> bool:
        try:
            async with self.db.transaction() as repo:
                return await outbox.renew(repo, rows, until)
        except Exception as error:  # the dispatcher takes them (once the database is back)
            log.warning("reply claim not renewed error=%s", type(error).__name__)
            return False

    async def hand_back(self, handled: Handled) -> None:
        """Give the replies this process holds to the dispatcher unsent: an older reply of
        their chat was left to it, and these must go after that one."""
        if handled.claimed:
            try:
                await self._settle([], [row for row, _ in handled.claimed])
            finally:
                self.holds.drop(row for row, _ in handled.claimed)
            self._queued()

    def _ready_in(self, row: outbox.ClaimedMessage) -> float:
        if self.pacer is None:
            return 0.0
        return self.pacer.ready_in(row.platform, row.chat_id, urgent=True)

    async def _paced_send(self, row: outbox.ClaimedMessage, message: Outbound, send: Send) -> None:
        """One reply through the process's pacing: ahead of queued reminders and cards."""
        if self.pacer is None:
            await send(message)
            return
        edit = message.edit_ref is not None
        async with self.pacer.slot(row.platform, row.chat_id, urgent=True, edit=edit):
            try:
                await send(message)
            except RetryAfter as error:
                self.pacer.retry_after(row.platform, row.chat_id, float(error.seconds))
                raise

    def _forget_soon(self, rows: list[outbox.ClaimedMessage], *, gather: bool = False) -> None:
        """Delivered replies are deleted by the next write transaction of this process: a
        turn starting soon takes them into its own (one commit instead of two per turn,
        ~15% of a turn's CPU on SQLite), else a task does on the loop's next round or,
        with `gather`, once it has gathered those of the next moment
        (FORGET_GATHER_SECONDS). Until then the rows stay held by us: a crash in that
        moment sends them again after their lease (at least once, as a crash between a
        send and its record always did).

        SQLite only: with its one writer at a time, the chat's next turn sees them gone. On
        PostgreSQL a turn running beside the one that took them would still see them held
        and queue its own replies behind them, so there they are deleted at once."""
        self._unforgotten.extend(rows)
        loop = asyncio.get_running_loop()
        task = self._forgetting
        if task is None or task.done() or task.get_loop() is not loop:
            # An Event binds to the loop it is first awaited on: one per task.
            self._forget_now = asyncio.Event()
            self._forgetting = loop.create_task(self._forget_pending(self._forget_now))
        if not gather and self._forget_now is not None:
            self._forget_now.set()

    def _take_unforgotten(self) -> list[outbox.ClaimedMessage]:
        rows, self._unforgotten = self._unforgotten, []
        return rows

    def _give_back(self, rows: list[outbox.ClaimedMessage]) -> None:
        """The transaction that took them failed: they go with the next one."""
        if rows:
            self._forget_soon(rows)

    async def _forget_pending(self, now: asyncio.Event) -> None:
        await asyncio.sleep(0)  # a turn about to start takes them instead
        if not now.is_set():
            gather = min(FORGET_GATHER_SECONDS, sending.lease_from_env().total_seconds() / 4)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(now.wait(), gather)
        while self._unforgotten:
            rows = self._take_unforgotten()
            await self._settle([], [], sent=rows)

    async def flush(self) -> None:
        """Record what was sent and not yet recorded, and stop renewing what is held
        (before the database is closed)."""
        await self.holds.close()
        loop = asyncio.get_running_loop()
        task, now = self._forgetting, self._forget_now
        if task is not None and now is not None and task.get_loop() is loop:
            now.set()  # no more gathering: record them now
        while (
            self._forgetting is not None
            and not self._forgetting.done()
            and self._forgetting.get_loop() is loop
        ):
            await asyncio.shield(self._forgetting)
        if self._unforgotten:
            await self._settle([], [], sent=self._take_unforgotten())

    def _queued(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    async def _settle(
        self,
        done: list[tuple[outbox.ClaimedMessage, sending.Outcome]],
        rest: list[outbox.ClaimedMessage],
        *,
        sent: Sequence[outbox.ClaimedMessage] = (),
    ) -> None:
        """Record the outcomes (`sent`: delivered replies, deleted). A database outage is
        waited out for as long as the claim holds: once its lease runs out, a sent reply
        would be sent again."""
        give_up = time.monotonic() + sending.lease_from_env().total_seconds()
        delay = 0.2
        while True:
            now = self.clock()
            try:
                async with self.db.transaction() as repo:
                    if rest:
                        await outbox.release(repo, rest, now)
                    delivered = [r for r, o in done if _forgettable(r, o)] + list(sent)
                    if delivered:
                        await outbox.forget_sent_replies(repo, delivered)
                    for row, outcome in done:
                        if row not in delivered:
                            await sending.record(repo, row, outcome, now)
                return
            except Exception as error:
                if not is_outage(error) or time.monotonic() + delay > give_up:
                    # Sent but not marked: the rows go again once their lease runs out.
                    log.warning("reply outcomes not recorded error=%s", type(error).__name__)
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _handle_once(
        self, inbound: Inbound, token: str | None, fallback: Sequence[Outbound]
    ) -> Handled:
        taken = self._take_unforgotten()
        try:
            return await self._turn_transaction(inbound, token, fallback, taken)
        except BaseException:
            self._give_back(taken)
            raise

    async def _turn_transaction(
        self,
        inbound: Inbound,
        token: str | None,
        fallback: Sequence[Outbound],
        sent: list[outbox.ClaimedMessage],
    ) -> Handled:
        kept: Kept = []
        async with self.db.transaction() as repo:
            if sent:  # delivered replies of earlier turns (`_forget_soon`), first
                await outbox.forget_sent_replies(repo, sent)
            if not await repo.claim_event(inbound.platform, inbound.event_id):
                log.info("duplicate event platform=%s event=%s", inbound.platform, inbound.event_id)
                return Handled(duplicate=True)
            if inbound.chat_kind == ChatKind.GROUP or inbound.kind == InboundKind.JOINED:
                replies, team_chat_id = await self._group_turn(repo, inbound)
                return await self._store_replies(
                    repo, inbound, replies or list(fallback), token, team_chat_id=team_chat_id
                )
            replies, user_id = await self._private_turn(repo, inbound, kept)
            handled = await self._store_replies(
                repo, inbound, replies or list(fallback), token, user_id=user_id
            )
        # Committed: the next turn may start from what this one left (never from a turn
        # that rolled back, whose writes the database does not hold).
        for key, state in kept:
            self._states[key] = state
        return handled

    async def _store_replies(
        self,
        repo: Repository,
        inbound: Inbound,
        replies: list[Outbound],
        token: str | None,
        *,
        user_id: int | None = None,
        team_chat_id: int | None = None,
    ) -> Handled:
        messages = [
            replace(r, chat_id=r.chat_id or inbound.chat_id, recipient=inbound.user_id)
            for r in replies
        ]
        now = self.clock()
        lease_until = now + sending.lease_from_env()
        rows = [
            outbox.NewReply(
                idempotency_key=f"reply:{inbound.platform}:{inbound.event_id}:{n}",
                platform=inbound.platform,
                chat_id=message.chat_id,
                payload=encode(message),
                user_id=user_id,
                team_chat_id=team_chat_id,
            )
            for n, message in enumerate(messages)
        ]
        claimed = await outbox.add_replies(
            repo, rows, now=now, token=token, lease_until=lease_until
        )
        return Handled(
            replies=tuple(messages),
            claimed=tuple((row, messages[n]) for n, row in claimed),
            lease_until=lease_until,
        )

    async def _refused(self, inbound: Inbound, token: str | None) -> Handled:
        """The database refused this event for good: record it as handled, so it is not
        tried again, and tell the person (in a private chat) that it did not go in."""
        apology = [Outbound(chat_id=inbound.chat_id, text=self.content.message("turn_refused"))]
        private = inbound.chat_kind == ChatKind.PRIVATE and inbound.kind != InboundKind.JOINED
        for replies in ([apology] if private else []) + [[]]:
            try:
                async with self.db.transaction() as repo:
                    if not await repo.claim_event(inbound.platform, inbound.event_id):
                        return Handled(duplicate=True)
                    return await self._store_replies(repo, inbound, replies, token)
            except Exception as error:
                if not is_permanent(error):
                    raise
        log.error(
            "event could not be recorded platform=%s event=%s", inbound.platform, inbound.event_id
        )
        return Handled()

    async def mark_unreachable(self, platform: str, user_id: str) -> None:
        """The platform says this person blocked us: no reminders until they write again."""
        async with self.db.transaction() as repo:
            user = await repo.get_user(platform, user_id)
            if user is not None and not user.unreachable:
                user.unreachable = True
                await repo.save_user(user)
                log.info("user unreachable platform=%s user=%s", platform, user.id)

    async def mark_chat_unreachable(self, platform: str, chat_id: str) -> None:
        """The bot was removed from a group or channel: no cards until it is added again."""
        async with self.db.transaction() as repo:
            chat = await repo.get_team_chat(platform, chat_id)
            if chat is not None and not chat.unreachable:
                chat.unreachable = True
                await repo.save_team_chat(chat)
                log.info("team chat unreachable platform=%s chat=%s", platform, chat.id)

    async def migrate_chat(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        """A group moved to a new id (Telegram: it became a supergroup): its warm-ups, its
        state and the messages waiting for it move along."""
        if old_chat_id == new_chat_id:
            return
        async with self.db.transaction() as repo:
            chat = await repo.move_team_chat(platform, old_chat_id, new_chat_id)
            await outbox.move_chat(
                repo, platform, old_chat_id, new_chat_id, chat.id if chat else None
            )
        log.info("team chat moved platform=%s chat=%s", platform, chat.id if chat else "-")

    # --- private chats ----------------------------------------------------------------------

    async def _private_turn(
        self, repo: Repository, inbound: Inbound, kept: Kept
    ) -> tuple[list[Outbound], int | None]:
        """The turn's replies, and the user they belong to (None once deleted)."""
        now = self.clock()
        user = await repo.load_user(inbound.platform, inbound.user_id)
        if user is None:
            created = await repo.create_user(
                inbound.platform, inbound.user_id, inbound.chat_id, inbound.display_name
            )
            user = UserRecord.of(created)
        if user.unreachable:
            user.unreachable = False  # they wrote to us, so we can reach them again
        if inbound.chat_id and user.chat_id != inbound.chat_id:
            user.chat_id = inbound.chat_id
        user_id = user.id
        replies, deleted = await self._run(repo, user, inbound, now, kept)
        return replies, None if deleted else user_id

    async def reminder_turn(
        self, repo: Repository, user: User, kind: str, now: datetime
    ) -> list[Outbound]:
        """A message the bot starts itself ("checkin" or "nudge"), inside the caller's
        transaction, so the scheduler stores the new conversation state and the outbox row
        together. Returns the messages to put in the outbox (possibly none)."""
        inbound = Inbound(
            platform=user.platform,
            event_id=f"{kind}:{user.id}:{now.isoformat()}",
            user_id=user.platform_user_id,
            chat_id=user.chat_id,
            kind=InboundKind.REMINDER,
            text=kind,
        )
        replies, _ = await self._run(repo, user, inbound, now)
        return replies

    def reminder_step(self, user: UserState, history: History, kind: str, now: datetime) -> Result:
        """The engine's reminder turn for a user held in memory (the tick's set-based path):
        no database, the caller stores the result (`store_state`) and the replies."""
        inbound = Inbound(
            platform=user.platform,
            event_id=f"{kind}:{user.id}:{now.isoformat()}",
            user_id=user.platform_user_id,
            chat_id=user.chat_id,
            kind=InboundKind.REMINDER,
            text=kind,
        )
        turn = Turn(
            inbound=inbound,
            now=now,
            profile=Profile.model_validate(user.profile or {}),
            conversation=Conversation.model_validate(user.conversation or {}),
            history=history,
        )
        return machine.step(turn, self.content)

    async def _run(
        self,
        repo: Repository,
        user: AnyUser,
        inbound: Inbound,
        now: datetime,
        kept: Kept | None = None,
    ) -> tuple[list[Outbound], bool]:
        """The replies, and whether the user deleted everything. `kept`: where to leave the
        user's new state for the Coach to keep once the caller's transaction commits."""
        known = self._states.get((user.id, user.created_at, user.version))
        if known is not None and known.holds(user):
            profile, conversation = known.profile, known.conversation
        else:
            known = None
            profile = Profile.model_validate(user.profile or {})
            conversation = Conversation.model_validate(user.conversation or {})
        today = local_date(now, profile.timezone or "UTC")
        if known is not None and known.today == today:
            history = known.history  # the rows as our last turn left them (kept_history.py)
        else:
            history = await load_history(repo, user.id, today)
        turn = Turn(
            inbound=inbound, now=now, profile=profile, conversation=conversation, history=history
        )
        result = machine.step(turn, self.content)
        log.info(
            "turn platform=%s user=%s kind=%s flow=%s effects=%d",
            inbound.platform,
            user.id,
            inbound.kind.value,
            result.conversation.flow or "-",
            len(result.effects),
        )
        return await self._apply(repo, user, result, now, history, today, profile, kept)

    async def _apply(
        self,
        repo: Repository,
        user: AnyUser,
        result: Result,
        now: datetime,
        history: History,
        today: date,
        profile_before: Profile,
        kept: Kept | None = None,
    ) -> tuple[list[Outbound], bool]:
        replies = list(result.replies)
        deleted = False
        # A profile the turn left as it was read keeps its stored JSON (the step never
        # changes its input, so equal means unchanged: tests/test_engine_purity.py).
        unchanged = result.profile == profile_before
        # Which days have a check-in row: the history holds every row in its window as this
        # transaction sees it (the user's row is locked), so inside it no extra query is
        # needed; it follows the turn's writes.
        window_start, window_end = history_window(today)
        after = KeptHistory(history, window_start, window_end)
        written_outside: set[date] = set()
        for effect in result.effects:
            match effect:
                case SaveCheckin(local_date=day, fields=fields):
                    if window_start <= day <= window_end:
                        exists = after.has_checkin(day)
                    elif day in written_outside:
                        exists = True
                    else:
                        exists = await repo.get_checkin(user.id, day) is not None
                        written_outside.add(day)
                    if not exists:
                        fields = {
                            "phase": result.profile.phase,
                            "level": result.profile.level,
                            **fields,
                        }
                    # One statement, no read of the row first (it is known to exist or not).
                    await repo.write_checkin(user.id, day, fields, new=not exists)
                    after.checkin(day, fields, new=not exists)
                case LogExercise(local_date=day, exercise_id=exercise_id, outcome=outcome):
                    await repo.write_exercise(user.id, day, exercise_id, outcome)
                    after.exercise(day, exercise_id, outcome)
                case RecordEscalation(level=level, trigger=trigger, flow=flow, message=message):
                    # Stamped with the turn's time, like everything else the turn records.
                    await repo.add_escalation(
                        user.id,
                        level=level,
                        trigger=trigger,
                        flow=flow,
                        message=message,
                        created_at=now,
                    )
                    log.warning("escalation user=%s level=%s flow=%s", user.id, level, flow)
                    metrics.escalation(level)
                case RecordScreening(kind=kind, answers=answers, level=level):
                    await repo.add_screening(
                        user.id, kind=kind, answers=answers, level=level, created_at=now
                    )
                case RecordPlanChange() as change:
                    await repo.add_plan_change(
                        user.id,
                        from_phase=change.from_phase,
                        from_level=change.from_level,
                        to_phase=change.to_phase,
                        to_level=change.to_level,
                        decision=change.decision,
                        reason=change.reason,
                        created_at=now,
                    )
                case ClearEscalations(levels=levels):
                    await repo.clear_escalations(user.id, now, levels)
                case AcknowledgeEscalations():
                    await repo.acknowledge_escalations(user.id, now)
                case SendChart(chat_id=chat_id, caption=caption):
                    png = await self._chart(repo, user, result.profile, now)
                    replies.append(
                        Outbound(
                            chat_id=chat_id,
                            text=caption,
                            attachment=Attachment("hipcoach-progress.png", png, "image/png"),
                            private=True,
                        )
                    )
                case SendExport(chat_id=chat_id, caption=caption):
                    # Save first so the export holds this turn's state too.
                    self._store_state(user, result, now, unchanged=unchanged)
                    await repo.save_user(user)
                    data = await repo.export_user(user.id)
                    readable = export.readable(data, self.content)
                    payload = json.dumps(readable, indent=2, ensure_ascii=False).encode()
                    # Two files where the platform takes files (each its own message):
                    # everything as JSON, and the check-ins as a table.
                    replies.append(
                        Outbound(
                            chat_id=chat_id,
                            text=caption,
                            attachment=Attachment(
                                "hipcoach-export.json", payload, "application/json"
                            ),
                            private=True,
                        )
                    )
                    replies.append(
                        Outbound(
                            chat_id=chat_id,
                            text=self.content.message("export_csv_caption"),
                            attachment=Attachment(
                                "hipcoach-checkins.csv",
                                export.checkins_csv(data, self.content),
                                "text/csv",
                            ),
                            private=True,
                        )
                    )
                case RecordOutcome() as answer:
                    await summaries.record_outcome(repo, user.id, answer)
                case SendPhysioSummary(caption=caption):
                    # The summary shows this turn too.
                    self._store_state(user, result, now, unchanged=unchanged)
                    replies.append(
                        await summaries.physio_summary_reply(repo, self.content, user, caption, now)
                    )
                case Snooze(minutes=minutes):
                    # The scheduler re-asks at this time (a nudge would be redundant).
                    user.next_checkin_at = now + timedelta(minutes=minutes)
                    user.next_nudge_at = None
                case SkipToday():
                    # No nudge, no snoozed re-ask and no later prompt today.
                    user.next_nudge_at = None
                    _skip_rest_of_today(user, result.profile, now)
                case DeleteUser():
                    deleted = True
                case _:
                    raise TypeError(f"unexpected effect in a private chat: {effect!r}")
        if deleted:
            await repo.delete_user(user.id)
            log.info("user deleted user=%s", user.id)
            return replies, True
        weekly_before = summaries.weekly_key(user.profile or {})
        self._store_state(user, result, now, unchanged=unchanged)
        await repo.save_user(user)
        if kept is not None:
            state = _KnownState(
                result.profile,
                result.conversation,
                user.profile,
                user.conversation,
                today,
                after.history(),
            )
            kept.append(((user.id, user.created_at, user.version), state))
        if summaries.weekly_key(user.profile) != weekly_before:
            await summaries.sync_weekly(repo, user, result.profile, now)
        return replies, False

    def store_state(self, user: UserState, result: Result, now: datetime) -> None:
        """Put the turn's profile and conversation on `user` (an ORM row or a tick's
        in-memory state), and the next prompt time if the schedule changed."""
        self._store_state(user, result, now)

    def _store_state(
        self, user: UserState, result: Result, now: datetime, *, unchanged: bool = False
    ) -> None:
        """`unchanged`: the turn left the profile as `user.profile` holds it (no dump)."""
        profile = result.profile
        until = profile.paused_until.isoformat() if profile.paused_until else None
        # Only an open-ended pause keeps the row out of the scheduler's sight; a dated one
        # is claimed at its first reminder after the pause, which resumes it (engine).
        paused_for_good = profile.paused and profile.paused_until is None
        schedule_changed = (
            user.reminder_time != profile.reminder_time
            or user.timezone != profile.timezone
            or user.paused != paused_for_good
            or (user.profile or {}).get("paused_until") != until
            or (user.next_checkin_at is None and profile.reminder_time is not None)
        )
        if not unchanged:
            user.profile = profile.model_dump(mode="json")
        user.conversation = _conversation_json(result.conversation)
        user.timezone = profile.timezone
        user.reminder_time = profile.reminder_time
        user.paused = paused_for_good
        if schedule_changed:
            user.next_checkin_at = next_prompt_at(profile, now)
            if profile.paused:
                user.next_nudge_at = None

    async def _chart(
        self, repo: Repository, user: AnyUser, profile: Profile, now: datetime
    ) -> bytes:
        today = local_date(now, profile.timezone or "UTC")
        start = today - timedelta(days=27)
        checkins = {
            c.local_date: c
            for c in await repo.checkins_between(user.id, start, today + timedelta(days=1))
        }
        done: dict[date, int] = {}
        for entry in await repo.exercise_logs_between(user.id, start, today + timedelta(days=1)):
            if entry.outcome == "done":
                done[entry.local_date] = done.get(entry.local_date, 0) + 1
        points = []
        for offset in range(28):
            day = start + timedelta(days=offset)
            c = checkins.get(day)
            points.append(
                DayPoint(
                    day=day,
                    morning_pain=c.pain_now if c else None,
                    run_pain=c.pain_during if c and c.ran not in (None, "no") else None,
                    sessions_done=done.get(day, 0),
                )
            )
        return render_progress_chart(points)

    # --- groups and channels ------------------------------------------------------------------

    async def _group_turn(self, repo: Repository, inbound: Inbound) -> tuple[list[Outbound], int]:
        """The turn's replies, and the team chat they belong to."""
        now = self.clock()
        title = (inbound.raw or {}).get("chat_title") if inbound.raw else None
        chat = await repo.get_or_create_team_chat(inbound.platform, inbound.chat_id, title)
        chat.unreachable = False  # the chat reached us, so cards can reach it again
        warmups = await repo.list_warmups(chat.id)
        turn = Turn(
            inbound=replace(inbound, chat_kind=ChatKind.GROUP),
            now=now,
            profile=Profile(),
            conversation=Conversation.model_validate(chat.conversation or {}),
            team_timezone=chat.timezone,
            warmups=tuple(
                WarmupRecord(w.id, w.days, w.run_time, w.lead_minutes, w.timezone) for w in warmups
            ),
        )
        result = machine.step(turn, self.content)
        log.info(
            "group turn platform=%s chat=%s kind=%s", inbound.platform, chat.id, inbound.kind.value
        )
        for effect in result.effects:
            match effect:
                case SetTeamTimezone(timezone=zone):
                    chat.timezone = zone
                case AddWarmup(days=days, run_time=run_time, lead_minutes=lead, timezone=zone):
                    await repo.add_warmup(
                        chat.id,
                        days=days,
                        run_time=run_time,
                        lead_minutes=lead,
                        timezone=zone,
                        created_by=inbound.user_id,
                        next_warmup_at=next_warmup_post(days, run_time, lead, zone, now),
                    )
                case RemoveWarmup(schedule_id=schedule_id):
                    await repo.remove_warmup(chat.id, schedule_id)
                case SendPhysioSummary(caption=caption):
                    # Health data: to the person's private chat only; the group is told.
                    result.replies.extend(
                        await summaries.from_group(repo, self.content, inbound, caption, now)
                    )
                case _:
                    raise TypeError(f"unexpected effect in a group: {effect!r}")
        chat.conversation = result.conversation.model_dump(mode="json")
        await repo.save_team_chat(chat)
        return list(result.replies), chat.id
