"""The `hipcoach` command line: run, chat, web, clock, check and db upgrade.

Before starting, every process type reads the settings, decides what it will run
(`bot.verdict`), prints that in one line on stderr, and refuses with exit status 78 and the
variable to set when the configuration cannot work. `hipcoach check` prints the same
verdicts and starts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, cast

from sqlalchemy.engine import make_url

from bot import gc_tuning, logsafe
from bot.config import ConfigError, Settings, env_names
from bot.storage.db import Database, upgrade_async
from bot.verdict import EX_CONFIG, PROCESS_TYPES, Plan, Process, plan

log = logging.getLogger("hipcoach")


class StartupError(Exception):
    """Something outside hipcoach stops it from starting (e.g. the database is unreachable)."""


def _redact(text: str, settings: Settings) -> str:
    # Library errors can quote a rejected token ("The token `123:abc` was rejected").
    for name in env_names().values():
        value = getattr(settings, name)
        if isinstance(value, str) and len(value) >= 4 and name not in ("host", "console_user"):
            text = text.replace(value, "***")
    password = make_url(settings.database_url).password
    if password and len(str(password)) >= 4:
        text = text.replace(str(password), "***")
    return text


async def _open(settings: Settings) -> Database:
    try:
        await upgrade_async(settings.database_url)
    except Exception as error:
        # One line an operator can act on instead of a driver traceback; no URL, no password.
        first = _redact((str(error).strip().splitlines() or [""])[0][:300], settings)
        raise StartupError(
            f"DATABASE_URL: cannot open the database ({type(error).__name__}: {first})"
        ) from error
    return Database(settings.database_url)


def _coach(db: Database) -> Any:
    from bot.service import Coach
    from scheduler.ratelimit import RateLimiter

    # One pacing per process for every platform's limits: the replies this Coach sends at
    # once and its scheduler's dispatcher (which takes `coach.pacer`) share it.
    return Coach(db, pacer=RateLimiter())


# What to check when a platform does not answer at start-up.
_PLATFORM_VARIABLES = {
    "telegram": "TELEGRAM_BOT_TOKEN (and TELEGRAM_API_URL if set)",
    "slack": "SLACK_BOT_TOKEN or SLACK_APP_TOKEN (and SLACK_API_URL if set)",
}


async def _start(settings: Settings, adapter: Any, step: Callable[[], Awaitable[None]]) -> None:
    """Connect one adapter; a platform that refuses or cannot be reached stops the process
    with one line naming what to check (exit 1: it may be passing, so a restart may help)."""
    try:
        await step()
    except Exception as error:
        platform = str(getattr(adapter, "platform", "platform"))
        detail = _redact(f"{type(error).__name__}: {error}".splitlines()[0][:300], settings)
        raise StartupError(
            f"{platform.capitalize()} did not accept the connection at start-up ({detail}); "
            f"check {_PLATFORM_VARIABLES.get(platform, 'its settings')}"
        ) from error


def _platform_adapters(settings: Settings, coach: Any) -> list[Any]:
    """The adapters the environment asks for (Telegram and/or Slack)."""
    adapters: list[Any] = []
    if settings.telegram_enabled:
        from bot.adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(settings, coach))
    if settings.slack_enabled:
        from bot.adapters.slack import SlackAdapter

        adapters.append(SlackAdapter(settings, coach))
    return adapters


HEALTH_CHECK_SECONDS = 1.0


def _failure(adapters: list[Any]) -> str | None:
    """The first adapter's reason for being unhealthy (a platform task died), if any."""
    for adapter in adapters:
        health = getattr(adapter, "health", None)
        reason = health() if health is not None else None
        if reason:
            return str(reason)
    return None


async def _watch(adapters: list[Any], stop: asyncio.Event) -> int:
    """Until `stop` is set: 0. If a platform task dies first: 1, so the process exits
    non-zero and its supervisor restarts it."""
    while not stop.is_set():
        reason = _failure(adapters)
        if reason:
            log.error("stopping: %s", reason)
            return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_CHECK_SECONDS)
    return 0


