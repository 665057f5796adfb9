"""Privacy: `delete` leaves nothing about the person in any table, and logs never carry
what people answered or typed.

A full session runs through the real platform adapters (Telegram against the fake Bot API,
Slack through signed requests), with setup, a red-flag review, check-ins with high pain
answers, exercise logs, progress, export, a team warm-up the person set up and a reminder
queued and sent by the scheduler. Then:

- every table in the database (reflected, so tables the models do not know are included)
  is scanned, every column: users.id foreign keys for the person's row id, and every text
  or JSON value for the platform user id, the chat id, the display name and the free text
  the person typed. Before `delete` the scan must find the person in all the tables the
  session wrote to (so the scan itself is proven to work); after it, nowhere. Team data
  stays (the group, its warm-up with `created_by` cleared, its cards). SQLite and PostgreSQL.
- logs are captured from every logger at DEBUG during the session. Our own loggers, at any
  level, and every logger at INFO and above (the most `hipcoach` ever configures) carry no
  pain answer, nothing typed, no token. Third-party libraries do log it all at DEBUG: PTB's
  Application logs whole updates and its Bot the request parameters and the token-bearing
  URL, aiosqlite logs statements with their parameters, slack_sdk request bodies. `hipcoach`
  never enables DEBUG (`-v` means INFO), which the subprocess test checks with
  `hipcoach -v chat`. SQLAlchemy logs statements with their parameters at INFO on
  `sqlalchemy.engine`: shown here, and checked to stay off by default.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select

from bot.adapters.slack import SlackAdapter
from bot.config import Settings
from bot.service import Coach
from bot.storage.db import Database
from bot.storage.models import Base
from bot.web import build_app
from scheduler import Scheduler, SchedulerConfig
from tests.chat_driver import ADULT, OUTSIDE, Clock
from tests.fake_slack import TEAM, FakeSlack
from tests.fake_slack import TOKEN as SLACK_TOKEN
from tests.fake_telegram import TOKEN as TELEGRAM_TOKEN
from tests.fake_telegram import FakeTelegram
from tests.test_slack import SECRET, Slack
from tests.test_telegram import GROUP, Person, TrackingAdapter, polling_bot, private_chat

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

TG_USER, TG_BYSTANDER = 770011223, 880022334
SLACK_USER, SLACK_BYSTANDER, SLACK_CHANNEL = "U8PRIVACY", "U9BYSTANDER", "C7PRIVCLUB"
NAME = "Zephyrine Canary"
FREE_TEXT = "zebra-canary-4711 my hip aches since the marathon"
TYPED_ZONE = "Pacific/Chatham"
TYPED_CLOCK = "06:45"
SCHEDULER_CONFIG = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600)

# Answers to the start screen: the first three groups clear, "other" opens, R13 (bone
# health) yes (a review: an escalation row), the rest of that group no.
SCREEN_WITH_A_REVIEW = ("None of these",) * 3 + ("Yes, one or more", "Yes") + ("No",) * 6
# After a pain score of 8 (P9, R16 same day): the groups that could still be an emergency.
SEVERE_SCREEN = ("None of these",) * 2


# --- scanning the database ------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


async def find_person(db: Database, user_pk: int, needles: tuple[str, ...]) -> set[str]:
    """Every "table.column" where something about the person is stored."""
    found: set[str] = set()
    async with db.engine.connect() as conn:
        reflected = MetaData()
        await conn.run_sync(reflected.reflect)
        missing = {t.name for t in Base.metadata.sorted_tables} - set(reflected.tables)
        assert not missing, f"tables of the models not in the database: {missing}"
        for table in reflected.sorted_tables:
            user_columns = {
                fk.parent.name for fk in table.foreign_keys if fk.column.table.name == "users"
            }
            if table.name == "users":
                user_columns.add("id")
            for row in (await conn.execute(select(table))).mappings():
                for column in table.columns:
                    value = row[column.name]
                    if value is None:
                        continue
                    if column.name in user_columns:
                        if value == user_pk:
                            found.add(f"{table.name}.{column.name}")
                        continue
                    text = _as_text(value)
                    if any(needle in text for needle in needles):
                        found.add(f"{table.name}.{column.name}")
    return found


async def user_pk(db: Database, platform: str, user_id: str) -> int:
    async with db.transaction(readonly=True) as repo:
        user = await repo.get_user(platform, user_id, lock=False)
        assert user is not None
        return user.id


# --- a Telegram session -------------------------------------------------------------------------


async def telegram_session(fake: FakeTelegram, bot: TrackingAdapter, clock: Clock) -> Person:
    me = Person(fake, bot, TG_USER, private_chat(TG_USER), name=NAME)
    await me.send("/start")
    await me.send(FREE_TEXT)  # not an answer: asked again
    await me.taps("I agree", ADULT)
    await me.send(TYPED_ZONE)
    await me.taps(*SCREEN_WITH_A_REVIEW)
    await me.taps(OUTSIDE, "Yes", "Easy runs only", "No", "3")
    await me.send(TYPED_CLOCK)
    await me.send("/today")
    await me.taps("1", "Done ✅")  # the first exercise on the card, then log it
    clock.advance(hours=1)
    await me.send("/checkin")
    await me.tap("8")  # high pain (P9): the screen, then a same-day escalation
    await me.taps(*SEVERE_SCREEN)
    await me.send("/progress")
    await me.send("/export")
    # The same person runs the club's group and sets a warm-up there.
    fake.members[(GROUP["id"], TG_USER)] = "creator"
    captain = Person(fake, bot, TG_USER, GROUP, name=NAME)
    await captain.send("/warmup add tue,thu 18:00 before 15 tz Europe/Berlin")
    # Someone else, whose data must stay.
    other = Person(fake, bot, TG_BYSTANDER, private_chat(TG_BYSTANDER), name="Bystander")
    await other.send("/start")
    await other.tap("I agree")
    # When the next reminder is due, the scheduler queues it and sends it.
    async with bot.coach.db.transaction(readonly=True) as repo:
        user = await repo.get_user("telegram", str(TG_USER), lock=False)
        assert user is not None and user.next_checkin_at is not None
        clock.now = user.next_checkin_at + timedelta(minutes=1)
    scheduler = Scheduler(
        bot.coach.db, bot.coach, {"telegram": bot}, clock=clock, config=SCHEDULER_CONFIG
    )
    assert await scheduler.tick(clock.now) >= 1
    await scheduler.dispatch(clock.now)
    return me


TELEGRAM_NEEDLES = (str(TG_USER), NAME, "zebra-canary")
# Where the Telegram session stores something about the person (the scan must see them).
TELEGRAM_TABLES = {
    "users.id",
    "users.platform_user_id",
    "users.chat_id",
    "users.display_name",
    "checkins.user_id",
    "exercise_logs.user_id",
    "escalations.user_id",
    "screenings.user_id",
    "plan_changes.user_id",
    "outbox.user_id",
    "outbox.chat_id",
    "warmup_schedules.created_by",
}


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


async def test_delete_leaves_no_row_about_a_telegram_user(
    telegram: FakeTelegram, database: Database, clock: Clock
) -> None:
    async with polling_bot(telegram, database, clock) as bot:
        me = await telegram_session(telegram, bot, clock)
        pk = await user_pk(database, "telegram", str(TG_USER))
        before = await find_person(database, pk, TELEGRAM_NEEDLES)
        assert before >= TELEGRAM_TABLES, TELEGRAM_TABLES - before
        await me.send("/delete")
        calls = await me.tap("Yes, delete everything")
        assert any("deleted" in c.text for c in calls)
        assert await find_person(database, pk, TELEGRAM_NEEDLES) == set()
    async with database.transaction(readonly=True) as repo:
        assert await repo.get_user("telegram", str(TG_BYSTANDER), lock=False) is not None
        chat = await repo.get_team_chat("telegram", str(GROUP["id"]), lock=False)
        assert chat is not None
        warmups = await repo.list_warmups(chat.id)
        assert [(w.days, w.created_by) for w in warmups] == [("tue,thu", None)]


# --- a Slack session ---------------------------------------------------------------------------


@pytest.fixture
async def slack(database: Database, clock: Clock) -> AsyncIterator[Slack]:
    fake = FakeSlack(
        users={
            SLACK_USER: {"tz": "Europe/Berlin", "is_admin": False},
            SLACK_BYSTANDER: {"tz": "Europe/London", "is_admin": False},
        },
        creators={SLACK_CHANNEL: SLACK_USER},
    )
    await fake.start()
    settings = Settings(
        database_url=database.url,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
    )
    adapter = SlackAdapter(settings, Coach(database, clock=clock))
    transport = httpx.ASGITransport(app=build_app(database, [adapter]))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hipcoach.test") as http:
            yield Slack(http, fake, adapter, database, clock)
    finally:
        await adapter.stop()
        await fake.stop()


async def slack_session(slack: Slack) -> None:
    user = SLACK_USER
    await slack.slash("start", user=user)
    await slack.dm(FREE_TEXT, user=user)
    await slack.press_all("I agree", ADULT, "Use Europe/Berlin", user=user)
    await slack.press_all(*SCREEN_WITH_A_REVIEW, user=user)
    await slack.press_all(OUTSIDE, "Yes", "Easy runs only", user=user)
    await slack.press_all("No", "3", user=user)
    await slack.dm(TYPED_CLOCK, user=user)
    await slack.home_opened(user=user)
    await slack.press("Done", user=user)  # logged from App Home
    slack.clock.advance(hours=1)
    await slack.dm("checkin", user=user)
    await slack.press("8", user=user)
    await slack.press_all(*SEVERE_SCREEN, user=user)
    await slack.slash("progress", user=user)
    await slack.dm("export", user=user)
    await slack.slash("warmup add sat 08:00 before 20", user=user, channel=SLACK_CHANNEL)
    await slack.slash("start", user=SLACK_BYSTANDER)
    await slack.press("I agree", user=SLACK_BYSTANDER)


SLACK_NEEDLES = (SLACK_USER, "zebra-canary")
SLACK_TABLES = {
    "users.id",
    "users.platform_user_id",
    "users.chat_id",
    "checkins.user_id",
    "exercise_logs.user_id",
    "escalations.user_id",
    "screenings.user_id",
    "plan_changes.user_id",
    "warmup_schedules.created_by",
}


async def test_delete_leaves_no_row_about_a_slack_user(slack: Slack, database: Database) -> None:
    await slack_session(slack)
    pk = await user_pk(database, "slack", f"{TEAM}:{SLACK_USER}")  # ids carry the workspace
    before = await find_person(database, pk, SLACK_NEEDLES)
    assert before >= SLACK_TABLES, SLACK_TABLES - before
    await slack.dm("delete", user=SLACK_USER)
    await slack.press("Yes, delete everything", user=SLACK_USER)
    assert await find_person(database, pk, SLACK_NEEDLES) == set()
    async with database.transaction(readonly=True) as repo:
        assert await repo.get_user("slack", f"{TEAM}:{SLACK_BYSTANDER}", lock=False) is not None
        chat = await repo.get_team_chat("slack", f"{TEAM}:{SLACK_CHANNEL}", lock=False)
        assert chat is not None
        assert [w.created_by for w in await repo.list_warmups(chat.id)] == [None]


# --- logs ---------------------------------------------------------------------------------------

OUR_LOGGERS = ("hipcoach", "bot", "scheduler", "content")
# What must never be in a log line: what was typed, answers shown under a question
# ("→ 7"), pain fields with their values, and credentials.
NEVER_LOGGED = (
    "zebra-canary",
    "marathon",
    TYPED_ZONE,
    NAME,
    "→",
    "pain_now",
    "pain_during",
    "7/10",
    TELEGRAM_TOKEN,
    TELEGRAM_TOKEN.split(":", 1)[1],
    SLACK_TOKEN,
    SECRET,
)


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


def leaks(records: list[logging.LogRecord]) -> list[str]:
    found = []
    for record in records:
        text = _record_text(record)
        found += [f"{record.name}:{record.levelname}: {n!r}" for n in NEVER_LOGGED if n in text]
    return found


def _ours(record: logging.LogRecord) -> bool:
    return record.name.split(".", 1)[0] in OUR_LOGGERS


async def test_logs_carry_no_answers_typed_text_or_tokens(
    telegram: FakeTelegram, db: Database, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with polling_bot(telegram, db, clock) as bot:
        await telegram_session(telegram, bot, clock)
    records = list(caplog.records)
    assert any(r.name == "hipcoach.telegram" for r in records)
    assert any(r.name == "hipcoach.service" for r in records)
    assert leaks([r for r in records if _ours(r)]) == []
    assert leaks([r for r in records if r.levelno >= logging.INFO]) == []


async def test_slack_logs_carry_no_answers_typed_text_or_tokens(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await slack_session(slack)
    records = list(caplog.records)
    assert any(r.name == "hipcoach.slack" for r in records)
    assert leaks([r for r in records if _ours(r)]) == []
    assert leaks([r for r in records if r.levelno >= logging.INFO]) == []


async def test_sqlalchemy_logs_no_parameters_at_info_and_is_off_by_default(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine_logger = logging.getLogger("sqlalchemy.engine")
    # SQLAlchemy keeps its own loggers at WARNING, whatever the root logger says, and the
    # app never passes echo: so the default configuration logs no statements.
    assert engine_logger.getEffectiveLevel() >= logging.WARNING
    caplog.set_level(logging.DEBUG)
    db = Database(sqlite_url)
    try:
        assert db.engine.echo is False
        async with db.transaction() as repo:
            await repo.create_user("console", "quiet-1", "quiet-1", NAME)
        assert [r for r in caplog.records if r.name.startswith("sqlalchemy")] == []
        # The hazard: INFO on sqlalchemy.engine logs every parameter; bot/logsafe.py keeps
        # the statements and withholds the values.
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
        async with db.transaction() as repo:
            await repo.create_user("console", "loud-1", "loud-1", NAME)
        sql = [r for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
        assert any("INSERT INTO users" in _record_text(r) for r in sql)
        assert not any(NAME in _record_text(r) for r in sql)
    finally:
        await db.dispose()


def test_hipcoach_verbose_logs_no_answers_in_a_real_process(tmp_path: Path) -> None:
    """`hipcoach -v chat` (INFO, the most the CLI ever sets) with typed text, a typed zone
    and high pain answers: the chat on stdout shows them, the log on stderr must not."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'coach.db'}",
        "HIPCOACH_FILES_DIR": str(tmp_path / "files"),
    }
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    lines = [
        "start",
        FREE_TEXT,
        "1",  # I agree
        "1",  # for me, 18 or older
        TYPED_ZONE,
        *["1"] * 4,  # no red flags
        "2",  # side of the hip
        "1",  # lying on it hurts
        "2",  # easy runs
        "No",  # not two weeks of cutting back without getting better
        "3",  # pain now
        TYPED_CLOCK,
        "checkin",
        "8",  # P9: the screen asks what could still be an emergency, then same day
        *["1"] * len(SEVERE_SCREEN),
        "progress",
        "export",
        "delete",
        "1",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "-v", "chat"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert "deleted" in done.stdout  # the whole script ran
    logged = (tmp_path / "files" / "hipcoach.log").read_text()  # the chat's log file
    assert "INFO hipcoach" in logged  # and logged
    for needle in ("zebra-canary", TYPED_ZONE, "→", "pain_now", "8/10", "INSERT", "SELECT"):
        assert needle not in done.stderr + logged, needle
