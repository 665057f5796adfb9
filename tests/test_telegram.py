"""End-to-end tests of the Telegram adapter: the real PTB Application, polling a fake Bot API.

The fake server (tests/fake_telegram.py) runs on 127.0.0.1 and rejects what the real API
rejects, so a reply that would fail in production fails here too. The Coach is the real
one, on a migrated SQLite database (and PostgreSQL for one story when TEST_DATABASE_URL
is set). Nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import delivery
from bot.adapters.telegram import TelegramAdapter, convert
from bot.adapters.telegram.adapter import file_url_for, lane_key
from bot.config import Settings
from bot.engine.events import Attachment, Button, ChatKind, InboundKind, Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.web import build_app
from content.loader import default_content
from scheduler import Scheduler
from tests.chat_driver import ADULT, CHECKIN_TAPS, Clock, onboarding_taps
from tests.fake_telegram import BOT_USERNAME, TOKEN, ApiError, Call, FakeTelegram
from tests.test_scheduler_helpers import TEST_CONFIG

# PTB itself warns about the future type of RetryAfter.retry_after when it builds the error.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

WAIT_SECONDS = 10
SETUP_TAPS = onboarding_taps()


class TrackingAdapter(TelegramAdapter):
    """The real adapter, noting each update it finished so tests can wait for it."""

    def __init__(self, settings: Settings, coach: Coach) -> None:
        super().__init__(settings, coach)
        self.finished: list[int] = []
        self.keys: dict[int, str | None] = {}
        self._changed = asyncio.Condition()

    async def handle_update(self, update: Update) -> None:
        self.keys[update.update_id] = lane_key(update)
        try:
            await super().handle_update(update)
        finally:
            async with self._changed:
                self.finished.append(update.update_id)
                self._changed.notify_all()

    async def wait_for(self, update_id: int, times: int = 1) -> None:
        """Until the update was handled `times` times and its chat's replies went out."""

        async def done() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.finished.count(update_id) >= times)
            key = self.keys.get(update_id)
            if key is not None:
                await self._chains.quiet(key)

        await asyncio.wait_for(done(), WAIT_SECONDS)


def tg_settings(fake: FakeTelegram, db: Database, **kw: Any) -> Settings:
    return Settings(
        database_url=db.url, telegram_bot_token=TOKEN, telegram_api_url=fake.api_url, **kw
    )


@asynccontextmanager
async def polling_bot(
    fake: FakeTelegram, db: Database, clock: Clock
) -> AsyncIterator[TrackingAdapter]:
    adapter = TrackingAdapter(tg_settings(fake, db), Coach(db, clock=clock))
    await adapter.start_polling()
    try:
        yield adapter
    finally:
        await adapter.stop()


@dataclass
class Person:
    """Someone writing to the bot in one chat, through the fake server."""

    fake: FakeTelegram
    bot: TrackingAdapter
    user_id: int
    chat: dict[str, Any]
    name: str = "Sam"

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.user_id, "is_bot": False, "first_name": self.name}

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    async def deliver(self, update: dict[str, Any]) -> list[Call]:
        start = len(self.fake.calls)
        update_id = self.fake.push(update)
        if update_id in self.fake.withheld:
            return []  # Telegram never hands it to the bot (privacy mode)
        await self.bot.wait_for(update_id)
        return self.fake.calls[start:]

    async def send(self, text: str) -> list[Call]:
        return await self.deliver(self.fake.message_update(self.chat, self.user, text))

    async def tap(self, label: str) -> list[Call]:
        for sent in reversed(list(self.fake.messages.values())):
            if sent.chat_id != self.chat_id or not sent.markup:
                continue
            for row in sent.markup["inline_keyboard"]:
                for button in row:
                    if button["text"] == label and "callback_data" in button:
                        return await self.press(sent, button["callback_data"])
        raise AssertionError(f"no button {label!r} in chat {self.chat_id}")

    async def press(self, sent: Any, data: str) -> list[Call]:
        update = self.fake.callback_update(self.chat, self.user, sent, data)
        return await self.deliver(update)

    async def taps(self, *labels: str) -> list[Call]:
        calls: list[Call] = []
        for label in labels:
            calls += await self.tap(label)
        return calls


