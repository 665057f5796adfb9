"""End-to-end tests of the Slack adapter: the real Bolt app in HTTP mode behind the real
ASGI app, correctly signed requests, and a fake Slack Web API on 127.0.0.1.

Acks come back before the engine work, so each helper waits for the adapter's post-ack
work to finish (`adapter.drain()`) before the test looks at the recorded Web API calls.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack import SlackAdapter
from bot.config import Settings
from bot.delivery import PermanentFailure, RetryAfter, TransientFailure
from bot.engine.events import Attachment, Outbound
from bot.service import Coach
from bot.storage.db import Database
from bot.web import build_app
from scheduler.core import Scheduler
from tests.chat_driver import ADULT, Clock, onboarding_taps, question_text
from tests.fake_slack import APP_TOKEN, BOT_USER, TEAM, TOKEN, Call, FakeSlack

SECRET = "test-signing-secret"
APP_ID = "A0HIPCOACH"
RUNNER = "U1RUNNER"
ADMIN = "U2ADMIN"
MEMBER = "U3MEMBER"
CREATOR = "U4CREATOR"
CHANNEL = "C0RUNCLUB"
MESSAGE_METHODS = ("chat.postMessage", "chat.postEphemeral", "respond")

_ids = itertools.count(1)


@dataclass
class Slack:
    """Plays Slack's side: signs and posts requests, presses buttons it was sent."""

    http: httpx.AsyncClient
    fake: FakeSlack
    adapter: SlackAdapter
    db: Database
    clock: Clock
    team: str = TEAM  # the workspace the requests come from
    enterprise: str | None = None  # its Enterprise Grid org, if any
    org_wide: bool = False  # the app is installed for the whole org

    def _org(self) -> dict[str, Any]:
        """The fields Slack adds to a request from an Enterprise Grid workspace."""
        if self.enterprise is None:
            return {}
        return {"enterprise_id": self.enterprise, "is_enterprise_install": self.org_wide}

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        secret: str = SECRET,
    ) -> httpx.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
        assert signature is not None
        sent = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            "Content-Type": content_type,
            **(headers or {}),
        }
        return await self.http.post("/slack/events", content=body, headers=sent)

    async def settle(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 200, response.text
        assert await self.adapter.drain(timeout=15), "the adapter did not finish its work"
        return response

    async def slash(
        self,
        text: str,
        user: str = RUNNER,
        channel: str | None = None,
        *,
        trigger: str | None = None,
    ) -> httpx.Response:
        channel = channel or f"D{user}"
        n = next(_ids)
        form = {
            "token": "legacy",
            "team_id": self.team,
            "team_domain": "runners",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "run-club",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/hip",
            "text": text,
            "api_app_id": APP_ID,
            "response_url": self.fake.respond_url(f"cmd{n}"),
            "trigger_id": trigger or f"trigger.{n}",
            # Form fields are text: Slack writes booleans as "true" / "false".
            **{k: str(v).lower() if isinstance(v, bool) else v for k, v in self._org().items()},
        }
        body = urlencode(form).encode()
        return await self.settle(await self.post(body, "application/x-www-form-urlencoded"))

    async def interaction(self, payload: Any) -> httpx.Response:
        """An interactive request (buttons, shortcuts, views) as Slack posts it: a form
        field `payload` holding JSON."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def mention(
        self, text: str, user: str = RUNNER, channel: str = "C0RUNCLUB", **kw: Any
    ) -> httpx.Response:
        """An @-mention of the app in a channel (the `app_mention` event)."""
        event = {
            "type": "app_mention",
            "user": user,
            "channel": channel,
            "text": f"<@{BOT_USER}> {text}",
            "ts": f"{time.time():.6f}",
        }
        return await self.event(event, **kw)

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = {
            "token": "legacy",
            "team_id": self.team,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": self.team, "user_id": BOT_USER, "is_bot": True, **self._org()}
            ],
            **self._org(),
        }
        data = json.dumps(body).encode()
        return await self.settle(await self.post(data, "application/json", headers=headers))

    async def dm(self, text: str, user: str = RUNNER, **kw: Any) -> httpx.Response:
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": f"D{user}",
            "user": user,
            "text": text,
            "ts": f"{time.time():.6f}",
        }
        return await self.event(event, **kw)

    async def home_opened(self, user: str = RUNNER) -> Call:
        mark = len(self.fake.calls)
        await self.event(
            {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"}
        )
        assert any(c.method == "views.publish" for c in self.since(mark))
        return self.fake.last("views.publish", user_id=user)

    def since(self, mark: int) -> list[Call]:
        return self.fake.calls[mark:]

    def message_with(self, label: str, *, user: str = RUNNER) -> tuple[Call, dict[str, Any]]:
        """The newest message (or Home view) that shows a button with this label."""
        for call in reversed(self.fake.calls):
            if call.method not in (*MESSAGE_METHODS, "chat.update", "views.publish"):
                continue
            if call.method == "views.publish" and call.get("user_id") != user:
                continue
            for exact in (True, False):
                for b in call.buttons:
                    text = b["text"]["text"]
                    if (text == label) if exact else (label in text):
                        return call, b
        raise AssertionError(f"no button {label!r} in any message")

    async def press(self, label: str, *, user: str = RUNNER) -> httpx.Response:
        call, button = self.message_with(label, user=user)
        n = next(_ids)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.team},
            "api_app_id": APP_ID,
            "token": "legacy",
            "team": {"id": self.team, "domain": "runners"},
            **(
                {"enterprise": {"id": self.enterprise}, "is_enterprise_install": self.org_wide}
                if self.enterprise
                else {}
            ),
            "trigger_id": f"trigger.{n}",
            "actions": [
                {
                    "type": "button",
                    "action_id": button["action_id"],
                    "block_id": "b",
                    "value": button.get("value"),
                    "text": button["text"],
                    "action_ts": f"{time.time():.6f}{n}",
                }
            ],
        }
        if call.method == "views.publish":
            payload["container"] = {"type": "view", "view_id": "V1"}
            payload["view"] = {"id": "V1", "type": "home"}
        else:
            channel = call.get("channel") or f"D{user}"
            ts = call.get("_ts") or call.get("ts") or "1700000000.000001"
            payload["container"] = {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": call.method not in ("chat.postMessage", "chat.update"),
            }
            payload["channel"] = {"id": channel}
            payload["message"] = {"ts": ts, "text": call.get("text")}
            payload["response_url"] = self.fake.respond_url(f"act{n}")
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.settle(await self.post(body, "application/x-www-form-urlencoded"))

    async def press_all(self, *labels: str, user: str = RUNNER) -> None:
        for label in labels:
            await self.press(label, user=user)

    def dm_text(self, mark: int, user: str = RUNNER) -> str:
        """What the person saw in their DM after `mark`."""
        return "\n".join(
            c.text
            for c in self.since(mark)
            if c.method in ("chat.postMessage", "chat.update", "files.completeUploadExternal")
            and (c.get("channel") or c.get("channel_id")) == f"D{user}"
        )


@pytest.fixture
async def slack(db_url: str) -> AsyncIterator[Slack]:
    """The real app on SQLite and (with TEST_DATABASE_URL) PostgreSQL."""
    fake = FakeSlack(
        users={
            RUNNER: {"tz": "Europe/Berlin", "is_admin": False},
            ADMIN: {"tz": "Europe/Berlin", "is_admin": True},
            MEMBER: {"tz": "Europe/London", "is_admin": False},
            CREATOR: {"tz": "America/New_York", "is_admin": False},
        },
        creators={CHANNEL: CREATOR},
    )
    await fake.start()
    db = Database(db_url)
    clock = Clock()
    coach = Coach(db, clock=clock)
    settings = Settings(
        database_url=db_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
    )
    adapter = SlackAdapter(settings, coach)
    transport = httpx.ASGITransport(app=build_app(db, [adapter]))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hipcoach.test") as http:
            yield Slack(http, fake, adapter, db, clock)
    finally:
        await adapter.stop()
        await db.dispose()
        await fake.stop()


async def onboard(slack: Slack, user: str = RUNNER) -> None:
    await slack.slash("start", user=user)
    await slack.press_all(*onboarding_taps(zone="Use Europe/Berlin"), user=user)


async def stored_user(slack: Slack, user: str = RUNNER) -> Any:
    async with slack.db.transaction(readonly=True) as repo:
        return await repo.get_user("slack", f"{TEAM}:{user}", lock=False)


# --- a runner's whole story ---------------------------------------------------------------


async def test_a_runner_goes_from_start_to_delete_in_slack(slack: Slack) -> None:
    fake = slack.fake
    response = await slack.slash("start")
    assert response.text == ""  # the ack; the answer comes through the Web API
    consent = fake.last("chat.postMessage", channel=f"D{RUNNER}")
    assert "not a doctor" in consent.text
    assert [b["action_id"] for b in consent.buttons] == ["hip_1", "hip_2"]

    mark = len(fake.calls)
    await slack.press("I agree")
    edited = fake.last("chat.update", channel=f"D{RUNNER}")
    assert edited["ts"] == consent["_ts"]
    assert "→ I agree" in edited.text and not edited.buttons
    await slack.press(ADULT)
    # The timezone Slack knows for the runner is offered first.
    assert "Use Europe/Berlin" in [b["text"]["text"] for b in fake.last("chat.postMessage").buttons]
    await slack.press_all(*onboarding_taps(zone="Use Europe/Berlin")[2:])
    text = slack.dm_text(mark)
    assert "Daily check-in set for 07:30 (Europe/Berlin)" in text
    assert "Today — phase 1" in text
    assert not fake.of("chat.postMessage", channel=CHANNEL)

    # today, as a DM word, with log buttons that work
    mark = len(fake.calls)
    await slack.dm("today")
    assert "Today — phase 1" in slack.dm_text(mark)
    await slack.press("1")
    await slack.press("Done ✅")
    assert "Logged" in slack.dm_text(mark)

    # the daily check-in by DM
    await slack.dm("checkin")
    await slack.press_all("3", "No run")  # the plan's first day: no exercises to ask about
    while any(b["text"]["text"] == "None of these" for b in fake.last("chat.postMessage").buttons):
        await slack.press("None of these")
    user = await stored_user(slack)
    async with slack.db.transaction(readonly=True) as repo:
        today = slack.clock.now.date()
        checkins = await repo.checkins_between(user.id, today, today + timedelta(days=1))
    assert [c.pain_now for c in checkins] == [3]

    # progress: the chart arrives as a PNG file in the DM
    mark = len(fake.calls)
    await slack.slash("progress")
    chart = fake.last("files.completeUploadExternal")
    assert chart["channel_id"] == f"D{RUNNER}"
    assert chart["_data"][0].startswith(b"\x89PNG\r\n\x1a\n")
    assert [
        c.method for c in slack.since(mark) if c.method.startswith("files") or c.method == "upload"
    ] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]

    # export: everything stored, as JSON, including the check-in
    await slack.dm("export")
    uploads = fake.of("files.completeUploadExternal")
    export, table = uploads[-2], uploads[-1]  # everything as JSON, and the check-ins as CSV
    assert export["channel_id"] == table["channel_id"] == f"D{RUNNER}"
    assert table["_data"][0].startswith(b"Date,Morning pain")
    data = json.loads(export["_data"][0])
    assert 3 in [c["pain_now"] for c in data["checkins"]]

    # delete
    await slack.dm("delete")
    await slack.press("Yes, delete everything")
    assert await stored_user(slack) is None
    # nothing personal ever went anywhere but the DM
    for call in fake.calls:
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            assert call["channel"] == f"D{RUNNER}"


async def test_slash_hip_alone_shows_help_and_unknown_words_get_an_answer(slack: Slack) -> None:
    await slack.slash("")
    assert "checkin — the daily check-in" in slack.fake.last("chat.postMessage").text
    mark = len(slack.fake.calls)
    await slack.slash("hello there")
    assert "set up" in slack.dm_text(mark).lower()


async def test_a_command_typed_in_a_dm_with_someone_else_is_answered_in_the_app_dm(
    slack: Slack,
) -> None:
    await slack.slash("help", channel="D0OTHERPERSON")
    assert slack.fake.last("chat.postMessage")["channel"] == f"D{RUNNER}"
    hint = slack.fake.last("respond")
    assert hint["response_type"] == "ephemeral" and "direct messages" in hint["text"]
    assert not slack.fake.of("chat.postMessage", channel="D0OTHERPERSON")


# --- App Home ------------------------------------------------------------------------------


async def test_app_home_welcomes_then_shows_the_plan_with_working_buttons(slack: Slack) -> None:
    fake = slack.fake
    view = await slack.home_opened()
    assert view["view"]["type"] == "home"
    assert "Welcome to hipcoach" in view.text
    # Start from Home: the setup begins in the DM.
    mark = len(fake.calls)
    await slack.press("Set up my plan")
    assert "not a doctor" in slack.dm_text(mark)

    await slack.press_all(*onboarding_taps(zone="Use Europe/Berlin"))
    view = await slack.home_opened()
    text = view.text
    assert "Phase 1 · Calm and protect (level 1)" in text
    assert "No check-ins in the last 7 days" in text
    assert "Next check-in: Fri 07:30 (Europe/Berlin)" in text
    labels = [b["text"]["text"] for b in view.buttons]
    assert {"Check in now", "Pause reminders", "Settings", "Done"} <= set(labels)
    assert len({b["action_id"] for b in view.buttons}) == len(view.buttons)

    # Logging from Home answers in the DM and refreshes Home.
    mark = len(fake.calls)
    await slack.press("Done")
    assert "Logged" in slack.dm_text(mark)
    assert "Today: done" in fake.last("views.publish").text

    # Check in from Home starts the check-in in the DM.
    mark = len(fake.calls)
    await slack.press("Check in now")
    assert "pain" in slack.dm_text(mark).lower()
    await slack.press_all("4", "No run")  # the plan's first day: no exercises to ask about
    view = await slack.home_opened()
    assert "Wed – · Thu 4" in view.text  # the 7-day pain strip; 26 Nov 2026 is a Thursday

    mark = len(fake.calls)
    await slack.press("Pause reminders")  # asks for how long, in the DM
    await slack.press("Until I resume")
    view = await slack.home_opened()
    assert "Resume reminders" in [b["text"]["text"] for b in view.buttons]
    assert "Check-ins are paused" in view.text


# --- channels ------------------------------------------------------------------------------


def answer_to(slack: Slack, user: str, channel: str = CHANNEL) -> Call:
    """The newest answer `user` saw in `channel`: only ever an ephemeral one."""
    return slack.fake.last("chat.postEphemeral", channel=channel, user=user)


async def test_an_admin_adds_lists_and_removes_a_warmup_in_a_channel(slack: Slack) -> None:
    await slack.slash("warmup add tue,thu 18:00 before 15", user=ADMIN, channel=CHANNEL)
    added = answer_to(slack, ADMIN)
    assert "15 minutes before the 18:00 run" in added.text
    assert "Europe/Berlin" in added.text  # the admin's Slack timezone became the channel's

    await slack.slash("warmup list", user=MEMBER, channel=CHANNEL)
    listed = answer_to(slack, MEMBER)
    assert "1. " in listed.text and "18:00" in listed.text

    await slack.slash("warmup remove 1", user=MEMBER, channel=CHANNEL)
    assert "only the chat's admins" in answer_to(slack, MEMBER).text

    # The channel's creator may manage it without being a workspace admin.
    await slack.slash("warmup remove 1", user=CREATOR, channel=CHANNEL)
    assert "Removed reminder 1" in answer_to(slack, CREATOR).text
    await slack.slash("warmup list", user=MEMBER, channel=CHANNEL)
    assert "No warm-up reminders" in answer_to(slack, MEMBER).text
    assert not slack.fake.of("chat.postMessage", channel=CHANNEL)


async def post_due_warmups(slack: Slack, hours: int = 24) -> None:
    """Let the scheduler run (tick + dispatch every 15 minutes) for `hours`."""
    scheduler = Scheduler(
        slack.db, slack.adapter.coach, {"slack": slack.adapter}, clock=slack.clock
    )
    for _ in range(hours * 4):
        slack.clock.advance(minutes=15)
        await scheduler.tick(slack.clock.now)
        await scheduler.dispatch(slack.clock.now)


async def test_in_a_channel_everything_but_the_warmup_card_is_ephemeral(slack: Slack) -> None:
    """A club's first hour with the app: the captain invites it, people poke at it, a
    warm-up gets set up, and the card goes out. Only the card is for everyone."""
    fake = slack.fake
    actions = [
        lambda: slack.event(
            {
                "type": "member_joined_channel",
                "user": BOT_USER,
                "channel": CHANNEL,
                "inviter": ADMIN,
            }
        ),
        lambda: slack.slash("start", user=MEMBER, channel=CHANNEL),
        lambda: slack.slash("help", user=MEMBER, channel=CHANNEL),
        lambda: slack.slash("", user=MEMBER, channel=CHANNEL),
        lambda: slack.slash("warmup add tue,thu 18:00", user=MEMBER, channel=CHANNEL),
        lambda: slack.slash("what is this", user=MEMBER, channel=CHANNEL),
        lambda: slack.slash("today", user=RUNNER, channel=CHANNEL),
        lambda: slack.mention("help", user=MEMBER),
        lambda: slack.mention("today", user=RUNNER),
        lambda: slack.mention("", user=MEMBER),
        lambda: slack.slash(
            "warmup add mon,tue,wed,thu,fri,sat,sun 18:00 before 15", user=ADMIN, channel=CHANNEL
        ),
        lambda: slack.slash("warmup list", user=RUNNER, channel=CHANNEL),
        lambda: slack.mention("warmup list", user=MEMBER),
    ]
    for act in actions:
        mark = len(fake.calls)
        await act()
        said = [c for c in slack.since(mark) if c.method in MESSAGE_METHODS]
        assert said, "every action in the channel gets an answer"
        for call in said:
            if call.method == "respond":
                assert call["response_type"] == "ephemeral"
            else:
                assert call.method == "chat.postEphemeral", call.text
    assert not fake.of("chat.postMessage", channel=CHANNEL)

    await post_due_warmups(slack)
    cards = fake.of("chat.postMessage", channel=CHANNEL)
    assert len(cards) == 1 and "warm-up" in cards[0].text.lower()


async def test_an_at_mention_is_answered_privately_in_its_thread(slack: Slack) -> None:
    await slack.mention("help", user=MEMBER)
    help_ = answer_to(slack, MEMBER)
    assert "warmup" in help_.text and "thread_ts" not in help_.args
    # In a thread, the answer stays in that thread.
    event = {
        "type": "app_mention",
        "user": MEMBER,
        "channel": CHANNEL,
        "text": f"<@{BOT_USER}>   warmup   list",
        "ts": "1700000100.000200",
        "thread_ts": "1700000000.000100",
    }
    await slack.event(event)
    listed = answer_to(slack, MEMBER)
    assert "No warm-up reminders" in listed.text
    assert listed["thread_ts"] == "1700000000.000100"
    # The same mention delivered again is answered once.
    await slack.event(event, event_id="EvMENTION")
    await slack.event(event, event_id="EvMENTION", headers={"X-Slack-Retry-Num": "1"})
    assert len(fake_mentions := slack.fake.of("chat.postEphemeral", user=MEMBER)) == 3, [
        c.text for c in fake_mentions
    ]


async def test_personal_commands_in_a_channel_stay_ephemeral(slack: Slack) -> None:
    fake = slack.fake
    await onboard(slack)
    mark = len(fake.calls)
    for word in ("checkin", "today", "progress", "export", "settings"):
        await slack.slash(word, channel=CHANNEL)
    calls = slack.since(mark)
    assert not [c for c in calls if c.method == "chat.postMessage"]
    assert not [c for c in calls if c.method.startswith("files")]
    ephemerals = [c for c in calls if c.method == "chat.postEphemeral"]
    assert len(ephemerals) == 5
    for call in ephemerals:
        assert call["channel"] == CHANNEL and call["user"] == RUNNER
        assert "personal one" in call.text
        link = [b for b in call.buttons if "url" in b]
        assert link and link[0]["url"].startswith(f"https://slack.com/app_redirect?app={APP_ID}")
    # Unknown words in a channel still get a (private) answer.
    await slack.slash("how are you", channel=CHANNEL)
    assert "/hip help" in fake.last("chat.postEphemeral").text


async def test_when_the_app_is_not_in_the_channel_the_response_url_answers(
    slack: Slack,
) -> None:
    slack.fake.members = set()
    await slack.slash("warmup list", user=MEMBER, channel=CHANNEL)
    answer = slack.fake.last("respond")
    assert answer["response_type"] == "ephemeral" and "No warm-up" in answer["text"]
    await slack.slash("checkin", channel=CHANNEL)
    assert slack.fake.last("respond")["response_type"] == "ephemeral"


async def test_the_bot_joining_a_channel_introduces_itself_to_whoever_invited_it(
    slack: Slack,
) -> None:
    await slack.event(
        {"type": "member_joined_channel", "user": BOT_USER, "channel": CHANNEL, "inviter": ADMIN}
    )
    assert "Hi club" in answer_to(slack, ADMIN).text
    mark = len(slack.fake.calls)
    await slack.event({"type": "member_joined_channel", "user": MEMBER, "channel": CHANNEL})
    assert not [c for c in slack.since(mark) if c.method == "chat.postMessage"]


async def test_bot_messages_and_edits_are_ignored(slack: Slack) -> None:
    mark = len(slack.fake.calls)
    base = {"type": "message", "channel_type": "im", "channel": f"D{RUNNER}", "ts": "1.1"}
    await slack.event({**base, "subtype": "message_changed", "message": {"text": "x"}})
    await slack.event({**base, "bot_id": "B9", "user": "U9OTHERBOT", "text": "start"})
    assert not [c for c in slack.since(mark) if c.method.startswith("chat.")]


# --- retries and signatures ---------------------------------------------------------------


async def test_a_retried_event_is_handled_once(slack: Slack) -> None:
    await slack.dm("help", event_id="EvSAME")
    await slack.dm(
        "help",
        event_id="EvSAME",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert len(slack.fake.of("chat.postMessage", channel=f"D{RUNNER}")) == 1
    # A retry whose first delivery never reached us is handled normally.
    await slack.dm("help", event_id="EvLOST", headers={"X-Slack-Retry-Num": "2"})
    assert len(slack.fake.of("chat.postMessage", channel=f"D{RUNNER}")) == 2


async def test_a_double_tap_on_one_button_is_handled_once(slack: Slack) -> None:
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
            {"action_id": button["action_id"], "value": button["value"], "action_ts": "17.5"}
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    for _ in range(2):
        await slack.settle(await slack.post(body, "application/x-www-form-urlencoded"))
    assert len(slack.fake.of("chat.update")) == 1


async def test_bad_and_stale_signatures_get_401(slack: Slack) -> None:
    body = urlencode({"command": "/hip", "text": "help", "user_id": RUNNER}).encode()
    form = "application/x-www-form-urlencoded"
    assert (await slack.post(body, form, secret="wrong-secret")).status_code == 401
    stale = int(time.time()) - 60 * 10
    assert (await slack.post(body, form, timestamp=stale)).status_code == 401
    unsigned = await slack.http.post("/slack/events", content=body, headers={"Content-Type": form})
    assert unsigned.status_code == 401
    assert await slack.adapter.drain(5)
    assert not [c for c in slack.fake.calls if c.method != "auth.test"]


# --- the outbox sender --------------------------------------------------------------------


async def test_send_posts_reminders_and_maps_slack_errors(slack: Slack) -> None:
    fake, adapter = slack.fake, slack.adapter
    await adapter.send(Outbound(chat_id=f"D{RUNNER}", text="Time for your check-in", private=True))
    assert fake.last("chat.postMessage")["channel"] == f"D{RUNNER}"
    await adapter.send(
        Outbound(
            chat_id=f"D{RUNNER}",
            text="chart",
            attachment=Attachment("c.png", b"\x89PNG\r\n\x1a\nxx", "image/png"),
            private=True,
        )
    )
    assert fake.last("files.completeUploadExternal")["_data"] == [b"\x89PNG\r\n\x1a\nxx"]

    message = Outbound(chat_id=CHANNEL, text="warm-up card")
    fake.fail_next["chat.postMessage"] = (
        429,
        {"ok": False, "error": "ratelimited"},
        {"Retry-After": "7"},
    )
    with pytest.raises(RetryAfter) as limited:
        await adapter.send(message)
    assert limited.value.seconds == 7
    for error in ("channel_not_found", "is_archived", "not_in_channel"):
        fake.fail_next["chat.postMessage"] = (200, {"ok": False, "error": error}, {})
        with pytest.raises(PermanentFailure):
            await adapter.send(message)
    fake.fail_next["chat.postMessage"] = (503, {"ok": False, "error": "service_unavailable"}, {})
    with pytest.raises(TransientFailure):
        await adapter.send(message)
    fake.fail_next["chat.postMessage"] = (502, "<html>bad gateway</html>", {})
    with pytest.raises(TransientFailure):
        await adapter.send(message)
    # Personal content is never sent to a channel, whatever asks for it.
    with pytest.raises(PermanentFailure):
        await adapter.send(Outbound(chat_id=CHANNEL, text="pain 7/10", private=True))
    # Nor is an answer meant only for the person who acted.
    with pytest.raises(PermanentFailure):
        await adapter.send(Outbound(chat_id=CHANNEL, text="only you", ephemeral=True))
    assert not fake.of("chat.postMessage", text="only you")


async def test_send_reports_an_unreachable_api_as_transient(sqlite_url: str) -> None:
    settings = Settings(
        database_url=sqlite_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url="http://127.0.0.1:9/api/",
    )
    db = Database(sqlite_url)
    try:
        adapter = SlackAdapter(settings, Coach(db))
        with pytest.raises(TransientFailure):
            await adapter.send(Outbound(chat_id=CHANNEL, text="card"))
    finally:
        await db.dispose()


# --- Socket Mode ---------------------------------------------------------------------------


async def test_socket_mode_connects_acks_and_answers(slack: Slack) -> None:
    fake = slack.fake
    settings = slack.adapter.settings.model_copy(update={"slack_app_token": APP_TOKEN})
    adapter = SlackAdapter(settings, slack.adapter.coach)
    assert adapter.health() == "Slack Socket Mode is not connected"
    await adapter.start_socket_mode()
    try:
        assert adapter.health() is None
        assert fake.of("apps.connections.open") and fake.sockets
        await fake.socket_send(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "team_id": TEAM,
                    "channel_id": f"D{RUNNER}",
                    "channel_name": "directmessage",
                    "user_id": RUNNER,
                    "command": "/hip",
                    "text": "help",
                    "api_app_id": APP_ID,
                    "trigger_id": "trigger.socket",
                    "response_url": fake.respond_url("socket"),
                },
            }
        )
        ack = await fake.wait_for(lambda c: c.method == "socket.ack")
        assert ack["envelope_id"] == "env-1"
        answer = await fake.wait_for(
            lambda c: c.method == "chat.postMessage" and c.get("channel") == f"D{RUNNER}"
        )
        assert "checkin — the daily check-in" in answer.text
    finally:
        await adapter.stop()
    assert adapter.health() == "Slack Socket Mode is not connected"


async def test_slack_hints_name_the_slash_command_and_a_pain_sentence_gets_the_checkin(
    slack: Slack,
) -> None:
    """Every hint says /hip …; /hip start in a channel offers the DM; a runner who writes
    about their hip in the DM gets the check-in, not a canned reply."""
    fake = slack.fake
    await slack.slash("warmup", user=MEMBER, channel=CHANNEL)
    assert "/hip warmup add tue,thu 18:00 before 15" in answer_to(slack, MEMBER).text
    await slack.mention("what is this", user=MEMBER)
    assert "/hip warmup or /hip help" in answer_to(slack, MEMBER).text
    await slack.slash("start", user=MEMBER, channel=CHANNEL)
    offer = answer_to(slack, MEMBER)
    assert "private chat" in offer.text and [b for b in offer.buttons if "url" in b]
    assert not fake.of("chat.postMessage", channel=CHANNEL)

    await onboard(slack)
    slack.clock.advance(days=1)
    mark = len(fake.calls)
    await slack.dm("my hip hurts more today")
    said = slack.dm_text(mark)
    assert "didn't follow" not in said
    assert "Thanks for telling me" in said and question_text("morning_pain_question") in said
    home = await slack.home_opened()
    assert "/hip export or /hip delete" in home.text
