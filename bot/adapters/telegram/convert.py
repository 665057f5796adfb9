"""Pure translation between Telegram objects and the engine's neutral values.

No I/O here: turning an `Update` into an `Inbound`, splitting long texts and building
inline keyboards are plain functions, tested without a network.
"""

from __future__ import annotations

from typing import Any

from telegram import (
    Chat,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)

from bot.engine import hints
from bot.engine.events import COMMANDS, Button, ChatKind, Inbound, InboundKind

PLATFORM = "telegram"
MAX_TEXT = 4096  # sendMessage / editMessageText
MAX_CAPTION = 1024  # sendPhoto / sendDocument caption
MAX_CALLBACK_DATA = 64  # bytes
GROUP_CHAT_TYPES = (Chat.GROUP, Chat.SUPERGROUP, Chat.CHANNEL)
JOINED_STATUSES = (ChatMember.MEMBER, ChatMember.ADMINISTRATOR)
GONE_STATUSES = (ChatMember.LEFT, ChatMember.BANNED)


COMMAND_PREFIX = "/"  # with privacy mode on, a group only hands the bot text that starts so


def render_text(text: str) -> str:
    """The engine's text as Telegram shows it: command hints as /word (bot/engine/hints.py)."""
    return hints.render(text, COMMAND_PREFIX)


def chat_kind(chat: Chat) -> ChatKind:
    return ChatKind.GROUP if chat.type in GROUP_CHAT_TYPES else ChatKind.PRIVATE


def is_group_chat_id(chat_id: str) -> bool:
    """Telegram private chats have the user's (positive) id; groups and channels are < 0."""
    try:
        return int(chat_id) < 0
    except ValueError:
        return False


