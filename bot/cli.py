"""The `hipcoach` command line: run, chat, web, clock and db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from bot.config import Settings
from bot.storage.db import Database, upgrade_async

log = logging.getLogger("hipcoach")


async def _open(settings: Settings) -> Database:
    await upgrade_async(settings.database_url)
    return Database(settings.database_url)


def _coach(db: Database) -> Any:
    from bot.service import Coach

    return Coach(db)


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


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(app: Any, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(app, host="0.0.0.0", port=port, log_level="info", lifespan="on")
    await uvicorn.Server(config).serve()


async def chat(settings: Settings) -> int:
    """The console chat, with the scheduler running beside it."""
    from bot.adapters.console import ConsoleChat

    db = await _open(settings)
    coach = _coach(db)
    console = ConsoleChat(coach, user_id=settings.console_user, files_dir=settings.files_dir)
    scheduler = _scheduler(db, coach, {"console": console})
    try:
        if scheduler is not None:
            await scheduler.start()
        await console.run(sys.stdin.readline, prompt=sys.stdin.isatty())
    finally:
        if scheduler is not None:
            await scheduler.shutdown()
        await db.dispose()
    return 0


def _scheduler(db: Database, coach: Any, senders: dict[str, Any]) -> Any:
    try:
        from scheduler import Scheduler
    except ImportError:
        return None
    return Scheduler(db, coach, senders)


async def run(settings: Settings) -> int:
    """Everything in one process; the console chat when no platform is configured."""
    db = await _open(settings)
    coach = _coach(db)
    adapters = _platform_adapters(settings, coach)
    if not adapters:
        await db.dispose()
        return await chat(settings)
    from bot.web import build_app

    web_adapters = []
    for adapter in adapters:
        if adapter.platform == "telegram" and not settings.telegram_webhook_url:
            await adapter.start_polling()
        elif adapter.platform == "slack" and settings.slack_app_token:
            await adapter.start_socket_mode()
        else:
            web_adapters.append(adapter)
    scheduler = _scheduler(db, coach, {a.platform: a for a in adapters})
    if scheduler is not None:
        await scheduler.start()
    try:
        if web_adapters:
            await _serve(build_app(db, web_adapters), settings.port)
        else:
            await _until_stopped()
    finally:
        if scheduler is not None:
            await scheduler.shutdown()
        for adapter in adapters:
            if adapter not in web_adapters:
                await adapter.stop()
        await db.dispose()
    return 0


async def web(settings: Settings) -> int:
    from bot.web import build_app

    db = await _open(settings)
    adapters = _platform_adapters(settings, _coach(db))
    try:
        await _serve(build_app(db, adapters), settings.port)
    finally:
        await db.dispose()
    return 0


async def clock(settings: Settings) -> int:
    db = await _open(settings)
    coach = _coach(db)
    adapters = _platform_adapters(settings, coach)
    scheduler = _scheduler(db, coach, {a.platform: a for a in adapters})
    if scheduler is None:
        print(
            "hipcoach clock: the scheduler is not available in this version yet.", file=sys.stderr
        )
        await db.dispose()
        return 2
    for adapter in adapters:
        await adapter.start_sender()
    await scheduler.start()
    try:
        await _until_stopped()
    finally:
        await scheduler.shutdown()
        for adapter in adapters:
            await adapter.stop()
        await db.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hipcoach", description="A coach for runners with sore hips."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="everything in one process (console chat without platform credentials)"
    )
    sub.add_parser("chat", help="the console chat")
    sub.add_parser("web", help="HTTP: Telegram webhook, Slack events, /healthz")
    sub.add_parser("clock", help="the scheduler: due check-ins, warm-ups and the outbox")
    db = sub.add_parser("db", help="database tasks")
    db.add_argument("action", choices=["upgrade"])
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    console = args.command == "chat" or (
        args.command == "run" and not (settings.telegram_enabled or settings.slack_enabled)
    )
    logging.basicConfig(
        # The console chat shares the terminal: only warnings, unless asked.
        level=logging.WARNING if console and not args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.command == "db":
        asyncio.run(upgrade_async(settings.database_url))
        print("database is up to date")
        return 0
    commands = {"chat": chat, "run": run, "web": web, "clock": clock}
    try:
        return asyncio.run(commands[args.command](settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
