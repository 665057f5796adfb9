"""The `hipcoach` command line: run, chat, web, clock and db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.config import Settings
from bot.storage.db import Database, upgrade_async

log = logging.getLogger("hipcoach")


async def _open(settings: Settings) -> Database:
    await upgrade_async(settings.database_url)
    return Database(settings.database_url)


async def chat(settings: Settings) -> int:
    from bot.adapters.console import ConsoleChat
    from bot.service import Coach

    db = await _open(settings)
    try:
        console = ConsoleChat(
            Coach(db), user_id=settings.console_user, files_dir=settings.files_dir
        )
        await console.run(sys.stdin.readline, prompt=sys.stdin.isatty())
    finally:
        await db.dispose()
    return 0


async def run(settings: Settings) -> int:
    if settings.telegram_enabled or settings.slack_enabled:
        print(
            "Telegram and Slack adapters are not available in this version yet; "
            "unset TELEGRAM_BOT_TOKEN / SLACK_BOT_TOKEN to use the console chat.",
            file=sys.stderr,
        )
        return 2
    return await chat(settings)


def not_yet(name: str) -> int:
    print(
        f"hipcoach {name}: not yet available (it arrives with the scheduler and platform adapters)."
    )
    return 2


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

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    settings = Settings.from_env()
    if args.command == "db":
        asyncio.run(upgrade_async(settings.database_url))
        print("database is up to date")
        return 0
    if args.command == "chat":
        return asyncio.run(chat(settings))
    if args.command == "run":
        return asyncio.run(run(settings))
    return not_yet(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
