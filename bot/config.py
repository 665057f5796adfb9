"""Settings from the environment (the names are the contract in DESIGN.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from bot.storage.db import default_database_url


class Settings(BaseModel):
    database_url: str
    telegram_bot_token: str | None = None
    telegram_api_url: str | None = None
    telegram_file_url: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    port: int = 8080
    files_dir: Path = Path("hipcoach-files")
    console_user: str = "local"

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def slack_oauth_enabled(self) -> bool:
        """Slack distribution: any workspace installs the app ("Add to Slack")."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token) or self.slack_oauth_enabled

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            database_url=get("DATABASE_URL") or default_database_url(),
            telegram_bot_token=get("TELEGRAM_BOT_TOKEN"),
            telegram_api_url=get("TELEGRAM_API_URL"),
            telegram_file_url=get("TELEGRAM_FILE_URL"),
            telegram_webhook_url=get("TELEGRAM_WEBHOOK_URL"),
            telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_api_url=get("SLACK_API_URL"),
            slack_client_id=get("SLACK_CLIENT_ID"),
            slack_client_secret=get("SLACK_CLIENT_SECRET"),
            port=int(get("PORT") or 8080),
            files_dir=Path(get("HIPCOACH_FILES_DIR") or "hipcoach-files"),
            console_user=get("HIPCOACH_CONSOLE_USER") or "local",
        )
