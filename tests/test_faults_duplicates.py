"""Fault suite: the same update / event delivered twice *and concurrently* is handled once.

Dedup is a row keyed on the platform's own id (Telegram `update_id`, Slack `event_id` /
`action_ts`) inserted in the turn's transaction: a concurrent copy waits for the first
transaction (SQLite's write lock, PostgreSQL's unique index) and then finds the id taken.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from bot.adapters.telegram import TelegramAdapter
from bot.service import Coach
from bot.storage.db import Database
from bot.storage.models import Checkin
from bot.web import build_app
from tests.chat_driver import Chat, Clock, onboard
from tests.fake_telegram import FakeTelegram
from tests.test_slack import APP_ID, RUNNER, TEAM, Slack, slack  # noqa: F401  (fixture)
from tests.test_telegram import private_chat, tg_settings

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

COPIES = 5
SECRET = "dup-secret"
RAN_Q = "Did you run since your last check-in?"


async def test_the_same_telegram_update_posted_concurrently_is_handled_once(
    database: Database, clock: Clock
) -> None:
    runner = 5401
    setup = Chat(
        Coach(database, clock=clock), platform="telegram", user_id=str(runner), chat_id=str(runner)
    )
    await onboard(setup)
    fake = FakeTelegram()
    await fake.start()
    settings = tg_settings(
        fake,
        database,
        telegram_webhook_url="https://coach.example/telegram",
        telegram_webhook_secret=SECRET,
    )
    adapter = TelegramAdapter(settings, Coach(database, clock=clock))
    app = build_app(database, [adapter])
    user = {"id": runner, "is_bot": False, "first_name": "Sam"}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def post_copies(http: httpx.AsyncClient, update: dict[str, Any]) -> None:
        answers = await asyncio.gather(
            *(http.post("/telegram", json=update, headers=headers) for _ in range(COPIES))
        )
        assert [a.status_code for a in answers] == [200] * COPIES

    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test"
            ) as http,
        ):
            checkin = {
                "update_id": fake.next_update_id(),
                **fake.message_update(private_chat(runner), user, "/checkin"),
            }
            await post_copies(http, checkin)
            questions = await fake.wait_calls("sendMessage", runner, 1)
            assert len(questions) == 1  # one pain question
            question = fake.last_keyboard_message(runner)
            assert question is not None and question.markup is not None
            data = next(
                b["callback_data"]
                for row in question.markup["inline_keyboard"]
                for b in row
                if b["text"] == "2"
            )
            tap = {
                "update_id": fake.next_update_id(),
                **fake.callback_update(private_chat(runner), user, question, data),
            }
            await post_copies(http, tap)
            await fake.wait_calls("sendMessage", runner, 2)
            await fake.wait_calls("editMessageText", runner, 1)
    finally:
        await fake.stop()

    assert len(fake.calls_to("editMessageText", runner)) == 1
    sends = fake.calls_to("sendMessage", runner)
    assert [RAN_Q in c.text for c in sends] == [False, True]  # the next question, once
    async with database.transaction(readonly=True) as repo:
        user_row = await repo.get_user("telegram", str(runner), lock=False)
        assert user_row is not None
        rows = list(
            await repo.session.scalars(select(Checkin).where(Checkin.user_id == user_row.id))
        )
    assert [(r.pain_now, r.ran) for r in rows] == [(2, None)]
    assert (user_row.conversation or {}).get("qid") == "ran"


async def test_the_same_slack_event_and_action_sent_concurrently_are_handled_once(
    slack: Slack,  # noqa: F811
) -> None:
    def event_body(event_id: str) -> bytes:
        return json.dumps(
            {
                "token": "legacy",
                "team_id": TEAM,
                "api_app_id": APP_ID,
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}],
                "event": {
                    "type": "message",
                    "channel_type": "im",
                    "channel": f"D{RUNNER}",
                    "user": RUNNER,
                    "text": "help",
                    "ts": "1700000001.000100",
                },
            }
        ).encode()

    body = event_body("EvCONCURRENT")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    answers = await asyncio.gather(
        *(
            slack.post(body, "application/json", headers=retry if n % 2 else None)
            for n in range(COPIES)
        )
    )
    for answer in answers:
        await slack.settle(answer)
    assert len(slack.fake.of("chat.postMessage", channel=f"D{RUNNER}")) == 1

    # The same button press (one action_ts) arriving several times at once.
    await slack.slash("start")
    call, button = slack.message_with("I agree")
    payload = {
        "type": "block_actions",
        "user": {"id": RUNNER},
        "api_app_id": APP_ID,
        "team": {"id": TEAM},
        "container": {"type": "message", "message_ts": call["_ts"], "channel_id": f"D{RUNNER}"},
        "channel": {"id": f"D{RUNNER}"},
        "actions": [
            {"action_id": button["action_id"], "value": button["value"], "action_ts": "99.5"}
        ],
    }
    form = urlencode({"payload": json.dumps(payload)}).encode()
    updates_before = len(slack.fake.of("chat.update"))
    answers = await asyncio.gather(
        *(slack.post(form, "application/x-www-form-urlencoded") for _ in range(COPIES))
    )
    for answer in answers:
        await slack.settle(answer)
    assert len(slack.fake.of("chat.update")) == updates_before + 1
