"""The service on both databases: a whole session, quick double taps, duplicates."""

from __future__ import annotations

import asyncio

from bot.engine.events import InboundKind
from bot.service import Coach
from bot.storage.db import Database
from tests.chat_driver import Chat, Clock, checkin, onboard


async def test_a_full_session_is_stored_on_this_database(database: Database) -> None:
    clock = Clock()
    chat = Chat(Coach(database, clock=clock))
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat, pain="3", ran="30 min", run_pain="2")
    assert "Hold" in chat.text
    await chat.send("export")
    export = next(r.attachment for r in chat.replies if r.attachment)
    assert b'"pain_now": 3' in export.data
    async with database.transaction(readonly=True) as repo:
        user = await repo.get_user("console", "runner-1", lock=False)
        assert user is not None and user.profile["onboarded"]
    await chat.send("delete")
    await chat.press("Yes, delete everything")
    async with database.transaction(readonly=True) as repo:
        counts = await repo.row_counts_for_user(user.id, "runner-1")
    assert sum(counts.values()) == 0


async def test_two_quick_taps_on_the_same_question_are_answered_once(database: Database) -> None:
    chat = Chat(Coach(database))
    await chat.send("start")
    agree = chat.buttons[0].payload
    first = chat.inbound(InboundKind.BUTTON, payload=agree, message_ref="1")
    second = chat.inbound(InboundKind.BUTTON, payload=agree, message_ref="1")
    replies = await asyncio.gather(chat.coach.handle(first), chat.coach.handle(second))
    texts = ["\n".join(r.text for r in batch) for batch in replies]
    assert sum("Who is the coaching for?" in t and "expired" not in t for t in texts) == 1
    assert sum("expired" in t for t in texts) == 1


async def test_the_same_update_delivered_concurrently_is_handled_once(database: Database) -> None:
    chat = Chat(Coach(database))
    inbound = chat.inbound(InboundKind.COMMAND, command="start")
    replies = await asyncio.gather(*(chat.coach.handle(inbound) for _ in range(4)))
    assert sorted(len(r) for r in replies)[:3] == [0, 0, 0]
    assert sum(1 for r in replies if r) == 1
