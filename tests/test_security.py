"""Refusals: unsigned or stale Slack requests, Telegram webhooks without the secret,
warm-up changes by people who are not admins, and forged button presses aimed at someone
else's chat.

Every refusal is checked on both sides: the HTTP answer (401 / 403) or the message the
person sees, and the database, which must hold nothing new.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from bot.adapters.slack import SlackAdapter
from bot.config import Settings
from bot.engine.events import ChatKind, InboundKind
from bot.service import Coach
from bot.storage.db import Database
from bot.storage.models import Base
from bot.web import build_app
from tests.chat_driver import Chat, Clock, onboard
from tests.fake_slack import TEAM, FakeSlack
from tests.fake_slack import TOKEN as SLACK_TOKEN
from tests.fake_telegram import ApiError, FakeTelegram
from tests.fault_tools import wait_until
from tests.test_slack import APP_ID, SECRET, Slack
from tests.test_telegram import (
    GROUP,
    Person,
    TrackingAdapter,
    polling_bot,
    private_chat,
    texts,
    tg_settings,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


async def table_counts(db: Database) -> dict[str, int]:
    async with db.transaction(readonly=True) as repo:
        return {
            table.name: int(await repo.session.scalar(select(func.count()).select_from(table)))
            for table in Base.metadata.sorted_tables
        }


async def stored(db: Database, platform: str, user_id: str) -> tuple[Any, Any] | None:
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user(platform, user_id, lock=False)
        return None if user is None else (user.profile, user.conversation)


# --- Slack: signatures -----------------------------------------------------------------------

RUNNER, OTHER, MEMBER, CREATOR, CHANNEL = "U1RUNNER", "U7OTHER", "U3MEMBER", "U4CREATOR", "C0RUN"


@pytest.fixture
async def slack(db: Database, clock: Clock) -> AsyncIterator[Slack]:
    fake = FakeSlack(
        users={
            RUNNER: {"tz": "Europe/Berlin", "is_admin": False},
            OTHER: {"tz": "Europe/Berlin", "is_admin": False},
            MEMBER: {"tz": "Europe/London", "is_admin": False},
            CREATOR: {"tz": "Europe/Berlin", "is_admin": False},
        },
        creators={CHANNEL: CREATOR},
    )
    await fake.start()
    settings = Settings(
        database_url=db.url,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
    )
    adapter = SlackAdapter(settings, Coach(db, clock=clock))
    transport = httpx.ASGITransport(app=build_app(db, [adapter]))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hipcoach.test") as http:
            yield Slack(http, fake, adapter, db, clock)
    finally:
        await adapter.stop()
        await fake.stop()


def _slash_body(text: str, user: str = RUNNER) -> bytes:
    return urlencode(
        {
            "team_id": TEAM,
            "channel_id": f"D{user}",
            "channel_name": "directmessage",
            "user_id": user,
            "command": "/hip",
            "text": text,
            "api_app_id": APP_ID,
            "trigger_id": f"trigger.sec.{time.time()}",
        }
    ).encode()


def _event_body(text: str, user: str = RUNNER) -> bytes:
    return json.dumps(
        {
            "team_id": TEAM,
            "api_app_id": APP_ID,
            "type": "event_callback",
            "event_id": f"EvSEC{time.time()}",
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel_type": "im",
                "channel": f"D{user}",
                "user": user,
                "text": text,
                "ts": f"{time.time():.6f}",
            },
        }
    ).encode()


def _action_body(value: str, user: str, channel: str) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "api_app_id": APP_ID,
        "team": {"id": TEAM},
        "container": {
            "type": "message",
            "message_ts": "1700000000.000001",
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "channel": {"id": channel},
        "actions": [{"action_id": "hip_1", "value": value, "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


FORM, JSON = "application/x-www-form-urlencoded", "application/json"
SLACK_BODIES = {
    "slash": (lambda: _slash_body("start"), FORM),
    "event": (lambda: _event_body("start"), JSON),
    "button": (lambda: _action_body("x:s", RUNNER, f"D{RUNNER}"), FORM),
}


@pytest.mark.parametrize("kind", list(SLACK_BODIES))
async def test_slack_requests_with_a_bad_or_stale_signature_get_401(
    kind: str, slack: Slack, db: Database
) -> None:
    make, content_type = SLACK_BODIES[kind]
    body = make()
    now = int(time.time())
    signed_other = _slash_body("help") if kind != "slash" else _event_body("help")

    async def post_signed(
        *, secret: str = SECRET, ts: str | None = None, signed: bytes | None = None
    ) -> int:
        ts = ts or str(now)
        from slack_sdk.signature import SignatureVerifier

        signature = SignatureVerifier(secret).generate_signature(
            timestamp=ts, body=signed if signed is not None else body
        )
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(signature),
            "Content-Type": content_type,
        }
        response = await slack.http.post("/slack/events", content=body, headers=headers)
        return response.status_code

    assert await post_signed(secret="not-the-secret") == 401
    assert await post_signed(ts=str(now - 6 * 60)) == 401  # stale: a replay
    assert await post_signed(ts=str(now + 6 * 60)) == 401  # from the future
    assert await post_signed(signed=signed_other) == 401  # a signature for another body
    unsigned = await slack.http.post(
        "/slack/events", content=body, headers={"Content-Type": content_type}
    )
    assert unsigned.status_code == 401
    wrong_version = await slack.http.post(
        "/slack/events",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": "v1=" + "0" * 64,
            "Content-Type": content_type,
        },
    )
    assert wrong_version.status_code == 401

    assert await slack.adapter.drain(5)
    assert [c.method for c in slack.fake.calls if c.method != "auth.test"] == []
    assert all(n == 0 for n in (await table_counts(db)).values())
    # The same request, correctly signed, is handled.
    assert await post_signed() == 200
    assert await slack.adapter.drain(5)
    assert slack.fake.of("chat.postMessage")


async def test_a_slack_timestamp_that_is_not_a_number_gets_401(slack: Slack) -> None:
    body = _slash_body("start")
    response = await slack.http.post(
        "/slack/events",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": "yesterday",
            "X-Slack-Signature": "v0=" + "0" * 64,
            "Content-Type": FORM,
        },
    )
    assert response.status_code == 401


# --- Telegram: the webhook secret --------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


def _update(fake: FakeTelegram, update_id: int, text: str = "/start") -> dict[str, Any]:
    user = {"id": 5003, "is_bot": False, "first_name": "Wen"}
    return {"update_id": update_id, **fake.message_update(private_chat(5003), user, text)}


@pytest.mark.parametrize("secret", ["s3cret-Token_1", None], ids=["secret_set", "no_secret"])
async def test_telegram_webhooks_without_the_right_secret_get_403(
    secret: str | None, fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    settings = tg_settings(
        fake,
        db,
        telegram_webhook_url="https://coach.example/telegram",
        telegram_webhook_secret=secret,
    )
    adapter = TrackingAdapter(settings, Coach(db, clock=clock))
    app = build_app(db, [adapter])
    header = "X-Telegram-Bot-Api-Secret-Token"
    wrong = ["", "nope", "S3CRET-TOKEN_1", "s3cret-Token_", "s3cret-Token_1 ", "s3cret-Token_12"]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            missing = await client.post("/telegram", json=_update(fake, 1))
            assert missing.status_code == 403
            for n, given in enumerate(wrong, start=2):
                response = await client.post(
                    "/telegram", json=_update(fake, n), headers={header: given}
                )
                assert response.status_code == 403, given
            assert fake.calls_to("sendMessage") == []
            assert all(n == 0 for n in (await table_counts(db)).values())
            if secret is not None:
                good = await client.post(
                    "/telegram", json=_update(fake, 99), headers={header: secret}
                )
                assert good.status_code == 200  # once the turn is stored
                await wait_until(lambda: fake.calls_to("sendMessage"), "the reply")
                assert "not a doctor" in fake.calls_to("sendMessage")[-1].text


# --- warm-ups: admins only --------------------------------------------------------------------

CHANGES = (
    "add tue,thu 18:00 before 15 tz Europe/Berlin",
    "tz Europe/Berlin",
    "remove 1",
)


async def _warmups(db: Database, platform: str, chat_id: str) -> list[tuple[str, str, str]]:
    async with db.transaction(readonly=True) as repo:
        chat = await repo.get_team_chat(platform, chat_id, lock=False)
        if chat is None:
            return []
        return [(w.days, w.run_time, w.timezone) for w in await repo.list_warmups(chat.id)]


async def _team_timezone(db: Database, platform: str, chat_id: str) -> str | None:
    async with db.transaction(readonly=True) as repo:
        chat = await repo.get_team_chat(platform, chat_id, lock=False)
        return None if chat is None else chat.timezone


async def test_warmup_changes_from_a_non_admin_are_refused_on_telegram(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    async with polling_bot(fake, db, clock) as bot:
        captain = Person(fake, bot, 7001, GROUP, name="Cap")
        member = Person(fake, bot, 7002, GROUP, name="Mo")
        fake.members[(GROUP["id"], captain.user_id)] = "creator"
        fake.members[(GROUP["id"], member.user_id)] = "member"
        await captain.send("/warmup add sat 08:00 tz Europe/London")
        before = await _warmups(db, "telegram", str(GROUP["id"]))
        assert len(before) == 1

        for change in CHANGES:
            calls = await member.send(f"/warmup {change}")
            assert "only the chat's admins" in texts(calls)
        # Posting "as" another channel is not speaking for this group.
        as_channel = fake.message_update(GROUP, member.user, "/warmup remove 1")
        as_channel["message"]["sender_chat"] = {"id": -100777, "type": "channel", "title": "Mine"}
        calls = await member.deliver(as_channel)
        assert "only the chat's admins" in texts(calls)
        # When Telegram cannot say who is an admin, the answer is no.
        fake.fail_next["getChatMember"] = [ApiError("Bad Gateway", 502)] * 3
        bot._admin_cache.clear()
        calls = await captain.send("/warmup remove 1")
        assert "only the chat's admins" in texts(calls)

        assert await _warmups(db, "telegram", str(GROUP["id"])) == before
        assert await _team_timezone(db, "telegram", str(GROUP["id"])) == "Europe/London"


async def test_warmup_changes_from_a_non_admin_are_refused_on_slack(
    slack: Slack, db: Database
) -> None:
    await slack.slash("warmup add sat 08:00 tz Europe/London", user=CREATOR, channel=CHANNEL)
    before = await _warmups(db, "slack", f"{TEAM}:{CHANNEL}")  # ids carry the workspace
    assert len(before) == 1
    for change in CHANGES:
        mark = len(slack.fake.calls)
        await slack.slash(f"warmup {change}", user=MEMBER, channel=CHANNEL)
        said = "\n".join(c.text for c in slack.since(mark) if c.method.startswith("chat."))
        assert "only the chat's admins" in said
    # Someone Slack knows nothing about (users.info fails) is not an admin either.
    mark = len(slack.fake.calls)
    await slack.slash("warmup remove 1", user="U9UNKNOWN", channel=CHANNEL)
    said = "\n".join(c.text for c in slack.since(mark) if c.method.startswith("chat."))
    assert "only the chat's admins" in said
    assert await _warmups(db, "slack", f"{TEAM}:{CHANNEL}") == before
    assert await _team_timezone(db, "slack", f"{TEAM}:{CHANNEL}") == "Europe/London"


async def test_warmup_changes_from_a_non_admin_are_refused_by_the_service(
    coach: Coach, db: Database
) -> None:
    admin = Chat(coach, user_id="cap", chat_id="club", chat_kind=ChatKind.GROUP, is_admin=True)
    await admin.send("warmup add sat 08:00 tz Europe/London")
    before = await _warmups(db, "console", "club")
    for is_admin in (False, None):  # not an admin, or the platform could not tell
        member = Chat(
            coach, user_id="mo", chat_id="club", chat_kind=ChatKind.GROUP, is_admin=is_admin
        )
        for change in CHANGES:
            await member.send(f"warmup {change}")
            assert "only the chat's admins" in member.text
    assert await _warmups(db, "console", "club") == before


# --- forged buttons aimed at someone else's chat ---------------------------------------------


async def _runner_mid_checkin(coach: Coach, platform: str, user: str, chat_id: str) -> Chat:
    chat = Chat(coach, user_id=user, platform=platform, chat_id=chat_id)
    await onboard(chat)
    await chat.send("checkin")
    return chat


async def test_a_forged_telegram_button_for_another_users_chat_changes_nothing(
    fake: FakeTelegram, db: Database, clock: Clock, coach: Coach
) -> None:
    victim = await _runner_mid_checkin(coach, "telegram", "5001", "5001")
    before = await stored(db, "telegram", "5001")
    pain = next(b.payload for b in victim.buttons if b.label == "9")
    async with polling_bot(fake, db, clock) as bot:
        # The victim's question, as a message in the victim's chat.
        me = Person(fake, bot, 5001, private_chat(5001))
        await me.send("what was the question?")
        question = fake.last_keyboard_message(5001)
        assert question is not None
        start = len(fake.calls)
        attacker = Person(fake, bot, 6666, private_chat(5001), name="Eve")
        for payload in (pain, "x:s", "x:k", "x:z:30", "1:yes"):
            await attacker.press(question, payload)
        assert await stored(db, "telegram", "5001") == before
        # Nothing went to the victim's chat, and the attacker's chat did not become it.
        sent = [c for c in fake.calls[start:] if c.method != "answerCallbackQuery"]
        assert [c for c in sent if c.chat_id == "5001"] == []
        async with db.transaction(readonly=True) as repo:
            eve = await repo.get_user("telegram", "6666", lock=False)
        assert eve is None or eve.chat_id != "5001"
        assert fake.answered == fake.callback_ids
        # The victim's own tap still works.
        calls = await me.press(question, pain)
        assert "expired" not in texts(calls)
        assert await stored(db, "telegram", "5001") != before


async def test_a_forged_slack_button_for_another_users_dm_changes_nothing(
    slack: Slack, db: Database, coach: Coach
) -> None:
    runner = f"{TEAM}:{RUNNER}"  # stored Slack ids carry the workspace
    victim = await _runner_mid_checkin(coach, "slack", runner, f"{TEAM}:D{RUNNER}")
    before = await stored(db, "slack", runner)
    pain = next(b.payload for b in victim.buttons if b.label == "9")
    mark = len(slack.fake.calls)
    for payload in (pain, "x:s", "x:k", "x:z:30"):
        body = _action_body(payload, OTHER, f"D{RUNNER}")
        await slack.settle(await slack.post(body, FORM))
    assert await stored(db, "slack", runner) == before
    touched = [
        c
        for c in slack.since(mark)
        if c.method.startswith("chat.") and c.get("channel") == f"D{RUNNER}"
    ]
    assert touched == []
    async with db.transaction(readonly=True) as repo:
        other = await repo.get_user("slack", f"{TEAM}:{OTHER}", lock=False)
    assert other is None or other.chat_id != f"{TEAM}:D{RUNNER}"
    # The runner's own press still works.
    await slack.settle(await slack.post(_action_body(pain, RUNNER, f"D{RUNNER}"), FORM))
    assert await stored(db, "slack", runner) != before


async def test_a_button_from_someone_else_only_ever_touches_their_own_state(
    coach: Coach, db: Database
) -> None:
    victim = await _runner_mid_checkin(coach, "console", "alice", "alice")
    before = await stored(db, "console", "alice")
    pain = next(b.payload for b in victim.buttons if b.label == "9")
    eve = Chat(coach, user_id="eve", chat_id="alice")
    await eve.deliver(eve.inbound(InboundKind.BUTTON, payload=pain))
    assert await stored(db, "console", "alice") == before
