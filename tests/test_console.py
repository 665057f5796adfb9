"""A whole session piped through `hipcoach chat` in a subprocess, as the README demo does."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import matplotlib.image

SETUP = [
    "start",
    "1",
    "1",
    "Europe/Berlin",
    "1",
    "1",
    "1",
    "1",  # consent, for me (18+), zone, screen
    "2",
    "1",
    "2",
    "2",
    "2",
    "2",  # outside of hip, lying on it hurts, easy runs, not 2 weeks of no change, pain 2, 07:30
]
SESSION = [
    "today",
    "1",  # the first exercise of the card: its details
    "1",  # its first button: Done
    "checkin",
    "2",
    "3",
    "2",
    "1",
    "1",  # morning pain 2, a 20 min run, 2 during it, all fine after, no flags
    "progress",
    "export",
]


def hipcoach(tmp_path: Path, lines: list[str]) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'coach.db'}",
        "HIPCOACH_FILES_DIR": str(tmp_path / "files"),
    }
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        env.pop(name, None)
    script = "\n".join(lines) + "\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def saved_file(output: str, suffix: str) -> Path:
    paths = re.findall(r"\[file saved: (.+?)\]", output)
    matches = [Path(p) for p in paths if p.endswith(suffix)]
    assert matches, f"no {suffix} file in the output"
    return matches[-1]


def test_a_piped_session_walks_setup_today_checkin_progress_export_delete(tmp_path: Path) -> None:
    output = hipcoach(tmp_path, SETUP + SESSION)
    assert "Today — phase 1" in output
    assert "Logged" in output
    assert "Hold" in output or "Progress" in output

    chart = saved_file(output, ".png")
    image = matplotlib.image.imread(BytesIO(chart.read_bytes()), format="png")
    assert image.shape[0] > 300 and image.shape[1] > 500

    export = json.loads(saved_file(output, ".json").read_text())
    assert export["checkins"][0]["pain_now"] == 2
    assert export["exercise_logs"][0]["outcome"] == "done"

    # Restarting the program keeps everything; then delete removes it all.
    output = hipcoach(tmp_path, ["settings", "5", "delete", "1"])
    assert "Daily check-in: 07:30" in output
    assert "everything about you has been deleted" in output
    with sqlite3.connect(tmp_path / "coach.db") as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            columns = [r[1] for r in db.execute(f"pragma table_info('{table}')")]
            for column in {"user_id", "platform_user_id", "created_by"} & set(columns):
                count = db.execute(
                    f"select count(*) from {table} where {column} in ('local', 1)"
                ).fetchone()[0]
                assert count == 0, f"{table}.{column} still holds the user"


def test_the_console_restarts_in_the_middle_of_setup(tmp_path: Path) -> None:
    hipcoach(tmp_path, ["start", "1"])
    output = hipcoach(tmp_path, ["1"])  # answers the age question asked before the restart
    assert "Which timezone" in output
