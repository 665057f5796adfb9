"""Fault suite: the platform answering 429 (retry_after), 5xx and timeouts for a while.

The real Telegram adapter (python-telegram-bot) against the fake Bot API with scripted
faults (tests/fault_tools.FaultyTelegram): a read timeout really makes PTB give up on the
request (5 s).

- Replies to a person's own message are retried in the adapter: three tries, honouring
  retry_after (up to 30 s) and backing off 0.5 s / 2 s after 5xx and timeouts. The answer
  is committed before any reply is sent, so an outage longer than that loses no answer: the
  reply is dropped (logged) and the person's next message gets the current question again.
- Messages the bot starts itself go through the outbox, which keeps retrying (429 waits
  retry_after without counting as a failure; 5xx and timeouts back off, up to 8 attempts)
  until the platform recovers: all delivered, each once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.adapters.telegram import TelegramAdapter
from bot.engine.events import Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import Checkin
from scheduler.payload import encode
from tests.chat_driver import Chat, Clock, onboard, question_text
from tests.fault_tools import TIMEOUT, FaultyTelegram, server_error, too_many_requests
from tests.test_scheduler_helpers import TEST_CONFIG, outbox_rows, scheduler
from tests.test_telegram import Person, polling_bot, private_chat, texts, tg_settings

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

RAN_Q = question_text("ran_question")
RUN_PAIN_Q = question_text("run_pain_question")
AFTER_RUN_Q = question_text("after_run_question")


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


async def test_replies_ride_out_429_5xx_and_timeouts_and_no_answer_is_lost(
    fake: FaultyTelegram, db: Database, clock: Clock
) -> None:
    runner = 5101
    setup = Chat(
        Coach(db, clock=clock), platform="telegram", user_id=str(runner), chat_id=str(runner)
    )
    await onboard(setup)
    async with polling_bot(fake, db, clock) as bot:
        me = Person(fake, bot, runner, private_chat(runner))
        await me.send("/checkin")

        # A short outage: each reply fails once or twice, then goes through.
        fake.faults["editMessageText"] = [TIMEOUT]
        fake.faults["sendMessage"] = [too_many_requests(), server_error(502)]
        await me.tap("2")
        assert fake.faults_served == {"editMessageText": 1, "sendMessage": 2}
        assert len(fake.delivered_texts(runner, RAN_Q)) == 1
        assert any(m.text.endswith("→ 2") for m in fake.delivered(runner))
        assert (await checkin_row(db, runner)).pain_now == 2

        # A longer outage: every try fails; the replies are given up, the answer is kept.
        fake.down = [server_error(500), server_error(502), too_many_requests()]
        await me.tap("20 min")
        assert fake.faults_served["editMessageText"] + fake.faults_served["sendMessage"] >= 6
        assert fake.delivered_texts(runner, RUN_PAIN_Q) == []
        row = await checkin_row(db, runner)
        assert (row.pain_now, row.ran, row.run_minutes) == (2, "yes", 20)

        # Recovered: the next message gets the current question, and its button works.
        fake.down = None
        calls = await me.send("sorry, what was the question?")
        assert RUN_PAIN_Q in texts(calls)
        await me.tap("2")
        assert len(fake.delivered_texts(runner, AFTER_RUN_Q)) == 1
        row = await checkin_row(db, runner)
        assert (row.pain_now, row.ran, row.pain_during) == (2, "yes", 2)
    assert fake.answered == fake.callback_ids  # every tap's spinner was stopped


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
