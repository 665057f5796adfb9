"""Replies are stored with the answer and sent at once, or later by the dispatcher, in order
within a chat, each once (bot/service.py, bot/sending.py)."""

from __future__ import annotations

from datetime import timedelta

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