def texts(calls: list[Call], method: str = "sendMessage") -> str:
    return "\n".join(c.text for c in calls if c.method == method)


def labels(calls: list[Call]) -> list[str]:
    """The button labels of the last message sent with buttons."""
    with_buttons = [c for c in calls if c.buttons]
    return [b["text"] for b in with_buttons[-1].buttons] if with_buttons else []


def private_chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": "Sam"}


GROUP = {"id": -1001234, "type": "supergroup", "title": "Riverside Runners"}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(fake: FakeTelegram, db: Database, clock: Clock) -> AsyncIterator[TrackingAdapter]:
    async with polling_bot(fake, db, clock) as adapter:
        yield adapter


@pytest.fixture
def runner(fake: FakeTelegram, bot: TrackingAdapter) -> Person:
    return Person(fake, bot, 5001, private_chat(5001))


# --- a runner in a private chat ---------------------------------------------------------------


async def test_a_runner_goes_from_start_to_delete_on_both_databases(
    fake: FakeTelegram, database: Database, clock: Clock
) -> None:
    async with polling_bot(fake, database, clock) as bot:
        me = Person(fake, bot, 5001, private_chat(5001))
        calls = await me.send("/start")
        assert "not a doctor" in texts(calls)
        assert any(b["text"] == "I agree" for b in calls[-1].buttons)

        calls = await me.taps(*SETUP_TAPS)
        assert "Daily check-in set for 07:30 (Europe/Berlin)" in texts(calls)
        # Every tap was answered, and each question lost its keyboard and shows the answer.
        assert fake.answered == fake.callback_ids
        edits = [c for c in calls if c.method == "editMessageText"]
        assert len(edits) == len(SETUP_TAPS)
        assert edits[0].text.endswith("→ I agree")
        assert all("reply_markup" not in c.params for c in edits)

        calls = await me.send("/today")
        assert "Today — phase 1" in texts(calls)

        clock.advance(days=1)
        await me.send("/checkin")
        calls = await me.taps(*CHECKIN_TAPS[:-1])
        while "None of these" in labels(calls):  # the short (or weekly full) safety screen
            calls = await me.tap("None of these")
        assert "None of these" not in labels(calls)

        calls = await me.send("/progress")
        photos = [c for c in calls if c.method == "sendPhoto"]
        assert len(photos) == 1
        assert photos[0].files["photo"][1].startswith(b"\x89PNG")

        calls = await me.send("/export")
        documents = [c for c in calls if c.method == "sendDocument"]
        assert len(documents) == 2  # everything as JSON, and the check-ins as CSV
        assert documents[1].files["document"][0].endswith(".csv")
        filename, data = documents[0].files["document"]
        assert filename.endswith(".json")
        export = json.loads(data)
        assert len(export["checkins"]) == 1 and export["checkins"][0]["pain_now"] == 2

        await me.send("/delete")
        calls = await me.tap("Yes, delete everything")
        assert "everything about you has been deleted" in texts(calls)
        async with database.transaction(readonly=True) as repo:
            assert await repo.get_user("telegram", "5001", lock=False) is None
        assert fake.answered == fake.callback_ids


async def test_commands_are_registered_for_private_chats_and_groups(
    fake: FakeTelegram, bot: TrackingAdapter
) -> None:
    registered = fake.calls_to("setMyCommands")
    scopes = {c.params["scope"]["type"]: c.params["commands"] for c in registered}
    private = [c["command"] for c in scopes["all_private_chats"]]
    group = [c["command"] for c in scopes["all_group_chats"]]
    assert {"start", "checkin", "today", "progress", "export", "delete", "help"} <= set(private)
    assert set(group) == {"warmup", "help", "start", "summary"}
    assert fake.calls_to("deleteWebhook")


async def test_a_stale_button_says_expired_and_asks_the_current_question(
    fake: FakeTelegram, runner: Person
) -> None:
    await runner.send("/start")
    consent = fake.last_keyboard_message(runner.chat_id)
    assert consent is not None
    data = consent.markup["inline_keyboard"][0][0]["callback_data"]  # type: ignore[index]
    await runner.tap("I agree")
    calls = await runner.press(consent, data)  # the same old button again
    assert "expired" in texts(calls)
    assert ADULT in [b["text"] for b in calls[-1].buttons]
    assert fake.answered == fake.callback_ids


