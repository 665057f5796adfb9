"""Fault suite: PostgreSQL restarted under load.

The shared test server is never restarted: a TCP proxy (tests/fault_tools.TcpProxy) sits
between the app and PostgreSQL, and emulates a restart by dropping every open connection
and refusing new ones for a few seconds, while runners are in the middle of check-ins
(`Coach.handle` in a loop), the dispatcher is draining the outbox and Telegram posts a
webhook.

What the test shows:
- during the outage a turn raises (nothing is committed); a Telegram webhook answers 500,
  so Telegram delivers the update again later; /healthz answers 503;
- retrying the same event (same id, as a platform redelivery does) after the outage is
  handled once: if the turn had committed just before the connection dropped, the retry is
  a duplicate and the runner's next message gets the current question;
- nothing is corrupted: every check-in row agrees with the conversation (all answers in,
  a decision made), every outbox message is delivered (only those in flight may go twice);
- the service recovers by itself (pool_pre_ping on PostgreSQL, and new connections once
  the server accepts them again): no restart, no manual step.

In polling mode (not shown here) our getUpdates loop confirms an update only after it was
handled and waits a database outage out, retrying the same update until it goes in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.engine.events import Inbound, InboundKind, Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import Checkin
from bot.web import build_app
from scheduler import Scheduler, SchedulerConfig
from scheduler.payload import encode
from tests.chat_driver import CHECKIN_TAPS, Chat, Clock, onboard
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.fault_tools import TcpProxy, wait_until

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

RUNNERS = 4
MESSAGES = 600
OUTAGE_SECONDS = 3.0
SECRET = "fault-secret"
CONFIG = SchedulerConfig(tick_seconds=3600, dispatch_seconds=0.2, lease_seconds=2)


@dataclass
class SlowSender:
    """A platform that takes a moment per message, so the outbox drains for a while."""

    platform: str = "console"
    sent: Counter[str] = field(default_factory=Counter)

    async def send(self, message: Outbound) -> None:
        await asyncio.sleep(0.05)
        self.sent[message.chat_id] += 1


@dataclass
class Runner:
    """A runner doing daily check-ins; a failed turn is delivered again with the same id."""

    chat: Chat
    clock: Clock
    errors: int = 0
    duplicates: int = 0
    days: int = 0

    async def deliver(self, inbound: Inbound) -> None:
        while True:
            try:
                replies = await self.chat.deliver(inbound)
            except Exception:  # the database is away: the platform delivers it again
                self.errors += 1
                await asyncio.sleep(0.1)
                continue
            if replies:
                return
            # A duplicate: the turn committed just before the connection dropped. Ask again.
            self.duplicates += 1
            inbound = self.chat.inbound(InboundKind.TEXT, text="sorry?")

    async def press(self, label: str) -> None:
        button = next((b for b in self.chat.buttons if b.label == label), None)
        assert button is not None, (label, self.chat.labels)
        await self.deliver(
            self.chat.inbound(
                InboundKind.BUTTON, payload=button.payload, message_ref=self.chat.buttons_ref
            )
        )

    async def checkin(self) -> None:
        self.clock.advance(days=1)
        self.days += 1
        await self.deliver(self.chat.inbound(InboundKind.COMMAND, command="checkin", text=""))
        for label in CHECKIN_TAPS[:-1]:
            await self.press(label)
        while "None of these" in self.chat.labels:
            await self.press("None of these")


@pytest.fixture
async def proxied(pg_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    proxy = TcpProxy.for_url(pg_url)
    await proxy.start()
    try:
        yield proxy, proxy.url_through(pg_url)
    finally:
        await proxy.stop()


async def test_a_postgresql_restart_under_load_loses_and_corrupts_nothing(
    proxied: tuple[TcpProxy, str],
) -> None:
    proxy, url = proxied
    db = Database(url)
    fake = FakeTelegram()
    await fake.start()
    scheduler: Scheduler | None = None
    try:
        runners = []
        for n in range(RUNNERS):
            clock = Clock()
            chat = Chat(Coach(db, clock=clock), user_id=f"pg-runner-{n}")
            await onboard(chat)
            runners.append(Runner(chat, clock))
        now = datetime.now(UTC) - timedelta(seconds=1)
        async with db.transaction() as repo:
            for i in range(MESSAGES):
                await outbox.add_message(
                    repo,
                    idempotency_key=f"fault:{i}",
                    platform="console",
                    chat_id=str(i),
                    kind="checkin",
                    payload=encode(Outbound(chat_id=str(i), text=f"reminder {i}")),
                    not_before=now,
                )
        reminders = {str(i) for i in range(MESSAGES)}
        sender = SlowSender()
        scheduler = Scheduler(db, Coach(db), {"console": sender}, config=CONFIG)

        settings = Settings(
            database_url=url,
            telegram_bot_token=TOKEN,
            telegram_api_url=fake.api_url,
            telegram_webhook_url="https://coach.example/telegram",
            telegram_webhook_secret=SECRET,
        )
        webhook = TelegramAdapter(settings, Coach(db))
        app = build_app(db, [webhook])
        chat = {"id": 5301, "type": "private", "first_name": "Wen"}
        update = {
            "update_id": 77001,
            **fake.message_update(
                chat, {"id": 5301, "is_bot": False, "first_name": "Wen"}, "/help"
            ),
        }
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

        recovered = asyncio.Event()

        async def keep_checking_in(runner: Runner) -> None:
            after = 0
            while after < 2:  # until two check-ins done after the outage
                was_recovered = recovered.is_set()
                await runner.checkin()
                after += was_recovered

        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        ):
            await scheduler.start()
            work = [asyncio.create_task(keep_checking_in(r)) for r in runners]
            try:
                await wait_until(
                    lambda: all(r.days >= 2 for r in runners) and sum(sender.sent.values()) >= 50,
                    "check-ins and sends under way",
                )
                await proxy.cut()  # the "restart" begins
                outage = asyncio.get_running_loop().time()
                refused = await http.post("/telegram", json=update, headers=headers)
                assert refused.status_code == 500  # Telegram will deliver it again
                assert (await http.get("/healthz")).status_code == 503
                await asyncio.sleep(
                    max(0.0, OUTAGE_SECONDS - (asyncio.get_running_loop().time() - outage))
                )
                assert all(not t.done() for t in work)
                await proxy.restore()  # the server is back
                recovered.set()

                await asyncio.wait_for(asyncio.gather(*work), 120)
                again = await http.post("/telegram", json=update, headers=headers)
                assert again.status_code == 200
                assert (await http.get("/healthz")).status_code == 200
                await wait_until(
                    lambda: reminders <= set(sender.sent), "every outbox message delivered"
                )
                # A turn that committed just before its connection dropped looked failed to
                # the runner: its replies, held by a claim, wait in the outbox for the lease
                # to run out. The runners live on their own (later) clocks: a pass at their
                # time sends what is left.
                latest = max(r.clock.now for r in runners) + timedelta(minutes=1)
                await scheduler.dispatch(latest)
            finally:
                for task in work:
                    task.cancel()
                for task in work:
                    with contextlib.suppress(BaseException):
                        await task
            await scheduler.shutdown()
            scheduler = None
        await webhook.stop()

        assert sum(r.errors for r in runners) > 0  # the outage hit runners mid-conversation
        assert len(fake.calls_to("sendMessage", 5301)) == 1  # the webhook update, once
        sent = {chat: n for chat, n in sender.sent.items() if chat in reminders}
        assert max(sent.values()) <= 2
        assert sum(n - 1 for n in sent.values()) <= CONFIG.concurrency
        async with db.transaction(readonly=True) as repo:
            rows = await outbox.list_messages(repo)
            assert {r.status for r in rows} == {"sent"}
            assert {r.chat_id for r in rows if r.idempotency_key.startswith("fault:")} == reminders
            # No reply left behind (a delivered reply is deleted). The runners live on their
            # own, earlier clocks, so the tick may queue their own check-in reminders too.
            assert not [r for r in rows if r.kind == outbox.REPLY]
            for runner in runners:
                user = await repo.get_user("console", runner.chat.user_id, lock=False)
                assert user is not None
                rows = list(
                    await repo.session.scalars(
                        select(Checkin)
                        .where(Checkin.user_id == user.id)
                        .order_by(Checkin.local_date)
                    )
                )
                # One row per check-in day, each with every answer and a decision.
                assert len(rows) == runner.days
                for row in rows:
                    answers = (row.pain_now, row.ran, row.exercises, row.exercise_pain)
                    assert answers == (2, "no", "done", 2)
                    assert row.decision is not None
                assert (user.conversation or {}).get("flow") != "checkin"
    finally:
        if scheduler is not None:
            await scheduler.shutdown()
        await fake.stop()
        await db.dispose()
