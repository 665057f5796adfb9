"""A small fake Telegram Bot API server for end-to-end tests.

Runs on 127.0.0.1 (aiohttp) at /bot<token>/<method>, records every call, serves queued
updates to getUpdates, and rejects what the real API rejects: callback_data over 64 bytes,
texts over 4096 characters, captions over 1024, empty texts and bad markup when a
parse_mode is given. Tests drive it like a person: `await user.send("/start")`,
`await user.tap("I agree")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "hipcoach_test_bot"
JSON_FIELDS = ("reply_markup", "allowed_updates", "commands", "scope", "entities")


class ApiError(Exception):
    def __init__(self, description: str, code: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.code = code


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
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
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
        if method != "getUpdates":
            self.calls.append(call)
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
            return web.json_response(body, status=error.code)
        return web.json_response({"ok": True, "result": result})

    # --- API methods -----------------------------------------------------------------------

    async def api_getMe(self, call: Call) -> Any:
        return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False}

    async def api_getUpdates(self, call: Call) -> Any:
        offset = int(call.params.get("offset") or 0)
        timeout = float(call.params.get("timeout") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=min(timeout, 0.5))
        limit = int(call.params.get("limit") or 100)
        return [u for u in self.updates if u["update_id"] >= offset][:limit]

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
        self.updates.append(update)
        self._new_update.set()
        return int(update_id)

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
