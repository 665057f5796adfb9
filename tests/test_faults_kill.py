"""Fault suite: `kill -9` of `hipcoach run` (Telegram polling against the fake Bot API, a
SQLite file) in the middle of a check-in and in the middle of dispatching 1,000 reminders.

What survives a SIGKILL is what was committed: each check-in answer commits (with its
update's dedup record) before its reply is sent, and each reminder is marked 'sending'
(with a lease) before the platform is called and 'sent' right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.engine.events import Outbound
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import Checkin, OutboxMessage, ProcessedEvent
from scheduler.core import SchedulerConfig
from scheduler.payload import encode
from tests.chat_driver import SCREEN_NONE, Chat, question_text
from tests.fault_tools import (
    WAIT_SECONDS,
    FaultyTelegram,
    Hipcoach,
    hipcoach_env,
    sqlite_write_lock,
    wait_until,
)
from tests.test_scheduler_helpers import setup_runner

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

# The plan's first day: morning pain, a run, pain during it, how the hip took it.
PAIN_Q = question_text("morning_pain_question")
RAN_Q = question_text("ran_question")
RUN_PAIN_Q = question_text("run_pain_question")
AFTER_RUN_Q = question_text("after_run_question")
DONE = "Today's exercises"  # the button under the decision


@pytest.fixture
async def fake() -> Any:
    server = FaultyTelegram()
    await server.start()
    yield server
    await server.stop()


async def onboard(url: str, runner: int) -> None:
    """A runner set up in-process (real clock), reminder 12 hours away (never due here)."""
    db = Database(url)
    try:
        chat = Chat(Coach(db), platform="telegram", user_id=str(runner), chat_id=str(runner))
        reminder = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
        await setup_runner(chat, zone="UTC", reminder=reminder)
    finally:
        await db.dispose()


async def replies_settled(url: str) -> bool:
    """No reply is still held for sending: what was sent is recorded as sent."""
    db = Database(url)
    try:
        async with db.transaction(readonly=True) as repo:
            held = await repo.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == outbox.SENDING)
            )
        return held == 0
    finally:
        await db.dispose()


async def stored(url: str, runner: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The runner's conversation state and today's check-in row (as plain values)."""
    db = Database(url)
    try:
        async with db.transaction(readonly=True) as repo:
            user = await repo.get_user("telegram", str(runner), lock=False)
            assert user is not None
            rows = list(
                await repo.session.scalars(select(Checkin).where(Checkin.user_id == user.id))
            )
        assert len(rows) <= 1
        row = None
        if rows:
            c = rows[0]
            row = {
                "pain_now": c.pain_now,
                "ran": c.ran,
                "run_minutes": c.run_minutes,
                "pain_during": c.pain_during,
                "swelling": c.swelling,
                "decision": c.decision,
            }
        return dict(user.conversation or {}), row
    finally:
        await db.dispose()


def run_env(url: str, fake: FaultyTelegram) -> dict[str, str]:
    return hipcoach_env(url, fake, HIPCOACH_TICK_SECONDS="3600", HIPCOACH_DISPATCH_SECONDS="1")


async def finish_checkin(fake: FaultyTelegram, runner: int, process: Hipcoach) -> None:
    """Tap through the safety mini-screen until the decision and today's session."""

    def screen_waiting() -> bool:
        # An answered question is edited before the next arrives: wait for the next one.
        last = fake.delivered(runner)[-1:]
        return any(SCREEN_NONE in str(m.markup) for m in last)

    def decided() -> bool:
        return any(
            button.get("text") == DONE
            for sent in fake.delivered(runner)
            for row in (sent.markup or {}).get("inline_keyboard", [])
            for button in row
        )

    while not decided():
        await wait_until(
            lambda: decided() or screen_waiting(),
            "the next safety question or the decision",
            process=process,
        )
        if decided():
            break
        n = len(fake.delivered(runner))
        update = fake.tap(runner, SCREEN_NONE)
        await wait_until(
            lambda n=n: len(fake.delivered(runner)) > n, f"reply to {update}", process=process
        )


