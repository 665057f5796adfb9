"""The Slack adapter: slack-bolt as transport between Slack and the coach.

One `AsyncApp` serves both modes: HTTP (`POST /slack/events`, signatures verified by Bolt)
and Socket Mode. Every listener acknowledges first and does the engine work after the ack,
so Slack gets its answer well inside 3 seconds. Listeners only translate: a slash command,
a DM, an @-mention, a button press or a join becomes one `Inbound`; each `Outbound` the
coach returns becomes Slack Web API calls. No coaching logic, wording or SQL lives here.

Workspaces: with SLACK_CLIENT_ID and SLACK_CLIENT_SECRET any workspace installs the app
through "Add to Slack" (bot/adapters/slack/oauth.py) and every call uses that workspace's
own token; with only SLACK_BOT_TOKEN it serves the one workspace of that token. Either way
every Slack id the coach stores carries its workspace (bot/adapters/slack/workspace.py).
When a workspace uninstalls the app or its token is revoked, its runners and channels get
no more reminders or cards; installing again brings them back.

Every request Slack may send is acknowledged (a 404 would make Slack retry it); a signed
request that is not shaped like anything Slack sends gets a 400 (bot/adapters/slack/
requests.py).

Privacy: replies marked private only ever go to the person's DM with the app; in a channel
every answer is ephemeral (only the person who acted sees it) — only the warm-up cards the
scheduler posts, and the introduction when nobody invited the app, are for the channel.
Charts and exports are always uploaded into the DM.

Logs carry ids and kinds only, never message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from cachetools import TTLCache
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot import scopes
from bot.adapters.slack import oauth, requests
from bot.adapters.slack.render import (
    ACTION_PREFIX,
    COMMAND_VALUE_PREFIX,
    SLASH_COMMAND,
    URL_ACTION_ID,
    escape,
    render_edit,
    render_home,
    render_outbound,
    render_plain,
    render_text,
    unescape,
)
from bot.adapters.slack.workspace import SEPARATOR, Workspace, bare, unscope
from bot.config import Settings
from bot.delivery import DeliveryError, PermanentFailure, RetryAfter, TransientFailure
from bot.engine.events import COMMANDS, ChatKind, Inbound, InboundKind, Outbound
from bot.home import home_summary
from bot.service import Coach

log = logging.getLogger("hipcoach.slack")

DEFAULT_API_URL = "https://slack.com/api/"
CACHE_SECONDS = 3600.0
TOKEN_CACHE_SECONDS = 300.0  # another process may have seen a reinstall or an uninstall
CACHE_SIZE = 10_000
PREPARE_RETRY_SECONDS = 60.0
# Errors after which a message to that target will never be delivered.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "invalid_blocks",
        "msg_too_long",
        "no_text",
        "invalid_arguments",
    }
)
# Of those, the ones about the message itself: it is dropped, the person stays reachable
# (replies go through the outbox too, and one bad reply must not silence someone).
MESSAGE_ERRORS = frozenset({"invalid_blocks", "msg_too_long", "no_text", "invalid_arguments"})
# Errors meaning the token itself is dead (revoked, uninstalled, deleted workspace): nothing
# more can be sent to that workspace with it.
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
# The Events API subscriptions (slack/manifest.yml lists the same; a test checks), as
# subscription name -> the event type Bolt sees.
BOT_EVENTS: dict[str, str] = {
    "app_home_opened": "app_home_opened",
    "app_mention": "app_mention",
    "app_uninstalled": "app_uninstalled",
    "member_joined_channel": "member_joined_channel",
    "message.im": "message",
    "tokens_revoked": "tokens_revoked",
}
COMMAND = SLASH_COMMAND
# Errors meaning "the bot cannot post here itself"; a slash command's response_url still can.
NOT_HERE_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
SLACK_IO_ERRORS = (SlackClientError, aiohttp.ClientError, TimeoutError, OSError)
# A mention as Slack writes it in a message text: <@U123> or <@U123|name>.
MENTION = r"<@{user}(?:\|[^>]*)?>"


def is_dm_channel(channel_id: str | None, channel_name: str | None = None) -> bool:
    return bool(channel_id and channel_id.startswith("D")) or channel_name == "directmessage"


class WorkspaceUnavailable(Exception):
    """No token to call Slack with for this workspace (not installed, or refused)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Where:
    """Where an event happened and how its replies can reach the person. Ids are Slack's
    own (bare); `workspace` says whose they are."""

    user_id: str
    channel_id: str | None  # the channel or DM the event came from (None: App Home)
    private: bool  # handled as a private chat (replies go to `dm_channel`)
    workspace: Workspace | None = None
    dm_channel: str | None = None  # the app's DM with the user, once known
    response_url: str | None = None  # slash commands and message buttons
    ephemeral_source: bool = False  # the pressed button was on an ephemeral message
    app_id: str | None = None
    from_home: bool = False
    thread_ts: str | None = None  # answer inside this thread (an @-mention in a thread)
    announce: bool = False  # a channel message for everyone (the uninvited introduction)

    def scoped(self, slack_id: str) -> str:
        return self.workspace.scoped(slack_id) if self.workspace else slack_id