async def _until_stopped(adapters: list[Any] | None = None) -> int:
    """Until SIGINT/SIGTERM (0), or until a platform task dies (1)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return await _watch(adapters or [], stop)


async def _serve(app: Any, where: tuple[str, int], adapters: list[Any] | None = None) -> int:
    """Serve `app` until SIGINT/SIGTERM (0) or until one of `adapters` reports a dead
    platform task (1), then return so the caller's cleanup runs."""
    import uvicorn

    class Server(uvicorn.Server):
        # uvicorn re-raises a caught SIGTERM once it has stopped, which kills the process
        # before the scheduler and adapters are shut down; the signals are ours instead.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    host, port = where
    server = Server(uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="on"))
    serving = asyncio.create_task(server.serve(), name="http")
    stopping = asyncio.create_task(_until_stopped(adapters), name="signals")
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    code = stopping.result() if stopping.done() else 0
    stopping.cancel()
    await serving
    return code


def _scheduler(db: Database, coach: Any, senders: dict[str, Any]) -> Any:
    from scheduler import Scheduler

    return Scheduler(db, coach, senders)


async def chat(settings: Settings, _plan: Plan | None = None) -> int:
    """The console chat, with the scheduler running beside it."""
    from bot.adapters.console import ConsoleChat

    db = await _open(settings)
    coach = _coach(db)
    console = ConsoleChat(coach, user_id=settings.console_user, files_dir=settings.files_dir)
    scheduler = _scheduler(db, coach, {"console": console})
    try:
        await scheduler.start()
        await console.run(sys.stdin.readline, prompt=sys.stdin.isatty())
    finally:
        await scheduler.shutdown()
        await coach.flush()
        await db.dispose()
    return 0


async def run(settings: Settings, plan: Plan) -> int:
    """Everything in one process; the console chat when no platform is configured."""
    if plan.console:
        return await chat(settings, plan)
    from bot.web import build_app

    db = await _open(settings)
    coach = _coach(db)
    adapters = _platform_adapters(settings, coach)
    web_adapters = []
    scheduler = _scheduler(db, coach, {a.platform: a for a in adapters})
    try:
        for adapter in adapters:
            if adapter.platform == "telegram" and plan.telegram == "polling":
                await _start(settings, adapter, adapter.start_polling)
            elif adapter.platform == "slack" and (plan.slack or "").startswith("Socket Mode"):
                await _start(settings, adapter, adapter.start_socket_mode)
            else:
                await _start(settings, adapter, adapter.start_web)
                web_adapters.append(adapter)
        await scheduler.start()
        if plan.http is not None:
            app = build_app(
                db,
                web_adapters,
                watch=adapters,
                metrics_enabled=settings.metrics,
                start_adapters=False,
            )
            code = await _serve(app, plan.http, adapters)
        else:
            code = await _until_stopped(adapters)
    finally:
        await scheduler.shutdown()
        for adapter in adapters:
            await adapter.stop()
        await coach.flush()
        await db.dispose()
    return code


async def web(settings: Settings, plan: Plan) -> int:
    from bot.web import build_app

    assert plan.http is not None
    db = await _open(settings)
    coach = _coach(db)
    adapters = _platform_adapters(settings, coach)
    try:
        for adapter in adapters:
            await _start(settings, adapter, adapter.start_web)
        app = build_app(db, adapters, metrics_enabled=settings.metrics, start_adapters=False)
        return await _serve(app, plan.http)
    finally:
        for adapter in adapters:
            await adapter.stop()
        await coach.flush()
        await db.dispose()


async def clock(settings: Settings, plan: Plan) -> int:
    """The scheduler; /healthz and /metrics on PORT when it is set."""
    from bot.web import build_app

    db = await _open(settings)
    coach = _coach(db)
    adapters = _platform_adapters(settings, coach)
    scheduler = _scheduler(db, coach, {a.platform: a for a in adapters})
    try:
        for adapter in adapters:
            await _start(settings, adapter, adapter.start_sender)
        await scheduler.start()
        if plan.http is not None:
            app = build_app(db, [], watch=adapters, metrics_enabled=settings.metrics)
            return await _serve(app, plan.http)
        return await _until_stopped()
    finally:
        await scheduler.shutdown()
        for adapter in adapters:
            await adapter.stop()
        await coach.flush()
        await db.dispose()


