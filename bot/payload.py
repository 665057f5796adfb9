"""How an `Outbound` is stored in an outbox row (JSON) and read back.

Everything a message needs survives the round trip: text, button rows, the delivery flags,
who a reply is for, the message an edit replaces, and an attachment (a chart, an export),
whose bytes are kept base64-encoded.
"""

from __future__ import annotations

import base64
from typing import Any

from bot.engine.events import Attachment, Button, Outbound


def encode(message: Outbound) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "text": message.text,
        "buttons": [[[b.label, b.payload] for b in row] for row in message.buttons],
        "private": message.private,
        "ephemeral": message.ephemeral,
        "open_private": message.open_private,
    }
    if message.edit_ref is not None:
        payload["edit_ref"] = message.edit_ref
    if message.recipient is not None:
        payload["recipient"] = message.recipient
    if message.attachment is not None:
        payload["attachment"] = {
            "filename": message.attachment.filename,
            "mime": message.attachment.mime,
            "data": base64.b64encode(message.attachment.data).decode("ascii"),
        }
    return payload


def decode(chat_id: str, payload: dict[str, Any]) -> Outbound:
    attachment = None
    stored = payload.get("attachment")
    if isinstance(stored, dict):
        attachment = Attachment(
            filename=str(stored.get("filename", "file")),
            data=base64.b64decode(str(stored.get("data", ""))),
            mime=str(stored.get("mime", "application/octet-stream")),
        )
    edit_ref = payload.get("edit_ref")
    recipient = payload.get("recipient")
    return Outbound(
        chat_id=chat_id,
        text=str(payload.get("text", "")),
        buttons=tuple(
            tuple(Button(str(label), str(data)) for label, data in row)
            for row in payload.get("buttons", [])
        ),
        attachment=attachment,
        edit_ref=None if edit_ref is None else str(edit_ref),
        private=bool(payload.get("private", False)),
        ephemeral=bool(payload.get("ephemeral", False)),
        open_private=bool(payload.get("open_private", False)),
        recipient=None if recipient is None else str(recipient),
    )
