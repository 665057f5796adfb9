"""A small fake Telegram Bot API server for end-to-end tests.

Runs on 127.0.0.1 (aiohttp) at /bot<token>/<method>, records every call, serves queued
updates to getUpdates, and rejects what the real API rejects: callback_data over 64 bytes,
texts over 4096 characters, captions over 1024, empty texts and bad markup when a
parse_mode is given. Tests drive it like a person: `await user.send("/start")`,
`await user.tap("I agree")`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "hipcoach_test_bot"
JSON_FIELDS = ("reply_markup", "allowed_updates", "commands", "scope", "entities")


class ApiError(Exception):
    def __init__(
        self, description: str, code: int = 400, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        self.code = code
        self.parameters = parameters


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def chat_id(self) -> str:
        return str(self.params.get("chat_id"))

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


@dataclass
class Sent:
    """A message the bot has in a chat (for edits and taps)."""

    chat_id: int
    message_id: int
    text: str
    markup: dict[str, Any] | None
    kind: str = "text"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _user(user_id: int, name: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name}


def _member(status: str) -> dict[str, Any]:
    member: dict[str, Any] = {"status": status, "user": BOT_USER}
    if status == "kicked":
        member["until_date"] = 0
    return member


BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "hipcoach", "username": BOT_USERNAME}
GROUP_TYPES = ("group", "supergroup")
# Message fields of service messages, which every bot gets whatever its privacy setting.
SERVICE_FIELDS = (
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
)


def _seen_in_privacy_mode(update: dict[str, Any]) -> bool:
    """Whether a bot in privacy mode gets this update (core.telegram.org/bots/features
    #privacy-mode): in a group only "/commands" (for no bot or for this one), messages
    that mention @this_bot, replies to its messages, and service messages."""
    message = update.get("message")
    if not isinstance(message, dict) or message.get("chat", {}).get("type") not in GROUP_TYPES:
        return True
    if any(name in message for name in SERVICE_FIELDS):
        return True
    replied = message.get("reply_to_message") or {}
    if (replied.get("from") or {}).get("id") == BOT_ID:
        return True
    text = str(message.get("text") or message.get("caption") or "")
    command = re.match(r"/[A-Za-z0-9_]+(?:@(\w+))?", text)
    if command:
        return command[1] is None or command[1].casefold() == BOT_USERNAME.casefold()
    return f"@{BOT_USERNAME}".casefold() in text.casefold()


class FakeTelegram:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.messages: dict[tuple[int, int], Sent] = {}
        self.members: dict[tuple[int, int], str] = {}  # (chat, user) -> status
        self.answered: set[str] = set()
        self.callback_ids: set[str] = set()
        self.webhook: dict[str, Any] | None = None
        self.blocked: set[int] = set()  # chats whose user blocked the bot
        self.fail_next: dict[str, list[ApiError]] = {}
        # Like Telegram, updates of kinds the bot did not ask for (allowed_updates) are never
        # handed out. An older self-hosted Bot API server may ignore the list: set False.
        self.honours_allowed_updates = True
        self.allowed_updates: list[str] | None = None
        self.migrated: dict[int, int] = {}  # group id -> the supergroup it became
        self.confirmed_below = 0  # the highest getUpdates offset seen: ids below are confirmed
        self.revoked = False  # the token was revoked: every call answers 401
        # Seconds every call takes before it is handled (a real Bot API round trip is ~30 ms).
        self.round_trip = 0.0
        # Chats with a send or edit under way, and the most there were at once.
        self._chats_sending: collections.Counter[str] = collections.Counter()
        self.max_chats_at_once = 0
        # chat id -> closed gate: sends and edits to that chat wait there (a slow chat).
        self.chat_gates: dict[int, asyncio.Event] = {}
        self.held_in_chat: Counter[int] = Counter()  # calls that reached a closed chat gate
        # Privacy mode (BotFather /setprivacy, on for a new bot and recommended by the README):
        # in groups Telegram hands the bot only commands, mentions of it and replies to
        # its messages (and service messages). Other group messages never reach getUpdates;
        # their ids are kept in `withheld`.
        self.privacy_mode = False
        self.withheld: set[int] = set()
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- server ----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._new_update.set()
        for chat_id in list(self.chat_gates):
            self.release_chat(chat_id)  # a held request would keep the server from stopping
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN or self.revoked:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = self.method_of(request)
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = (value.filename, value.file.read())
                else:
                    params[key] = value
        for key in JSON_FIELDS:
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        call = Call(method, params, files)
        chat = str(params.get("chat_id")) if method.startswith(("send", "edit")) else None
        if chat is None:
            return await self._answer(method, call, params)
        self._chats_sending[chat] += 1
        self.max_chats_at_once = max(self.max_chats_at_once, len(+self._chats_sending))
        try:
            return await self._answer(method, call, params)
        finally:
            self._chats_sending[chat] -= 1

    async def _answer(self, method: str, call: Call, params: dict[str, Any]) -> web.Response:
        if self.round_trip > 0:
            await asyncio.sleep(self.round_trip)
        if method != "getUpdates":
            self.calls.append(call)
        chat_gate = self._chat_gate(method, params)
        if chat_gate is not None:
            await chat_gate.wait()
        try:
            queued = self.fail_next.get(method)
            if queued:
                raise queued.pop(0)
            handler = getattr(self, f"api_{method}", None)
            if handler is None:
                raise ApiError("Not Found: method not found", 404)
            result = await handler(call)
        except ApiError as error:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": error.code,
                "description": error.description,
            }
            if error.code == 429:
                body["parameters"] = {"retry_after": 1}
            if error.parameters:
                body["parameters"] = error.parameters
            return web.json_response(body, status=error.code)
        return web.json_response({"ok": True, "result": result})

    def method_of(self, request: web.Request) -> str:
        """The method a request calls, in the Bot API's spelling: Telegram reads method
        names case-insensitively ("sendmessage" is sendMessage), and so does this fake."""
        name = request.match_info["method"]
        return _METHODS.get(name.lower(), name)

    def _chat_gate(self, method: str, params: dict[str, Any]) -> asyncio.Event | None:
        if not self.chat_gates or not method.startswith(("send", "edit")):
            return None
        try:
            chat_id = int(params.get("chat_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        gate = self.chat_gates.get(chat_id)
        if gate is not None:
            self.held_in_chat[chat_id] += 1
        return gate

    def hold_chat(self, chat_id: int) -> None:
        """Sends and edits to this chat wait (as if its calls were slow) until released."""
        self.chat_gates[chat_id] = asyncio.Event()

    def release_chat(self, chat_id: int) -> None:
        gate = self.chat_gates.pop(chat_id, None)
        if gate is not None:
            gate.set()

    # --- API methods -----------------------------------------------------------------------

    async def api_getMe(self, call: Call) -> Any:
        return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False}

    async def api_getUpdates(self, call: Call) -> Any:
        offset = int(call.params.get("offset") or 0)
        timeout = float(call.params.get("timeout") or 0)
        self.confirmed_below = max(self.confirmed_below, offset)
        if call.params.get("allowed_updates") is not None:
            self.allowed_updates = list(call.params["allowed_updates"])
        self.updates = [u for u in self.updates if u["update_id"] >= offset and self._wanted(u)]
        if not self.updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=min(timeout, 0.5))
        limit = int(call.params.get("limit") or 100)
        return [u for u in self.updates if u["update_id"] >= offset][:limit]

    def _wanted(self, update: dict[str, Any]) -> bool:
        if not self.honours_allowed_updates or not self.allowed_updates:
            return True
        return any(kind in update for kind in self.allowed_updates)

    async def api_deleteWebhook(self, call: Call) -> Any:
        self.webhook = None
        return True

    async def api_setWebhook(self, call: Call) -> Any:
        self.webhook = call.params
        return True

    async def api_setMyCommands(self, call: Call) -> Any:
        for command in call.params.get("commands", []):
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]):
                raise ApiError("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"]) <= 256:
                raise ApiError("Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        return True

    async def api_getChatMember(self, call: Call) -> Any:
        chat, user = int(call.params["chat_id"]), int(call.params["user_id"])
        status = self.members.get((chat, user), "member")
        member: dict[str, Any] = {"status": status, "user": _user(user, f"user{user}")}
        if status == "creator":
            member["is_anonymous"] = False
        if status == "administrator":
            member.update(
                {
                    key: True
                    for key in (
                        "can_be_edited",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                },
                is_anonymous=False,
            )
        return member

    async def api_sendMessage(self, call: Call) -> Any:
        text = str(call.params.get("text", ""))
        self._check_text(text, 4096, call.params.get("parse_mode"))
        markup = self._check_markup(call.params.get("reply_markup"))
        return self._store(call, text, markup, "text")

    async def api_sendPhoto(self, call: Call) -> Any:
        self._check_media(call, "photo")
        caption = str(call.params.get("caption", ""))
        markup = self._check_markup(call.params.get("reply_markup"))
        return self._store(call, caption, markup, "photo")

    async def api_sendDocument(self, call: Call) -> Any:
        self._check_media(call, "document")
        caption = str(call.params.get("caption", ""))
        markup = self._check_markup(call.params.get("reply_markup"))
        return self._store(call, caption, markup, "document")

    async def api_editMessageText(self, call: Call) -> Any:
        text = str(call.params.get("text", ""))
        self._check_text(text, 4096, call.params.get("parse_mode"))
        sent = self._find(call)
        markup = self._check_markup(call.params.get("reply_markup"))
        if sent.kind != "text":
            raise ApiError("Bad Request: there is no text in the message to edit")
        if sent.text == text and sent.markup == markup:
            raise ApiError(
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message"
            )
        sent.text, sent.markup = text, markup
        return self._message_json(sent)

    async def api_editMessageReplyMarkup(self, call: Call) -> Any:
        sent = self._find(call)
        sent.markup = self._check_markup(call.params.get("reply_markup"))
        return self._message_json(sent)

    async def api_answerCallbackQuery(self, call: Call) -> Any:
        query_id = str(call.params["callback_query_id"])
        if query_id not in self.callback_ids:
            raise ApiError("Bad Request: query is too old and response timeout expired")
        if len(str(call.params.get("text") or "")) > 200:
            raise ApiError("Bad Request: MESSAGE_TOO_LONG")
        self.answered.add(query_id)
        return True

    # --- checks like the real API ------------------------------------------------------------

    def _check_text(self, text: str, limit: int, parse_mode: str | None) -> None:
        if not text.strip():
            raise ApiError("Bad Request: message text is empty")
        if _utf16_len(text) > limit:
            raise ApiError("Bad Request: message is too long")
        if parse_mode:
            self._check_markup_text(text, parse_mode)

    def _check_markup_text(self, text: str, parse_mode: str) -> None:
        if parse_mode.lower() == "html":
            if re.search(r"<(?!/?(b|i|u|s|a|code|pre)\b)", text):
                raise ApiError("Bad Request: can't parse entities: unsupported start tag")
        else:
            stripped = re.sub(r"\\.", "", text)
            for mark in ("*", "_", "`"):
                if stripped.count(mark) % 2:
                    raise ApiError(
                        "Bad Request: can't parse entities: can't find end of the entity"
                    )

    def _check_media(self, call: Call, field_name: str) -> None:
        if field_name not in call.files:
            raise ApiError(f"Bad Request: there is no {field_name} in the request")
        caption = str(call.params.get("caption", ""))
        if _utf16_len(caption) > 1024:
            raise ApiError("Bad Request: message caption is too long")
        if call.params.get("parse_mode") and caption:
            self._check_markup_text(caption, str(call.params["parse_mode"]))

    def _check_markup(self, markup: dict[str, Any] | None) -> dict[str, Any] | None:
        if not markup:
            return None
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError("Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError("Bad Request: BUTTON_DATA_INVALID")
                if data is None and not button.get("url"):
                    raise ApiError("Bad Request: can't parse inline keyboard button")
        return markup

    def _find(self, call: Call) -> Sent:
        key = (int(call.params["chat_id"]), int(call.params["message_id"]))
        if key not in self.messages:
            raise ApiError("Bad Request: message to edit not found")
        return self.messages[key]

    def _store(self, call: Call, text: str, markup: dict[str, Any] | None, kind: str) -> Any:
        chat_id = int(call.params["chat_id"])
        if chat_id in self.migrated:
            raise ApiError(
                "Bad Request: group chat was upgraded to a supergroup chat",
                parameters={"migrate_to_chat_id": self.migrated[chat_id]},
            )
        if chat_id in self.blocked:
            raise ApiError("Forbidden: bot was blocked by the user", 403)
        sent = Sent(chat_id, next(self._message_ids), text, markup, kind)
        self.messages[(chat_id, sent.message_id)] = sent
        return self._message_json(sent)

    def _message_json(self, sent: Sent) -> dict[str, Any]:
        chat_type = "private" if sent.chat_id > 0 else "supergroup"
        message: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": sent.chat_id, "type": chat_type},
            "from": BOT_USER,
        }
        if sent.kind == "photo":
            message["photo"] = [
                {"file_id": "p1", "file_unique_id": "u1", "width": 10, "height": 10}
            ]
            if sent.text:
                message["caption"] = sent.text
        elif sent.kind == "document":
            message["document"] = {"file_id": "d1", "file_unique_id": "u2"}
            if sent.text:
                message["caption"] = sent.text
        else:
            message["text"] = sent.text
        if sent.markup:
            message["reply_markup"] = sent.markup
        return message

    # --- producing updates -----------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> int:
        update_id = update.get("update_id") or next(self._update_ids)
        update = {**update, "update_id": update_id}
        if self.privacy_mode and not _seen_in_privacy_mode(update):
            self.withheld.add(int(update_id))
            return int(update_id)
        self.updates.append(update)
        self._new_update.set()
        return int(update_id)

    async def wait_confirmed(self, update_id: int, timeout: float = 10.0) -> None:
        """Wait until a getUpdates call confirms `update_id` (asks for a later offset)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.confirmed_below <= update_id:
            if loop.time() > deadline:
                raise AssertionError(f"update {update_id} never confirmed")
            await asyncio.sleep(0.02)

    async def wait_calls(
        self, method: str, chat_id: int, count: int, timeout: float = 10.0
    ) -> list[Call]:
        """Wait until at least `count` calls of `method` reached this chat (a webhook's
        replies go out after its answer), and return them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.calls_to(method, chat_id)) < count:
            if loop.time() > deadline:
                raise AssertionError(f"{method} to {chat_id} never made {count} times")
            await asyncio.sleep(0.02)
        return self.calls_to(method, chat_id)

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def message_update(
        self, chat: dict[str, Any], user: dict[str, Any], text: str
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        match = re.match(r"/[A-Za-z0-9_]+(@\w+)?", text)
        if match:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": match.end()}]
        return {"message": message}

    def callback_update(
        self, chat: dict[str, Any], user: dict[str, Any], sent: Sent, data: str
    ) -> dict[str, Any]:
        query_id = f"cb{next(self._callback_ids)}"
        self.callback_ids.add(query_id)
        message = self._message_json(sent)
        message["chat"] = chat
        return {
            "callback_query": {
                "id": query_id,
                "from": user,
                "chat_instance": "ci",
                "data": data,
                "message": message,
            }
        }

    def my_chat_member_update(
        self, chat: dict[str, Any], user: dict[str, Any], old: str, new: str
    ) -> dict[str, Any]:
        return {
            "my_chat_member": {
                "chat": chat,
                "from": user,
                "date": int(time.time()),
                "old_chat_member": _member(old),
                "new_chat_member": _member(new),
            }
        }

    def _message(self, chat: dict[str, Any], user: dict[str, Any], **fields: Any) -> Any:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            **fields,
        }

    def forwarded_update(
        self, chat: dict[str, Any], user: dict[str, Any], text: str, *, legacy: bool = False
    ) -> dict[str, Any]:
        """Someone forwards another person's message (with its command entity, as Telegram
        keeps it). `legacy`: the pre-7.0 fields an older Bot API server still sends."""
        update = self.message_update(chat, user, text)
        origin = {"id": 999, "is_bot": False, "first_name": "Other"}
        if legacy:
            update["message"].update(forward_from=origin, forward_date=int(time.time()))
        else:
            update["message"]["forward_origin"] = {
                "type": "user",
                "date": int(time.time()),
                "sender_user": origin,
            }
        return update

    def photo_update(
        self, chat: dict[str, Any], user: dict[str, Any], caption: str
    ) -> dict[str, Any]:
        """A photo with a caption (Telegram marks a leading /word in a caption as a
        bot_command entity too)."""
        photo = [{"file_id": "ph1", "file_unique_id": "uph1", "width": 90, "height": 90}]
        fields: dict[str, Any] = {"photo": photo, "caption": caption}
        match = re.match(r"/[A-Za-z0-9_]+(@\w+)?", caption)
        if match:
            fields["caption_entities"] = [
                {"type": "bot_command", "offset": 0, "length": match.end()}
            ]
        return {"message": self._message(chat, user, **fields)}

    def migration_updates(
        self, group: dict[str, Any], supergroup_id: int, user: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """A group upgraded to a supergroup: a service message in the old group naming the
        new id, and one in the new supergroup naming the old. Sends to the old id now fail."""
        self.migrated[int(group["id"])] = supergroup_id
        supergroup = {"id": supergroup_id, "type": "supergroup", "title": group.get("title")}
        return [
            {"message": self._message(group, user, migrate_to_chat_id=supergroup_id)},
            {"message": self._message(supergroup, user, migrate_from_chat_id=int(group["id"]))},
        ]

    def old_poll_update(self, chat: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
        """A poll message as an older self-hosted Bot API server sends it: its options lack
        `persistent_id`, required since Bot API 9.6, so python-telegram-bot cannot parse it."""
        poll = {
            "id": "poll-1",
            "question": "Long run on Sunday?",
            "options": [{"text": "Yes", "voter_count": 0}, {"text": "No", "voter_count": 0}],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        }
        return {"message": self._message(chat, user, poll=poll)}

    def every_kind_of_update(
        self, chat: dict[str, Any], user: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """One update of each kind the Bot API has (and a few message kinds), as a bot may
        get them when allowed_updates is ignored or widened. Each parses in PTB 22."""
        now = int(time.time())
        message = self._message(chat, user, text="hello")
        group = {"id": -100777, "type": "supergroup", "title": "Track Club"}
        photo = [{"file_id": "p", "file_unique_id": "up", "width": 1, "height": 1}]
        voice = {"file_id": "v", "file_unique_id": "uv", "duration": 2}
        sticker = {
            "file_id": "s",
            "file_unique_id": "us",
            "type": "regular",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
        }
        boost = {
            "boost_id": "b1",
            "add_date": now,
            "expiration_date": now + 86400,
            "source": {"source": "premium", "user": user},
        }
        address = {
            "country_code": "DE",
            "state": "",
            "city": "Berlin",
            "street_line1": "x",
            "street_line2": "",
            "post_code": "10115",
        }
        poll = {
            "id": "poll-2",
            "question": "Hills?",
            "options": [{"text": "Yes", "voter_count": 1, "persistent_id": "o1"}],
            "total_voter_count": 1,
            "is_closed": False,
            "is_anonymous": False,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
        return {
            "edited_message": {"edited_message": {**message, "edit_date": now}},
            "channel_post": {
                "channel_post": self._message(
                    {"id": -100888, "type": "channel", "title": "News"},
                    user,
                    text="race day",
                    sender_chat={"id": -100888, "type": "channel", "title": "News"},
                )
            },
            "edited_channel_post": {
                "edited_channel_post": {
                    **self._message({"id": -100888, "type": "channel"}, user, text="x"),
                    "edit_date": now,
                }
            },
            "business_connection": {
                "business_connection": {
                    "id": "bc1",
                    "user": user,
                    "user_chat_id": user["id"],
                    "date": now,
                    "is_enabled": True,
                    "can_reply": True,
                }
            },
            "business_message": {"business_message": {**message, "business_connection_id": "bc1"}},
            "edited_business_message": {
                "edited_business_message": {
                    **message,
                    "business_connection_id": "bc1",
                    "edit_date": now,
                }
            },
            "deleted_business_messages": {
                "deleted_business_messages": {
                    "business_connection_id": "bc1",
                    "chat": chat,
                    "message_ids": [1, 2],
                }
            },
            "message_reaction": {
                "message_reaction": {
                    "chat": chat,
                    "message_id": 1,
                    "user": user,
                    "date": now,
                    "old_reaction": [],
                    "new_reaction": [{"type": "emoji", "emoji": "👍"}],
                }
            },
            "message_reaction_count": {
                "message_reaction_count": {
                    "chat": group,
                    "message_id": 1,
                    "date": now,
                    "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": 2}],
                }
            },
            "inline_query": {
                "inline_query": {"id": "iq1", "from": user, "query": "today", "offset": ""}
            },
            "chosen_inline_result": {
                "chosen_inline_result": {"result_id": "r1", "from": user, "query": "today"}
            },
            "shipping_query": {
                "shipping_query": {
                    "id": "sq1",
                    "from": user,
                    "invoice_payload": "p",
                    "shipping_address": address,
                }
            },
            "pre_checkout_query": {
                "pre_checkout_query": {
                    "id": "pc1",
                    "from": user,
                    "currency": "EUR",
                    "total_amount": 100,
                    "invoice_payload": "p",
                }
            },
            "purchased_paid_media": {
                "purchased_paid_media": {"from": user, "paid_media_payload": "p"}
            },
            "poll": {"poll": poll},
            "poll_answer": {
                "poll_answer": {
                    "poll_id": "poll-2",
                    "option_ids": [0],
                    "option_persistent_ids": ["o1"],
                    "user": user,
                }
            },
            "chat_member": {
                "chat_member": {
                    "chat": group,
                    "from": user,
                    "date": now,
                    "old_chat_member": {"status": "left", "user": user},
                    "new_chat_member": {"status": "member", "user": user},
                }
            },
            "chat_join_request": {
                "chat_join_request": {
                    "chat": group,
                    "from": user,
                    "user_chat_id": user["id"],
                    "date": now,
                }
            },
            "chat_boost": {"chat_boost": {"chat": group, "boost": boost}},
            "removed_chat_boost": {
                "removed_chat_boost": {
                    "chat": group,
                    "boost_id": "b1",
                    "remove_date": now,
                    "source": {"source": "premium", "user": user},
                }
            },
            "photo": {"message": self._message(chat, user, photo=photo)},
            "voice": {"message": self._message(chat, user, voice=voice)},
            "sticker": {"message": self._message(chat, user, sticker=sticker)},
            "location": {
                "message": self._message(chat, user, location={"latitude": 52.5, "longitude": 13.4})
            },
            "poll_message": {"message": self._message(chat, user, poll=poll)},
            "new_chat_members": {"message": self._message(group, user, new_chat_members=[user])},
            "group_chatter": {"message": self._message(group, user, text="see you at 7")},
            "unknown_kind": {"some_future_update": {"id": 1}},
        }

    # --- reading what the bot did ------------------------------------------------------------

    def calls_to(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.chat_id == str(chat_id))
        ]

    def last_keyboard_message(self, chat_id: int) -> Sent | None:
        with_buttons = [m for (chat, _), m in self.messages.items() if chat == chat_id and m.markup]
        return with_buttons[-1] if with_buttons else None


# Lower-cased method name -> the Bot API's spelling, for every method this fake answers.
_METHODS = {name[4:].lower(): name[4:] for name in dir(FakeTelegram) if name.startswith("api_")}
