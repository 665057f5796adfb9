"""The Slack adapter: slack-bolt as transport between Slack and the coach.

One `AsyncApp` serves both modes: HTTP (`POST /slack/events`, signatures verified by Bolt)
and Socket Mode. Every listener acknowledges first and does the engine work after the ack,
so Slack gets its answer well inside 3 seconds. Listeners only translate: a slash command,
a DM, a button press or a join becomes one `Inbound`; each `Outbound` the coach returns
becomes Slack Web API calls. No coaching logic, wording or SQL lives here.

Privacy: replies marked private only ever go to the person's DM with the app; in a channel
anything personal (or meant only for the person who acted) is sent with chat.postEphemeral.
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
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.adapters.slack.render import (
    ACTION_PREFIX,
    COMMAND_VALUE_PREFIX,
    URL_ACTION_ID,
    escape,
    render_home,
    render_outbound,
    render_plain,
    unescape,
)
from bot.config import Settings
from bot.delivery import PermanentFailure, RetryAfter, TransientFailure
from bot.engine.events import COMMANDS, ChatKind, Inbound, InboundKind, Outbound
from bot.home import home_summary
from bot.service import Coach

log = logging.getLogger("hipcoach.slack")

DEFAULT_API_URL = "https://slack.com/api/"
CACHE_SECONDS = 3600.0
# Errors after which a message to that target will never be delivered.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "account_inactive",
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
# Errors meaning "the bot cannot post here itself"; a slash command's response_url still can.
NOT_HERE_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


def is_dm_channel(channel_id: str | None, channel_name: str | None = None) -> bool:
    return bool(channel_id and channel_id.startswith("D")) or channel_name == "directmessage"


@dataclass(frozen=True)
class Where:
    """Where an event happened and how its replies can reach the person."""

    user_id: str
    channel_id: str | None  # the channel or DM the event came from (None: App Home)
    private: bool  # handled as a private chat (replies go to `dm_channel`)
    dm_channel: str | None = None  # the app's DM with the user, once known
    response_url: str | None = None  # slash commands and message buttons
    ephemeral_source: bool = False  # the pressed button was on an ephemeral message
    app_id: str | None = None
    team_id: str | None = None
    from_home: bool = False


class _TTLCache:
    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: str, value: Any) -> None:
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.seconds, value)


class SlackAdapter:
    """Slack transport for the coach; also the outbox sender for platform "slack"."""

    platform = "slack"

    def __init__(self, settings: Settings, coach: Coach) -> None:
        self.settings = settings
        self.coach = coach
        self.client = AsyncWebClient(
            token=settings.slack_bot_token, base_url=settings.slack_api_url or DEFAULT_API_URL
        )
        # The token reaches Bolt through the client (giving both only logs a warning).
        self.app = AsyncApp(
            client=self.client,
            signing_secret=settings.slack_signing_secret or "",
            process_before_response=False,
        )
        self.handler = AsyncSlackRequestHandler(self.app)
        self._socket: Any = None
        self._users = _TTLCache()
        self._channels = _TTLCache()
        self._dms: dict[str, str] = {}
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
            return await self.handler.handle(request)

        return [Route("/slack/events", events, methods=["POST"])]

    async def start_web(self) -> None:
        if not self.settings.slack_signing_secret:
            log.warning("SLACK_SIGNING_SECRET is not set: every Slack request will get 401")

    async def start_socket_mode(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
        await self._socket.connect_async()
        log.info("slack socket mode connected")

    async def start_sender(self) -> None:
        """Nothing to prepare: the Web API client connects per request."""

    async def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        await self.drain(timeout=10)

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
            await job()
        except Exception:  # one bad event must not take the listener down; ids are logged
            log.exception("slack %s failed", name)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    # --- listeners ------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.command("/hip")(self._on_command)
        app.event("message")(self._on_message)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("member_joined_channel")(self._on_member_joined)
        app.action(URL_ACTION_ID)(self._on_url_button)
        app.action(re.compile(f"^{ACTION_PREFIX}\\d+$"))(self._on_button)

    async def _on_command(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._work("command", lambda: self._command(body))

    async def _on_message(self, ack: Any, body: dict[str, Any], event: dict[str, Any]) -> None:
        await ack()
        if (
            event.get("channel_type") != "im"
            or event.get("subtype")
            or event.get("bot_id")
            or not event.get("user")
        ):
            return
        await self._work("message", lambda: self._message(body, event))

    async def _on_home_opened(self, ack: Any, event: dict[str, Any]) -> None:
        await ack()
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        user_id = event["user"]
        if event.get("channel"):
            self._dms.setdefault(user_id, event["channel"])
        await self._work("home", lambda: self.publish_home(user_id))

    async def _on_member_joined(
        self, ack: Any, body: dict[str, Any], event: dict[str, Any], context: Any
    ) -> None:
        await ack()
        if not event.get("user") or event.get("user") != context.get("bot_user_id"):
            return
        await self._work("joined", lambda: self._joined(body, event))

    async def _on_url_button(self, ack: Any) -> None:
        await ack()  # a link button: Slack opens the URL, nothing to do here

    async def _on_button(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._work("button", lambda: self._button(body))

    # --- inbound translation --------------------------------------------------------------

    async def _command(self, body: dict[str, Any]) -> None:
        user_id = body["user_id"]
        channel_id = body.get("channel_id")
        private = is_dm_channel(channel_id, body.get("channel_name"))
        words = (body.get("text") or "").strip().split(maxsplit=1)
        word = words[0].lower().lstrip("/") if words else "help"
        args = words[1] if len(words) > 1 else ""
        where = Where(
            user_id=user_id,
            channel_id=channel_id,
            private=private,
            response_url=body.get("response_url"),
            app_id=body.get("api_app_id"),
            team_id=body.get("team_id"),
        )
        base: dict[str, Any] = {"event_id": f"cmd:{body.get('trigger_id')}"}
        if word in COMMANDS:
            base.update(kind=InboundKind.COMMAND, command=word, text=args)
        else:
            base.update(kind=InboundKind.TEXT, text=unescape((body.get("text") or "").strip()))
        if private:
            # Always the app's own DM, even when /hip was typed in a DM with someone else.
            dm = await self._dm(user_id)
            where = replace(where, dm_channel=dm)
            inbound = await self._private_inbound(where, **base)
            replies = await self.coach.handle(inbound)
            await self._deliver(replies, where)
            if replies and channel_id != dm and where.response_url:
                await self._respond(
                    where.response_url,
                    response_type="ephemeral",
                    **render_plain(self.coach.content.message("slack_replied_in_dm")),
                )
            return
        inbound = await self._group_inbound(where, channel_name=body.get("channel_name"), **base)
        replies = await self.coach.handle(inbound)
        if not replies and where.response_url:
            # Chatter in a channel gets no answer from the engine; a slash command should.
            replies = [
                Outbound(
                    chat_id=channel_id or "",
                    text=self.coach.content.message("slack_group_unknown"),
                    ephemeral=True,
                )
            ]
        await self._deliver(replies, where)

    async def _message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        user_id = event["user"]
        channel_id = event["channel"]
        self._dms.setdefault(user_id, channel_id)
        text = unescape((event.get("text") or "").strip())
        words = text.split(maxsplit=1)
        word = words[0].lower().lstrip("/") if words else ""
        where = Where(
            user_id=user_id,
            channel_id=channel_id,
            private=True,
            dm_channel=channel_id,
            app_id=body.get("api_app_id"),
            team_id=body.get("team_id"),
        )
        base: dict[str, Any] = {"event_id": str(body.get("event_id") or event.get("ts"))}
        if word in COMMANDS:
            base.update(
                kind=InboundKind.COMMAND, command=word, text=words[1] if len(words) > 1 else ""
            )
        else:
            base.update(kind=InboundKind.TEXT, text=text)
        inbound = await self._private_inbound(where, **base)
        await self._deliver(await self.coach.handle(inbound), where)

    async def _button(self, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        value = action.get("value") or ""
        user_id = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        from_home = container.get("type") == "view"
        channel_id = container.get("channel_id") or (body.get("channel") or {}).get("id")
        message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        private = from_home or is_dm_channel(channel_id)
        where = Where(
            user_id=user_id,
            channel_id=None if from_home else channel_id,
            private=private,
            response_url=body.get("response_url"),
            ephemeral_source=bool(container.get("is_ephemeral")),
            app_id=body.get("api_app_id"),
            team_id=(body.get("team") or {}).get("id"),
            from_home=from_home,
        )
        # A press is one action at one moment; Slack's trigger_id names this interaction.
        # No user id in it: processed_events holds nothing about a person (it outlives
        # `delete`).
        event_id = f"act:{action.get('action_ts')}:{body.get('trigger_id') or ''}"[:128]
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
        if private:
            try:
                dm = await self._dm(user_id)
            except (SlackClientError, aiohttp.ClientError, TimeoutError):
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
            await self._deliver(await self.coach.handle(inbound), where)
            if from_home:
                await self.publish_home(user_id)
            return
        inbound = await self._group_inbound(where, channel_name=None, **base)
        await self._deliver(await self.coach.handle(inbound), where)

    async def _joined(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        inbound = Inbound(
            platform=self.platform,
            event_id=str(body.get("event_id")),
            user_id=event.get("inviter") or event["user"],
            chat_id=event["channel"],
            kind=InboundKind.JOINED,
            chat_kind=ChatKind.GROUP,
        )
        where = Where(user_id=inbound.user_id, channel_id=event["channel"], private=False)
        await self._deliver(await self.coach.handle(inbound), where)

    async def _private_inbound(self, where: Where, **fields: Any) -> Inbound:
        user = await self._user(where.user_id)
        assert where.dm_channel is not None
        return Inbound(
            platform=self.platform,
            user_id=where.user_id,
            chat_id=where.dm_channel,
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
            user = await self._user(where.user_id)
            user_tz = user.get("tz")
            is_admin = await self._is_admin(where.user_id, where.channel_id, user)
        return Inbound(
            platform=self.platform,
            user_id=where.user_id,
            chat_id=where.channel_id,
            chat_kind=ChatKind.GROUP,
            user_tz=user_tz,
            is_admin=is_admin,
            raw={"chat_title": channel_name} if channel_name else None,
            **fields,
        )

    # --- Slack lookups (cached) -----------------------------------------------------------

    async def _user(self, user_id: str) -> dict[str, Any]:
        """users.info, cached for an hour; {} when Slack cannot tell us."""
        cached = self._users.get(user_id)
        if cached is not None:
            return dict(cached)
        try:
            response = await self.client.users_info(user=user_id)
            user = dict(response.get("user") or {})
        except (SlackClientError, aiohttp.ClientError, TimeoutError):
            log.warning("slack users.info failed user=%s", user_id)
            return {}
        info = {
            "tz": user.get("tz"),
            "is_admin": bool(
                user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
            ),
        }
        self._users.put(user_id, info)
        return info

    async def _is_admin(self, user_id: str, channel_id: str, user: dict[str, Any]) -> bool:
        """May this person change the channel's warm-ups? Workspace admins and owners, and
        whoever created the channel. Fails closed when Slack cannot tell."""
        if user.get("is_admin"):
            return True
        creator = self._channels.get(channel_id)
        if creator is None:
            try:
                response = await self.client.conversations_info(channel=channel_id)
                creator = (response.get("channel") or {}).get("creator") or ""
            except (SlackClientError, aiohttp.ClientError, TimeoutError):
                log.warning("slack conversations.info failed channel=%s", channel_id)
                return False
            self._channels.put(channel_id, creator)
        return bool(creator) and creator == user_id

    async def _dm(self, user_id: str) -> str:
        """The app's DM channel with this person (conversations.open, remembered)."""
        channel = self._dms.get(user_id)
        if channel is None:
            response = await self.client.conversations_open(users=user_id)
            channel = str((response.get("channel") or {})["id"])
            self._dms[user_id] = channel
        return channel

    # --- App Home -------------------------------------------------------------------------

    async def publish_home(self, user_id: str) -> None:
        user = await self._user(user_id)
        summary = await home_summary(self.coach, self.platform, user_id, user.get("tz"))
        view = render_home(summary, self.coach.content)
        await self.client.views_publish(user_id=user_id, view=view)
        log.info("slack home published user=%s onboarded=%s", user_id, summary.onboarded)

    # --- outbound -------------------------------------------------------------------------

    async def _deliver(self, replies: list[Outbound], where: Where) -> None:
        for out in replies:
            try:
                await self._deliver_one(out, where)
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
                log.warning("slack reply failed user=%s error=%s", where.user_id, error or "io")

    async def _deliver_one(self, out: Outbound, where: Where) -> None:
        content = self.coach.content
        if out.edit_ref is not None:
            payload = render_plain(out.text)
            if where.ephemeral_source and where.response_url:
                await self._respond(where.response_url, replace_original=True, **payload)
            else:
                await self.client.chat_update(channel=out.chat_id, ts=out.edit_ref, **payload)
            return
        if out.attachment is not None:
            # Files are personal (charts, exports): always the DM, never a channel.
            dm = where.dm_channel or await self._dm(where.user_id)
            await self._upload(dm, out)
            return
        open_dm = None
        if out.open_private and where.app_id:
            url = f"https://slack.com/app_redirect?app={where.app_id}"
            if where.team_id:
                url += f"&team={where.team_id}"
            open_dm = (content.message("slack_open_dm_button"), url)
        messages = render_outbound(
            out, more_text=content.message("slack_more_buttons"), open_dm=open_dm
        )
        if not where.private:
            if out.ephemeral or out.private or out.open_private:
                for message in messages:
                    await self._post_ephemeral(where, message)
                return
            for message in messages:
                await self._post(out.chat_id, message, where)
            return
        channel = out.chat_id
        if not is_dm_channel(channel):
            # A private context replies only in the DM, whatever the reply says.
            channel = where.dm_channel or await self._dm(where.user_id)
        for message in messages:
            await self._post(channel, message, where)

    async def _post(self, channel: str, message: dict[str, Any], where: Where) -> None:
        try:
            await self.client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            if exc.response.get("error") in NOT_HERE_ERRORS and where.response_url:
                # The app is not in this channel; a slash command can still answer in it.
                await self._respond(where.response_url, response_type="in_channel", **message)
                return
            raise

    async def _post_ephemeral(self, where: Where, message: dict[str, Any]) -> None:
        assert where.channel_id is not None
        try:
            await self.client.chat_postEphemeral(
                channel=where.channel_id, user=where.user_id, **message
            )
        except SlackApiError as exc:
            if exc.response.get("error") in NOT_HERE_ERRORS and where.response_url:
                await self._respond(where.response_url, response_type="ephemeral", **message)
                return
            raise

    async def _respond(self, url: str, **payload: Any) -> None:
        await AsyncWebhookClient(url).send_dict(payload)

    async def _upload(self, channel: str, out: Outbound) -> None:
        assert out.attachment is not None
        await self.client.files_upload_v2(
            channel=channel,
            content=out.attachment.data,
            filename=out.attachment.filename,
            title=out.attachment.filename,
            initial_comment=escape(out.text) if out.text else None,
        )
        log.info("slack file uploaded channel=%s mime=%s", channel, out.attachment.mime)

    # --- Sender contract (messages the bot starts itself) ---------------------------------

    async def send(self, message: Outbound) -> None:
        """Deliver one outbox message, or raise RetryAfter / TransientFailure /
        PermanentFailure (bot.delivery)."""
        if (message.private or message.attachment is not None) and not is_dm_channel(
            message.chat_id
        ):
            raise PermanentFailure("personal message for a non-DM channel refused")
        try:
            if message.edit_ref is not None:
                await self.client.chat_update(
                    channel=message.chat_id, ts=message.edit_ref, **render_plain(message.text)
                )
            elif message.attachment is not None:
                await self._upload(message.chat_id, message)
            else:
                more = self.coach.content.message("slack_more_buttons")
                for payload in render_outbound(message, more_text=more):
                    await self.client.chat_postMessage(channel=message.chat_id, **payload)
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientFailure(type(exc).__name__) from exc


def _readable_timestamp(value: str | None) -> bool:
    """X-Slack-Request-Timestamp is absent (Bolt refuses that itself) or a number."""
    if value is None:
        return True
    try:
        int(value)
    except ValueError:
        return False
    return True


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
    if error in PERMANENT_ERRORS:
        return PermanentFailure(error)
    if status >= 500:
        return TransientFailure(f"http {status}")
    return TransientFailure(error or f"http {status}")
