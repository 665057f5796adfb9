"""An operator's configuration, judged before anything starts.

Every process type says in one line what it will run, and refuses to start (exit 78, the
variable to set named) when the configuration cannot work; `hipcoach check` prints the same
verdicts. The subprocess tests run the real command line exactly as a Procfile would.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, detect_container, env_names
from bot.verdict import EX_CONFIG, plan

ROOT = Path(__file__).resolve().parent.parent

TOKEN = "123456:SECRET-telegram-token"
WEBHOOK = {
    "TELEGRAM_BOT_TOKEN": TOKEN,
    "TELEGRAM_WEBHOOK_URL": "https://coach.example.org/telegram",
    "TELEGRAM_WEBHOOK_SECRET": "s3cret-webhook-value",
}
SLACK_HTTP = {"SLACK_BOT_TOKEN": "xoxb-SECRET-slack", "SLACK_SIGNING_SECRET": "SECRET-signing"}
SOCKET = {"SLACK_BOT_TOKEN": "xoxb-SECRET-slack", "SLACK_APP_TOKEN": "xapp-SECRET-app"}
OAUTH = {
    "SLACK_CLIENT_ID": "1234.5678",
    "SLACK_CLIENT_SECRET": "SECRET-client",
    "SLACK_SIGNING_SECRET": "SECRET-signing",
}


def settings(env: dict[str, str], root: Path | None = None) -> Settings:
    return Settings.from_env(env, root=root or Path("/nonexistent-root"))


# --- what each process type runs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("process", "env", "expected"),
    [
        ("run", {}, "console chat; scheduler on"),
        ("run", {"TELEGRAM_BOT_TOKEN": TOKEN}, "Telegram polling; scheduler on"),
        ("run", WEBHOOK, "Telegram webhook; scheduler on"),
        ("run", SOCKET, "Slack Socket Mode, one workspace; scheduler on"),
        ("run", {**SOCKET, "TELEGRAM_BOT_TOKEN": TOKEN}, "Telegram polling; Slack Socket Mode"),
        ("run", SLACK_HTTP, "Slack HTTP, one workspace"),
        ("web", WEBHOOK, "Telegram webhook; scheduler off"),
        ("web", {**WEBHOOK, **SLACK_HTTP}, "Telegram webhook; Slack HTTP, one workspace"),
        ("web", OAUTH, "Slack HTTP, OAuth, many workspaces; scheduler off"),
        ("clock", WEBHOOK, "Telegram sending only; scheduler on"),
        ("clock", {"TELEGRAM_BOT_TOKEN": TOKEN}, "Telegram sending only"),
        ("clock", OAUTH, "Slack sending only, OAuth, many workspaces"),
        ("chat", {}, "console chat; scheduler on"),
        ("chat", WEBHOOK, "Telegram and Slack settings are ignored (console only)"),
    ],
)
def test_each_process_type_says_in_one_line_what_it_will_run(
    process: str, env: dict[str, str], expected: str
) -> None:
    verdict = plan(process, settings(env))  # type: ignore[arg-type]
    assert verdict.ok, verdict.refusal()
    line = verdict.line()
    assert "\n" not in line and line.startswith(f"hipcoach {process}: ")
    assert expected in line
    assert "database SQLite" in line


def test_the_line_never_shows_a_secret_or_a_password() -> None:
    env = {
        **WEBHOOK,
        **OAUTH,
        "SLACK_BOT_TOKEN": "xoxb-SECRET-slack",
        "DATABASE_URL": "postgres://coach:SECRET-pw@db.internal:5432/hipcoach?sslmode=require",
        "TELEGRAM_WEBHOOK_URL": "https://coach.example.org/SECRET-path/telegram",
    }
    for process in ("run", "web", "clock", "chat"):
        verdict = plan(process, settings(env))  # type: ignore[arg-type]
        assert verdict.ok, verdict.refusal()
        assert "SECRET" not in verdict.line()
        assert "PostgreSQL db.internal:5432/hipcoach (sslmode=require)" in verdict.line()
    assert "SECRET" not in repr(settings(env))


def test_web_listens_on_all_interfaces_in_a_container_and_on_loopback_elsewhere(
    tmp_path: Path,
) -> None:
    plain = plan("web", settings(WEBHOOK, root=tmp_path))
    assert "HTTP 127.0.0.1:8080 (no container)" in plain.line()
    (tmp_path / ".dockerenv").touch()
    docker = plan("web", settings(WEBHOOK, root=tmp_path))
    assert "HTTP 0.0.0.0:8080 (container: /.dockerenv)" in docker.line()
    chosen = plan("web", settings({**WEBHOOK, "HOST": "10.1.2.3", "PORT": "9000"}, tmp_path))
    assert "HTTP 10.1.2.3:9000 (HOST)" in chosen.line()
    assert "/telegram /healthz /metrics" in chosen.line()


@pytest.mark.parametrize(
    ("env", "found"),
    [
        ({"container": "podman"}, "$container"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "$KUBERNETES_SERVICE_HOST"),
        ({"DYNO": "web.1"}, "$DYNO"),
        ({}, None),
    ],
)
def test_containers_are_recognised_by_their_usual_signs(
    tmp_path: Path, env: dict[str, str], found: str | None
) -> None:
    assert detect_container(env, tmp_path) == found


def test_run_and_clock_serve_health_and_metrics_only_when_port_is_set() -> None:
    polling = {"TELEGRAM_BOT_TOKEN": TOKEN}
    assert plan("run", settings(polling)).http is None
    assert "no HTTP (set PORT" in plan("clock", settings(polling)).line()
    assert plan("clock", settings({**polling, "PORT": "9100"})).http == ("127.0.0.1", 9100)
    served = plan("run", settings({**polling, "PORT": "9100", "HIPCOACH_METRICS": "off"}))
    assert "HTTP 127.0.0.1:9100 (no container) /healthz; metrics off" in served.line()


# --- configurations that cannot work ------------------------------------------------------------

# (name, environment, process types that must refuse, the variable the message must name)
BROKEN: list[tuple[str, dict[str, str], tuple[str, ...], str]] = [
    (
        "webhook URL without its secret",
        {k: v for k, v in WEBHOOK.items() if k != "TELEGRAM_WEBHOOK_SECRET"},
        ("run", "web", "clock"),
        "TELEGRAM_WEBHOOK_SECRET",
    ),
    (
        "web with a Telegram token but no webhook URL",
        {"TELEGRAM_BOT_TOKEN": TOKEN},
        ("web",),
        "TELEGRAM_WEBHOOK_URL",
    ),
    (
        "a Socket Mode token for a process that never opens a socket",
        SOCKET,
        ("web", "clock"),
        "SLACK_APP_TOKEN",
    ),
    ("web with nothing to serve", {}, ("web",), "TELEGRAM_BOT_TOKEN"),
    ("clock with nothing to send to", {}, ("clock",), "TELEGRAM_BOT_TOKEN"),
    (
        "Slack over HTTP without the signing secret",
        {"SLACK_BOT_TOKEN": "xoxb-1"},
        ("run", "web"),
        "SLACK_SIGNING_SECRET",
    ),
    (
        "half of Slack's OAuth pair",
        {"SLACK_CLIENT_ID": "1.2"},
        ("run", "web", "clock"),
        "SLACK_CLIENT_SECRET",
    ),
    (
        "Slack OAuth without the signing secret",
        {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "x"},
        ("run", "web", "clock"),
        "SLACK_SIGNING_SECRET",
    ),
    (
        "Slack OAuth over Socket Mode",
        {**OAUTH, "SLACK_APP_TOKEN": "xapp-1"},
        ("run",),
        "SLACK_APP_TOKEN",
    ),
    (
        "a Telegram option without the token",
        {"TELEGRAM_WEBHOOK_URL": "https://coach.example.org/telegram"},
        ("run", "web", "clock"),
        "TELEGRAM_BOT_TOKEN",
    ),
    (
        "a Slack option without a token",
        {"SLACK_SIGNING_SECRET": "x"},
        ("run", "web", "clock"),
        "SLACK_BOT_TOKEN",
    ),
    (
        "a plain http webhook (only a self-hosted Bot API server calls those)",
        {**WEBHOOK, "TELEGRAM_WEBHOOK_URL": "http://coach.example.org/telegram"},
        ("run", "web", "clock"),
        "TELEGRAM_WEBHOOK_URL",
    ),
    ("a port that is not a number", {"PORT": "eighty"}, ("run", "web", "clock", "chat"), "PORT"),
    (
        "a bind address that is not one",
        {"HOST": "every interface"},
        ("run", "web", "clock", "chat"),
        "HOST",
    ),
    (
        "a webhook secret Telegram would refuse",
        {**WEBHOOK, "TELEGRAM_WEBHOOK_SECRET": "not allowed!"},
        ("run", "web", "clock", "chat"),
        "TELEGRAM_WEBHOOK_SECRET",
    ),
    (
        "a database URL that is not one",
        {"DATABASE_URL": "hipcoach.db"},
        ("run", "web", "clock", "chat"),
        "DATABASE_URL",
    ),
    (
        "an unsupported database",
        {"DATABASE_URL": "mysql://db/hipcoach"},
        ("run", "chat"),
        "DATABASE_URL",
    ),
    (
        "a tick interval that is not a number",
        {"HIPCOACH_TICK_SECONDS": "often"},
        ("clock", "run"),
        "HIPCOACH_TICK_SECONDS",
    ),
    (
        "metrics neither on nor off",
        {"HIPCOACH_METRICS": "maybe"},
        ("web", "run"),
        "HIPCOACH_METRICS",
    ),
]

CASES = [
    (name, env, process, variable)
    for name, env, processes, variable in BROKEN
    for process in processes
]
# The ones the issue names, and one unreadable value per process type, run as real processes.
SPAWNED = {
    "webhook URL without its secret",
    "web with a Telegram token but no webhook URL",
    "a Socket Mode token for a process that never opens a socket",
    "web with nothing to serve",
    "clock with nothing to send to",
    "Slack over HTTP without the signing secret",
    "a port that is not a number",
}
SPAWN_CASES = [case for case in CASES if case[0] in SPAWNED]


def case_id(case: tuple[str, dict[str, str], str, str]) -> str:
    return f"{case[2]}: {case[0]}"


def verdict_problems(env: dict[str, str], process: str) -> list[str]:
    try:
        verdict = plan(process, settings(env))  # type: ignore[arg-type]
    except ConfigError as error:
        return [name for name, _ in error.problems]
    return [problem.variable for problem in verdict.problems]


@pytest.mark.parametrize(("name", "env", "process", "variable"), CASES, ids=map(case_id, CASES))
def test_a_configuration_that_cannot_work_is_refused_naming_the_variable(
    name: str, env: dict[str, str], process: str, variable: str
) -> None:
    assert variable in verdict_problems(env, process), name


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any hipcoach variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in env_names()}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'never-created.db'}"
    env.update(extra)
    return env


def hipcoach(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=str(ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "env", "process", "variable"), SPAWN_CASES, ids=map(case_id, SPAWN_CASES)
)
def test_each_process_type_refuses_to_start_a_broken_configuration(
    tmp_path: Path, name: str, env: dict[str, str], process: str, variable: str
) -> None:
    done = hipcoach(process, env=clean_env(tmp_path, **env))
    assert done.returncode == EX_CONFIG, (name, done.stdout, done.stderr)
    assert f"hipcoach {process}: refusing to start" in done.stderr
    assert variable in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    # Nothing was started: not even the database was touched.
    assert not (tmp_path / "never-created.db").exists()
    for value in env.values():
        if "SECRET" in value:
            assert value not in done.stderr + done.stdout


# --- hipcoach check -------------------------------------------------------------------------------


def test_check_prints_the_verdicts_of_a_good_configuration_and_starts_nothing(
    tmp_path: Path,
) -> None:
    done = hipcoach("check", "web", "clock", env=clean_env(tmp_path, **WEBHOOK, **SLACK_HTTP))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("hipcoach web: Telegram webhook; Slack HTTP, one workspace;")
    assert lines[1].startswith("hipcoach clock: Telegram sending only; Slack sending only")
    assert not (tmp_path / "never-created.db").exists()
    assert "SECRET" not in done.stdout + done.stderr


def test_check_names_what_to_fix_in_a_bad_configuration(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_URL=WEBHOOK["TELEGRAM_WEBHOOK_URL"]
    )
    done = hipcoach("check", "web", env=env)
    assert done.returncode == EX_CONFIG
    assert "hipcoach web: refusing to start:" in done.stdout
    assert "TELEGRAM_WEBHOOK_SECRET: TELEGRAM_WEBHOOK_URL is set" in done.stdout


def test_check_without_names_shows_every_process_type_and_which_would_start(tmp_path: Path) -> None:
    polling = hipcoach("check", env=clean_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN))
    assert polling.returncode == 0
    assert "hipcoach run: Telegram polling" in polling.stdout
    assert "would start: run, clock, chat; would refuse: web" in polling.stdout
    broken = hipcoach("check", env=clean_env(tmp_path, SLACK_CLIENT_ID="1.2"))
    assert broken.returncode == EX_CONFIG
    assert "would start: chat; would refuse: run, web, clock" in broken.stdout
    unreadable = hipcoach("check", env=clean_env(tmp_path, PORT="eighty"))
    assert unreadable.returncode == EX_CONFIG
    assert "PORT" in unreadable.stderr


def test_every_contract_variable_is_read_from_the_environment() -> None:
    design_names = {
        "DATABASE_URL",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_URL",
        "TELEGRAM_FILE_URL",
        "TELEGRAM_WEBHOOK_URL",
        "TELEGRAM_WEBHOOK_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "PORT",
        "HOST",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
    }
    assert design_names <= set(env_names())
    values = {name: f"value-{n}" for n, name in enumerate(sorted(design_names))}
    values.update(PORT="8123", HOST="127.0.0.2", DATABASE_URL="sqlite:///x.db")
    for url in ("TELEGRAM_API_URL", "TELEGRAM_FILE_URL", "TELEGRAM_WEBHOOK_URL", "SLACK_API_URL"):
        values[url] = f"https://{url.lower()}.example/"
    values["TELEGRAM_WEBHOOK_SECRET"] = "abc_DEF-123"
    loaded = settings(values)
    for name, field in env_names().items():
        if name in values and name not in ("PORT", "DATABASE_URL"):
            assert getattr(loaded, field) == values[name], name
    assert loaded.port == 8123
    assert loaded.database_url == "sqlite+aiosqlite:///x.db"


def test_empty_variables_count_as_unset_as_compose_hands_them_over() -> None:
    loaded = settings({"TELEGRAM_BOT_TOKEN": "", "PORT": "", "HOST": " ", "HIPCOACH_METRICS": ""})
    assert loaded.telegram_bot_token is None and loaded.port is None and loaded.metrics


# --- the README's table is the code's -----------------------------------------------------------

T, W = {"TELEGRAM_BOT_TOKEN": TOKEN}, {"TELEGRAM_WEBHOOK_URL": WEBHOOK["TELEGRAM_WEBHOOK_URL"]}
S = {"TELEGRAM_WEBHOOK_SECRET": WEBHOOK["TELEGRAM_WEBHOOK_SECRET"]}
B, G, A = (
    {"SLACK_BOT_TOKEN": "xoxb-1"},
    {"SLACK_SIGNING_SECRET": "g"},
    {"SLACK_APP_TOKEN": "xapp-1"},
)
OA = {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c"}
# README row -> environments it stands for, each with the variable a "(the other one)" or
# "(that variable)" cell means.
README_ROWS: dict[str, list[tuple[dict[str, str], str | None]]] = {
    "none": [({}, None)],
    "T": [(T, None)],
    "T W S": [({**T, **W, **S}, None)],
    "T W, no S": [({**T, **W}, None)],
    "W `http://` without `TELEGRAM_API_URL`": [
        ({**T, **S, "TELEGRAM_WEBHOOK_URL": "http://coach.example.org/telegram"}, None)
    ],
    "W, S, `TELEGRAM_API_URL` or `TELEGRAM_FILE_URL` without T": [
        (W, None),
        (S, None),
        ({"TELEGRAM_API_URL": "http://127.0.0.1:8081/bot"}, None),
        ({"TELEGRAM_FILE_URL": "http://127.0.0.1:8081/file/bot"}, None),
    ],
    "B G": [({**B, **G}, None)],
    "B, no G, no A": [(B, None)],
    "B A": [({**B, **A}, None)],
    "O G": [({**OA, **G}, None)],
    "O without G": [(OA, None)],
    "only one of `SLACK_CLIENT_ID` / `SLACK_CLIENT_SECRET`": [
        ({"SLACK_CLIENT_ID": "1.2", **G}, "SLACK_CLIENT_SECRET"),
        ({"SLACK_CLIENT_SECRET": "c", **G}, "SLACK_CLIENT_ID"),
    ],
    "O A": [({**OA, **G, **A}, None)],
    "G, A or `SLACK_API_URL` without B or O": [
        (G, None),
        (A, None),
        ({"SLACK_API_URL": "http://127.0.0.1:8082/api/"}, None),
    ],
    "a value that does not parse (`PORT=eighty`, `HOST`, `DATABASE_URL`, a secret Telegram "
    "would refuse, `HIPCOACH_*`)": [
        ({"PORT": "eighty"}, "PORT"),
        ({"HOST": "every interface"}, "HOST"),
        ({"DATABASE_URL": "hipcoach.db"}, "DATABASE_URL"),
        ({**T, **W, "TELEGRAM_WEBHOOK_SECRET": "no spaces allowed"}, "TELEGRAM_WEBHOOK_SECRET"),
        ({"HIPCOACH_DISPATCH_SECONDS": "-1"}, "HIPCOACH_DISPATCH_SECONDS"),
    ],
}


def readme_matrix() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    table = text.split("| variables | `run` | `web` | `clock` | `chat` |", 1)[1]
    rows = []
    for line in table.strip().splitlines()[1:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_readme_matrix_says_what_the_code_does() -> None:
    rows = readme_matrix()
    assert [row[0] for row in rows] == list(README_ROWS)
    for first, *cells in rows:
        for env, special in README_ROWS[first]:
            named: str | None = None
            for process, cell in zip(("run", "web", "clock", "chat"), cells, strict=True):
                where = f"{first!r} / {process}: {cell}"
                problems = verdict_problems(env, process)
                if not cell.startswith("refuses"):
                    verdict = plan(process, settings(env))  # type: ignore[arg-type]
                    assert not problems, where
                    line = verdict.line()
                    for words, shown in (
                        ("polling", "Telegram polling"),
                        ("Telegram webhook", "Telegram webhook"),
                        ("Socket Mode", "Slack Socket Mode"),
                        ("Slack HTTP", "Slack HTTP"),
                        ("OAuth", "OAuth, many workspaces"),
                        ("console", "console chat"),
                        ("sends Telegram", "Telegram sending only"),
                        ("sends Slack", "Slack sending only"),
                        ("ignored", "settings are ignored"),
                    ):
                        if words in cell or (cell == "same" and words in cells[0]):
                            assert shown in line, where
                    continue
                match = re.search(r"\(`(\w+)`", cell)
                if match:
                    named = match[1]
                elif "the other one" in cell or "that variable" in cell:
                    named = special
                assert named is not None, where
                assert named in problems, (where, problems)


# --- a platform that refuses the connection ----------------------------------------------------


@pytest.mark.parametrize("process", ["web", "run", "clock"])
async def test_a_token_telegram_rejects_stops_the_process_with_one_line(
    tmp_path: Path, process: str
) -> None:
    from tests.fake_telegram import FakeTelegram

    fake = FakeTelegram()
    await fake.start()
    wrong = "999999:SECRET-revoked-token"
    env = clean_env(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'hipcoach.db'}",
        TELEGRAM_BOT_TOKEN=wrong,
        TELEGRAM_API_URL=fake.api_url,
        TELEGRAM_WEBHOOK_URL=WEBHOOK["TELEGRAM_WEBHOOK_URL"],
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK["TELEGRAM_WEBHOOK_SECRET"],
        HOST="127.0.0.1",
    )
    try:
        done = await asyncio.to_thread(hipcoach, process, env=env)
    finally:
        await fake.stop()
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"hipcoach {process}: Telegram did not accept the connection")
    assert "InvalidToken" in last and "check TELEGRAM_BOT_TOKEN" in last
    assert "Traceback" not in done.stderr
    assert "SECRET-revoked-token" not in done.stderr + done.stdout