def tg_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units), never less than len(text)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split on line boundaries into chunks Telegram accepts; hard-split overlong lines."""
    if tg_len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = _hard_split(line, limit) if tg_len(line) > limit else [line]
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if tg_len(candidate) <= limit:
                current = candidate
            else:
                if current.strip():
                    chunks.append(current)
                current = piece
    if current.strip():
        chunks.append(current)
    return chunks or [text[:limit]]


def _hard_split(line: str, limit: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for ch in line:
        if tg_len(current + ch) > limit:
            pieces.append(current)
            current = ""
        current += ch
    if current:
        pieces.append(current)
    return pieces


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    if tg_len(text) <= limit:
        return text
    out = ""
    for ch in text:
        if tg_len(out + ch) > limit - 1:
            break
        out += ch
    return out + "…"


def keyboard(
    rows: tuple[tuple[Button, ...], ...], url_button: tuple[str, str] | None = None
) -> InlineKeyboardMarkup | None:
    """Engine buttons as an inline keyboard; `url_button` (label, url) adds a link row."""
    data = keyboard_data(rows, url_button)
    if data is None:
        return None
    return InlineKeyboardMarkup(
        [[_button(button) for button in line] for line in data["inline_keyboard"]]
    )


def _button(data: dict[str, str]) -> InlineKeyboardButton:
    if "url" in data:
        return InlineKeyboardButton(data["text"], url=data["url"])
    return InlineKeyboardButton(data["text"], callback_data=data["callback_data"])


def keyboard_data(
    rows: tuple[tuple[Button, ...], ...], url_button: tuple[str, str] | None = None
) -> dict[str, list[list[dict[str, str]]]] | None:
    """The same keyboard as the Bot API's JSON reads it (what `keyboard` sends), for calls
    that skip building Telegram objects (adapter._raw)."""
    markup: list[list[dict[str, str]]] = []
    for row in rows:
        line = []
        for button in row:
            if len(button.payload.encode()) > MAX_CALLBACK_DATA:
                raise ValueError(f"callback_data over {MAX_CALLBACK_DATA} bytes")
            line.append({"text": button.label, "callback_data": button.payload})
        if line:
            markup.append(line)
    if url_button is not None:
        markup.append([{"text": url_button[0], "url": url_button[1]}])
    return {"inline_keyboard": markup} if markup else None


def parse_command(message: Message, bot_username: str | None) -> tuple[str, str] | None:
    """("word", "args") for a "/word[@bot] args" message; None when it is not a command.

    A command addressed to another bot ("/start@OtherBot") returns ("", "") so the caller
    can ignore it.
    """
    text = message.text or ""
    entities = message.entities or ()
    first = entities[0] if entities else None
    if first is None or first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
        return None
    token = text[1 : first.length]
    word, _, target = token.partition("@")
    if target and bot_username and target.casefold() != bot_username.casefold():
        return ("", "")
    return word.casefold(), text[first.length :].strip()


def sender_id(message: Message) -> str | None:
    if message.from_user is not None:
        return str(message.from_user.id)
    if message.sender_chat is not None:  # a channel post or an anonymous admin
        return str(message.sender_chat.id)
    return None


LEGACY_FORWARD_FIELDS = ("forward_from", "forward_from_chat", "forward_sender_name", "forward_date")


def is_forward(message: Message) -> bool:
    """Forwarded from someone else (Bot API 7+ `forward_origin`, the fields an older Bot API
    server still sends, or a channel post copied into its discussion group)."""
    return (
        message.forward_origin is not None
        or bool(message.is_automatic_forward)
        or any(name in message.api_kwargs for name in LEGACY_FORWARD_FIELDS)
    )


def migration(update: Update) -> tuple[str, str] | None:
    """(old id, new id) when the update says a group became a supergroup."""
    message = update.message
    if message is None:
        return None
    if message.migrate_to_chat_id:
        return str(message.chat.id), str(message.migrate_to_chat_id)
    if message.migrate_from_chat_id:
        return str(message.migrate_from_chat_id), str(message.chat.id)
    return None


def removed(update: Update) -> ChatKind | None:
    """The bot was blocked (a private chat) or removed from a group or channel."""
    change = update.my_chat_member
    if change is None or change.new_chat_member.status not in GONE_STATUSES:
        return None
    return chat_kind(change.chat)


def speaks_for_chat(message: Message) -> bool:
    """Channel posts and anonymous group admins write as the chat itself: only admins can."""
    return message.sender_chat is not None and message.sender_chat.id == message.chat.id


def to_inbound(update: Update, bot_username: str | None) -> Inbound | None:
    """One update as one `Inbound`, or None when it is nothing the coach needs to hear."""
    event_id = str(update.update_id)
    if update.callback_query is not None:
        query = update.callback_query
        message = query.message
        if message is None or query.data is None:
            return None
        chat = message.chat
        if not _own_private_chat(chat, str(query.from_user.id)):
            return None
        return Inbound(
            platform=PLATFORM,
            event_id=event_id,
            user_id=str(query.from_user.id),
            chat_id=str(chat.id),
            kind=InboundKind.BUTTON,
            chat_kind=chat_kind(chat),
            payload=query.data,
            message_ref=str(message.message_id),
            display_name=query.from_user.full_name,
            raw=_raw(chat),
        )
    if update.my_chat_member is not None:
        change = update.my_chat_member
        chat = change.chat
        old, new = change.old_chat_member.status, change.new_chat_member.status
        if chat_kind(chat) == ChatKind.GROUP and new in JOINED_STATUSES and old in GONE_STATUSES:
            return Inbound(
                platform=PLATFORM,
                event_id=event_id,
                user_id=str(change.from_user.id),
                chat_id=str(chat.id),
                kind=InboundKind.JOINED,
                chat_kind=ChatKind.GROUP,
                display_name=change.from_user.full_name,
                raw=_raw(chat),
            )
        return None
    message = update.message or update.channel_post
    if message is None:
        return None
    user_id = sender_id(message)
    chat = message.chat
    if user_id is None or not _own_private_chat(chat, user_id):
        return None
    kind = chat_kind(chat)
    base: dict[str, Any] = {
        "platform": PLATFORM,
        "event_id": event_id,
        "user_id": user_id,
        "chat_id": str(chat.id),
        "chat_kind": kind,
        "display_name": message.from_user.full_name if message.from_user else chat.title,
        "raw": _raw(chat),
    }
    if message.text is None:
        # Stickers, photos, voice notes: a private chat gets a re-prompt; a group, nothing.
        # A caption is read as text, never as a command ("/delete" under a photo).
        if kind == ChatKind.GROUP:
            return None
        return Inbound(**base, kind=InboundKind.TEXT, text=message.caption or "", text_only=True)
    if is_forward(message):
        # Someone else's words, passed on: text, even if they start with a command.
        return Inbound(**base, kind=InboundKind.TEXT, text=message.text, text_only=True)
    command = parse_command(message, bot_username)
    if command is not None:
        word, args = command
        if not word:
            return None  # meant for another bot in the group
        if word in COMMANDS:
            return Inbound(**base, kind=InboundKind.COMMAND, command=word, text=args)
    return Inbound(**base, kind=InboundKind.TEXT, text=message.text)


def _own_private_chat(chat: Chat, user_id: str) -> bool:
    """A private chat with the bot has the person's own id. An update claiming someone
    else acted in it is forged: acting on it would send their replies into that chat and
    make it their stored chat for reminders."""
    return chat_kind(chat) != ChatKind.PRIVATE or str(chat.id) == user_id


def _raw(chat: Chat) -> dict[str, str | None] | None:
    return {"chat_title": chat.title} if chat_kind(chat) == ChatKind.GROUP else None
