"""The console chat and the export, as a person meets them (issue 11, point 10).

Log lines never appear between the chat's messages (they go to a file), long lines wrap
to the terminal's width, and `export` gives a person-readable JSON (questions, answer
labels and exercise names beside the codes, no conversation state) and a CSV of
check-ins beside it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.chat_driver import Chat, Clock, checkin, onboard
from tests.test_console import SETUP

LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ")
WIDTH = 60


def test_the_console_chat_shows_no_log_lines_and_wraps_to_the_terminal(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'coach.db'}",
        "HIPCOACH_FILES_DIR": str(tmp_path / "files"),
        "COLUMNS": str(WIDTH),
    }
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    # Setup, then a check-in with pain of 8/10: the coach logs a warning (an escalation
    # needs an operator's eye) while the runner is reading the chat.
    script = [*SETUP, "today", "checkin", "8", *["2"] * 6, "help"]
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat"],
        input="\n".join(script) + "\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # as on a terminal: both streams on one screen
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    screen = done.stdout
    assert "hipcoach — a coach for runners" in screen  # the whole script ran
    assert not LOG_LINE.search(screen), LOG_LINE.search(screen)
    logged = (tmp_path / "files" / "hipcoach.log").read_text()
    assert "WARNING hipcoach.service escalation" in logged  # it went to the file instead
    long_lines = [line for line in screen.splitlines() if len(line) > WIDTH]
    # Only what cannot be broken (a file path) may be wider than the terminal.
    assert all(" " not in line.strip() or "hipcoach" in line for line in long_lines), long_lines
    assert screen.count("\n") > 100


async def test_export_is_readable_and_has_a_csv_of_checkins(chat: Chat, clock: Clock) -> None:
    await onboard(chat)
    await chat.send("today")
    await chat.press("1")
    await chat.press("Done ✅")
    clock.advance(days=1)
    await checkin(chat, pain="3")
    await chat.send("export")
    files = {r.attachment.filename: r.attachment for r in chat.replies if r.attachment}
    assert set(files) == {"hipcoach-export.json", "hipcoach-checkins.csv"}
    data = json.loads(files["hipcoach-export.json"].data)

    assert "conversation" not in data["user"]  # no internal conversation state
    assert "before_checkin" not in data["user"]["profile"]
    (day,) = data["checkins"]
    assert day["pain_now"] == 3  # the code, with its meaning beside it
    asked = {a["question"]: a["answer"] for a in day["answers"]}
    morning = chat.coach.content.message("morning_pain_question")
    assert asked[morning] == "3/10"
    assert asked[chat.coach.content.message("ran_question")] == "No run"
    assert day["decision_text"].startswith(("Hold", "Progress", "Back off"))
    assert day["reason_text"] == chat.coach.content.message(f"reason_{day['reason']}")
    (log,) = data["exercise_logs"]
    exercise = chat.coach.content.exercises[log["exercise_id"]]
    assert (log["exercise"], log["outcome_text"]) == (exercise.name, "done")
    screened = [a for s in data["screenings"] for a in s["answers_text"]]
    assert screened and all(a["question"] and a["answer"] for a in screened)
    assert all("payload" not in m for m in data["messages"])

    rows = list(csv.DictReader(io.StringIO(files["hipcoach-checkins.csv"].data.decode())))
    assert len(rows) == 1
    assert rows[0]["Morning pain (0-10)"] == "3" and rows[0]["Ran"] == "No run"
    assert rows[0]["Decision"] == day["decision_text"]
