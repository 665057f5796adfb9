"""slack/manifest.yml says what the code does: the scopes the OAuth flow asks for, the
events the adapter listens to (and the scopes they need), the /hip command and its words,
and URLs the web app really serves. (The fake Slack API separately refuses, with
`missing_scope`, any Web API call whose scope the manifest does not grant.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.adapters.slack import SlackAdapter
from bot.adapters.slack.adapter import BOT_EVENTS, COMMAND
from bot.adapters.slack.oauth import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH
from bot.config import Settings
from bot.engine.events import COMMANDS
from bot.service import Coach
from bot.storage.db import Database
from bot.web import build_app
from tests.fake_slack import CLIENT_ID, CLIENT_SECRET, MANIFEST, manifest_bot_scopes

# The scope Slack requires to deliver each bot event (https://docs.slack.dev/reference/events).
EVENT_SCOPES: dict[str, str | None] = {
    "app_home_opened": None,
    "app_mention": "app_mentions:read",
    "app_uninstalled": None,
    "member_joined_channel": "channels:read",
    "message.im": "im:history",
    "tokens_revoked": None,
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(Path(MANIFEST).read_text()))


def test_the_manifest_asks_for_the_scopes_the_oauth_flow_requests() -> None:
    assert manifest_bot_scopes() == set(BOT_SCOPES)


def test_every_event_the_adapter_handles_is_subscribed_with_its_scope(
    manifest: dict[str, Any],
) -> None:
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert subscribed == set(BOT_EVENTS)
    for event in subscribed:
        needed = EVENT_SCOPES[event]
        assert needed is None or needed in manifest_bot_scopes(), (event, needed)


def test_the_slash_command_offers_every_command_word(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert set(command["usage_hint"].strip("[]").split(" | ")) == set(COMMANDS)


async def test_every_url_in_the_manifest_is_served(
    manifest: dict[str, Any], sqlite_url: str
) -> None:
    db = Database(sqlite_url)
    try:
        settings = Settings(
            database_url=sqlite_url,
            slack_signing_secret="s",
            slack_client_id=CLIENT_ID,
            slack_client_secret=CLIENT_SECRET,
        )
        app = build_app(db, [SlackAdapter(settings, Coach(db))])
        served = {getattr(route, "path", None) for route in app.routes}
    finally:
        await db.dispose()
    urls = [
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
        *manifest["oauth_config"]["redirect_urls"],
    ]
    paths = {urlsplit(url).path for url in urls}
    assert paths == {"/slack/events", REDIRECT_PATH}
    assert paths | {INSTALL_PATH} <= served
