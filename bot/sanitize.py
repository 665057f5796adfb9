"""Inbound values made storable, once, as an event enters the service from any adapter.

What a platform sends is not always what a database keeps: PostgreSQL refuses NUL in text
and in JSONB; a lone UTF-16 surrogate is valid JSON but cannot be encoded as UTF-8 by either
driver; a first name or a group title can be longer than its column. Any of these would
fail the turn the same way on every retry. Lone surrogates become U+FFFD; NULs are dropped
from what people wrote (the engine ignores control characters there anyway) and from
names and titles, which are clipped to their columns. In ids and button payloads a NUL
becomes U+FFFD instead: dropping it could turn a forged payload into a valid one. Ids are
never clipped: a clipped id would name someone else.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from sqlalchemy import String, Table

from bot.engine.events import Inbound
from bot.storage.models import TeamChat, User

__all__ = ["MAX_NAME", "MAX_TITLE", "clean_text", "clean_token", "sanitize_inbound"]


def _length(model: type[Any], column: str) -> int:
    kind = cast(Table, model.__table__).c[column].type
    assert isinstance(kind, String) and kind.length is not None
    return kind.length


MAX_NAME = _length(User, "display_name")
MAX_TITLE = _length(TeamChat, "title")


def clean_text(value: str, nul: str = "") -> str:
    if not value.isascii():
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value.replace("\x00", nul)


def clean_token(value: str) -> str:
    """An id or a payload: storable, and never equal to a different valid one."""
    return clean_text(value, nul="\ufffd")


def _clean(value: str | None, limit: int | None = None) -> str | None:
    if value is None:
        return None
    value = clean_text(value)
    return value[:limit] if limit is not None else value


def _token(value: str | None) -> str | None:
    return None if value is None else clean_token(value)


def _clean_raw(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            value = _clean(value, MAX_TITLE if key == "chat_title" else None)
        cleaned[key] = value
    return cleaned


def sanitize_inbound(inbound: Inbound) -> Inbound:
    return replace(
        inbound,
        event_id=clean_token(inbound.event_id),
        user_id=clean_token(inbound.user_id),
        chat_id=clean_token(inbound.chat_id),
        text=clean_text(inbound.text),
        command=_token(inbound.command),
        payload=_token(inbound.payload),
        message_ref=_token(inbound.message_ref),
        display_name=_clean(inbound.display_name, MAX_NAME),
        user_tz=_token(inbound.user_tz),
        raw=_clean_raw(inbound.raw),
    )
