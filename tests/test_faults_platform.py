"""Fault suite: the platform answering 429 (retry_after), 5xx and timeouts for a while.

The real Telegram adapter (python-telegram-bot) against the fake Bot API with scripted
faults (tests/fault_tools.FaultyTelegram): a read timeout really makes PTB give up on the
request (5 s).

- Replies are as durable as answers: each turn stores its replies in the outbox with the
  answer, and the adapter sends them at once. One that the platform refuses stays in the
  outbox: the dispatcher sends it after the platform's retry_after (not counted as a
  failure) or after a backoff (5xx, timeouts), in order within the chat, each once. A storm
  of 429s then 500s on sendMessage loses nothing; the runner can carry on afterwards.
- Messages the bot starts itself go through the same outbox: all delivered, each once.

Time is a fake clock the test moves (the storm, retry_after and backoffs all follow it), so
a minute of storm takes a few seconds of wall time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.adapters.telegram import TelegramAdapter
from bot.engine.events import Inbound, Outbound
from bot.service import Coach, Handled
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import Checkin
from scheduler import Scheduler
from scheduler.payload import encode
from scheduler.ratelimit import RateLimiter
from tests.chat_driver import SCREEN_NONE, Chat, Clock, onboard, question_text
from tests.fault_tools import TIMEOUT, FaultyTelegram, server_error, too_many_requests
from tests.test_scheduler_helpers import TEST_CONFIG, outbox_rows, scheduler
from tests.test_telegram import Person, TrackingAdapter, tg_settings

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

PAIN_Q = question_text("morning_pain_question")
RAN_Q = question_text("ran_question")


@pytest.fixture
async def fake() -> AsyncIterator[FaultyTelegram]:
    server = FaultyTelegram()
    await server.start()
    yield server
    await server.stop()


async def checkin_row(db: Database, runner: int) -> Checkin:
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", str(runner), lock=False)
        assert user is not None
        row = await repo.session.scalar(select(Checkin).where(Checkin.user_id == user.id))
    assert row is not None
    return row


class RecordingCoach(Coach):
    """The real coach, keeping what each turn said (to compare with what arrived)."""

    said: list[Outbound]

    async def record(
        self,
        inbound: Inbound,
        *,
        claim: bool = True,
        fallback: Sequence[Outbound] = (),
        token: str | None = None,
    ) -> Handled:
        handled = await super().record(inbound, claim=claim, fallback=fallback, token=token)
        self.said = [*getattr(self, "said", []), *handled.replies]
        return handled


async def test_a_minute_of_429s_then_500s_on_every_send_loses_no_reply(
    fake: FaultyTelegram, db: Database, clock: Clock, fault_report: object
) -> None:
    runner = 5101
    coach = RecordingCoach(db, clock=clock)
    await onboard(Chat(coach, platform="telegram", user_id=str(runner), chat_id=str(runner)))
    coach.said = []
    bot = TrackingAdapter(tg_settings(fake, db), coach)
    await bot.start_polling()
    # The dispatcher's own pacing is not what is shown here: no rate limits.
    dispatcher = Scheduler(
        db, coach, {"telegram": bot}, clock=clock, config=TEST_CONFIG, limiter=RateLimiter({})
    )
    try:
        me = Person(fake, bot, runner, {"id": runner, "type": "private", "first_name": "Sam"})
        await me.send("/checkin")
        assert fake.delivered_texts(runner, PAIN_Q)
        before = len(fake.delivered(runner))
        coach.said = []

        # 30 s of 429 (retry_after 5 s), then 30 s of 500, on every send and edit.
        fake.storm(
            clock,
            [
                (timedelta(seconds=30), too_many_requests(5)),
                (timedelta(seconds=30), server_error()),
            ],
        )
        storm_over = clock.now + timedelta(seconds=60)
        # The runner carries on although nothing arrives: answers, asks for today's session,
        # for the progress chart (a photo) and for help, a few seconds apart.
        await me.tap("2")  # an edit of the question and the next question
        for command in ("/today", "/progress", "/help"):
            clock.advance(seconds=7)
            await me.send(command)
        assert len(fake.delivered(runner)) == before  # the storm let nothing through
        said = [m for m in coach.said if m.edit_ref is None]

        steps = 0
        while clock.now < storm_over + timedelta(minutes=30):
            clock.advance(seconds=2)
            await dispatcher.dispatch(clock.now)
            steps += 1
            async with db.transaction(readonly=True) as repo:
                if not await outbox.list_messages(repo, kind="reply"):
                    break
    finally:
        await bot.stop()

    arrived = fake.delivered(runner)[before:]
    assert [m.text[:40] for m in arrived] == [m.text[:40] for m in said]  # once, in order
    assert [m.kind for m in arrived].count("photo") == 1  # the chart survived the outbox
    question = next(m for m in fake.delivered(runner) if PAIN_Q in m.text)
    assert question.text.endswith("→ 2") and question.markup is None  # the edit too
    # Really refused, by both kinds of error (the head of the chat's queue is retried; the
    # rest waits behind it, in order).
    assert fake.codes_served[429] >= 2 and fake.codes_served[500] >= 2
    assert (await checkin_row(db, runner)).pain_now == 2
    lost = len(said) - len(arrived)
    fault_report(
        f"{lost} of {len(said)} replies lost over 30 s of 429 then 30 s of 500 on every send"
        f" ({fake.codes_served[429]} x 429, {fake.codes_served[500]} x 500 served;"
        f" {steps} dispatcher passes)"
    )
    assert lost == 0

    # The runner carries on where they were.
    async with bot_again(fake, db, clock, coach) as again:
        me = Person(fake, again, runner, {"id": runner, "type": "private", "first_name": "Sam"})
        await me.tap("No run")  # the plan's first day: the daily safety screen comes next
        assert SCREEN_NONE in str(fake.delivered(runner)[-1].markup)
    assert fake.answered == fake.callback_ids  # every tap's spinner was stopped


def bot_again(fake: FaultyTelegram, db: Database, clock: Clock, coach: Coach) -> object:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run() -> AsyncIterator[TrackingAdapter]:
        adapter = TrackingAdapter(tg_settings(fake, db), coach)
        await adapter.start_polling()
        try:
            yield adapter
        finally:
            await adapter.stop()

    return run()


async def test_a_short_outage_with_a_timeout_still_gets_every_reply_through(
    fake: FaultyTelegram, db: Database, clock: Clock
) -> None:
    runner = 5102
    coach = Coach(db, clock=clock)
    await onboard(Chat(coach, platform="telegram", user_id=str(runner), chat_id=str(runner)))
    bot = TrackingAdapter(tg_settings(fake, db), coach)
    await bot.start_polling()
    dispatcher = Scheduler(
        db, coach, {"telegram": bot}, clock=clock, config=TEST_CONFIG, limiter=RateLimiter({})
    )
    try:
        me = Person(fake, bot, runner, {"id": runner, "type": "private", "first_name": "Sam"})
        await me.send("/checkin")
        # The edit times out (PTB gives up after 5 s); the next question gets a 502.
        fake.faults["editMessageText"] = [TIMEOUT]
        fake.faults["sendMessage"] = [server_error(502)]
        await me.tap("2")
        assert fake.delivered_texts(runner, RAN_Q) == []
        for _ in range(3):
            clock.advance(seconds=6)
            await dispatcher.dispatch(clock.now)
        assert len(fake.delivered_texts(runner, RAN_Q)) == 1
        assert any(m.text.endswith("→ 2") for m in fake.delivered(runner))
    finally:
        await bot.stop()


async def test_reminders_wait_out_an_outage_and_are_all_delivered_once(
    fake: FaultyTelegram, db: Database, clock: Clock
) -> None:
    chats = [300_000 + i for i in range(20)]
    async with db.transaction() as repo:
        for chat in chats:
            await outbox.add_message(
                repo,
                idempotency_key=f"fault:{chat}",
                platform="telegram",
                chat_id=str(chat),
                kind="checkin",
                payload=encode(Outbound(chat_id=str(chat), text=f"Reminder for {chat}")),
                not_before=clock.now,
            )
    coach = Coach(db, clock=clock)
    sender = TelegramAdapter(tg_settings(fake, db), coach)
    await sender.start_sender()
    try:
        sched = scheduler(db, coach, sender, clock)  # type: ignore[arg-type]
        assert sched.config == TEST_CONFIG  # jobs not started: the test drives time

        start = clock.now
        fake.down = [too_many_requests(), server_error(500), server_error(502)]
        sent = await sched.dispatch(start)
        sent += await sched.dispatch(start + timedelta(minutes=1))
        assert sent == 0
        waiting = await outbox_rows(db)
        assert {r.status for r in waiting} == {"pending"}
        assert {r.last_error for r in waiting} == {"RetryAfter", "TransientFailure"}

        # Back, but the first request after the outage times out.
        fake.down = None
        fake.faults["sendMessage"] = [TIMEOUT]
        sent += await sched.dispatch(start + timedelta(minutes=10))
        assert sent == len(chats) - 1
        sent += await sched.dispatch(start + timedelta(minutes=30))
        assert sent == len(chats)
    finally:
        await sender.stop()

    rows = await outbox_rows(db)
    assert {r.status for r in rows} == {"sent"}
    assert max(r.attempts for r in rows) <= 3  # 5xx and the timeout count; 429 does not
    for chat in chats:
        assert fake.delivered_texts(chat) == [f"Reminder for {chat}"]
