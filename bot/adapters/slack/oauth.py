"""Slack distribution: "Add to Slack" for any workspace, one installation each.

Bolt's own OAuth flow serves `/slack/install` (a page with the "Add to Slack" button) and
`/slack/oauth_redirect` (Slack sends the installer back there with a code, Bolt trades it
for the workspace's bot token with oauth.v2.access). Installations and the flow's one-time
`state` values live in our database through slack_sdk's own SQLAlchemy stores; their
tables are created by the Alembic migration 0003_slack_oauth_stores, never at run time
(`create_tables()` is not called). Bolt then authorizes every request by looking up the
installation of the request's team (or org) in that store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy.ext.asyncio import AsyncEngine

# The bot scopes the app asks for; slack/manifest.yml lists the same (a test checks).
BOT_SCOPES: tuple[str, ...] = (
    "app_mentions:read",  # @-mentions of the app in channels (app_mention)
    "channels:read",  # channel creator for warm-up permissions (conversations.info)
    "chat:write",  # replies, check-ins, warm-up cards, ephemeral answers in channels
    "commands",  # /hip
    "files:write",  # progress charts and exports, uploaded into the DM
    "groups:read",  # the same as channels:read for private channels
    "im:history",  # direct messages sent to the app (message.im)
    "im:read",
    "im:write",  # open the DM with a runner (conversations.open)
    "users:read",  # timezone (tz) and admin/owner flags (users.info)
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600  # an "Add to Slack" click must come back within 10 minutes

# slack_sdk's default table names; the migration creates exactly these.
INSTALLATIONS_TABLE = AsyncSQLAlchemyInstallationStore.default_installations_table_name
BOTS_TABLE = AsyncSQLAlchemyInstallationStore.default_bots_table_name
STATES_TABLE = AsyncSQLAlchemyOAuthStateStore.default_table_name

Installed = Callable[[Installation], Awaitable[None]]


def installation_store(client_id: str, engine: AsyncEngine) -> AsyncSQLAlchemyInstallationStore:
    return AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine)


def state_store(engine: AsyncEngine) -> AsyncSQLAlchemyOAuthStateStore:
    return AsyncSQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=engine)


def authorize(
    *, client_id: str, client_secret: str, installations: AsyncSQLAlchemyInstallationStore
) -> AsyncInstallationStoreAuthorize:
    """Bolt's per-team authorization from our store. Bolt runs it before a listener can
    ack, so it remembers each token's auth.test answer (`cache_enabled`): an event then
    waits for one database look-up, not also a round trip to Slack. A workspace whose
    installation is deleted is refused at that look-up, before the cache."""
    return AsyncInstallationStoreAuthorize(
        logger=logging.getLogger("slack_bolt.authorize"),
        installation_store=installations,
        client_id=client_id,
        client_secret=client_secret,
        cache_enabled=True,
    )


def oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    installations: AsyncSQLAlchemyInstallationStore,
    states: AsyncSQLAlchemyOAuthStateStore,
    on_installed: Installed,
) -> AsyncOAuthSettings:
    """Bolt's OAuth settings with our stores; `on_installed` runs after an installation
    is saved, before the installer sees Bolt's success page."""

    async def success(args: AsyncSuccessArgs) -> BoltResponse:
        await on_installed(args.installation)
        return await args.default.success(args)

    async def failure(args: AsyncFailureArgs) -> BoltResponse:
        return await args.default.failure(args)

    return AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        installation_store=installations,
        state_store=states,
        state_expiration_seconds=STATE_SECONDS,
        callback_options=AsyncCallbackOptions(success=success, failure=failure),
    )
