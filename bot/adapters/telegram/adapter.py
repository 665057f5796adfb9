"""The Telegram adapter: python-telegram-bot as transport only.

Every update goes through one handler that makes an `Inbound`, hands it to the `Coach`
(one transaction per event, deduplicated on `update_id`) and renders the replies. No
ConversationHandler, no PTB persistence, no JobQueue: state and schedules live in our tables.

Logs carry ids and kinds only, never what anyone wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from http import HTTPStatus
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    InputFile,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder

from bot import delivery
from bot.adapters.telegram import convert
from bot.config import Settings
from bot.engine.events import (
    COMMANDS,
    GROUP_COMMANDS,
    ChatKind,
    Inbound,
    InboundKind,
    Outbound,
)
from bot.service import Coach

log = logging.getLogger("hipcoach.telegram")

POLL_SECONDS = 25  # long-poll: Telegram holds getUpdates open until something arrives
UPDATE_ATTEMPTS = 3  # for a polled update failing with something other than an outage
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "channel_post"]
ADMIN_STATUSES = ("creator", "administrator")
ADMIN_CACHE_SECONDS = 60.0
SEND_ATTEMPTS = 3  # for replies: the first try plus two retries
BACKOFF_SECONDS = (0.5, 2.0)
MAX_RETRY_AFTER = 30.0  # longer waits than this are not worth holding a reply for
COMMAND_DESCRIPTION_KEYS = {word: f"telegram_command_{word}" for word in COMMANDS}
NOT_FOUND_ERRORS = ("chat not found", "user not found", "bot was kicked", "chat was deleted")
IGNORED_EDIT_ERRORS = ("message is not modified", "message to edit not found")

T = TypeVar("T")


def file_url_for(api_url: str) -> str:
    """The file base URL that belongs to a Bot API base URL (".../bot" -> ".../file/bot")."""
    base = api_url.rstrip("/")
    if base.endswith("/bot"):
        return base[: -len("/bot")] + "/file/bot"
    return base + "/file/bot"


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB warns that the type will become timedelta
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramAdapter:
    """Telegram transport for the coach: polling, webhook and outbox sender."""

    platform = "telegram"

    def __init__(self, settings: Settings, coach: Coach) -> None:
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.settings = settings
        self.coach = coach
        # httpx logs every request URL at INFO, and a Bot API URL contains the token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        builder = ApplicationBuilder().token(settings.telegram_bot_token).job_queue(None)
        if settings.telegram_api_url:
            builder = builder.base_url(settings.telegram_api_url).base_file_url(
                settings.telegram_file_url or file_url_for(settings.telegram_api_url)
            )
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self._initialized = False
        self._poller: asyncio.Task[None] | None = None
        self._admin_cache: dict[tuple[str, str], tuple[float, bool]] = {}

    @property
    def bot(self) -> Any:
        return self.application.bot

    # --- lifecycle -------------------------------------------------------------------------

    async def _initialize(self) -> None:
        if not self._initialized:
            await self.application.initialize()  # getMe: the bot's username for deep links
            self._initialized = True

    async def start_sender(self) -> None:
        """Just enough to send (the clock process)."""
        await self._initialize()

    async def start_polling(self) -> None:
        await self._initialize()
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self._set_commands()
        self._poller = asyncio.create_task(self._poll(), name="telegram-polling")
        log.info("telegram polling started bot=%s", self.bot.id)

    async def _poll(self) -> None:
        """Our own getUpdates loop instead of PTB's Updater.

        The Updater confirms a batch (by asking for the next offset) as soon as it has
        fetched it, before the updates are handled, so a crash or a database outage in
        between loses them. Here an update is confirmed only after it was handled; if the
        process dies first, Telegram hands it out again and the dedup record on update_id
        makes the second delivery harmless.
        """
        offset: int | None = None
        delay = 1.0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=POLL_SECONDS, allowed_updates=ALLOWED_UPDATES
                )
                delay = 1.0
            except RetryAfter as error:
                await asyncio.sleep(retry_seconds(error))
                continue
            except TelegramError as error:  # network errors, timeouts, 5xx
                log.warning("telegram getUpdates failed error=%s", _describe(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            for update in updates:
                await self._handle_until_done(update)
                offset = update.update_id + 1

    async def _handle_until_done(self, update: Update) -> None:
        """Handle one polled update. Database and network trouble is waited out (nothing a
        runner sent is dropped); an update that fails for any other reason is given up
        after a few tries so one bad update cannot stall everyone behind it."""
        delay, failures = 0.5, 0
        while True:
            try:
                await self.handle_update(update)
                return
            except (DBAPIError, OSError, TimeoutError) as error:
                log.warning(
                    "telegram update=%s waiting for the database error=%s",
                    update.update_id,
                    type(error).__name__,
                )
            except Exception as error:
                failures += 1
                log.error(
                    "telegram update failed update=%s error=%s",
                    update.update_id,
                    type(error).__name__,
                    exc_info=True,
                )
                if failures >= UPDATE_ATTEMPTS:
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def start_web(self) -> None:
        await self._initialize()
        if not self.settings.telegram_webhook_secret:
            log.error("TELEGRAM_WEBHOOK_SECRET is not set: every webhook request is refused")
        if self.settings.telegram_webhook_url:
            await self.bot.set_webhook(
                url=self.settings.telegram_webhook_url,
                secret_token=self.settings.telegram_webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("telegram webhook registered bot=%s", self.bot.id)
        await self._set_commands()

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self.application.running:
            await self.application.stop()
        if self._initialized:
            await self.application.shutdown()
            self._initialized = False

    async def _set_commands(self) -> None:
        def commands(words: tuple[str, ...]) -> list[BotCommand]:
            return [
                BotCommand(word, self.coach.content.message(COMMAND_DESCRIPTION_KEYS[word]))
                for word in words
            ]

        await self.bot.set_my_commands(commands(COMMANDS), scope=BotCommandScopeAllPrivateChats())
        await self.bot.set_my_commands(
            commands(GROUP_COMMANDS), scope=BotCommandScopeAllGroupChats()
        )

    # --- webhook ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route("/telegram", self._webhook, methods=["POST"])]

    async def _webhook(self, request: Request) -> Response:
        expected = self.settings.telegram_webhook_secret
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            log.warning("telegram webhook: bad or missing secret token")
            return Response(status_code=HTTPStatus.FORBIDDEN)
        try:
            data = await request.json()
            update = Update.de_json(data, self.bot)
        except Exception:  # malformed body: nothing Telegram can fix by retrying
            log.warning("telegram webhook: unreadable update")
            return JSONResponse({"ok": False}, status_code=HTTPStatus.BAD_REQUEST)
        await self._initialize()
        # An error before the turn commits answers 500, so Telegram delivers the update again;
        # dedup on update_id makes that safe.
        await self.handle_update(update)
        return JSONResponse({"ok": True})

    # --- one update ------------------------------------------------------------------------

    async def handle_update(self, update: Update) -> None:
        """Turn one update into an Inbound, run the coach, answer, render the replies."""
        if self._blocked_us(update):
            assert update.my_chat_member is not None
            await self.coach.mark_unreachable(self.platform, str(update.my_chat_member.chat.id))
            return
        inbound = convert.to_inbound(update, self.bot.username)
        query = update.callback_query
        if inbound is None:
            if query is not None:
                await self._answer_query(query.id, None)
            return
        inbound = await self._with_admin(inbound, update)
        log.info(
            "telegram update=%s kind=%s chat_kind=%s",
            inbound.event_id,
            inbound.kind.value,
            inbound.chat_kind.value,
        )
        try:
            replies = await self.coach.handle(inbound)
        except Exception:
            if query is not None:
                await self._answer_query(query.id, None)
            raise
        toast = None
        if query is not None and inbound.chat_kind == ChatKind.GROUP:
            # A short note only the person who tapped should see: Telegram's ephemeral.
            notes = [r for r in replies if r.ephemeral and _fits_toast(r)]
            if notes:
                toast = notes[0].text
                replies = [r for r in replies if r is not notes[0]]
        if query is not None:
            await self._answer_query(query.id, toast)
        for reply in replies:
            try:
                await self._deliver(reply, retries=True)
            except Forbidden:
                log.info("telegram forbidden update=%s", inbound.event_id)
                if inbound.chat_kind == ChatKind.PRIVATE:
                    await self.coach.mark_unreachable(self.platform, inbound.user_id)
                return
            except TelegramError as error:
                # The turn is committed; a failed reply is logged, not retried forever.
                log.warning(
                    "telegram reply failed update=%s error=%s", inbound.event_id, _describe(error)
                )

    def _blocked_us(self, update: Update) -> bool:
        change = update.my_chat_member
        return (
            change is not None
            and convert.chat_kind(change.chat) == ChatKind.PRIVATE
            and change.new_chat_member.status in convert.GONE_STATUSES
        )

    async def _answer_query(self, query_id: str, text: str | None) -> None:
        try:
            await self._retrying(lambda: self.bot.answer_callback_query(query_id, text=text))
        except TelegramError as error:
            # A query older than ~15 minutes can no longer be answered; nothing to do.
            log.info("telegram answerCallbackQuery failed error=%s", _describe(error))

    async def _with_admin(self, inbound: Inbound, update: Update) -> Inbound:
        """Fill `is_admin` where group admin rights matter (warm-up changes)."""
        if inbound.chat_kind != ChatKind.GROUP or inbound.kind == InboundKind.JOINED:
            return inbound
        if inbound.kind == InboundKind.COMMAND and inbound.command != "warmup":
            return inbound
        message = update.effective_message
        if (
            update.callback_query is None
            and isinstance(message, Message)
            and convert.speaks_for_chat(message)
        ):
            return _replace(inbound, is_admin=True)
        return _replace(inbound, is_admin=await self._is_admin(inbound.chat_id, inbound.user_id))

    async def _is_admin(self, chat_id: str, user_id: str) -> bool:
        key = (chat_id, user_id)
        now = time.monotonic()
        cached = self._admin_cache.get(key)
        if cached is not None and now - cached[0] < ADMIN_CACHE_SECONDS:
            return cached[1]
        try:
            member = await self._retrying(lambda: self.bot.get_chat_member(chat_id, user_id))
        except TelegramError as error:
            log.warning("telegram getChatMember failed chat=%s error=%s", chat_id, _describe(error))
            return False
        admin = member.status in ADMIN_STATUSES
        if len(self._admin_cache) > 10_000:
            self._admin_cache.clear()
        self._admin_cache[key] = (now, admin)
        return admin

    # --- rendering -------------------------------------------------------------------------

    async def send(self, message: Outbound) -> None:
        """The Sender contract for messages the bot starts itself (the outbox)."""
        try:
            await self._deliver(message, retries=False)
        except Forbidden as error:
            raise delivery.PermanentFailure(_describe(error)) from error
        except RetryAfter as error:
            raise delivery.RetryAfter(retry_seconds(error)) from error
        except BadRequest as error:
            if any(text in str(error).lower() for text in NOT_FOUND_ERRORS):
                raise delivery.PermanentFailure(_describe(error)) from error
            # This message can never be sent as it is, but the chat is fine: drop the message,
            # keep the target.
            raise delivery.DeliveryError(_describe(error)) from error
        except ChatMigrated as error:  # a group became a supergroup under a new id
            raise delivery.PermanentFailure(_describe(error)) from error
        except NetworkError as error:  # includes TimedOut
            raise delivery.TransientFailure(_describe(error)) from error
        except TelegramError as error:
            raise delivery.TransientFailure(_describe(error)) from error

    async def _deliver(self, out: Outbound, *, retries: bool) -> None:
        if out.private and convert.is_group_chat_id(out.chat_id):
            log.warning("telegram: private message for a group dropped chat=%s", out.chat_id)
            return
        run: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]] = (
            self._retrying if retries else _once
        )
        chat_id = int(out.chat_id)
        if out.edit_ref is not None:
            await self._edit(chat_id, int(out.edit_ref), out.text, run)
            return
        url_button = None
        if out.open_private and self.bot.username:
            url_button = (
                self.coach.content.message("telegram_open_private"),
                f"https://t.me/{self.bot.username}?start=go",
            )
        markup = convert.keyboard(out.buttons, url_button)
        if out.attachment is not None:
            attachment = out.attachment
            caption, rest = _caption_and_rest(out.text)
            last_markup = markup if not rest else None
            upload = InputFile(attachment.data, filename=attachment.filename)
            if attachment.is_image:
                await run(
                    lambda: self.bot.send_photo(
                        chat_id, upload, caption=caption or None, reply_markup=last_markup
                    )
                )
            else:
                await run(
                    lambda: self.bot.send_document(
                        chat_id, upload, caption=caption or None, reply_markup=last_markup
                    )
                )
            chunks = convert.split_text(rest) if rest else []
        else:
            chunks = convert.split_text(out.text) if out.text.strip() else []
        for n, chunk in enumerate(chunks):
            keys = markup if n == len(chunks) - 1 else None
            await run(functools.partial(self.bot.send_message, chat_id, chunk, reply_markup=keys))

    async def _edit(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        run: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
    ) -> None:
        try:
            await run(
                lambda: self.bot.edit_message_text(
                    convert.truncate(text), chat_id=chat_id, message_id=message_id
                )
            )
        except BadRequest as error:
            if any(text in str(error).lower() for text in IGNORED_EDIT_ERRORS):
                return
            # e.g. the question was a photo caption: at least drop the old buttons.
            log.info("telegram edit failed chat=%s error=%s", chat_id, _describe(error))
            with contextlib.suppress(BadRequest):
                await run(
                    lambda: self.bot.edit_message_reply_markup(
                        chat_id=chat_id, message_id=message_id, reply_markup=None
                    )
                )

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Honour RetryAfter and retry network errors with a small backoff (for replies)."""
        for attempt in range(SEND_ATTEMPTS):
            last = attempt == SEND_ATTEMPTS - 1
            try:
                return await call()
            except RetryAfter as error:
                seconds = retry_seconds(error)
                if last or seconds > MAX_RETRY_AFTER:
                    raise
                log.info("telegram rate limited: waiting %.1fs", seconds)
                await asyncio.sleep(seconds)
            except (BadRequest, Forbidden):
                raise
            except NetworkError as error:
                if last:
                    raise
                log.info("telegram network error, retrying error=%s", type(error).__name__)
                await asyncio.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
        raise AssertionError("unreachable")


async def _once(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


def _caption_and_rest(text: str) -> tuple[str, str]:
    if convert.tg_len(text) <= convert.MAX_CAPTION:
        return text, ""
    first = convert.split_text(text, convert.MAX_CAPTION)[0]
    return first, text[len(first) :].lstrip("\n")


def _fits_toast(out: Outbound) -> bool:
    return (
        not out.buttons
        and out.attachment is None
        and out.edit_ref is None
        and not out.open_private
        and len(out.text) <= 200
    )


def _replace(inbound: Inbound, **changes: Any) -> Inbound:
    return replace(inbound, **changes)


def _describe(error: TelegramError) -> str:
    """The error's class and Telegram's description (no message text is ever in it)."""
    return f"{type(error).__name__}: {error.message}"
