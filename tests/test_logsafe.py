"""Logs never carry what runners wrote, even when a library would log it (bot/logsafe.py).

The cleaning is installed for the whole test session (conftest), as the CLI installs it in
production, so these tests drive the real libraries and read what they logged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot import logsafe
from bot.storage.db import Database
from tests.fake_telegram import TOKEN, FakeTelegram

PAIN = "my hip pain is 8/10"
NAME = "Zebedee Canary"


def text_of(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}\n{r.exc_info!r}" for r in records)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


async def test_a_batch_the_telegram_library_cannot_parse_is_logged_without_its_messages(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chat = {"id": 42, "type": "private", "first_name": NAME}
    user = {"id": 42, "is_bot": False, "first_name": NAME}
    fake.push(fake.message_update(chat, user, PAIN))
    fake.push(fake.old_poll_update(chat, user))  # a field newer Bot API versions require
    bot = Bot(TOKEN, base_url=fake.api_url)
    async with bot:
        with pytest.raises(TypeError):
            await bot.get_updates(timeout=0)  # PTB parses the whole batch, and logs it
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert critical and critical[0].name.startswith("telegram")
    assert "Received data was <list>" in critical[0].getMessage()
    assert PAIN not in text_of(caplog.records)
    assert NAME not in text_of(caplog.records)
    assert TOKEN.split(":", 1)[1] not in text_of(caplog.records)


async def test_sqlalchemy_statement_parameters_and_error_messages_are_withheld(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(sqlite_url)
    try:
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
        async with db.transaction() as repo:
            await repo.create_user("console", "loud-1", "loud-1", NAME)
        assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)
        assert NAME not in text_of(caplog.records)
    finally:
        await db.dispose()


def test_an_exception_keeps_its_traceback_and_type_but_not_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("hipcoach.test")
    try:
        try:
            int(PAIN)
        except ValueError as error:
            raise RuntimeError(f"could not read {NAME}") from error
    except RuntimeError:
        log.exception("turn failed user=%s", 7)
    record = caplog.records[-1]
    assert record.getMessage() == "turn failed user=7"  # our own arguments stay
    assert record.exc_info is None and record.exc_text is not None
    assert "ValueError: (message withheld)" in record.exc_text
    assert "RuntimeError: (message withheld)" in record.exc_text
    assert "direct cause" in record.exc_text and "test_logsafe.py" in record.exc_text
    assert PAIN not in text_of([record]) and NAME not in text_of([record])


def test_library_messages_keep_numbers_and_wording_but_no_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="httpx")  # the Telegram adapter quiets it
    logging.getLogger("slack_bolt.App").warning(f"Unhandled request ({{'text': '{PAIN}'}})")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"',
        "POST",
        f"https://x/bot{TOKEN}/send",
        "HTTP/1.1",
        200,
        "OK",
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "10.0.0.1:5",
        "GET",
        "/slack/oauth_redirect?code=c0de",
        "1.1",
        302,
    )
    logging.getLogger("apscheduler.executors").info("Job %s took %.1f s", {"who": NAME}, 1.5)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Unhandled request ( …",
        'HTTP Request: <str> <str> "<str> 200 <str>"',
        '- - "GET /slack/oauth_redirect HTTP/1.1" 302',
        "Job <dict> took 1.5 s",
    ]
    assert logsafe.is_ours("hipcoach.telegram") and not logsafe.is_ours("telegram.ext")
