"""`hipcoach run` with a Telegram token, in a subprocess, against the fake Bot API:
a reminder set one minute ahead really arrives in the runner's chat, once."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.service import Coach
from bot.storage.db import Database
from tests.chat_driver import Chat
from tests.fake_telegram import FakeTelegram
from tests.test_scheduler_helpers import PROMPT, setup_runner

ROOT = Path(__file__).resolve().parent.parent
RUNNER_ID = 4242


async def test_hipcoach_run_with_telegram_delivers_a_reminder_set_a_minute_ahead(
    sqlite_url: str, tmp_path: Path
) -> None:
    db = Database(sqlite_url)
    try:
        chat = Chat(Coach(db), platform="telegram", user_id=str(RUNNER_ID))
        await setup_runner(chat, zone="UTC", reminder="07:30")
        # Set "one minute ahead" only now, so a slow setup cannot push it to tomorrow.
        await chat.send("settings")
        await chat.press("Check-in time")
        await chat.send((datetime.now(UTC) + timedelta(minutes=1)).strftime("%H:%M"))
        async with db.transaction(readonly=True) as repo:
            user = await repo.get_user("telegram", str(RUNNER_ID), lock=False)
        assert user is not None and user.next_checkin_at is not None
    finally:
        await db.dispose()

    fake = FakeTelegram()
    await fake.start()
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
        "TELEGRAM_API_URL": fake.api_url,
        "HIPCOACH_TICK_SECONDS": "2",
        "HIPCOACH_DISPATCH_SECONDS": "1",
    }
    for name in ("TELEGRAM_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        cwd=str(ROOT),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    def prompts() -> list[str]:
        return [c.text for c in fake.calls_to("sendMessage", RUNNER_ID) if PROMPT in c.text]

    try:
        for _ in range(200):  # the minute boundary, plus a tick and a dispatch
            if prompts() or process.returncode is not None:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # a few more ticks: nothing is sent twice
    finally:
        process.terminate()
        try:
            _, err = await asyncio.wait_for(process.communicate(), timeout=15)
        except TimeoutError:
            process.kill()
            _, err = await process.communicate()
        await fake.stop()
    assert len(prompts()) == 1, err.decode()[-2000:]
    sent = fake.calls_to("sendMessage", RUNNER_ID)[-1]
    assert any(b["text"] == "Snooze 30 min" for b in sent.buttons)