async def test_free_text_and_unknown_commands_get_a_reprompt(
    fake: FakeTelegram, runner: Person
) -> None:
    await runner.send("/start")
    calls = await runner.send("/frobnicate")
    assert calls and calls[-1].method == "sendMessage"
    assert "I agree" in [b["text"] for b in calls[-1].buttons]
    calls = await runner.send(f"/help@{BOT_USERNAME}")
    assert "hipcoach — a coach for runners" in texts(calls)


async def test_the_same_update_delivered_twice_is_handled_once(
    fake: FakeTelegram, runner: Person, bot: TrackingAdapter
) -> None:
    update = fake.message_update(runner.chat, runner.user, "/help")
    update_id = fake.next_update_id()
    start = len(fake.calls)
    fake.push({**update, "update_id": update_id})
    fake.push({**update, "update_id": update_id})
    # The polling loop skips an id it already holds; across a restart the dedup record on
    # update_id does the same (tests/test_faults_kill.py). A later update shows both copies
    # were read by then.
    later = fake.push(fake.message_update(runner.chat, runner.user, "/help"))
    await bot.wait_for(later)
    assert len([c for c in fake.calls[start:] if c.method == "sendMessage"]) == 2
    assert bot.finished.count(update_id) <= 2


async def test_killing_the_bot_mid_triage_resumes_at_the_same_question(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    async with polling_bot(fake, db, clock) as first:
        me = Person(fake, first, 5002, private_chat(5002))
        await me.send("/start")
        await me.taps("I agree", ADULT)
        question = fake.last_keyboard_message(me.chat_id)
        assert question is not None and "timezone" in question.text.lower()
    async with polling_bot(fake, db, clock) as second:
        me.bot = second
        calls = await me.send("what was the question?")
        assert "Europe/Berlin" in [b["text"] for b in calls[-1].buttons]
        calls = await me.tap("Europe/Berlin")  # a button sent before the restart still works
        assert "expired" not in texts(calls)
        assert "None of these" in [b["text"] for b in calls[-1].buttons]


async def test_a_runner_who_blocked_the_bot_is_marked_unreachable(
    fake: FakeTelegram, runner: Person, db: Database
) -> None:
    await runner.send("/start")
    await runner.tap("I agree")
    fake.blocked.add(runner.chat_id)
    await runner.send("/help")
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", "5001", lock=False)
    assert user is not None and user.unreachable

    fake.blocked.clear()
    await runner.send("/help")  # writing again makes them reachable
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", "5001", lock=False)
    assert user is not None and not user.unreachable

    await runner.deliver(fake.my_chat_member_update(runner.chat, runner.user, "member", "kicked"))
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", "5001", lock=False)
    assert user is not None and user.unreachable


async def test_a_rate_limited_reply_waits_in_the_outbox_for_its_retry_after(
    fake: FakeTelegram, runner: Person, bot: TrackingAdapter, db: Database, clock: Clock
) -> None:
    fake.fail_next["sendMessage"] = [ApiError("Too Many Requests: retry after 1", 429)]
    calls = await runner.send("/help")
    assert [c.method for c in calls] == ["sendMessage"]  # refused: nothing held in memory
    async with db.transaction(readonly=True) as repo:
        (waiting,) = await outbox.list_messages(repo, kind="reply")
    assert (waiting.status, waiting.last_error) == ("pending", "RetryAfter")
    assert waiting.not_before == clock.now + timedelta(seconds=1)

    sched = Scheduler(db, bot.coach, {"telegram": bot}, clock=clock, config=TEST_CONFIG)
    assert await sched.dispatch(clock.now) == 0  # not before the platform's retry_after
    assert await sched.dispatch(clock.now + timedelta(seconds=1)) == 1
    sends = fake.calls_to("sendMessage", runner.chat_id)
    assert len(sends) == 2 and "hipcoach — a coach for runners" in sends[-1].text
    async with db.transaction(readonly=True) as repo:
        assert await outbox.list_messages(repo, kind="reply") == []  # delivered, then deleted


# --- groups -----------------------------------------------------------------------------------


async def test_a_club_group_sets_warmups_and_never_sees_personal_data(
    fake: FakeTelegram, bot: TrackingAdapter
) -> None:
    captain = Person(fake, bot, 7001, GROUP, name="Cap")
    member = Person(fake, bot, 7002, GROUP, name="Mo")
    fake.members[(GROUP["id"], captain.user_id)] = "creator"
    fake.members[(GROUP["id"], member.user_id)] = "member"

    calls = await captain.deliver(fake.my_chat_member_update(GROUP, captain.user, "left", "member"))
    assert "Hi club!" in texts(calls)
    assert "warmup add" in texts(calls)

    calls = await captain.send("/warmup add tue,thu 18:00 before 15 tz Europe/Berlin")
    assert fake.calls_to("getChatMember")
    assert "Done: the warm-up card will go out 15 minutes before the 18:00 run" in texts(calls)

    calls = await member.send(f"/warmup@{BOT_USERNAME} add mon 07:00")
    assert "only the chat's admins" in texts(calls)
    calls = await member.send("/warmup list")
    assert "Tue, Thu — run at 18:00" in texts(calls)
    calls = await member.send("/warmup@SomeOtherBot list")
    assert calls == []  # meant for another bot
    calls = await member.send("nice run everyone")
    assert [c for c in calls if c.method == "sendMessage"] == []  # chatter is not for us

    calls = await member.send("/checkin")
    sends = [c for c in calls if c.method == "sendMessage"]
    assert len(sends) == 1
    assert sends[0].chat_id == str(GROUP["id"])
    urls = [b.get("url") for b in sends[0].buttons]
    assert urls == [f"https://t.me/{BOT_USERNAME}?start=go"]
    assert "pain" not in sends[0].text.lower()

    # The deep link opens the private chat with /start go: setup begins there.
    private = Person(fake, bot, member.user_id, private_chat(member.user_id))
    calls = await private.send("/start go")
    assert "I agree" in [b["text"] for b in calls[-1].buttons]

    # Nothing personal went to the group: no photos, documents or check-in questions.
    group_calls = [c for c in fake.calls if c.chat_id == str(GROUP["id"])]
    assert not [c for c in group_calls if c.method in ("sendPhoto", "sendDocument")]


async def test_a_group_timezone_question_takes_an_admin_tap_and_stale_taps_stay_quiet(
    fake: FakeTelegram, bot: TrackingAdapter
) -> None:
    club = {"id": -1005678, "type": "group", "title": "Dawn Patrol"}
    captain = Person(fake, bot, 7101, club, name="Cap")
    member = Person(fake, bot, 7102, club, name="Mo")
    fake.members[(club["id"], captain.user_id)] = "administrator"

    calls = await captain.send("/warmup add sat 08:00")
    assert "Which timezone does the club run in?" in texts(calls)
    question = fake.last_keyboard_message(captain.chat_id)
    assert question is not None and question.markup is not None
    data = question.markup["inline_keyboard"][0][0]["callback_data"]
    calls = await member.tap("Europe/Berlin")
    # Only the member who tapped sees the refusal (as the tap's pop-up), not the club.
    assert [c.method for c in calls] == ["getChatMember", "answerCallbackQuery"]
    assert "only the chat's admins" in calls[-1].params["text"]
    calls = await captain.tap("Europe/Berlin")
    assert "Done: the warm-up card will go out 15 minutes before the 08:00 run on Sat" in texts(
        calls
    )
    assert question.markup is None  # answered: the keyboard is gone
    # The old button again: only the person who tapped sees "expired", not the whole club.
    calls = await member.press(question, data)
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    assert calls[0].params["text"] == "That button has expired."
    assert fake.answered == fake.callback_ids


async def test_logs_carry_ids_not_what_people_wrote(
    fake: FakeTelegram, runner: Person, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="hipcoach")
    caplog.set_level("INFO")
    await runner.send("/start")
    await runner.taps("I agree", ADULT)
    await runner.send("my hip hurts at night 8/10")
    assert "telegram update=" in caplog.text
    for secret in ("hurts at night", "I agree", ADULT, TOKEN):
        assert secret not in caplog.text


async def test_a_private_message_is_never_sent_to_a_group(
    fake: FakeTelegram, bot: TrackingAdapter
) -> None:
    start = len(fake.calls)
    await bot.send(Outbound(chat_id=str(GROUP["id"]), text="pain 7/10", private=True))
    assert fake.calls[start:] == []


# --- webhook ----------------------------------------------------------------------------------


async def test_the_webhook_checks_the_secret_and_handles_each_update_once(
    fake: FakeTelegram, db: Database, clock: Clock
) -> None:
    settings = tg_settings(
        fake,
        db,
        telegram_webhook_url="https://coach.example/telegram",
        telegram_webhook_secret="s3cret-token",
    )
    adapter = TrackingAdapter(settings, Coach(db, clock=clock))
    app = build_app(db, [adapter])
    update = {
        "update_id": 9001,
        **fake.message_update(
            private_chat(5003), {"id": 5003, "is_bot": False, "first_name": "Wen"}, "/help"
        ),
    }
    async with app.router.lifespan_context(app):
        registered = fake.webhook
        assert registered is not None
        assert registered["url"] == "https://coach.example/telegram"
        assert registered["secret_token"] == "s3cret-token"
        assert {"message", "callback_query", "my_chat_member"} <= set(registered["allowed_updates"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/healthz")).status_code == 200
            missing = await client.post("/telegram", json=update)
            wrong = await client.post(
                "/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}
            )
            assert missing.status_code == 403 and wrong.status_code == 403
            assert fake.calls_to("sendMessage") == []
            headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
            first = await client.post("/telegram", json=update, headers=headers)
            again = await client.post("/telegram", json=update, headers=headers)
            assert first.status_code == 200 and again.status_code == 200
    sends = fake.calls_to("sendMessage", 5003)
    assert len(sends) == 1 and "hipcoach — a coach for runners" in sends[0].text


# --- the outbox sender ------------------------------------------------------------------------


@pytest.fixture
async def sender(fake: FakeTelegram, db: Database, clock: Clock) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(tg_settings(fake, db), Coach(db, clock=clock))
    await adapter.start_sender()
    yield adapter
    await adapter.stop()


async def test_long_texts_are_split_and_buttons_go_on_the_last_part(
    fake: FakeTelegram, sender: TelegramAdapter
) -> None:
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(100))  # ~10,000 characters
    await sender.send(Outbound(chat_id="5001", text=text, buttons=((Button("Go", "x:c"),),)))
    sends = fake.calls_to("sendMessage")
    assert len(sends) == 3
    assert all(len(c.text) <= 4096 for c in sends)
    assert "\n".join(c.text for c in sends) == text
    assert [c.buttons for c in sends[:-1]] == [[], []]
    assert sends[-1].buttons == [{"text": "Go", "callback_data": "x:c"}]


async def test_a_long_caption_goes_with_the_photo_and_the_rest_follows(
    fake: FakeTelegram, sender: TelegramAdapter
) -> None:
    text = "\n".join("y" * 99 for _ in range(20))
    image = Attachment("chart.png", b"\x89PNG\r\n\x1a\nrest", "image/png")
    await sender.send(Outbound(chat_id="5001", text=text, attachment=image))
    photo, rest = fake.calls_to("sendPhoto"), fake.calls_to("sendMessage")
    assert len(photo) == 1 and len(photo[0].text) <= 1024
    assert photo[0].text + "\n" + rest[0].text == text


async def test_the_sender_maps_telegram_errors_to_delivery_errors(
    fake: FakeTelegram, sender: TelegramAdapter
) -> None:
    message = Outbound(chat_id="5001", text="Time for your check-in")
    cases: list[tuple[ApiError, type[Exception]]] = [
        (ApiError("Forbidden: bot was blocked by the user", 403), delivery.PermanentFailure),
        (ApiError("Bad Request: chat not found"), delivery.PermanentFailure),
        (ApiError("Too Many Requests: retry after 1", 429), delivery.RetryAfter),
        (ApiError("Bad Gateway", 502), delivery.TransientFailure),
    ]
    for error, expected in cases:
        fake.fail_next["sendMessage"] = [error]
        with pytest.raises(expected) as raised:
            await sender.send(message)
        if isinstance(raised.value, delivery.RetryAfter):
            assert raised.value.seconds == 1
    await sender.send(message)
    assert fake.calls_to("sendMessage")[-1].text == "Time for your check-in"


async def test_an_edit_of_a_vanished_message_is_ignored(
    fake: FakeTelegram, sender: TelegramAdapter
) -> None:
    await sender.send(Outbound(chat_id="5001", text="Q\n→ A", edit_ref="999"))
    assert [c.method for c in fake.calls[-1:]] == ["editMessageText"]


# --- pure conversion --------------------------------------------------------------------------


def test_split_text_keeps_lines_whole_and_stays_under_the_limit() -> None:
    text = "\n".join(["a" * 3000, "b" * 3000, "c" * 10, "d" * 9000])
    chunks = convert.split_text(text)
    assert all(convert.tg_len(c) <= 4096 for c in chunks)
    assert chunks[0] == "a" * 3000
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")
    assert convert.split_text("short") == ["short"]
    emoji = "🏃" * 3000  # two UTF-16 units each
    assert all(convert.tg_len(c) <= 4096 for c in convert.split_text(emoji))


def test_callback_data_over_64_bytes_is_refused_before_sending() -> None:
    with pytest.raises(ValueError):
        convert.keyboard(((Button("x", "é" * 33),),))
    markup = convert.keyboard(((Button("ok", "1:yes"),),), ("Open", "https://t.me/b?start=go"))
    assert markup is not None and len(markup.inline_keyboard) == 2


def test_a_keyboard_sent_without_telegram_objects_is_the_one_ptb_would_send() -> None:
    rows = ((Button("0", "1:0"), Button("1", "1:1")), (), (Button("Skip", "1:skip"),))
    link = ("Open", "https://t.me/b?start=go")
    by_ptb = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("0", callback_data="1:0"),
                InlineKeyboardButton("1", callback_data="1:1"),
            ],
            [InlineKeyboardButton("Skip", callback_data="1:skip")],
            [InlineKeyboardButton("Open", url="https://t.me/b?start=go")],
        ]
    )
    assert convert.keyboard_data(rows, link) == by_ptb.to_dict()
    assert convert.keyboard(rows, link) == by_ptb
    assert convert.keyboard_data((), None) is None and convert.keyboard((), None) is None
    with pytest.raises(ValueError):
        convert.keyboard_data(((Button("x", "é" * 33),),))