def _parse_words(text: str) -> dict[str, Any]:
    """A /hip text, DM or mention as engine fields: a command word, or free text."""
    words = text.split(maxsplit=1)
    word = words[0].lower().lstrip("/") if words else "help"
    if word in COMMANDS:
        return {
            "kind": InboundKind.COMMAND,
            "command": word,
            "text": words[1] if len(words) > 1 else "",
        }
    return {"kind": InboundKind.TEXT, "text": text}


class SlackAdapter:
    """Slack transport for the coach; also the outbox sender for platform "slack"."""

    platform = "slack"

    def __init__(self, settings: Settings, coach: Coach) -> None:
        self.settings = settings
        self.coach = coach
        self.api_url = settings.slack_api_url or DEFAULT_API_URL
        # SLACK_BOT_TOKEN's client: the one workspace in single-token mode; with OAuth only
        # for moving rows stored before workspaces were recorded (see `_prepare`).
        self.client = AsyncWebClient(token=settings.slack_bot_token, base_url=self.api_url)
        self.installations = None
        oauth_settings = None
        # Bolt accepts an AsyncAuthorize instance here, though its annotation names only
        # plain functions.
        authorize: Any = None
        app_client = self.client
        if settings.slack_client_id and settings.slack_client_secret:
            self.installations = oauth.installation_store(settings.slack_client_id, coach.db.engine)
            oauth_settings = oauth.oauth_settings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret,
                installations=self.installations,
                states=oauth.state_store(coach.db.engine),
                on_installed=self._installed,
            )
            authorize = oauth.authorize(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret,
                installations=self.installations,
            )
            app_client = AsyncWebClient(base_url=self.api_url)  # Bolt sets each team's token
        # The token reaches Bolt through the client (giving both only logs a warning).
        self.app = AsyncApp(
            client=app_client,
            signing_secret=settings.slack_signing_secret or "",
            process_before_response=False,
            oauth_settings=oauth_settings,
            authorize=authorize,
        )
        self.handler = AsyncSlackRequestHandler(self.app)
        # Without a signing secret (a clock process) no request can be verified.
        secret = settings.slack_signing_secret
        self._verifier = SignatureVerifier(secret) if secret else None
        self._socket: Any = None
        self._users: TTLCache[str, dict[str, Any]] = TTLCache(CACHE_SIZE, CACHE_SECONDS)
        self._channels: TTLCache[str, str] = TTLCache(CACHE_SIZE, CACHE_SECONDS)
        self._dms: TTLCache[str, str] = TTLCache(CACHE_SIZE, 24 * CACHE_SECONDS)
        self._tokens: TTLCache[str, str] = TTLCache(CACHE_SIZE, TOKEN_CACHE_SECONDS)
        # Set when Slack refuses SLACK_BOT_TOKEN: nothing more is sent with it.
        self._rejected: str | None = None
        self._prepared = not settings.slack_bot_token
        self._prepare_after = 0.0
        self._prepare_lock = asyncio.Lock()
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._register()

    # --- lifecycle ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        async def events(request: Request) -> Response:
            if not _readable_timestamp(request.headers.get("x-slack-request-timestamp")):
                # Bolt's signature check would raise on it (a 500); it is simply unsigned.
                log.warning("slack request with an unreadable timestamp refused")
                return Response(status_code=401)
            raw = await request.body()  # Starlette keeps it for Bolt's handler
            body, why = requests.parse(raw, dict(request.headers))
            why = why or requests.problem(body)
            if why is not None:
                if not self._signed(raw, dict(request.headers)):
                    return Response(status_code=401)
                log.warning("slack request refused: %s", why)
                return Response(status_code=400)
            response = await self.handler.handle(request)
            if response.status_code == 404:
                # No listener took it; a 404 would only make Slack send it again.
                log.warning("slack request nobody handled was acknowledged")
                return Response(status_code=200)
            return response

        routes: list[BaseRoute] = [Route("/slack/events", events, methods=["POST"])]
        if self.installations is not None:

            async def install(request: Request) -> Response:
                return await self.handler.handle(request)

            routes += [
                Route(oauth.INSTALL_PATH, install, methods=["GET"]),
                Route(oauth.REDIRECT_PATH, install, methods=["GET"]),
            ]
        return routes

    def _signed(self, raw: bytes, headers: dict[str, str]) -> bool:
        """Bolt's own check, for requests refused before Bolt sees them."""
        if self._verifier is None:
            return False
        try:
            return self._verifier.is_valid_request(raw, headers)
        except UnicodeDecodeError:  # Slack signs UTF-8 text; these bytes are not
            return False

    async def start_web(self) -> None:
        if not self.settings.slack_signing_secret:
            log.warning("SLACK_SIGNING_SECRET is not set: every Slack request will get 401")
        await self._prepare()

    async def start_socket_mode(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        await self._prepare()
        self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
        await self._socket.connect_async()
        log.info("slack socket mode connected")

    async def start_sender(self) -> None:
        """Move rows stored before workspaces were recorded; the Web API client itself
        connects per request."""
        await self._prepare()

    async def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        await self.drain(timeout=10)

    def health(self) -> str | None:
        """None when Slack is reachable as configured; otherwise why not, for /healthz."""
        if self._rejected:
            return f"Slack refused SLACK_BOT_TOKEN ({self._rejected})"
        if self.settings.slack_app_token:
            client = getattr(self._socket, "client", None)
            session = getattr(client, "current_session", None)
            if (
                client is None
                or getattr(client, "closed", True)
                or getattr(client, "stale", False)
                or session is None
                or session.closed
            ):
                return "Slack Socket Mode is not connected"
        return None

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until the work started after acks has finished (for shutdown and tests)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _work(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run the post-ack part of a listener, counted so `drain` can wait for it."""
        self._inflight += 1
        self._idle.clear()
        try:
            await self._prepare()
            await job()
        except WorkspaceUnavailable as exc:
            log.warning("slack %s dropped: %s", name, exc)
        except Exception:  # one bad event must not take the listener down; ids are logged
            log.exception("slack %s failed", name)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def _prepare(self) -> None:
        """First start after workspaces were recorded: Slack rows stored without one belong
        to SLACK_BOT_TOKEN's workspace (auth.test names it), so they get its scope. Tried
        at start and again at most once a minute until it succeeds."""
        if self._prepared or time.monotonic() < self._prepare_after:
            return
        async with self._prepare_lock:
            if self._prepared:
                return
            try:
                auth = await self.client.auth_test()
            except SLACK_IO_ERRORS as exc:
                self._prepare_after = time.monotonic() + PREPARE_RETRY_SECONDS
                error = api_error(exc) or None
                if error in TOKEN_ERRORS:
                    self._reject(str(error))
                log.warning("slack auth.test failed error=%s", error or type(exc).__name__)
                return
            workspace = Workspace.of(
                auth.get("team_id"), auth.get("enterprise_id"), auth.get("is_enterprise_install")
            )
            if workspace is not None:
                await scopes.adopt_unscoped(
                    self.coach.db, self.platform, workspace.prefix, SEPARATOR
                )
            self._prepared = True

    # --- workspaces -----------------------------------------------------------------------

    def _workspace(self, context: Any) -> Workspace | None:
        """The workspace a request came from, as Bolt authorized it (its token is then
        remembered, so the replies need no second look-up)."""
        workspace = Workspace.of(
            context.get("team_id"),
            context.get("enterprise_id"),
            context.get("is_enterprise_install"),
        )
        token = context.get("bot_token")
        if workspace is not None and token and self.installations is not None:
            self._tokens[workspace.key] = token
        return workspace

    async def _token(self, workspace: Workspace | None) -> str:
        if self.installations is None:
            if self._rejected:
                raise WorkspaceUnavailable(self._rejected, permanent=False)
            if not self.settings.slack_bot_token:
                raise WorkspaceUnavailable("no SLACK_BOT_TOKEN", permanent=True)
            return self.settings.slack_bot_token
        if workspace is None:
            raise WorkspaceUnavailable("no workspace recorded", permanent=True)
        token = self._tokens.get(workspace.key)
        if token is None:
            bot = await self.installations.async_find_bot(
                enterprise_id=workspace.enterprise_id,
                team_id=workspace.store_team_id,
                is_enterprise_install=workspace.is_enterprise_install,
            )
            if bot is None or not bot.bot_token:
                raise WorkspaceUnavailable(f"not installed in {workspace.key}", permanent=True)
            token = str(bot.bot_token)
            self._tokens[workspace.key] = token
        return token

    async def _client(self, workspace: Workspace | None) -> AsyncWebClient:
        token = await self._token(workspace)
        if token == self.client.token:
            return self.client
        return AsyncWebClient(token=token, base_url=self.api_url)

    def _reject(self, error: str) -> None:
        if self._rejected is None:
            log.warning("slack refused SLACK_BOT_TOKEN error=%s: sending stopped", error)
        self._rejected = error

    async def _token_failed(
        self, workspace: Workspace | None, client: AsyncWebClient, error: str
    ) -> DeliveryError:
        """Slack refused a workspace's token: stop sending to that workspace."""
        if self.installations is None:
            # SLACK_BOT_TOKEN is bad: nothing is touched in the database, since a fixed
            # token (and a restart) makes every runner reachable again as they were.
            self._reject(error)
            return TransientFailure(error)
        if workspace is None:
            return PermanentFailure(error)
        self._tokens.pop(workspace.key, None)
        bot = await self.installations.async_find_bot(
            enterprise_id=workspace.enterprise_id,
            team_id=workspace.store_team_id,
            is_enterprise_install=workspace.is_enterprise_install,
        )
        if bot is not None and bot.bot_token != client.token:
            return TransientFailure("token replaced")  # reinstalled meanwhile: try the new one
        await self._workspace_gone(workspace, error)
        return PermanentFailure(error)

    async def _workspace_gone(self, workspace: Workspace, reason: str) -> None:
        """The app was removed from a workspace (or lost its token): forget the
        installation, and send that workspace's runners and channels nothing more."""
        if self.installations is not None:
            await self.installations.async_delete_all(
                enterprise_id=workspace.enterprise_id, team_id=workspace.store_team_id
            )
        self._tokens.pop(workspace.key, None)
        users, chats = await scopes.stop(self.coach.db, self.platform, workspace.prefix)
        log.warning(
            "slack workspace=%s gone reason=%s: reminders stopped users=%d chats=%d",
            workspace.key,
            reason,
            users,
            chats,
        )

    async def _installed(self, installation: Installation) -> None:
        """After "Add to Slack": a workspace that had left gets its reminders back."""
        workspace = Workspace.of(
            installation.team_id, installation.enterprise_id, installation.is_enterprise_install
        )
        if workspace is None:
            return
        self._tokens.pop(workspace.key, None)
        users, chats = await scopes.resume(self.coach.db, self.platform, workspace.prefix)
        log.info("slack workspace=%s installed users=%d chats=%d", workspace.key, users, chats)

    # --- listeners ------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.use(self._screen)
        app.command(COMMAND)(self._on_command)
        listeners = {
            "message": self._on_message,
            "app_mention": self._on_mention,
            "app_home_opened": self._on_home_opened,
            "member_joined_channel": self._on_member_joined,
            "app_uninstalled": self._on_uninstalled,
            "tokens_revoked": self._on_tokens_revoked,
        }
        assert set(listeners) == set(BOT_EVENTS.values())
        for kind, listener in listeners.items():
            app.event(kind)(listener)
        app.action(URL_ACTION_ID)(self._on_url_button)
        app.action(re.compile(f"^{ACTION_PREFIX}\\d+$"))(self._on_button)
        # Everything else Slack may send is acknowledged and ignored. Bolt runs the first
        # listener that matches, so these catch only what the ones above did not.
        anything = re.compile(".*")
        app.command(anything)(self._ignore)
        app.action(anything)(self._ignore)
        app.shortcut(anything)(self._ignore)
        app.view(anything)(self._ignore)
        app.view_closed(anything)(self._ignore)
        app.options(anything)(self._no_options)
        app.event(anything)(self._ignore)

    async def _screen(self, body: Any, req: Any, next: Callable[[], Awaitable[None]]) -> Any:
        """Global middleware: requests no listener could match are acknowledged here, and
        malformed ones dropped (over HTTP the route answered them with 400 already)."""
        if requests.ack_only(body):
            log.info("slack %s acknowledged", body.get("type"))
            return BoltResponse(status=200, body="")
        why = requests.problem(body)
        if why is not None:
            log.warning("slack request dropped: %s", why)
            return BoltResponse(status=400 if req.mode == "http" else 200, body="")
        await next()
        return None

    async def _ignore(self, ack: Any) -> None:
        await ack()

    async def _no_options(self, ack: Any) -> None:
        await ack(options=[])

    async def _on_command(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        workspace = self._workspace(context)
        await self._work("command", lambda: self._command(body, workspace))

    async def _on_message(
        self, ack: Any, body: dict[str, Any], event: dict[str, Any], context: Any
    ) -> None:
        await ack()
        if (
            event.get("channel_type") != "im"
            or event.get("subtype")
            or event.get("bot_id")
            or not event.get("user")
            or not event.get("channel")
        ):
            return
        workspace = self._workspace(context)
        await self._work("message", lambda: self._message(body, event, workspace))

    async def _on_mention(
        self, ack: Any, body: dict[str, Any], event: dict[str, Any], context: Any
    ) -> None:
        await ack()
        if event.get("bot_id") or not event.get("user") or not event.get("channel"):
            return
        workspace = self._workspace(context)
        bot_user = str(context.get("bot_user_id") or "")
        await self._work("mention", lambda: self._mention(body, event, workspace, bot_user))

    async def _on_home_opened(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        workspace = self._workspace(context)
        where = Where(user_id=event["user"], channel_id=None, private=True, workspace=workspace)
        if event.get("channel"):
            self._dms.setdefault(where.scoped(where.user_id), event["channel"])
        await self._work("home", lambda: self.publish_home(where))

    async def _on_member_joined(
        self, ack: Any, body: dict[str, Any], event: dict[str, Any], context: Any
    ) -> None:
        await ack()
        if not event.get("user") or event.get("user") != context.get("bot_user_id"):
            return
        workspace = self._workspace(context)
        await self._work("joined", lambda: self._joined(body, event, workspace))

    async def _on_uninstalled(self, ack: Any, context: Any) -> None:
        await ack()
        workspace = self._workspace(context)
        if workspace is not None:
            await self._work(
                "uninstalled", lambda: self._workspace_gone(workspace, "app_uninstalled")
            )

    async def _on_tokens_revoked(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        tokens = event.get("tokens") if isinstance(event.get("tokens"), dict) else {}
        workspace = self._workspace(context)
        # The app holds bot tokens only (no user scopes): a revoked user token changes
        # nothing here; a revoked bot token is the workspace gone.
        if workspace is not None and (tokens or {}).get("bot"):
            await self._work(
                "tokens_revoked", lambda: self._workspace_gone(workspace, "tokens_revoked")
            )

    async def _on_url_button(self, ack: Any) -> None:
        await ack()  # a link button: Slack opens the URL, nothing to do here

    async def _on_button(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        workspace = self._workspace(context)
        await self._work("button", lambda: self._button(body, workspace))

    # --- inbound translation --------------------------------------------------------------

    async def _command(self, body: dict[str, Any], workspace: Workspace | None) -> None:
        channel_id = body.get("channel_id")
        where = Where(
            user_id=body["user_id"],
            channel_id=channel_id,
            private=is_dm_channel(channel_id, body.get("channel_name")),
            workspace=workspace,
            response_url=body.get("response_url"),
            app_id=body.get("api_app_id"),
        )
        text = unescape((body.get("text") or "").strip())
        event_id = where.scoped(f"cmd:{body.get('trigger_id')}")
        if where.private:
            await self._private_command(where, text, event_id)
            return
        await self._channel_command(where, text, event_id, body.get("channel_name"))

    async def _private_command(self, where: Where, text: str, event_id: str) -> None:
        # Always the app's own DM, even when /hip was typed in a DM with someone else.
        dm = await self._dm(where)
        where = replace(where, dm_channel=dm)
        inbound = await self._private_inbound(where, event_id=event_id, **_parse_words(text))
        replies = await self.coach.handle(inbound, send=self._sender(where))
        if replies and where.channel_id != dm and where.response_url:
            await self._respond(
                where.response_url,
                response_type="ephemeral",
                **render_plain(self.coach.content.message("slack_replied_in_dm")),
            )

    async def _channel_command(
        self, where: Where, text: str, event_id: str, channel_name: str | None
    ) -> None:
        """A /hip command or an @-mention in a channel: addressed to the app, so it always
        gets an answer, even where the engine treats the words as chatter."""
        inbound = await self._group_inbound(
            where, channel_name=channel_name, event_id=event_id, **_parse_words(text)
        )
        unknown = Outbound(
            chat_id=inbound.chat_id,
            text=self.coach.content.message("slack_group_unknown"),
            ephemeral=True,
        )
        await self.coach.handle(inbound, send=self._sender(where), fallback=[unknown])

    async def _message(
        self, body: dict[str, Any], event: dict[str, Any], workspace: Workspace | None
    ) -> None:
        channel_id = event["channel"]
        where = Where(
            user_id=event["user"],
            channel_id=channel_id,
            private=True,
            workspace=workspace,
            dm_channel=channel_id,
            app_id=body.get("api_app_id"),
        )
        self._dms.setdefault(where.scoped(where.user_id), channel_id)
        text = unescape((event.get("text") or "").strip())
        fields = _parse_words(text) if text else {"kind": InboundKind.TEXT, "text": ""}
        event_id = where.scoped(str(body.get("event_id") or event.get("ts")))
        inbound = await self._private_inbound(where, event_id=event_id, **fields)
        await self.coach.handle(inbound, send=self._sender(where))

    async def _mention(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        workspace: Workspace | None,
        bot_user: str,
    ) -> None:
        channel_id = event["channel"]
        where = Where(
            user_id=event["user"],
            channel_id=channel_id,
            private=is_dm_channel(channel_id),
            workspace=workspace,
            app_id=body.get("api_app_id"),
            thread_ts=event.get("thread_ts"),
        )
        # The words addressed to the app, without the mention of the app itself.
        mention = MENTION.format(user=re.escape(bot_user) if bot_user else "[A-Z0-9]+")
        text = unescape(re.sub(mention, " ", event.get("text") or "").strip())
        event_id = where.scoped(str(body.get("event_id") or event.get("ts")))
        if where.private:
            await self._private_command(where, text, event_id)
            return
        await self._channel_command(where, text, event_id, None)

    async def _button(self, body: dict[str, Any], workspace: Workspace | None) -> None:
        action = body["actions"][0]
        value = action.get("value") or ""
        user_id = body["user"]["id"]
        container = body.get("container") or {}
        from_home = container.get("type") == "view"
        channel_id = container.get("channel_id") or (body.get("channel") or {}).get("id")
        message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        where = Where(
            user_id=user_id,
            channel_id=None if from_home else channel_id,
            private=from_home or is_dm_channel(channel_id),
            workspace=workspace,
            response_url=body.get("response_url"),
            ephemeral_source=bool(container.get("is_ephemeral")),
            app_id=body.get("api_app_id"),
            from_home=from_home,
        )
        # A press is one action at one moment; Slack's trigger_id names this interaction.
        # No user id in it: processed_events holds nothing about a person (it outlives
        # `delete`).
        event_id = where.scoped(f"act:{action.get('action_ts')}:{body.get('trigger_id') or ''}")[
            :128
        ]
        base: dict[str, Any] = {"event_id": event_id}
        if value.startswith(COMMAND_VALUE_PREFIX):
            word = value[len(COMMAND_VALUE_PREFIX) :]
            if word not in COMMANDS:
                word = "help"
            base.update(kind=InboundKind.COMMAND, command=word)
        else:
            base.update(
                kind=InboundKind.BUTTON,
                payload=value,
                message_ref=None if from_home else message_ts,
            )
        if where.private:
            try:
                dm = await self._dm(where)
            except SLACK_IO_ERRORS:
                if from_home or not channel_id:
                    raise
                dm = channel_id  # Slack cannot tell us now; the press's own DM will do
            if not from_home and channel_id != dm:
                # A button in a DM is only ever in the app's DM with the person who pressed
                # it. Anything else is forged: answering it would post into someone else's
                # DM and make that their stored chat.
                log.warning("slack button from outside the presser's DM ignored user=%s", user_id)
                return
            where = replace(where, dm_channel=dm)
            inbound = await self._private_inbound(where, **base)
            await self.coach.handle(inbound, send=self._sender(where))
            if from_home:
                await self.publish_home(where)
            return
        inbound = await self._group_inbound(where, channel_name=None, **base)
        await self.coach.handle(inbound, send=self._sender(where))

    async def _joined(
        self, body: dict[str, Any], event: dict[str, Any], workspace: Workspace | None
    ) -> None:
        inviter = event.get("inviter")
        where = Where(
            user_id=inviter or event["user"],
            channel_id=event["channel"],
            private=False,
            workspace=workspace,
            # The introduction is for whoever invited the app; with nobody to show it
            # to privately, it is for the channel.
            announce=not inviter,
        )
        inbound = Inbound(
            platform=self.platform,
            event_id=where.scoped(str(body.get("event_id"))),
            user_id=where.scoped(where.user_id),
            chat_id=where.scoped(event["channel"]),
            kind=InboundKind.JOINED,
            chat_kind=ChatKind.GROUP,
        )
        await self.coach.handle(inbound, send=self._sender(where))

    async def _private_inbound(self, where: Where, **fields: Any) -> Inbound:
        user = await self._user(where)
        assert where.dm_channel is not None
        return Inbound(
            platform=self.platform,
            user_id=where.scoped(where.user_id),
            chat_id=where.scoped(where.dm_channel),
            chat_kind=ChatKind.PRIVATE,
            user_tz=user.get("tz"),
            **fields,
        )

    async def _group_inbound(
        self, where: Where, *, channel_name: str | None, **fields: Any
    ) -> Inbound:
        assert where.channel_id is not None
        user_tz: str | None = None
        is_admin: bool | None = None
        # Only warm-up changes need to know who may change things (and a default zone).
        if fields.get("command") == "warmup" or fields.get("kind") in (
            InboundKind.BUTTON,
            InboundKind.TEXT,
        ):
            user = await self._user(where)
            user_tz = user.get("tz")
            is_admin = await self._is_admin(where, user)
        return Inbound(
            platform=self.platform,
            user_id=where.scoped(where.user_id),
            chat_id=where.scoped(where.channel_id),
            chat_kind=ChatKind.GROUP,
            user_tz=user_tz,
            is_admin=is_admin,
            raw={"chat_title": channel_name} if channel_name else None,
            **fields,
        )

    # --- Slack lookups (cached) -----------------------------------------------------------

    async def _user(self, where: Where) -> dict[str, Any]:
        """users.info, cached for an hour; {} when Slack cannot tell us."""
        key = where.scoped(where.user_id)
        cached = self._users.get(key)
        if cached is not None:
            return dict(cached)
        try:
            client = await self._client(where.workspace)
            response = await client.users_info(user=where.user_id)
            user = dict(response.get("user") or {})
        except SLACK_IO_ERRORS:
            log.warning("slack users.info failed user=%s", where.user_id)
            return {}
        info = {
            "tz": user.get("tz"),
            "is_admin": bool(
                user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
            ),
        }
        self._users[key] = info
        return info

    async def _is_admin(self, where: Where, user: dict[str, Any]) -> bool:
        """May this person change the channel's warm-ups? Workspace admins and owners, and
        whoever created the channel. Fails closed when Slack cannot tell."""
        if user.get("is_admin"):
            return True
        assert where.channel_id is not None
        key = where.scoped(where.channel_id)
        creator = self._channels.get(key)
        if creator is None:
            try:
                client = await self._client(where.workspace)
                response = await client.conversations_info(channel=where.channel_id)
                creator = (response.get("channel") or {}).get("creator") or ""
            except SLACK_IO_ERRORS:
                log.warning("slack conversations.info failed channel=%s", where.channel_id)
                return False
            self._channels[key] = creator
        return bool(creator) and creator == where.user_id

    async def _dm(self, where: Where) -> str:
        """The app's DM channel with this person (conversations.open, remembered)."""
        key = where.scoped(where.user_id)
        channel = self._dms.get(key)
        if channel is None:
            client = await self._client(where.workspace)
            response = await client.conversations_open(users=where.user_id)
            channel = str((response.get("channel") or {})["id"])
            self._dms[key] = channel
        return channel

    # --- App Home -------------------------------------------------------------------------

    async def publish_home(self, where: Where) -> None:
        user = await self._user(where)
        summary = await home_summary(
            self.coach, self.platform, where.scoped(where.user_id), user.get("tz")
        )
        view = render_home(summary, self.coach.content)
        client = await self._client(where.workspace)
        await client.views_publish(user_id=where.user_id, view=view)
        log.info("slack home published user=%s onboarded=%s", where.user_id, summary.onboarded)

    # --- outbound -------------------------------------------------------------------------

    def _sender(self, where: Where) -> Callable[[Outbound], Awaitable[None]]:
        """Sends a reply at once, routed by where the event happened (response_url,
        ephemeral, thread, the DM); a failure becomes a bot.delivery error, and the reply
        waits in the outbox for the dispatcher (which uses `send`)."""

        async def send(out: Outbound) -> None:
            try:
                await self._deliver_one(out, where)
            except WorkspaceUnavailable as exc:
                raise (PermanentFailure if exc.permanent else TransientFailure)(str(exc)) from exc
            except SlackApiError as exc:
                error = api_error(exc)
                if error in TOKEN_ERRORS:
                    client = await self._client(where.workspace)
                    raise await self._token_failed(where.workspace, client, error) from exc
                raise delivery_error(exc) from exc
            except SLACK_IO_ERRORS as exc:
                raise TransientFailure(type(exc).__name__) from exc

        return send

    async def _deliver_one(self, out: Outbound, where: Where) -> None:
        """Deliver one reply to the person who acted, given where they acted."""
        content = self.coach.content
        client = await self._client(where.workspace)
        chat_id = bare(out.chat_id)
        if out.edit_ref is not None:
            payload = render_edit(out, more_text=content.message("slack_more_buttons"))
            if where.ephemeral_source and where.response_url:
                await self._respond(where.response_url, replace_original=True, **payload)
            else:
                await client.chat_update(channel=chat_id, ts=out.edit_ref, **payload)
            return
        if out.attachment is not None:
            # Files are personal (charts, exports): always the DM, never a channel.
            dm = where.dm_channel or await self._dm(where)
            await self._upload(client, dm, out)
            return
        open_dm = None
        if out.open_private and where.app_id:
            url = f"https://slack.com/app_redirect?app={where.app_id}"
            if where.workspace and where.workspace.team_id:
                url += f"&team={where.workspace.team_id}"
            open_dm = (content.message("slack_open_dm_button"), url)
        messages = render_outbound(
            out, more_text=content.message("slack_more_buttons"), open_dm=open_dm
        )
        if not where.private:
            # In a channel every answer is only for the person who acted.
            for message in messages:
                if where.announce and not (out.ephemeral or out.private or out.open_private):
                    await self._post(client, chat_id, message, where)
                else:
                    await self._post_ephemeral(client, where, message)
            return
        channel = chat_id
        if not is_dm_channel(channel):
            # A private context replies only in the DM, whatever the reply says.
            channel = where.dm_channel or await self._dm(where)
        for message in messages:
            await self._post(client, channel, message, where)

    async def _post(
        self, client: AsyncWebClient, channel: str, message: dict[str, Any], where: Where
    ) -> None:
        try:
            await client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            if api_error(exc) in NOT_HERE_ERRORS and where.response_url:
                # The app is not in this channel; a slash command can still answer in it.
                await self._respond(where.response_url, response_type="in_channel", **message)
                return
            raise

    async def _post_ephemeral(
        self, client: AsyncWebClient, where: Where, message: dict[str, Any]
    ) -> None:
        assert where.channel_id is not None
        try:
            await client.chat_postEphemeral(
                channel=where.channel_id, user=where.user_id, thread_ts=where.thread_ts, **message
            )
        except SlackApiError as exc:
            if api_error(exc) in NOT_HERE_ERRORS and where.response_url:
                await self._respond(where.response_url, response_type="ephemeral", **message)
                return
            raise

    async def _respond(self, url: str, **payload: Any) -> None:
        await AsyncWebhookClient(url).send_dict(payload)

    async def _upload(self, client: AsyncWebClient, channel: str, out: Outbound) -> None:
        assert out.attachment is not None
        await client.files_upload_v2(
            channel=channel,
            content=out.attachment.data,
            filename=out.attachment.filename,
            title=out.attachment.filename,
            initial_comment=escape(render_text(out.text)) if out.text else None,
        )
        log.info("slack file uploaded channel=%s mime=%s", channel, out.attachment.mime)

    # --- Sender contract (messages the bot starts itself) ---------------------------------

    async def send(self, message: Outbound) -> None:
        """Deliver one outbox message, or raise RetryAfter / TransientFailure /
        PermanentFailure (bot.delivery). The stored chat id names the workspace whose
        token is used; a reply meant for one person in a channel names them in
        `recipient`."""
        workspace, chat_id = unscope(message.chat_id)
        in_dm = is_dm_channel(chat_id)
        for_one = message.private or message.ephemeral or message.open_private
        recipient = bare(message.recipient) if message.recipient else None
        if not in_dm and (message.attachment is not None or (for_one and not recipient)):
            # Personal, or meant for one person in a channel with nobody named: posting it
            # would show it to everyone.
            raise PermanentFailure("personal message for a non-DM channel refused")
        try:
            await self._prepare()
            client = await self._client(workspace)
        except WorkspaceUnavailable as exc:
            raise (PermanentFailure if exc.permanent else TransientFailure)(str(exc)) from exc
        try:
            if message.edit_ref is not None:
                await self._update(client, chat_id, message)
            elif message.attachment is not None:
                await self._upload(client, chat_id, message)
            else:
                more = self.coach.content.message("slack_more_buttons")
                for payload in render_outbound(message, more_text=more):
                    if for_one and not in_dm and recipient:
                        # A reply for the person who acted, in a channel: only they see it.
                        await client.chat_postEphemeral(channel=chat_id, user=recipient, **payload)
                    else:
                        await client.chat_postMessage(channel=chat_id, **payload)
        except SlackApiError as exc:
            error = api_error(exc)
            if error in TOKEN_ERRORS:
                raise await self._token_failed(workspace, client, error) from exc
            raise delivery_error(exc) from exc
        except SLACK_IO_ERRORS as exc:
            raise TransientFailure(type(exc).__name__) from exc

    async def _update(self, client: AsyncWebClient, chat_id: str, message: Outbound) -> None:
        """An edit from the outbox. It only tidies an answered question, so one Slack will
        not take (the message is ephemeral or gone) is dropped rather than retried."""
        assert message.edit_ref is not None
        try:
            more = self.coach.content.message("slack_more_buttons")
            await client.chat_update(
                channel=chat_id, ts=message.edit_ref, **render_edit(message, more_text=more)
            )
        except SlackApiError as exc:
            error = api_error(exc)
            if error in TOKEN_ERRORS:
                raise
            failure = delivery_error(exc)
            if isinstance(failure, RetryAfter):
                raise failure from exc
            raise DeliveryError(error or "edit refused") from exc


def _readable_timestamp(value: str | None) -> bool:
    """X-Slack-Request-Timestamp is absent (Bolt refuses that itself) or a number."""
    if value is None:
        return True
    try:
        int(value)
    except ValueError:
        return False
    return True


def api_error(exc: Exception) -> str:
    """The `error` Slack answered with ("" for other failures, or a body that is not
    Slack's JSON, like a proxy's error page)."""
    if not isinstance(exc, SlackApiError):
        return ""
    data = exc.response.data
    return str(data.get("error") or "") if isinstance(data, dict) else ""


def delivery_error(exc: SlackApiError) -> Exception:
    """A Slack API error as the dispatcher's retry decision."""
    response = exc.response
    status = getattr(response, "status_code", 0) or 0
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error") or "")
    if status == 429 or error == "ratelimited":
        headers = {str(k).lower(): v for k, v in dict(response.headers or {}).items()}
        try:
            seconds = float(headers.get("retry-after", 1))
        except (TypeError, ValueError):
            seconds = 1.0
        return RetryAfter(seconds)
    if error in MESSAGE_ERRORS:
        return DeliveryError(error)
    if error in PERMANENT_ERRORS:
        return PermanentFailure(error)
    if status >= 500:
        return TransientFailure(f"http {status}")
    return TransientFailure(error or f"http {status}")
