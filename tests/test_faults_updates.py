"""Fault suite: `hipcoach run` (Telegram polling, a SQLite file) meets an update that
python-telegram-bot cannot parse, in the middle of a batch of other runners' messages, and
later a token revoked under it.

- The bad update is skipped and confirmed; every other update of its batch, and every one
  after it, is answered: none lost, none blocked, across a restart too.
- The process log of the whole session (INFO, as the CLI runs) holds no message text, no
  name and no answer: neither our log lines nor python-telegram-bot's, which logs a whole
  batch it cannot parse.
- When polling cannot go on (the token was revoked), the process exits non-zero, so its
  supervisor restarts it and the operator sees why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.chat_driver import FIRST_DAY_CHECKIN_TAPS, question_text
from tests.fake_telegram import TOKEN
from tests.fault_tools import FaultyTelegram, Hipcoach, hipcoach_env, wait_until
from tests.test_faults_kill import finish_checkin, onboard

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

HELP = "hipcoach — a coach for runners"
PAIN_Q = question_text("morning_pain_question")
NAME = "Zebedee"
SURNAME = "Quillfeather"
SECRETS = (
    "my hip pain is 8/10",
    "zebra-canary",
    "Long run on Sunday?",  # the unparseable poll's question
    NAME,
    SURNAME,
    "→",  # an answer shown under its question
    "pain_now",
    TOKEN.split(":", 1)[1],
)


@pytest.fixture
async def fake() -> AsyncIterator[FaultyTelegram]:
    server = FaultyTelegram()
    await server.start()
    yield server
    await server.stop()


def chat(runner: int) -> dict[str, Any]:
    return {"id": runner, "type": "private", "first_name": NAME, "last_name": SURNAME}


def user(runner: int) -> dict[str, Any]:
    return {"id": runner, "is_bot": False, "first_name": NAME, "last_name": SURNAME}


def run_env(url: str, fake: FaultyTelegram) -> dict[str, str]:
    return hipcoach_env(url, fake, HIPCOACH_TICK_SECONDS="3600", HIPCOACH_DISPATCH_SECONDS="1")


async def test_one_bad_update_in_a_batch_blocks_nobody_and_no_log_line_holds_message_text(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path, fault_report: Any
) -> None:
    runners = [6201, 6202, 6203]
    checker = 6204
    await onboard(sqlite_url, checker)
    # All of it waiting before the bot starts, so the first getUpdates hands it out as one
    # batch: runners' messages on both sides of a poll the library cannot parse.
    good = [fake.push(fake.message_update(chat(r), user(r), "/help")) for r in runners[:2]]
    bad = fake.push(fake.old_poll_update(chat(runners[2]), user(runners[2])))
    good.append(fake.push(fake.message_update(chat(runners[2]), user(runners[2]), SECRETS[0])))
    good.append(fake.push(fake.message_update(chat(checker), user(checker), SECRETS[1])))
    log = tmp_path / "hipcoach.log"

    process = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        await wait_until(
            lambda: all(fake.calls_to("sendMessage", r) for r in [*runners, checker]),
            "an answer to every runner",
            process=process,
        )
        await wait_until(lambda: fake.confirmed_below > max(good), "the batch confirmed")
        # A full check-in afterwards, with the bad update long gone.
        fake.say(checker, "/checkin", name=NAME)
        await wait_until(
            lambda: fake.delivered_texts(checker, PAIN_Q), "the pain question", process=process
        )
        # The safety screen at its end is tapped through by finish_checkin.
        for label in FIRST_DAY_CHECKIN_TAPS[:-1]:
            n = len(fake.delivered(checker))
            fake.tap(checker, label, name=NAME)
            await wait_until(
                lambda n=n: len(fake.delivered(checker)) > n, f"reply to {label}", process=process
            )
        # The answer is edited into its question before the next one arrives.
        await wait_until(
            lambda: any("None of these" in str(m.markup) for m in fake.delivered(checker)[-1:]),
            "safety screen",
            process=process,
        )
        await finish_checkin(fake, checker, process)
    finally:
        await process.stop()
    # And after a restart, nothing from that batch comes back.
    served = len(fake.served)
    process = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        fake.say(runners[0], "/help", name=NAME)
        await wait_until(
            lambda: len(fake.calls_to("sendMessage", runners[0])) == 2, "help", process=process
        )
    finally:
        await process.stop()
    assert bad not in fake.served[served:]

    answered = [
        u
        for u, r in zip(good, [*runners[:2], runners[2], checker], strict=True)
        if fake.calls_to("sendMessage", r)
    ]
    lost = len(good) - len(answered)
    assert HELP in fake.calls_to("sendMessage", runners[0])[0].text
    text = log.read_text(errors="replace")
    lines = text.splitlines()
    assert f"telegram update={bad} could not be read (TypeError); skipped" in text
    leaking = [line for line in lines if any(secret in line for secret in SECRETS)]
    fault_report(
        f"{lost} of {len(good)} updates lost or blocked by one update the library cannot parse"
    )
    fault_report(
        f"{len(leaking)} of {len(lines)} log lines of a full session with a parse failure"
        " hold message text, names or answers"
    )
    assert lost == 0
    assert leaking == []


async def test_when_polling_cannot_go_on_the_process_exits_non_zero(
    fake: FaultyTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "hipcoach.log"
    process = await Hipcoach("run", run_env(sqlite_url, fake), log).start()
    try:
        fake.say(6301, "/help")
        await wait_until(lambda: fake.calls_to("sendMessage", 6301), "help", process=process)
        fake.revoked = True  # revoked in BotFather: Telegram answers 401 from now on
        code = await process.wait_exit()
    finally:
        await process.stop()
    assert code == 1, process.log()
    assert "stopping: telegram polling stopped: the bot token was rejected" in process.log()