async def test_kill_9_right_after_an_answer_resumes_at_the_next_question(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    runner = 6101
    await onboard(sqlite_url, runner)
    log = tmp_path / "hipcoach.log"

    first = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        fake.say(runner, "/checkin")
        await wait_until(
            lambda: fake.delivered_texts(runner, PAIN_Q), "pain question", process=first
        )
        fake.tap(runner, "2")
        await wait_until(lambda: fake.delivered_texts(runner, RAN_Q), "ran question", process=first)
        fake.tap(runner, "20 min")
        await wait_until(
            lambda: fake.delivered_texts(runner, RUN_PAIN_Q), "run pain question", process=first
        )
        # Killed once the question is recorded as sent: a kill between the send and that
        # record makes the question go again after the restart (at least once; the test
        # below and test_kill_9_between_commit_and_send_loses_no_reply cover that window).
        for _ in range(200):
            if await replies_settled(sqlite_url):
                break
            await asyncio.sleep(0.05)
    finally:
        await first.kill9()

    conversation, row = await stored(sqlite_url, runner)
    assert row is not None
    assert (row["pain_now"], row["ran"], row["pain_during"]) == (2, "yes", None)
    assert (conversation["flow"], conversation["qid"]) == ("checkin", "run_pain")

    second = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        # The question sent before the kill is still the current one: its button works.
        fake.tap(runner, "2")
        await wait_until(
            lambda: fake.delivered_texts(runner, AFTER_RUN_Q), "after-run question", process=second
        )
        fake.tap(runner, "All fine")
        await wait_until(
            lambda: any("None of these" in str(m.markup) for m in fake.delivered(runner)[-1:]),
            "safety screen",
            process=second,
        )
        await finish_checkin(fake, runner, second)
    finally:
        await second.stop()

    _, row = await stored(sqlite_url, runner)
    assert row is not None
    assert (row["pain_now"], row["ran"], row["pain_during"], row["swelling"]) == (
        2,
        "yes",
        2,
        False,
    )
    assert row["decision"] is not None
    for question in (PAIN_Q, RAN_Q, RUN_PAIN_Q, AFTER_RUN_Q):
        assert len(fake.delivered_texts(runner, question)) == 1, question  # asked once each
    assert fake.answered == fake.callback_ids  # every tap got its spinner stopped


async def test_kill_9_with_an_update_in_flight(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    """Two kills while an update is being handled, then a clean finish.

    1. Before the turn commits (the test holds SQLite's write lock, so the turn waits), and
       the confirming getUpdates never reached Telegram: after the restart getUpdates hands
       the same update out again, and it is handled once — one answer, one next question.
    2. After the turn committed, while the reply is being sent (the fake holds sendMessage):
       the answer is stored, and so is its reply, in the outbox. The update may have been
       confirmed by then (its turn is committed) or Telegram hands it out again after the
       restart, where the dedup record makes it a no-op; either way the runner's next message
       gets the current question, whose button works.
    """
    runner = 6102
    await onboard(sqlite_url, runner)
    log = tmp_path / "hipcoach.log"

    first = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        fake.say(runner, "/checkin")
        await wait_until(
            lambda: fake.delivered_texts(runner, PAIN_Q), "pain question", process=first
        )
        fake.tap(runner, "2")
        await wait_until(lambda: fake.delivered_texts(runner, RAN_Q), "ran question", process=first)
        with sqlite_write_lock(sqlite_url):
            tap = fake.tap(runner, "20 min")
            fake.freeze_after = tap
            await wait_until(
                lambda: f"telegram update={tap} " in first.log(20000),
                "the tap fetched and being handled",
                process=first,
            )
            await first.kill9()
    finally:
        await first.kill9()
    fake.unfreeze()

    conversation, row = await stored(sqlite_url, runner)
    assert row is not None and (row["pain_now"], row["ran"]) == (2, None)  # nothing half-done
    assert (conversation["flow"], conversation["qid"]) == ("checkin", "ran")

    # While an update is in flight the polling loop asks again now and then (for other
    # chats' updates), and Telegram hands the unconfirmed one out again each time: what
    # matters is that the next process gets it too.
    served_before = len(fake.served)
    assert tap in fake.served
    second = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        await wait_until(
            lambda: fake.delivered_texts(runner, RUN_PAIN_Q), "the redelivered tap", process=second
        )
        assert tap in fake.served[served_before:]  # fetched by both processes
        # In flight after the commit: the reply is held, then the process dies.
        fake.hold("sendMessage")
        tap2 = fake.tap(runner, "2")
        await wait_until(lambda: fake.held["sendMessage"] > 0, "reply held", process=second)
    finally:
        await second.kill9()
        fake.release("sendMessage")

    conversation, row = await stored(sqlite_url, runner)
    assert row is not None
    assert (row["pain_now"], row["ran"], row["pain_during"]) == (2, "yes", 2)
    assert (conversation["flow"], conversation["qid"]) == ("checkin", "after_run")

    assert tap2 in fake.served
    third = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        fake.say(runner, "where were we?")
        await wait_until(
            lambda: fake.delivered_texts(runner, AFTER_RUN_Q), "the current question", process=third
        )
        fake.tap(runner, "All fine")
        await wait_until(
            lambda: any("None of these" in str(m.markup) for m in fake.delivered(runner)[-1:]),
            "safety screen",
            process=third,
        )
        await finish_checkin(fake, runner, third)
    finally:
        await third.stop()

    _, row = await stored(sqlite_url, runner)
    assert row is not None
    assert (row["pain_now"], row["ran"], row["pain_during"], row["swelling"]) == (
        2,
        "yes",
        2,
        False,
    )
    assert row["decision"] is not None
    for question in (PAIN_Q, RAN_Q, RUN_PAIN_Q):
        assert len(fake.delivered_texts(runner, question)) == 1, question
    db = Database(sqlite_url)
    try:
        async with db.transaction(readonly=True) as repo:
            events = await repo.session.scalar(
                select(func.count())
                .select_from(ProcessedEvent)
                .where(ProcessedEvent.event_id.in_([str(tap), str(tap2)]))
            )
        assert events == 2
    finally:
        await db.dispose()


# --- 1,000 reminders --------------------------------------------------------------------------

REMINDERS = 1000
FIRST_CHAT = 200_000
LEASE_SECONDS = 3


async def queue_reminders(url: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as repo:
            now = datetime.now(UTC) - timedelta(seconds=1)
            for i in range(REMINDERS):
                chat = str(FIRST_CHAT + i)
                await outbox.add_message(
                    repo,
                    idempotency_key=f"fault:{i}",
                    platform="telegram",
                    chat_id=chat,
                    kind="checkin",
                    payload=encode(Outbound(chat_id=chat, text=f"Reminder {i}")),
                    not_before=now,
                )
    finally:
        await db.dispose()


async def outbox_status(url: str) -> dict[str, str]:
    db = Database(url)
    try:
        async with db.transaction(readonly=True) as repo:
            rows = (
                await repo.session.execute(select(OutboxMessage.chat_id, OutboxMessage.status))
            ).all()
        return {chat: status for chat, status in rows}
    finally:
        await db.dispose()


async def test_kill_9_while_dispatching_1000_reminders_loses_none(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    """Every reminder arrives; only those in flight at the kill (sent, not yet marked) may
    arrive twice, once their 'sending' lease has run out."""
    await queue_reminders(sqlite_url)
    env = hipcoach_env(
        sqlite_url,
        fake,
        HIPCOACH_TICK_SECONDS="3600",
        HIPCOACH_DISPATCH_SECONDS="0.5",
        HIPCOACH_SENDING_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    log = tmp_path / "hipcoach.log"

    def delivered() -> Counter[int]:
        return Counter(chat for (chat, _) in fake.messages if chat >= FIRST_CHAT)

    first = await Hipcoach("run", env, log).start()
    try:
        await wait_until(lambda: len(delivered()) >= 300, "300 reminders sent", process=first)
        # Catch sends in flight: Telegram has the requests, the answers never come back.
        fake.hold("sendMessage")
        await wait_until(lambda: fake.held["sendMessage"] > 0, "a send in flight", process=first)
    finally:
        await first.kill9()
    before = delivered()
    fake.release("sendMessage")  # Telegram delivers what it received; nobody hears back
    await wait_until(
        lambda: sum(delivered().values()) == sum(before.values()) + fake.held["sendMessage"],
        f"the held sends delivered ({fake.held}, {sum(before.values())})",
    )
    in_flight = set(delivered()) - set(before)

    status = await outbox_status(sqlite_url)
    assert 300 <= len(before) < REMINDERS
    assert 1 <= len(in_flight) <= SchedulerConfig().concurrency  # sends in flight per dispatcher
    # Delivered and not marked 'sent' (still 'sending', under a lease): the held sends, and
    # any whose answer came back just before the kill, before its mark was committed; never
    # more than the dispatcher has in flight.
    unmarked = {chat for chat in delivered() if status[str(chat)] != "sent"}
    assert in_flight <= unmarked
    assert len(unmarked) <= SchedulerConfig().concurrency

    second = await Hipcoach("run", env, log).start()
    try:
        # At Telegram's ~30 messages/s the rest takes ~25 s on its own; a loaded machine more.
        await wait_until(
            lambda: len(delivered()) == REMINDERS,
            "every reminder delivered",
            process=second,
            timeout=3 * WAIT_SECONDS,
        )
        # The last marks commit just after the last sends.
        for _ in range(300):
            if set((await outbox_status(sqlite_url)).values()) == {"sent"}:
                break
            assert second.returncode is None, second.log()
            await asyncio.sleep(0.1)
        assert set((await outbox_status(sqlite_url)).values()) == {"sent"}
    finally:
        await second.stop()

    after = delivered()
    assert set(after) == {FIRST_CHAT + i for i in range(REMINDERS)}
    twice = {chat for chat, n in after.items() if n > 1}
    assert max(after.values()) <= 2
    assert twice == unmarked, (twice, unmarked)


# --- replies: kill -9 between the commit and the send -----------------------------------------


async def test_kill_9_between_commit_and_send_loses_no_reply(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path, fault_report: Any
) -> None:
    """Each tap's turn commits (answer and replies), then the process is killed before it
    sends anything (it waits on answerCallbackQuery, which comes between the two). After
    the restart the tap is handed out again and is a duplicate; the replies, stored with
    the answer, are sent by the dispatcher once their short lease has run out."""
    runner = 6103
    await onboard(sqlite_url, runner)
    log = tmp_path / "hipcoach.log"
    env = hipcoach_env(
        sqlite_url,
        fake,
        HIPCOACH_TICK_SECONDS="3600",
        HIPCOACH_DISPATCH_SECONDS="0.5",
        HIPCOACH_SENDING_LEASE_SECONDS="3",
    )
    process = await Hipcoach("run", env, log).start()
    trials = (("2", RAN_Q), ("20 min", RUN_PAIN_Q), ("2", AFTER_RUN_Q))
    lost = 0
    try:
        fake.say(runner, "/checkin")
        await wait_until(
            lambda: fake.delivered_texts(runner, PAIN_Q), "pain question", process=process
        )
        for label, question in trials:
            fake.hold("answerCallbackQuery")
            held = fake.held["answerCallbackQuery"]
            fake.tap(runner, label)
            await wait_until(
                lambda held=held: fake.held["answerCallbackQuery"] > held,
                "the turn committed",
                process=process,
            )
            await process.kill9()
            fake.release("answerCallbackQuery")
            assert fake.delivered_texts(runner, question) == []  # nothing was sent
            process = await Hipcoach("run", env, log).start()
            try:
                await wait_until(
                    lambda question=question: fake.delivered_texts(runner, question),
                    f"{question!r} after the restart",
                    process=process,
                )
            except AssertionError:
                lost += 1
                raise
    finally:
        await process.stop()
    for label, question in trials:
        assert len(fake.delivered_texts(runner, question)) == 1, question  # once each
        assert any(t.endswith(f"→ {label}") for t in fake.delivered_texts(runner))  # edits too
    _, row = await stored(sqlite_url, runner)
    assert row is not None
    facts = (row["pain_now"], row["ran"], row["run_minutes"], row["pain_during"])
    assert facts == (2, "yes", 20, 2)
    fault_report(f"{lost} of {len(trials)} replies lost over kill -9 between commit and send")


async def test_replies_of_a_web_process_killed_before_sending_are_sent_by_the_clock(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path, fault_report: Any
) -> None:
    """`hipcoach web` runs no dispatcher: replies it committed but never sent are sent by
    `hipcoach clock` (both on the same database), once their lease runs out."""
    runner = 6104
    await onboard(sqlite_url, runner)
    port = free_port()
    common = {"HIPCOACH_TICK_SECONDS": "3600", "HIPCOACH_SENDING_LEASE_SECONDS": "3"}
    web_env = hipcoach_env(
        sqlite_url,
        fake,
        TELEGRAM_WEBHOOK_URL="https://coach.example/telegram",
        TELEGRAM_WEBHOOK_SECRET="web-secret",
        PORT=str(port),
        **common,
    )
    clock_env = hipcoach_env(sqlite_url, fake, HIPCOACH_DISPATCH_SECONDS="0.5", **common)
    log = tmp_path / "hipcoach.log"
    clock_process = await Hipcoach("clock", clock_env, log).start()
    web = await Hipcoach("web", web_env, log).start()
    url = f"http://127.0.0.1:{port}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": "web-secret"}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await wait_for_http(http, web)
            command = fake.message_update(private(runner), person(runner), "/checkin")
            answer = await http.post(
                "/telegram", json={"update_id": 88001, **command}, headers=headers
            )
            assert answer.status_code == 200
            await wait_until(lambda: fake.delivered_texts(runner, PAIN_Q), "pain question")
            sent, data = fake.button_data(runner, "2")
            tap = fake.callback_update(private(runner), person(runner), sent, data)
            fake.hold("answerCallbackQuery")
            posted = asyncio.create_task(
                http.post("/telegram", json={"update_id": 88002, **tap}, headers=headers)
            )
            await wait_until(
                lambda: fake.held["answerCallbackQuery"] > 0, "the turn committed", process=web
            )
            await web.kill9()
            fake.release("answerCallbackQuery")
            with contextlib.suppress(httpx.HTTPError):
                await posted  # the connection died with the process
        assert fake.delivered_texts(runner, RAN_Q) == []
        await wait_until(
            lambda: fake.delivered_texts(runner, RAN_Q),
            "the next question, sent by the clock process",
            process=clock_process,
        )
    finally:
        await web.stop()
        await clock_process.stop()
    assert len(fake.delivered_texts(runner, RAN_Q)) == 1
    lost = 1 - len(fake.delivered_texts(runner, RAN_Q))
    fault_report(f"{lost} of 1 replies lost when the web process died before sending")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def private(runner: int) -> dict[str, Any]:
    return {"id": runner, "type": "private", "first_name": "Sam"}


def person(runner: int) -> dict[str, Any]:
    return {"id": runner, "is_bot": False, "first_name": "Sam"}


async def wait_for_http(http: httpx.AsyncClient, process: Hipcoach) -> None:
    async def up() -> bool:
        try:
            return (await http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    for _ in range(600):  # a bound, not a timing
        if await up():
            return
        assert process.returncode is None, process.log()
        await asyncio.sleep(0.1)
    raise AssertionError(f"the web process never answered\n{process.log()}")


# --- kill -9 mid-dispatch: only what is in flight waits ----------------------------------------


async def test_after_kill_9_mid_dispatch_only_the_messages_in_flight_wait(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path, fault_report: Any
) -> None:
    """60 check-ins are being sent when the process is killed with sends in flight. With the
    default lease, every other queued check-in goes out within 30 s of the restart; only
    those in flight wait for their lease (and may then arrive twice)."""
    count, first = 60, 210_000
    db = Database(sqlite_url)
    try:
        async with db.transaction() as repo:
            now = datetime.now(UTC) - timedelta(seconds=1)
            for i in range(count):
                chat = str(first + i)
                await outbox.add_message(
                    repo,
                    idempotency_key=f"lease:{i}",
                    platform="telegram",
                    chat_id=chat,
                    kind="checkin",
                    payload=encode(Outbound(chat_id=chat, text=f"Check-in {i}")),
                    not_before=now,
                )
    finally:
        await db.dispose()
    env = hipcoach_env(
        sqlite_url, fake, HIPCOACH_TICK_SECONDS="3600", HIPCOACH_DISPATCH_SECONDS="0.5"
    )
    env.pop("HIPCOACH_SENDING_LEASE_SECONDS", None)  # the default lease
    log = tmp_path / "hipcoach.log"

    def delivered() -> set[int]:
        return {chat for (chat, _) in fake.messages if chat >= first}

    process = await Hipcoach("run", env, log).start()
    try:
        await wait_until(lambda: len(delivered()) >= 10, "10 check-ins sent", process=process)
        fake.hold("sendMessage")
        await wait_until(lambda: fake.held["sendMessage"] > 0, "a send in flight", process=process)
    finally:
        await process.kill9()
    fake.release("sendMessage")  # Telegram delivers what it received; nobody hears back
    status = await outbox_status(sqlite_url)
    # In flight: claimed by one of the dispatcher's senders (at most `concurrency`), sent or
    # about to be. Everything else is still queued.
    in_flight = {int(chat) for chat, state in status.items() if state == "sending"}
    queued = {int(chat) for chat, state in status.items() if state == "pending"}
    concurrency = SchedulerConfig().concurrency
    assert 1 <= len(in_flight) <= concurrency, f"{len(in_flight)} rows held by the dead process"
    assert queued

    process = await Hipcoach("run", env, log).start()
    try:
        await wait_until(
            lambda: queued <= delivered(),
            "every queued check-in, within 30 s of the restart",
            process=process,
            timeout=30,
        )
    finally:
        await process.stop()
    fault_report(
        f"after kill -9 mid-dispatch: {len(queued)} of {len(queued)} queued rows sent within"
        f" 30 s of the restart ({len(in_flight)} in flight wait for their lease)"
    )
