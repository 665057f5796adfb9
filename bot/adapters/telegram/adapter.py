"""The Telegram adapter: python-telegram-bot as transport only.

Every update goes through one handler that makes an `Inbound`, has the `Coach` record it
(one transaction per event, deduplicated on `update_id`, replies stored in the outbox) and
then sends the replies at once. No ConversationHandler, no PTB persistence, no JobQueue:
state and schedules live in our tables.

Polling is our own getUpdates loop. It fetches raw JSON and parses each update on its own,
so one update python-telegram-bot cannot parse (an older Bot API server's poll, a field a
newer version requires) is skipped and confirmed, with a log line holding only its id,
instead of failing the whole batch. The loop never ends on an error; if it ends anyway (the
token was revoked), `health()` says why and the CLI exits non-zero.

Logs carry ids and kinds only, never what anyone wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from http import HTTPStatus
from typing import Any, TypeVar

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
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder

from bot import delivery
from bot.adapters.telegram import convert
from bot.adapters.telegram.lanes import Chains, Lanes, Watermark
from bot.adapters.telegram.transport import AiohttpRequest, form
from bot.config import Settings
from bot.engine.events import (
    COMMANDS,
    GROUP_COMMANDS,
    ChatKind,
    Inbound,
    InboundKind,
    Outbound,
)
from bot.service import Coach, Handled
from bot.storage import outbox
from bot.storage.errors import is_outage

log = logging.getLogger("hipcoach.telegram")

# getUpdates goes through do_api_request on purpose, for the raw JSON, so that one
# unreadable update cannot fail its batch (see _fetch); the sends skip PTB's Bot methods
# (`_raw`) because we never read the Message PTB would build from each answer (a good
# part of the bot's CPU per update). PTB suggests its parsing methods instead.


def _wire(method: str) -> str:
    """The method name as sent: lower case. Telegram reads method names case-insensitively
    (its Bot API docs say so), and PTB's do_api_request warns, on every call, when the
    name is one of its own methods: that warning (stack walk, filter lookup) cost ~4% of
    the bot's CPU in bench 2, even filtered out."""
    return method.lower()


POLL_SECONDS = 25  # long-poll: Telegram holds getUpdates open until something arrives
POLL_READ_MARGIN = 10  # seconds the read may take beyond the long poll itself
POLL_LIMIT = 100  # updates per getUpdates (Telegram's maximum): the window of pending ones
# While updates are in flight, getUpdates answers at once with them again: ask again when
# the confirmable prefix grew, or after this long (new updates of other chats).
REPOLL_SECONDS = 0.25
# ... and then this long more, so that one call confirms several updates: while updates are
# in flight each call hands all of them out again (decoded again), and asking once per
# recorded update cost more CPU than the updates themselves at 200 a second.
REPOLL_GAP_SECONDS = 0.05
# Updates handled at once (across chats; one chat's are always one after the other). Most
# of a turn is waiting for the Bot API, so this is about overlapping round trips.
CONCURRENT_UPDATES = 100
STOP_SECONDS = 10.0  # on stop, updates in flight get this long to finish
UPDATE_ATTEMPTS = 3  # for a polled update failing with something other than an outage
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", "channel_post"]
ADMIN_STATUSES = ("creator", "administrator")
ADMIN_CACHE_SECONDS = 60.0
# answerCallbackQuery and getChatMember (not messages: those go through the outbox). They
# hold up the update being handled, so only a short wait is worth it.
SEND_ATTEMPTS = 3
BACKOFF_SECONDS = (0.5, 2.0)
MAX_RETRY_AFTER = 5.0
COMMAND_DESCRIPTION_KEYS = {word: f"telegram_command_{word}" for word in COMMANDS}
NOT_FOUND_ERRORS = ("chat not found", "user not found", "bot was kicked", "chat was deleted")
IGNORED_EDIT_ERRORS = ("message is not modified", "message to edit not found")

T = TypeVar("T")

# Set by whoever runs handle_update: called once the update's turn is committed (its
# replies are in the outbox), before they are sent.
_on_recorded: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "telegram_on_recorded", default=None
)
# Set by the lanes: hand the replies to the chat's chain (lanes.Chains) instead of waiting
# for them, so the chat's next update is handled while they go out.
_chained: contextvars.ContextVar[bool] = contextvars.ContextVar("telegram_chained", default=False)


