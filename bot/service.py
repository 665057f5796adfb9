"""The coach service: one inbound event -> one transaction -> replies.

Loads the stored state, runs the pure engine step, carries out its effects, stores the new
state and the dedup record in the same transaction, and only then hands the replies back
to the adapter for sending. Nothing a runner answered is lost if sending fails.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm.exc import StaleDataError

from bot import metrics
from bot.charts import DayPoint, render_progress_chart
from bot.engine import machine
from bot.engine.events import Attachment, ChatKind, Inbound, InboundKind, Outbound
from bot.engine.flows.account import next_checkin_at
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
    RecordPlanChange,
    RecordScreening,
    RemoveWarmup,
    Result,
    SaveCheckin,
    SendChart,
    SendExport,
    SetTeamTimezone,
    SkipToday,
    Snooze,
    Turn,
    WarmupRecord,
)
from bot.storage.db import Database
from bot.storage.models import User
from bot.storage.repository import Repository
from content.loader import Content, default_content

log = logging.getLogger("hipcoach.service")

HISTORY_DAYS = 35
TURN_ATTEMPTS = 4


def utcnow() -> datetime:
    return datetime.now(UTC)


def _skip_rest_of_today(user: User, profile: Profile, now: datetime) -> None:
    """Move a pending prompt (regular or snoozed) that falls on today to the next day."""
    zone, clock = profile.timezone, profile.reminder_time
    if user.next_checkin_at is None or not zone or not clock:
        return
    today = local_date(now, zone)
    nxt = user.next_checkin_at
    while local_date(nxt, zone) <= today:
        nxt = next_checkin_at(clock, zone, max(nxt, now))
    user.next_checkin_at = nxt


def history_window(today: date) -> tuple[date, date]:
    """The local dates (both included) whose rows `load_history` reads."""
    return today - timedelta(days=HISTORY_DAYS), today + timedelta(days=1)


async def load_history(repo: Repository, user_id: int, today: date) -> History:
    """The recent rows the engine's decisions need, as engine values."""
    start, end = history_window(today)
    checkins = await repo.checkins_between(user_id, start, end)
    logs = await repo.exercise_logs_between(user_id, start, end)
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
    ) -> None:
        self.db = db
        self.content = content or default_content()
        self.clock = clock

    @metrics.observe_turn
    async def handle(
        self, inbound: Inbound, *, fallback: Sequence[Outbound] = ()
    ) -> list[Outbound]:
        """Handle one event once; a duplicate delivery returns no replies.

        `fallback`: the replies to give when the engine has nothing to say to this (first)
        delivery, e.g. an unknown slash command in a channel, which must not go unanswered
        even though channel chatter does. A duplicate delivery gets no fallback either."""
        for attempt in range(1, TURN_ATTEMPTS + 1):
            try:
                return await self._handle_once(inbound, fallback)
            except StaleDataError:
                # Another turn for the same person committed first: run ours on its result.
                log.info(
                    "turn retry platform=%s event=%s attempt=%d",
                    inbound.platform,
                    inbound.event_id,
                    attempt,
                )
        raise RuntimeError(f"could not serialise turn for event {inbound.event_id}")

    async def _handle_once(
        self, inbound: Inbound, fallback: Sequence[Outbound]
    ) -> list[Outbound]:
        async with self.db.transaction() as repo:
            if not await repo.claim_event(inbound.platform, inbound.event_id):
                log.info("duplicate event platform=%s event=%s", inbound.platform, inbound.event_id)
                return []
            if inbound.chat_kind == ChatKind.GROUP or inbound.kind == InboundKind.JOINED:
                replies = await self._group_turn(repo, inbound)
            else:
                replies = await self._private_turn(repo, inbound)
        return replies or list(fallback)

    async def mark_unreachable(self, platform: str, user_id: str) -> None:
        """The platform says this person blocked us: no reminders until they write again."""
        async with self.db.transaction() as repo:
            user = await repo.get_user(platform, user_id)
            if user is not None and not user.unreachable:
                user.unreachable = True
                await repo.save_user(user)
                log.info("user unreachable platform=%s user=%s", platform, user.id)

    # --- private chats ----------------------------------------------------------------------

    async def _private_turn(self, repo: Repository, inbound: Inbound) -> list[Outbound]:
        now = self.clock()
        user = await repo.get_user(inbound.platform, inbound.user_id)
        if user is None:
            user = await repo.create_user(
                inbound.platform, inbound.user_id, inbound.chat_id, inbound.display_name
            )
        if user.unreachable:
            user.unreachable = False  # they wrote to us, so we can reach them again
        if inbound.chat_id and user.chat_id != inbound.chat_id:
            user.chat_id = inbound.chat_id
        return await self._run(repo, user, inbound, now)

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
        return await self._run(repo, user, inbound, now)

    async def _run(
        self, repo: Repository, user: User, inbound: Inbound, now: datetime
    ) -> list[Outbound]:
        profile = Profile.model_validate(user.profile or {})
        conversation = Conversation.model_validate(user.conversation or {})
        today = local_date(now, profile.timezone or "UTC")
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
        return await self._apply(repo, user, result, now, history, today)

    async def _apply(
        self,
        repo: Repository,
        user: User,
        result: Result,
        now: datetime,
        history: History,
        today: date,
    ) -> list[Outbound]:
        replies = list(result.replies)
        deleted = False
        # Which days have a check-in row: load_history read every row in its window in this
        # transaction (the user's row is locked), so inside it no extra query is needed.
        known = {c.local_date for c in history.checkins}
        window_start, window_end = history_window(today)
        for effect in result.effects:
            match effect:
                case SaveCheckin(local_date=day, fields=fields):
                    if day in known:
                        exists = True
                    elif window_start <= day <= window_end:
                        exists = False
                    else:
                        exists = await repo.get_checkin(user.id, day) is not None
                    known.add(day)
                    if not exists:
                        fields = {
                            "phase": result.profile.phase,
                            "level": result.profile.level,
                            **fields,
                        }
                    await repo.upsert_checkin(user.id, day, **fields)
                case LogExercise(local_date=day, exercise_id=exercise_id, outcome=outcome):
                    await repo.log_exercise(user.id, day, exercise_id, outcome)
                case RecordEscalation(level=level, trigger=trigger, flow=flow, message=message):
                    await repo.add_escalation(
                        user.id, level=level, trigger=trigger, flow=flow, message=message
                    )
                    log.warning("escalation user=%s level=%s flow=%s", user.id, level, flow)
                    metrics.escalation(level)
                case RecordScreening(kind=kind, answers=answers, level=level):
                    await repo.add_screening(user.id, kind=kind, answers=answers, level=level)
                case RecordPlanChange() as change:
                    await repo.add_plan_change(
                        user.id,
                        from_phase=change.from_phase,
                        from_level=change.from_level,
                        to_phase=change.to_phase,
                        to_level=change.to_level,
                        decision=change.decision,
                        reason=change.reason,
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
                    self._store_state(user, result, now)
                    await repo.save_user(user)
                    data = await repo.export_user(user.id)
                    payload = json.dumps(data, indent=2, ensure_ascii=False).encode()
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
            return replies
        self._store_state(user, result, now)
        await repo.save_user(user)
        return replies

    def _store_state(self, user: User, result: Result, now: datetime) -> None:
        profile = result.profile
        schedule_changed = (
            user.reminder_time != profile.reminder_time
            or user.timezone != profile.timezone
            or user.paused != profile.paused
            or (user.next_checkin_at is None and profile.reminder_time is not None)
        )
        user.profile = profile.model_dump(mode="json")
        user.conversation = result.conversation.model_dump(mode="json")
        user.timezone = profile.timezone
        user.reminder_time = profile.reminder_time
        user.paused = profile.paused
        if schedule_changed:
            user.next_checkin_at = (
                next_checkin_at(profile.reminder_time, profile.timezone, now)
                if profile.reminder_time
                and profile.timezone
                and not profile.paused
                and (profile.onboarded or profile.plan_paused)
                else None
            )

    async def _chart(self, repo: Repository, user: User, profile: Profile, now: datetime) -> bytes:
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

    async def _group_turn(self, repo: Repository, inbound: Inbound) -> list[Outbound]:
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
                case _:
                    raise TypeError(f"unexpected effect in a group: {effect!r}")
        chat.conversation = result.conversation.model_dump(mode="json")
        await repo.save_team_chat(chat)
        return result.replies
