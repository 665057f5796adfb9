"""The deploy recipes, read as an operator would: every command and environment in the
compose files, the Procfile and the Dockerfile is one the CLI accepts, judged by
`hipcoach check` with exactly that environment. There is no Docker daemon here, so the
containers themselves are not started; the entry point (Caddy) is run against a real
`hipcoach web` when `caddy` is installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.cli import build_parser
from bot.config import env_names
from bot.verdict import PROCESS_TYPES
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.test_config import OAUTH, SLACK_HTTP, WEBHOOK
from tests.test_metrics import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "HIPCOACH_HTTP_PORT"}  # interpolation, never passed on
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def compose(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's `${VAR}` / `${VAR:-default}` with the operator's .env."""
    return _INTERPOLATION.sub(lambda m: dotenv.get(m[1]) or (m[2] or ""), value)


def service_env(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, str]:
    raw = service.get("environment") or {}
    assert isinstance(raw, dict), "environment as a mapping"
    return {key: interpolate(str(value), dotenv) for key, value in raw.items()}


def hipcoach_services(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in data["services"].items()
        if service.get("command", [None])[0] == "hipcoach"
    }


def check(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", *args],
        cwd=str(ROOT),
        env=full,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def accepts(argv: list[str]) -> None:
    """The CLI parses `argv` (a usage error exits 2)."""
    build_parser().parse_args(argv)


# What an operator puts in .env for each recipe, and what the processes must then say.
HTTP_SETUPS = {
    "Telegram webhook and Slack HTTP": (
        {**WEBHOOK, **SLACK_HTTP},
        {"web": "Telegram webhook; Slack HTTP, one workspace", "clock": "Telegram sending only"},
    ),
    "Telegram webhook only": (
        WEBHOOK,
        {"web": "Telegram webhook; scheduler off", "clock": "Telegram sending only"},
    ),
    "Slack for many workspaces": (
        OAUTH,
        {"web": "Slack HTTP, OAuth, many workspaces", "clock": "Slack sending only, OAuth"},
    ),
}
SOCKET_SETUPS = {
    "Telegram polling and Slack Socket Mode": (
        {"TELEGRAM_BOT_TOKEN": TOKEN, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"},
        {"bot": "Telegram polling; Slack Socket Mode, one workspace; scheduler on"},
    ),
    "Telegram polling only": ({"TELEGRAM_BOT_TOKEN": TOKEN}, {"bot": "Telegram polling"}),
}


@pytest.mark.parametrize(
    ("file", "setup"),
    [("docker-compose.yml", s) for s in HTTP_SETUPS]
    + [("docker-compose.socket.yml", s) for s in SOCKET_SETUPS],
)
def test_every_compose_service_runs_a_command_the_cli_accepts_with_its_environment(
    file: str, setup: str
) -> None:
    dotenv, expected = {**HTTP_SETUPS, **SOCKET_SETUPS}[setup]
    services = hipcoach_services(compose(file))
    assert set(expected) < set(services)  # plus the migration
    for name, service in services.items():
        argv = service["command"][1:]
        accepts(argv)
        env = service_env(service, dotenv)
        unknown = set(env) - set(env_names())
        assert not unknown, f"{file} {name}: variables hipcoach does not read: {unknown}"
        if argv[0] not in PROCESS_TYPES:
            assert argv == ["db", "upgrade"] and set(env) == {"DATABASE_URL"}
            continue
        done = check([argv[0]], env)
        assert done.returncode == 0, f"{file} {name}:\n{done.stdout}{done.stderr}"
        assert expected[name] in done.stdout, done.stdout
        assert "database PostgreSQL postgres:5432/hipcoach" in done.stdout
        # Health checks and Prometheus reach every process on its PORT.
        test = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{env['PORT']}/healthz" in test
        assert f":{env['PORT']} (" in done.stdout and "/healthz /metrics" in done.stdout


def test_compose_with_an_empty_env_file_refuses_loudly_instead_of_running_silent() -> None:
    services = hipcoach_services(compose("docker-compose.yml"))
    for name in ("web", "clock"):
        done = check([name], service_env(services[name], {}))
        assert done.returncode != 0 and "TELEGRAM_BOT_TOKEN" in done.stdout


def test_web_scales_behind_one_entry_point() -> None:
    data = compose("docker-compose.yml")
    web = data["services"]["web"]
    assert "ports" not in web  # replicas would clash on a fixed host port
    proxy = data["services"]["proxy"]
    assert proxy["ports"] == ["${HIPCOACH_HTTP_PORT:-8080}:80"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "dynamic a {$WEB_SERVICE:web} {$WEB_PORT:8080}" in caddyfile
    assert web["environment"]["PORT"] == "8080"
    # Neither web nor clock is handed a token it could never use.
    for name in ("web", "clock"):
        assert "SLACK_APP_TOKEN" not in data["services"][name]["environment"]
    socket_bot = compose("docker-compose.socket.yml")["services"]["bot"]
    assert "TELEGRAM_WEBHOOK_URL" not in socket_bot["environment"]


def test_env_example_lists_every_variable_with_a_comment() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    names = []
    for n, line in enumerate(lines):
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert value == "", f"{name}: .env.example holds no values"
            assert lines[n - 1].startswith("#") or lines[n - 1].startswith(names[-1] + "="), name
            names.append(name)
    assert len(names) == len(set(names))
    assert set(names) == set(env_names()) | COMPOSE_ONLY
    used = set()
    for file in ("docker-compose.yml", "docker-compose.socket.yml"):
        used |= {m[0] for m in _INTERPOLATION.findall((ROOT / file).read_text())}
    assert used <= set(names)


def test_procfile_and_dockerfile_commands_are_ones_the_cli_accepts() -> None:
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        kind, _, command = line.partition(":")
        processes[kind] = command.strip()
        for part in command.split("&&"):
            argv = shlex.split(part)
            assert argv[0] == "hipcoach"
            accepts(argv[1:])
    assert processes == {
        "release": "hipcoach check web clock && hipcoach db upgrade",
        "web": "hipcoach web",
        "clock": "hipcoach clock",
    }
    cmd = re.search(r"^CMD (.+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert cmd is not None
    argv = json.loads(cmd[1])
    assert argv[0] == "hipcoach"
    accepts(argv[1:])


def test_the_readme_configuration_names_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in env_names() if f"`{name}`" not in section]
    assert not missing


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
async def test_the_entry_point_proxies_to_web_and_keeps_metrics_private(
    sqlite_url: str, tmp_path: Path
) -> None:
    fake = FakeTelegram()
    await fake.start()
    web_port, proxy_port = free_port(), free_port()
    secret = "entry-point-secret"
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": sqlite_url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake.api_url,
        # A self-hosted Bot API server (the fake) may call plain http:// webhooks.
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/telegram",
        "TELEGRAM_WEBHOOK_SECRET": secret,
        "HOST": "127.0.0.1",
        "PORT": str(web_port),
    }
    web = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "web", cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    proxy = await asyncio.create_subprocess_exec(
        "caddy", "run", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile",
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "PROXY_PORT": str(proxy_port),
            "WEB_SERVICE": "localhost",
            "WEB_PORT": str(web_port),
        },
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy_port}", timeout=10) as http:
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert web.returncode is None and proxy.returncode is None
                await asyncio.sleep(0.1)
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert fake.calls_to("setWebhook")[-1].params["url"].endswith("/telegram")
            assert (await http.get("/metrics")).status_code == 404
            direct = await http.get(f"http://127.0.0.1:{web_port}/metrics")
            assert direct.status_code == 200 and "hipcoach_events_handled_total" in direct.text
            update = {
                "update_id": fake.next_update_id(),
                **fake.message_update(
                    {"id": 4711, "type": "private", "first_name": "Sam"},
                    {"id": 4711, "is_bot": False, "first_name": "Sam"},
                    "/start",
                ),
            }
            refused = await http.post("/telegram", json=update)
            assert refused.status_code == 403
            answered = await http.post(
                "/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
            )
            assert answered.status_code == 200
            assert fake.calls_to("sendMessage", 4711)
    finally:
        for child in (proxy, web):
            if child.returncode is None:
                child.terminate()
            await child.wait()
        await fake.stop()
    assert web.returncode == 0  # SIGTERM: a clean shutdown, not a kill


def provider_style(url: str) -> str:
    """A migrated test database's URL as a hosting provider writes it."""
    if url.startswith("sqlite"):
        return url
    return url.replace("postgresql+asyncpg://", "postgres://") + "?sslmode=disable"


async def test_web_and_clock_run_side_by_side_as_the_compose_recipe_runs_them(
    db_url: str, tmp_path: Path
) -> None:
    from tests.fault_tools import Hipcoach, wait_until
    from tests.test_faults_kill import onboard
    from tests.test_metrics import make_due, samples, value
    from tests.test_scheduler_helpers import PROMPT

    runner = 880001
    await onboard(db_url, runner)
    await make_due(db_url, runner)
    fake = FakeTelegram()
    await fake.start()
    web_port, clock_port = free_port(), free_port()
    secret = "side-by-side-secret"
    # One environment for both, as compose's x-platforms gives it; only PORT differs here
    # because both share this machine's loopback.
    shared = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": provider_style(db_url),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": fake.api_url,
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{web_port}/telegram",
        "TELEGRAM_WEBHOOK_SECRET": secret,
        "HIPCOACH_METRICS": "on",
        "HIPCOACH_TICK_SECONDS": "1",
        "HIPCOACH_DISPATCH_SECONDS": "1",
        "HOST": "127.0.0.1",
    }
    log = tmp_path / "hipcoach.log"
    web = await Hipcoach("web", {**shared, "PORT": str(web_port)}, log).start()
    clock = await Hipcoach("clock", {**shared, "PORT": str(clock_port)}, log).start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for port, process in ((web_port, web), (clock_port, clock)):
                for _ in range(300):
                    try:
                        health = await http.get(f"http://127.0.0.1:{port}/healthz")
                        if health.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert process.returncode is None, process.log()
                    await asyncio.sleep(0.1)
                assert health.json() == {"status": "ok"}, process.log()
            # The clock sends the due reminder; web answers a runner through the webhook.
            await wait_until(
                lambda: any(PROMPT in c.text for c in fake.calls_to("sendMessage", runner)),
                "the reminder from clock",
                process=clock,
            )
            update = {
                "update_id": fake.next_update_id(),
                **fake.message_update(
                    {"id": 880002, "type": "private", "first_name": "Sam"},
                    {"id": 880002, "is_bot": False, "first_name": "Sam"},
                    "/start",
                ),
            }
            answered = await http.post(
                f"http://127.0.0.1:{web_port}/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": secret},
            )
            # 200 once the turn is stored; the reply follows while Telegram has its answer.
            assert answered.status_code == 200
            await wait_until(lambda: fake.calls_to("sendMessage", 880002), "the reply to /start")
            # The dispatcher can send the reminder while its tick is still draining nudges
            # and warm-ups; the tick's histograms are written when the tick ends.
            for _ in range(300):
                clock_metrics = samples(
                    (await http.get(f"http://127.0.0.1:{clock_port}/metrics")).text
                )
                if value(clock_metrics, "hipcoach_tick_due_users_sum") >= 1:
                    break
                await asyncio.sleep(0.1)
            web_metrics = samples((await http.get(f"http://127.0.0.1:{web_port}/metrics")).text)
    finally:
        await web.stop()
        await clock.stop()
        await fake.stop()
    assert value(clock_metrics, "hipcoach_sends_total", platform="telegram", result="ok") == 1
    assert value(clock_metrics, "hipcoach_tick_due_users_sum") >= 1
    assert (
        value(web_metrics, "hipcoach_events_handled_total", platform="telegram", kind="command")
        == 1
    )
    # SIGTERM: both shut down cleanly rather than being killed mid-way.
    assert (web.returncode, clock.returncode) == (0, 0), log.read_text()[-3000:]