def test_the_file_url_follows_the_api_url() -> None:
    assert file_url_for("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"
    assert file_url_for("https://tg.example/bot/") == "https://tg.example/file/bot"


def _update(fake: FakeTelegram, chat: dict[str, Any], text: str) -> Update:
    data = {
        "update_id": 1,
        **fake.message_update(chat, {"id": 42, "is_bot": False, "first_name": "Al"}, text),
    }
    return Update.de_json(data, None)


def test_updates_become_neutral_inbounds() -> None:
    fake = FakeTelegram()
    start = convert.to_inbound(_update(fake, private_chat(42), "/start go"), BOT_USERNAME)
    assert start is not None
    assert (start.kind, start.command, start.text) == (InboundKind.COMMAND, "start", "go")
    assert (start.user_id, start.chat_id, start.event_id) == ("42", "42", "1")

    group = convert.to_inbound(_update(fake, GROUP, f"/Warmup@{BOT_USERNAME} list"), BOT_USERNAME)
    assert group is not None
    assert (group.kind, group.command, group.text) == (InboundKind.COMMAND, "warmup", "list")
    assert group.chat_kind == ChatKind.GROUP
    assert group.raw == {"chat_title": "Riverside Runners"}

    unknown = convert.to_inbound(_update(fake, private_chat(42), "/nope"), BOT_USERNAME)
    assert unknown is not None and unknown.kind == InboundKind.TEXT
    assert convert.to_inbound(_update(fake, GROUP, "/help@other_bot"), BOT_USERNAME) is None


# --- a club group with privacy mode on ----------------------------------------------------------


async def test_in_a_privacy_mode_group_the_admin_follows_the_bots_own_hint_and_gets_the_warmup(
    fake: FakeTelegram, bot: TrackingAdapter
) -> None:
    """Privacy mode on, as the README recommends: Telegram hands the bot only commands,
    mentions and replies. The captain adds the bot, types exactly what its introduction
    says, answers the timezone question the way it says, and the warm-up is set."""
    fake.privacy_mode = True
    club = {"id": -1004321, "type": "supergroup", "title": "Canal Striders"}
    captain = Person(fake, bot, 7301, club, name="Cap")
    member = Person(fake, bot, 7302, club, name="Mo")
    fake.members[(club["id"], captain.user_id)] = "creator"

    calls = await captain.deliver(fake.my_chat_member_update(club, captain.user, "left", "member"))
    found = re.search(r"set it up with: (.+)", texts(calls))
    assert found is not None, texts(calls)
    hint = found[1].strip()
    assert hint == "/warmup add tue,thu 18:00 before 15"

    calls = await captain.send(hint)
    question = texts(calls)
    assert "Which timezone does the club run in?" in question
    zone_hint = re.search(r"send (/warmup tz \S+)", question)
    assert zone_hint is not None, question
    calls = await captain.send(zone_hint[1])
    assert (
        "Done: the warm-up card will go out 15 minutes before the 18:00 run on Tue, Thu "
        "(Europe/Berlin)" in texts(calls)
    )

    # Every hint the bot gives in the group works in privacy mode: /help's lines too.
    calls = await member.send("/help")
    lines = [
        line
        for line in texts(calls).split("\n")
        if line.split(" — ")[0].lstrip("/").split(" ")[0] == "warmup"
    ]
    assert len(lines) == 5 and all(line.startswith("/warmup") for line in lines), lines
    calls = await member.send("/warmup card")
    assert "Dynamic drills" in texts(calls)
    # What privacy mode withholds never reaches the bot, so a hint without "/" would fail.
    assert await member.send("warmup list") == []
    assert fake.withheld

    # /start in the group offers the private chat instead of the club introduction again.
    calls = await member.send("/start")
    sends = [c for c in calls if c.method == "sendMessage"]
    assert len(sends) == 1 and "Hi club!" not in sends[0].text
    assert [b.get("url") for b in sends[0].buttons] == [f"https://t.me/{BOT_USERNAME}?start=go"]


async def test_a_runner_writes_about_the_hip_redoes_setup_and_keeps_what_matters(
    fake: FakeTelegram, runner: Person, clock: Clock, db: Database
) -> None:
    """Private chat: the privacy statement survives the consent tap; a sentence about
    pain gets the check-in and a red-flag word the safety questions; redoing setup and
    tapping "under 18" asks first, and even then the history stays."""
    await runner.send("/start")
    calls = await runner.tap("I agree")
    (consent,) = [c for c in calls if c.method == "editMessageText"]
    assert "store your answers" in consent.text and consent.text.endswith("→ I agree")
    calls = await runner.taps(*SETUP_TAPS[1:4])  # adult, zone, the first screen group
    kept = [c for c in calls if c.method == "editMessageText"][-1]
    assert "I'll use 112 as the emergency number" in kept.text
    await runner.taps(*SETUP_TAPS[4:])

    clock.advance(days=1)
    calls = await runner.send("my hip hurts more today")
    assert "Thanks for telling me" in texts(calls)
    assert "10" in labels(calls)  # the morning pain question, 0-10
    calls = await runner.send("it also woke me at night")
    night = default_content().screen_item("R11").question
    assert night in texts(calls) and "isn't a diagnosis" in texts(calls)
    await runner.tap("No")
    while "None of these" in labels(fake.calls[-1:]) or "None of these" in labels(calls):
        calls = await runner.tap("None of these")
    assert "nothing in your answers needs a doctor" in texts(calls)
    calls = await runner.taps("2", "No run", "2")
    while "None of these" in labels(calls) or "No, same or easier" in labels(calls):
        calls = await runner.tap(
            "No, same or easier" if "No, same or easier" in labels(calls) else "None of these"
        )
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", "5001", lock=False)
        assert user is not None
        before = len(await repo.latest_checkins(user.id, 100))
    assert before == 1

    await runner.send("/start")
    calls = await runner.taps("Redo the setup", "I agree", "Me — I'm under 18")
    assert "that would stop your plan" in texts(calls)
    await runner.taps("Yes, I'm under 18", "Walking normally", "No")
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", "5001", lock=False)
        assert user is not None  # nothing deleted without the delete command
        assert len(await repo.latest_checkins(user.id, 100)) == before