def lane_key(update: Update) -> str | None:
    """What an update's handling must be ordered behind: its chat. The engine keeps a
    private chat's state per person, and a Telegram private chat has the person's id, so
    one key covers both; a group's state is the group's (a tap there changes no personal
    state). None: a group that became a supergroup, which moves rows between two chats,
    is handled alone (a barrier)."""
    if convert.migration(update) is not None:
        return None
    chat = update.effective_chat
    if chat is not None:
        return f"c{chat.id}"
    user = update.effective_user
    return f"u{user.id}" if user is not None else "-"


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
        # Kept although our transport is aiohttp: anything that still sends through httpx would
        # log each request URL at INFO, and a Bot API URL contains the token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._transports = (AiohttpRequest(), AiohttpRequest(connections=1))
        # Our own transport (transport.py): httpx was most of the bot's CPU per update. The
        # long poll gets a session of its own, so it never waits behind the sends.
        builder = (
            ApplicationBuilder()
            .token(settings.telegram_bot_token)
            .job_queue(None)
            .request(self._transports[0])
            .get_updates_request(self._transports[1])
        )
        if settings.telegram_api_url:
            builder = builder.base_url(settings.telegram_api_url).base_file_url(
                settings.telegram_file_url or file_url_for(settings.telegram_api_url)
            )
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self._initialized = False
        self._poller: asyncio.Task[None] | None = None
        self._stopped_because: str | None = None
        self._admin_cache: dict[tuple[str, str], tuple[float, bool]] = {}
        self._lanes = Lanes(CONCURRENT_UPDATES)
        self._chains = Chains(CONCURRENT_UPDATES, outbox.new_token)
        self._marks = Watermark()

    @property
    def bot(self) -> Any:
        return self.application.bot

    # --- lifecycle -------------------------------------------------------------------------

    async def _initialize(self) -> None:
        if not self._initialized:
            try:
                await self.application.initialize()  # getMe: the bot's username for deep links
            except BaseException:
                # PTB leaves its transports open when getMe fails (a revoked token).
                for transport in self._transports:
                    await transport.shutdown()
                raise
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

    def health(self) -> str | None:
        """None while healthy; otherwise a short reason (for /healthz and the CLI)."""
        poller = self._poller
        if poller is None or not poller.done():
            return None
        if self._stopped_because:
            return f"telegram polling stopped: {self._stopped_because}"
        if poller.cancelled():
            return "telegram polling stopped: cancelled"
        error = poller.exception()
        return f"telegram polling stopped: {type(error).__name__ if error else 'ended'}"

    async def _poll(self) -> None:
        """Our own getUpdates loop instead of PTB's Updater.

        The Updater confirms a batch (by asking for the next offset) as soon as it has
        fetched it, before the updates are handled, so a crash or a database outage in
        between loses them. Here an update is confirmed only once it and every update
        before it are recorded (the turn committed, its replies in the outbox, where a
        restart finds them); if the process dies first, Telegram hands it out again and the
        dedup record on update_id makes the second delivery harmless. An update that
        cannot be parsed is confirmed and skipped. Nothing but a rejected token (or
        cancellation) ends the loop.

        Updates are handled concurrently across chats and in order within one (bot/adapters/
        telegram/lanes.py); the loop keeps polling meanwhile, so a slow chat does not hold
        back the others. Asking again with the same offset hands out the unconfirmed
        updates once more (each one decoded again): those already taken are skipped.
        Confirming at "recorded" rather than once the tap is answered and the replies sent
        keeps that window small, and no call to Telegram can hold back the others.
        """
        marks = self._marks
        delay = 1.0
        while True:
            offset = marks.offset(recorded=True)
            try:
                batch = await self._fetch(offset)
                marks.confirmed(offset)
                delay = 1.0
            except (InvalidToken, EndPointNotFound):
                self._stopped_because = "the bot token was rejected"
                log.error("telegram getUpdates: the bot token was rejected; polling stops")
                return
            except RetryAfter as error:
                await asyncio.sleep(retry_seconds(error))
                continue
            except Exception as error:  # network errors, timeouts, 5xx, a 409, odd JSON
                log.warning("telegram getUpdates failed error=%s", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            for raw in batch:
                update_id = _update_id(raw)
                if update_id is None:
                    log.warning("telegram getUpdates: an item without an update id; skipped")
                    continue
                if not marks.take(update_id):
                    continue  # handed out again because it is not confirmed yet
                update = self._parse(raw, update_id)
                if update is None:
                    marks.done(update_id)
                    continue
                await self._lanes.submit(lane_key(update), self._polled_job(update))
            if marks.pending:
                # Updates in flight: Telegram would answer at once with them again. Ask
                # again when the confirmable prefix grew, or after a short while (new
                # updates of other chats while one chat is slow).
                await marks.wait_moved(offset, REPOLL_SECONDS, recorded=True)
                await asyncio.sleep(REPOLL_GAP_SECONDS)

    def _polled_job(self, update: Update) -> Callable[[], Awaitable[None]]:
        update_id = update.update_id
        marks = self._marks

        async def job() -> None:
            token = _on_recorded.set(lambda: marks.recorded(update_id))
            chained = _chained.set(True)
            try:
                await self._handle_until_done(update)
            finally:
                _chained.reset(chained)
                _on_recorded.reset(token)
                marks.done(update_id)

        return job

    async def _fetch(self, offset: int | None) -> list[Any]:
        """One getUpdates call, as raw JSON: PTB's get_updates parses (and, on a failure,
        logs) the whole batch at once."""
        params: dict[str, Any] = {
            "timeout": POLL_SECONDS,
            "limit": POLL_LIMIT,
            "allowed_updates": ALLOWED_UPDATES,
        }
        if offset is not None:
            params["offset"] = offset
        result = await self.bot.do_api_request(
            _wire("getUpdates"), api_kwargs=params, read_timeout=POLL_SECONDS + POLL_READ_MARGIN
        )
        if not isinstance(result, list):
            raise TypeError(f"getUpdates returned {type(result).__name__}, not a list")
        return result

    def _parse(self, raw: Any, update_id: int) -> Update | None:
        try:
            return Update.de_json(_without_tapped_keyboard(raw), self.bot)
        except Exception as error:  # what failed says nothing about the person; its id does
            log.warning(
                "telegram update=%s could not be read (%s); skipped",
                update_id,
                type(error).__name__,
            )
            return None

    async def _handle_until_done(self, update: Update) -> None:
        """Handle one polled update. A database or network outage is waited out (nothing a
        runner sent is dropped); an update that fails for any other reason is given up
        after a few tries so one bad update cannot stall everyone behind it."""
        delay, failures = 0.5, 0
        while True:
            try:
                await self.handle_update(update)
                return
            except Exception as error:
                if is_outage(error):
                    log.warning(
                        "telegram update=%s waiting for the database error=%s",
                        update.update_id,
                        type(error).__name__,
                    )
                else:
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
        # Let the updates in flight finish; what does not finish in time is not confirmed,
        # so Telegram hands it out again after the restart. Then the replies still going
        # out; what is cut off waits for its claim to run out and goes with the dispatcher.
        for queue, doing in ((self._lanes, "busy"), (self._chains, "sending")):
            if queue.busy:
                drained = asyncio.ensure_future(queue.drain())
                await asyncio.wait({drained}, timeout=STOP_SECONDS)
                if not drained.done():
                    drained.cancel()
                    log.warning("telegram: %d chats still %s at stop", queue.busy, doing)
            await queue.cancel()
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
        except Exception:  # not JSON at all: nothing Telegram can fix by retrying
            log.warning("telegram webhook: unreadable body")
            return JSONResponse({"ok": False}, status_code=HTTPStatus.BAD_REQUEST)
        update_id = _update_id(data)
        update = self._parse(data, update_id if update_id is not None else -1)
        if update is None:
            # Confirmed and skipped, as in polling: any error status makes Telegram retry.
            return JSONResponse({"ok": True})
        await self._initialize()
        # In the chat's lane like a polled update; answered once the turn is committed, so
        # Telegram's next webhook call does not wait for our replies to be sent.
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def mark() -> None:
            if not recorded.done():
                recorded.set_result(None)

        async def job() -> None:
            token = _on_recorded.set(mark)
            chained = _chained.set(True)
            try:
                await self.handle_update(update)
            except Exception as error:
                if not recorded.done():
                    recorded.set_exception(error)
                else:
                    log.error(
                        "telegram webhook update failed update=%s error=%s",
                        update.update_id,
                        type(error).__name__,
                        exc_info=True,
                    )
            finally:
                _chained.reset(chained)
                _on_recorded.reset(token)
                mark()

        await self._lanes.submit(lane_key(update), job)
        try:
            await recorded
        except Exception as error:
            if is_outage(error):
                # Nothing committed: 500, so Telegram delivers the update again later;
                # dedup on update_id makes that safe.
                log.warning(
                    "telegram webhook update=%s waiting for the database error=%s",
                    update.update_id,
                    type(error).__name__,
                )
                return JSONResponse({"ok": False}, status_code=HTTPStatus.INTERNAL_SERVER_ERROR)
            # The same update would fail the same way each time: answer 200, or Telegram
            # would redeliver it forever.
            log.error(
                "telegram webhook update failed update=%s error=%s",
                update.update_id,
                type(error).__name__,
                exc_info=(type(error), error, error.__traceback__),
            )
        return JSONResponse({"ok": True})

    # --- one update ------------------------------------------------------------------------

    async def handle_update(self, update: Update) -> None:
        """Turn one update into an Inbound, have the coach record it, answer the tap, then
        send the replies (what cannot go now stays in the outbox for the dispatcher)."""
        moved = convert.migration(update)
        if moved is not None:
            await self.coach.migrate_chat(self.platform, *moved)
            return
        gone = convert.removed(update)
        if gone is not None:
            assert update.my_chat_member is not None
            chat_id = str(update.my_chat_member.chat.id)
            if gone == ChatKind.PRIVATE:
                await self.coach.mark_unreachable(self.platform, chat_id)
            else:
                await self.coach.mark_chat_unreachable(self.platform, chat_id)
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
        key = lane_key(update) if _chained.get() else None
        claim_token = self._chains.token(key) if key is not None else None
        try:
            handled = await self.coach.record(inbound, token=claim_token)
        except Exception:
            if query is not None:
                await self._answer_query(query.id, None)
            raise
        recorded = _on_recorded.get()
        if recorded is not None:
            recorded()
        toast = None
        if query is not None and inbound.chat_kind == ChatKind.GROUP:
            toast = _toast(handled)
        if query is not None:
            # A short note only the person who tapped should see: Telegram's ephemeral.
            # Answered before the replies go, not beside them: the fault tests hold it to
            # stop a process right between the commit and the sends (tests/fault_tools.py).
            await self._answer_query(
                query.id, convert.render_text(toast.text) if toast is not None else None
            )
        send = self._reply_sender(toast)
        if key is not None and claim_token is not None:
            await self._chains.submit(
                key,
                claim_token,
                lambda: self.coach.deliver(handled, send),
                lambda: self.coach.hand_back(handled),
            )
            return
        await self.coach.deliver(handled, send)

    def _reply_sender(self, shown: Outbound | None) -> Callable[[Outbound], Awaitable[None]]:
        async def send(message: Outbound) -> None:
            if message is shown:
                return  # already shown as the tap's pop-up
            await self.send(message)

        return send

    async def _answer_query(self, query_id: str, text: str | None) -> None:
        try:
            await self._retrying(
                lambda: self._raw("answerCallbackQuery", callback_query_id=query_id, text=text)
            )
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
        """The Sender contract (bot/delivery.py): one attempt, or a DeliveryError. Used for
        replies sent at once and for everything the dispatcher sends."""
        try:
            try:
                await self._deliver(message)
            except ChatMigrated as error:
                # The group became a supergroup under a new id: follow it, and remember it.
                new_id = str(error.new_chat_id)
                log.info("telegram chat migrated; following it")
                await self.coach.migrate_chat(self.platform, message.chat_id, new_id)
                await self._deliver(replace(message, chat_id=new_id))
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
        except ChatMigrated as error:  # migrated twice in a row: not followed further
            raise delivery.TransientFailure(_describe(error)) from error
        except NetworkError as error:  # includes TimedOut
            raise delivery.TransientFailure(_describe(error)) from error
        except TelegramError as error:
            raise delivery.TransientFailure(_describe(error)) from error

    async def _deliver(self, out: Outbound) -> None:
        out = replace(out, text=convert.render_text(out.text))
        if out.private and convert.is_group_chat_id(out.chat_id):
            log.warning("telegram: private message for a group dropped chat=%s", out.chat_id)
            return
        chat_id = int(out.chat_id)
        if out.edit_ref is not None:
            await self._edit(
                chat_id, int(out.edit_ref), out.text, convert.keyboard_data(out.buttons)
            )
            return
        url_button = None
        if out.open_private and self.bot.username:
            url_button = (
                self.coach.content.message("telegram_open_private"),
                f"https://t.me/{self.bot.username}?start=go",
            )
        keys = convert.keyboard_data(out.buttons, url_button)
        if out.attachment is not None:
            attachment = out.attachment
            caption, rest = _caption_and_rest(out.text)
            last_markup = convert.keyboard(out.buttons, url_button) if not rest else None
            upload = InputFile(attachment.data, filename=attachment.filename)
            if attachment.is_image:
                await self.bot.send_photo(
                    chat_id, upload, caption=caption or None, reply_markup=last_markup
                )
            else:
                await self.bot.send_document(
                    chat_id, upload, caption=caption or None, reply_markup=last_markup
                )
            chunks = convert.split_text(rest) if rest else []
        else:
            chunks = convert.split_text(out.text) if out.text.strip() else []
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            await self._raw(
                "sendMessage", chat_id=chat_id, text=chunk, reply_markup=keys if last else None
            )

    async def _edit(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        markup: dict[str, Any] | None = None,
    ) -> None:
        """editMessageText: an answered question loses its buttons; a card that changes in
        place (today's exercises) keeps the ones it still has."""
        try:
            await self._raw(
                "editMessageText",
                chat_id=chat_id,
                message_id=message_id,
                text=convert.truncate(text),
                reply_markup=markup,
            )
        except BadRequest as error:
            if any(text in str(error).lower() for text in IGNORED_EDIT_ERRORS):
                return
            # e.g. the question was a photo caption: at least drop the old buttons.
            log.info("telegram edit failed chat=%s error=%s", chat_id, _describe(error))
            with contextlib.suppress(BadRequest):
                await self.bot.edit_message_reply_markup(
                    chat_id=chat_id, message_id=message_id, reply_markup=None
                )

    async def _raw(self, method: str, **params: Any) -> Any:
        """A Bot API call whose answer we do not read, straight to PTB's transport (which
        maps Telegram's errors to its exceptions, as for its own methods): no Telegram
        objects built either way (transport.form). None values are left out."""
        url = f"{self.bot.base_url}/{_wire(method)}"
        return await self._transports[0].post(url, request_data=form(params))

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Honour a short RetryAfter and retry network errors with a small backoff."""
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


def _without_tapped_keyboard(raw: Any) -> Any:
    """A button tap's update without the keyboard of the message it was tapped on: nothing
    reads it (the tap's own data says what was pressed), and PTB builds an object per
    button, which was half the cost of reading a tap on a pain scale's eleven buttons."""
    query = raw.get("callback_query") if isinstance(raw, dict) else None
    if not isinstance(query, dict):
        return raw
    message = query.get("message")
    if not isinstance(message, dict) or "reply_markup" not in message:
        return raw
    slim = {k: v for k, v in message.items() if k != "reply_markup"}
    return {**raw, "callback_query": {**query, "message": slim}}


def _caption_and_rest(text: str) -> tuple[str, str]:
    if convert.tg_len(text) <= convert.MAX_CAPTION:
        return text, ""
    first = convert.split_text(text, convert.MAX_CAPTION)[0]
    return first, text[len(first) :].lstrip("\n")


def _update_id(raw: Any) -> int | None:
    update_id = raw.get("update_id") if isinstance(raw, dict) else None
    return update_id if isinstance(update_id, int) and not isinstance(update_id, bool) else None


def _toast(handled: Handled) -> Outbound | None:
    """The first short note for the person who tapped in a group that this process may
    send now: it becomes the tap's pop-up instead of a message to the whole chat."""
    for _, message in handled.claimed:
        if message.ephemeral and _fits_toast(message):
            return message
    return None


def _fits_toast(out: Outbound) -> bool:
    return (
        not out.buttons
        and out.attachment is None
        and out.edit_ref is None
        and not out.open_private
        and len(convert.render_text(out.text)) <= 200
    )


def _replace(inbound: Inbound, **changes: Any) -> Inbound:
    return replace(inbound, **changes)


def _describe(error: TelegramError) -> str:
    """The error's class and Telegram's description (no message text is ever in it)."""
    return f"{type(error).__name__}: {error.message}"
