"""An operator scrapes /metrics and asks /healthz.

The end-to-end story runs `hipcoach run` as a real process against the fake Bot API: a due
reminder is sent (the first try rate limited), a runner starts and hits a red flag, and the
scrape then holds every counter an operator needs, with no user id, name or answer in it.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.storage.db import Database
from bot.web import build_app
from tests.chat_driver import ADULT
from tests.fake_telegram import TOKEN
from tests.fault_tools import FaultyTelegram, Hipcoach, hipcoach_env, too_many_requests, wait_until
from tests.test_faults_kill import onboard
from tests.test_scheduler_helpers import PROMPT

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

REMINDED = 730001  # a runner whose check-in is due when the process starts
NEWCOMER = 730002  # a runner who starts and answers a red flag
NEWCOMER_NAME = "Wilhelmina"
EMERGENCY_TEXT = "call 999"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), float("nan"))


async def make_due(url: str, runner: int) -> None:
    """The runner's check-in fell due a minute ago (as after a short restart)."""
    db = Database(url)
    try:
        async with db.transaction() as repo:
            user = await repo.get_user("telegram", str(runner))
            assert user is not None
            user.next_checkin_at = datetime.now(UTC) - timedelta(minutes=1)
            await repo.save_user(user)
    finally:
        await db.dispose()


async def answer(fake: FaultyTelegram, runner: int, label: str, process: Hipcoach) -> None:
    """Tap `label` if the newest message has it, else type it; wait for the next message
    (a tap also edits the question, which arrives first and is not the answer)."""
    before = len(fake.delivered(runner))
    try:
        fake.tap(runner, label, name=NEWCOMER_NAME)
    except AssertionError:
        fake.say(runner, label, name=NEWCOMER_NAME)
    await wait_until(
        lambda: len(fake.delivered(runner)) > before, f"reply to {label!r}", process=process
    )


async def test_a_scrape_after_a_short_session_holds_the_counters_and_no_personal_data(
    sqlite_url: str, tmp_path: Path
) -> None:
    await onboard(sqlite_url, REMINDED)
    await make_due(sqlite_url, REMINDED)
    fake = FaultyTelegram()
    await fake.start()
    fake.faults["sendMessage"] = [too_many_requests()]  # the reminder's first try: 429
    port = free_port()
    env = hipcoach_env(
        sqlite_url,
        fake,
        HIPCOACH_TICK_SECONDS="1",
        HIPCOACH_DISPATCH_SECONDS="1",
        PORT=str(port),
        HOST="127.0.0.1",
    )
    process = await Hipcoach("run", env, tmp_path / "hipcoach.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            for _ in range(300):
                if await up() or process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            assert (await http.get("/healthz")).json() == {"status": "ok"}, process.log()

            await wait_until(
                lambda: fake.delivered_texts(REMINDED, PROMPT), "the reminder", process=process
            )
            fake.say(NEWCOMER, "/start", name=NEWCOMER_NAME)
            await wait_until(lambda: fake.delivered(NEWCOMER), "the welcome", process=process)
            for label in ("I agree", ADULT, "Europe/London", "Yes, one or more", "Yes"):
                await answer(fake, NEWCOMER, label, process)
            await wait_until(
                lambda: fake.delivered_texts(NEWCOMER, EMERGENCY_TEXT),
                "the emergency advice",
                process=process,
            )

            page = await http.get("/metrics")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/plain")
        text = page.text
    finally:
        await process.stop()
        await fake.stop()

    scrape = samples(text)
    assert value(scrape, "hipcoach_events_handled_total", platform="telegram", kind="command") >= 1
    assert value(scrape, "hipcoach_events_handled_total", platform="telegram", kind="button") >= 4
    assert value(scrape, "hipcoach_reply_latency_seconds_count", platform="telegram") >= 5
    assert value(scrape, "hipcoach_sends_total", platform="telegram", result="ok") >= 1
    assert value(scrape, "hipcoach_sends_total", platform="telegram", result="429") == 1
    assert value(scrape, "hipcoach_sends_total", platform="telegram", result="failed") == 0
    assert value(scrape, "hipcoach_outbox_depth", platform="telegram") == 0
    assert value(scrape, "hipcoach_outbox_oldest_due_age_seconds", platform="telegram") == 0
    assert value(scrape, "hipcoach_tick_duration_seconds_count") >= 1
    assert value(scrape, "hipcoach_tick_due_users_sum") >= 1
    assert value(scrape, "hipcoach_escalations_total", level="EMERGENCY") == 1

    # Counts only: no id, name, answer or token anywhere in the page.
    for private in (
        str(REMINDED),
        str(NEWCOMER),
        NEWCOMER_NAME,
        "Sam",
        "Europe/London",
        "I agree",
        "Yes, one or more",
        TOKEN,
        TOKEN.split(":")[1],
    ):
        assert private not in text, private
    labels = {label for (_, pairs) in scrape for label, _ in pairs}
    assert labels <= {
        "platform",
        "kind",
        "result",
        "level",
        "le",
        "implementation",
        "major",
        "minor",
        "patchlevel",
        "version",
        "generation",
    }


async def test_the_outbox_gauges_show_what_waits_and_for_how_long(db: Database) -> None:
    from bot.storage import outbox

    async with db.transaction() as repo:
        await outbox.add_message(
            repo,
            idempotency_key="warmup:1:2026-11-26",
            platform="slack",
            chat_id="C1",
            kind="warmup",
            payload={"text": "warm-up"},
            not_before=datetime.now(UTC) - timedelta(minutes=5),
        )
    transport = httpx.ASGITransport(app=build_app(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        scrape = samples((await http.get("/metrics")).text)
    assert value(scrape, "hipcoach_outbox_depth", platform="slack") == 1
    assert value(scrape, "hipcoach_outbox_oldest_due_age_seconds", platform="slack") >= 299
    assert value(scrape, "hipcoach_outbox_depth", platform="telegram") == 0


async def test_metrics_are_off_when_the_flag_says_so(db: Database) -> None:
    transport = httpx.ASGITransport(app=build_app(db, metrics_enabled=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200


class Connection:
    """A platform connection as /healthz sees it: `health()` is None when healthy."""

    def __init__(self, platform: str, reason: str | None) -> None:
        self.platform = platform
        self.reason = reason

    def health(self) -> str | None:
        return self.reason


class Sender:
    platform = "slack"  # an adapter without health(): counted as healthy


async def test_healthz_turns_red_when_a_platform_connection_is_down(db: Database) -> None:
    polling = Connection("telegram", None)
    app = build_app(db, watch=[polling, Sender()])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        polling.reason = "polling stopped"
        answer = await http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unhealthy", "problems": {"telegram": "polling stopped"}}


async def test_healthz_turns_red_when_the_database_is_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "hipcoach.db"  # a directory that does not exist
    db = Database(f"sqlite+aiosqlite:///{missing}")
    try:
        app = build_app(db)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://app"
        ) as http:
            answer = await http.get("/healthz")
            page = await http.get("/metrics")  # counters are still served
    finally:
        await db.dispose()
    assert answer.status_code == 503
    assert answer.json()["problems"] == {"database": "unreachable"}
    assert page.status_code == 200 and "hipcoach_events_handled_total" in page.text
