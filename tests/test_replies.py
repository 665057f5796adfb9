"""Replies are stored with the answer and sent at once, or later by the dispatcher, in order
within a chat, each once (bot/service.py, bot/sending.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.delivery import RetryAfter
from bot.engine.events import InboundKind, Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from scheduler import Scheduler
from scheduler.payload import encode
from scheduler.ratelimit import RateLimiter
from tests.chat_driver import Chat, Clock
from tests.test_scheduler_helpers import TEST_CONFIG, RecordingSender, outbox_rows, scheduler
from tests.test_slack import (
    CHANNEL,
    RUNNER,
    Slack,
    slack,  # noqa: F401 (the real Slack app against the fake Web API)
)

HELP = "hipcoach — a coach for runners"


async def test_a_reply_goes_out_at_once_and_leaves_nothing_behind(chat: Chat, db: Database) -> None:
    await chat.send("help")
    assert [m.text for m in chat.delivered] == [m.text for m in chat.replies]
    assert HELP in chat.delivered[0].text
    assert await outbox_rows(db) == []  # delivered replies are deleted


async def test_a_reply_waits_behind_an_older_message_to_the_same_chat(
    chat: Chat, db: Database, clock: Clock
) -> None:
    async with db.transaction() as repo:
        await outbox.add_message(
            repo,
            idempotency_key="checkin:older",
            platform="console",
            chat_id=chat.user_id,
            kind="checkin",
            payload=encode(Outbound(chat_id=chat.user_id, text="Time for your check-in")),
            not_before=clock.now,
        )
    await chat.send("help")
    assert chat.delivered == []  # not before the check-in prompt that is still waiting
    sender = RecordingSender(clock)
    assert await scheduler(db, chat.coach, sender, clock).dispatch(clock.now) == 2
    assert sender.texts()[0] == "Time for your check-in"
    assert HELP in sender.texts()[1]


async def test_a_refused_reply_and_the_ones_after_it_follow_in_order(
    db: Database, clock: Clock
) -> None:
    refusing = RecordingSender(clock, failures=[RetryAfter(3)])
    coach = Coach(db, clock=clock)
    chat = Chat(coach)
    await chat.send("start")
    inbound = chat.inbound(InboundKind.BUTTON, payload=chat.buttons[0].payload, message_ref="1")
    said = await coach.handle(inbound, send=refusing.send)  # an edit and the next question
    assert len(said) == 2 and refusing.sent == []
    rows = await outbox_rows(db)
    assert [(r.status, r.last_error) for r in rows] == [
        ("pending", "RetryAfter"),
        ("pending", None),
    ]
    sender = RecordingSender(clock)
    dispatcher = scheduler(db, coach, sender, clock)
    assert await dispatcher.dispatch(clock.now + timedelta(seconds=2)) == 0
    assert await dispatcher.dispatch(clock.now + timedelta(seconds=3)) == 2
    assert [s.message.text for s in sender.sent] == [m.text for m in said]
    assert sender.sent[0].message.edit_ref == "1"


async def test_replies_recorded_without_a_sender_are_left_to_the_dispatcher(
    coach: Coach, db: Database, clock: Clock
) -> None:
    chat = Chat(coach)
    inbound = chat.inbound(InboundKind.COMMAND, command="help")
    said = await coach.handle(inbound)
    assert [r.status for r in await outbox_rows(db)] == ["pending"]
    assert await coach.handle(inbound) == []  # the same event again: handled once
    sender = RecordingSender(clock)
    assert await scheduler(db, coach, sender, clock).dispatch(clock.now) == 1
    assert sender.texts() == [said[0].text]
    assert sender.sent[0].message.recipient == chat.user_id


async def test_a_slack_reply_refused_at_once_reaches_the_person_through_the_outbox(
    slack: Slack,  # noqa: F811 (the fixture imported above)
) -> None:
    """A personal command in a channel is answered with an ephemeral message. Slack says 429:
    the reply waits in the outbox, and the dispatcher (Slack's outbox sender) posts it, still
    ephemeral, still only to the person who asked."""
    fake = slack.fake
    fake.fail_next["chat.postEphemeral"] = (
        429,
        {"ok": False, "error": "ratelimited"},
        {"Retry-After": "2"},
    )
    await slack.slash("checkin", channel=CHANNEL)
    (waiting,) = await outbox_rows(slack.db, kind="reply")
    assert (waiting.status, waiting.last_error) == ("pending", "RetryAfter")
    mark = len(fake.calls)
    dispatcher = Scheduler(
        slack.db,
        slack.adapter.coach,
        {"slack": slack.adapter},
        clock=slack.clock,
        config=TEST_CONFIG,
        limiter=RateLimiter({}),
    )
    assert await dispatcher.dispatch(slack.clock.now + timedelta(seconds=2)) == 1
    (call,) = slack.since(mark)
    assert call.method == "chat.postEphemeral"
    assert (call["channel"], call["user"]) == (CHANNEL, RUNNER)
    assert "personal one" in call.text
    assert await outbox_rows(slack.db, kind="reply") == []


async def test_a_reply_queued_behind_its_chat_longer_than_a_claim_lasts_still_goes_once(
    db: Database, clock: Clock
) -> None:
    """A club's burst: the reply waited in this process's queue (its chat's earlier replies,
    one a second) until its claim nearly ran out. The claim is renewed and the reply goes
    from here, once, instead of waiting for the dispatcher."""
    coach = Coach(db, clock=clock)
    chat = Chat(coach)
    handled = await coach.record(chat.inbound(InboundKind.COMMAND, command="help"))
    assert handled.lease_until is not None and len(handled.claimed) == 1
    clock.now = handled.lease_until - timedelta(seconds=5)  # queued for 25 of its 30 s
    sender = RecordingSender(clock)
    assert await coach.deliver(handled, sender.send)
    assert HELP in sender.texts()[0]
    await coach.flush()
    assert await outbox_rows(db) == []  # recorded as sent: nothing goes again
    assert await scheduler(db, coach, RecordingSender(clock), clock).dispatch(clock.now) == 0


async def test_a_reply_whose_claim_was_taken_over_is_left_to_the_dispatcher(
    db: Database, clock: Clock
) -> None:
    coach = Coach(db, clock=clock)
    chat = Chat(coach)
    handled = await coach.record(chat.inbound(InboundKind.COMMAND, command="help"))
    assert handled.lease_until is not None
    clock.now = handled.lease_until + timedelta(seconds=1)  # the claim ran out meanwhile
    async with db.transaction() as repo:
        assert await outbox.release_expired_claims(repo, clock.now) == 1
    held = RecordingSender(clock)
    assert not await coach.deliver(handled, held.send)  # no longer ours: not sent from here
    assert held.sent == []
    sender = RecordingSender(clock)
    assert await scheduler(db, coach, sender, clock).dispatch(clock.now) == 1
    assert HELP in sender.texts()[0]


async def test_a_reply_stuck_in_a_burst_longer_than_its_claim_stays_ours_and_goes_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A club's burst on the real clock: the reply waits for its send slot three times as
    long as a claim lasts, while the dispatcher keeps looking for claims that ran out. The
    claim is kept alive meanwhile (bot/holds.py), so the dispatcher never takes the reply
    over and sends it a second time."""
    monkeypatch.setenv("HIPCOACH_SENDING_LEASE_SECONDS", "0.6")
    coach = Coach(db)
    chat = Chat(coach)
    handled = await coach.record(chat.inbound(InboundKind.COMMAND, command="help"))
    assert len(handled.claimed) == 1 and len(coach.holds) == 1
    slot = asyncio.Event()
    sent: list[str] = []

    async def slow_send(message: Outbound) -> None:
        await slot.wait()  # waiting behind the burst
        sent.append(message.text)

    delivery = asyncio.create_task(coach.deliver(handled, slow_send))
    dispatcher = RecordingSender(Clock())
    for _ in range(18):  # 1.8 s, three claims' worth
        await asyncio.sleep(0.1)
        async with db.transaction() as repo:
            assert await outbox.release_expired_claims(repo, datetime.now(UTC)) == 0
    slot.set()
    assert await delivery
    await coach.flush()
    assert len(sent) == 1 and HELP in sent[0]
    assert len(coach.holds) == 0
    assert await outbox_rows(db) == []
    sched = Scheduler(db, coach, {"console": dispatcher}, config=TEST_CONFIG)
    assert await sched.dispatch() == 0
