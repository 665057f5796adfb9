"""Telegram polling handles chats side by side and each chat in order.

The real PTB Application polls the fake Bot API (tests/fake_telegram.py), every call taking
a round trip, on a real SQLite database. A "slow chat" is one whose sends the fake holds at
a gate the test opens; nothing here waits for a duration or asserts one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bot.service import Coach
from bot.storage.db import Database
from bot.web import build_app
from tests.chat_driver import Clock
from tests.fake_telegram import FakeTelegram
from tests.test_telegram import (
    Person,
    TrackingAdapter,
    polling_bot,
    private_chat,
    tg_settings,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

ROUND_TRIP = 0.01  # seconds per Bot API call: calls overlap only if the bot lets them
HELP = "hipcoach — a coach for runners"
SCRIPT = ("/help", "/start", "hello", "/help")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    server.round_trip = ROUND_TRIP
    await server.start()
    yield server
    await server.stop()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for something the fake sees (not for a duration: the bound only ends a hang)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def person(fake: FakeTelegram, bot: TrackingAdapter, user_id: int) -> Person:
    return Person(fake, bot, user_id, private_chat(user_id))


def chat_calls(fake: FakeTelegram, chat_id: int) -> list[tuple[str, str]]:
    return [(c.method, c.text) for c in fake.calls if str(c.params.get("chat_id")) == str(chat_id)]


async def test_a_slow_chat_holds_back_no_other_chat_and_keeps_its_replies_in_order(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    async with polling_bot(fake, db, clock) as bot:
        ana, ben = person(fake, bot, 5101), person(fake, bot, 5102)
        fake.hold_chat(ana.chat_id)  # Ana's replies take as long as the test wants
        first = fake.push(fake.message_update(ana.chat, ana.user, "/help"))
        await until(lambda: fake.held_in_chat[ana.chat_id] == 1)
        second = fake.push(fake.message_update(ana.chat, ana.user, "/start"))

        # Ben writes after both of Ana's messages and gets his answer meanwhile.
        ben_calls = await ben.send("/help")
        assert any(HELP in c.text for c in ben_calls if c.method == "sendMessage")

        # Ana's second message is handled meanwhile, its turn committed with its reply, and
        # so both are confirmed to Telegram; the reply itself waits behind her first one
        # (still the only call to her chat).
        await until(lambda: second in bot.finished)
        await fake.wait_confirmed(second)
        assert fake.held_in_chat[ana.chat_id] == 1
        assert len(chat_calls(fake, ana.chat_id)) == 1

        fake.release_chat(ana.chat_id)
        await bot.wait_for(second)
        ana_texts = [text for method, text in chat_calls(fake, ana.chat_id)]
        assert HELP in ana_texts[0] and all(HELP not in t for t in ana_texts[1:])
        assert bot.finished.index(first) < bot.finished.index(second)
        last = fake.push(fake.message_update(ben.chat, ben.user, "hello"))
        await bot.wait_for(last)
        await fake.wait_confirmed(last)


async def test_a_club_writing_at_once_gets_every_chat_the_replies_of_a_lone_runner(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    async with polling_bot(fake, db, clock) as bot:
        lone = person(fake, bot, 5200)
        for text in SCRIPT:
            await lone.send(text)
        expected = chat_calls(fake, lone.chat_id)
        assert len(expected) >= len(SCRIPT)

        club = [person(fake, bot, 5201 + n) for n in range(12)]
        fake.round_trip = 0.01  # a reply takes a moment, as on the real network
        ids = [
            fake.push(fake.message_update(runner.chat, runner.user, text))
            for text in SCRIPT
            for runner in club  # interleaved, all queued before the bot sees any
        ]
        for update_id in ids:
            await bot.wait_for(update_id)
        for runner in club:
            assert chat_calls(fake, runner.chat_id) == expected, runner.user_id
        await fake.wait_confirmed(ids[-1])
        # Side by side: replies to several chats were on their way at once (recording a
        # turn waits for no network, so the turns themselves may well run one by one).
        assert fake.max_chats_at_once > 1


async def test_the_webhook_answers_once_the_turn_is_stored_while_the_reply_is_slow(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    settings = tg_settings(
        fake, db, telegram_webhook_url="https://coach.example/telegram", telegram_webhook_secret="s"
    )
    adapter = TrackingAdapter(settings, Coach(db, clock=clock))
    app = build_app(db, [adapter])
    chat = private_chat(5301)
    user: dict[str, Any] = {"id": 5301, "is_bot": False, "first_name": "Wen"}
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            fake.hold_chat(5301)
            first = {"update_id": 9101, **fake.message_update(chat, user, "/help")}
            response = await client.post("/telegram", json=first, headers=headers)
            # 200 although the reply cannot have gone yet: it is still to reach, or waits
            # at, the closed gate.
            assert response.status_code == 200
            await until(lambda: fake.held_in_chat[5301] == 1)
            fake.release_chat(5301)
            await adapter.wait_for(9101)
    assert next(text for _, text in chat_calls(fake, 5301)).startswith(HELP)