def check(settings: Settings, processes: list[str]) -> int:
    """Print each process type's verdict. Named process types: 0 only if all would start.
    None named: every type is shown, and 0 if run, web or clock would start."""
    plans = [plan(cast(Process, p), settings) for p in (processes or PROCESS_TYPES)]
    for each in plans:
        print(each.line() if each.ok else each.refusal())
    starting = [p.process for p in plans if p.ok]
    refusing = [p.process for p in plans if not p.ok]
    if processes:
        return 0 if not refusing else EX_CONFIG
    print(
        f"would start: {', '.join(starting) or 'none'}; "
        f"would refuse: {', '.join(refusing) or 'none'}"
    )
    return 0 if set(starting) & {"run", "web", "clock"} else EX_CONFIG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hipcoach", description="A coach for runners with sore hips."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="everything in one process (console chat without platform credentials)"
    )
    sub.add_parser("chat", help="the console chat")
    sub.add_parser("web", help="HTTP: Telegram webhook, Slack events, /healthz, /metrics")
    sub.add_parser("clock", help="the scheduler: due check-ins, warm-ups and the outbox")
    checker = sub.add_parser(
        "check", help="say what each process type would run with this environment"
    )
    checker.add_argument(
        "processes", nargs="*", metavar="PROCESS", help=f"any of {', '.join(PROCESS_TYPES)}"
    )
    db = sub.add_parser("db", help="database tasks")
    db.add_argument("action", choices=["upgrade"])
    return parser


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _configure_logging(settings: Settings, *, console: bool) -> None:
    # INFO at most, `-v` or not (the console's file always has it): DEBUG would let
    # libraries log statements with their values.
    """Log lines go to stderr; the console chat's go to a file instead. Its terminal
    shows stderr and stdout together, and a warning between two messages reads as part of
    the chat. A file that cannot be opened falls back to stderr at WARNING."""
    if not console:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
        return
    path = settings.console_log_file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as error:
        print(f"hipcoach: cannot write logs to {path} ({error}); using stderr", file=sys.stderr)
        logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)
        return
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    print(f"hipcoach: logs go to {path}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [p for p in getattr(args, "processes", []) if p not in PROCESS_TYPES]
    if unknown:
        choices = ", ".join(PROCESS_TYPES)
        parser.error(f"unknown process type {unknown[0]!r} (choose from {choices})")
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        what = "cannot use this environment" if args.command == "check" else "refusing to start"
        print(f"hipcoach {args.command}: {what}:", file=sys.stderr)
        for name, message in error.problems:
            print(f"  {name}: {message}", file=sys.stderr)
        return EX_CONFIG
    if args.command == "check":
        return check(settings, args.processes)

    chosen = plan(cast(Process, args.command), settings) if args.command in PROCESS_TYPES else None
    logsafe.install()  # before anything logs: no message text in any log line
    _configure_logging(settings, console=bool(chosen and chosen.console))
    if args.command == "db":
        asyncio.run(upgrade_async(settings.database_url))
        print("database is up to date")
        return 0
    assert chosen is not None
    if not chosen.ok:
        print(chosen.refusal(), file=sys.stderr)
        return EX_CONFIG
    print(chosen.line(), file=sys.stderr, flush=True)
    gc_tuning.tune()  # a long-running process: see bot/gc_tuning.py
    commands: dict[str, Callable[[Settings, Plan], Coroutine[Any, Any, int]]] = {
        "chat": chat,
        "run": run,
        "web": web,
        "clock": clock,
    }
    try:
        return asyncio.run(commands[args.command](settings, chosen))
    except StartupError as error:
        print(f"hipcoach {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
