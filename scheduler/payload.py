"""How an `Outbound` is stored in an outbox row (JSON) and read back.

Only what a bot-initiated message needs: text, button rows and the delivery flags.
Attachments and edits never go through the outbox.
"""

from __future__ import annotations

from typing import Any

from bot.engine.events import Button, Outbound


def encode(message: Outbound) -> dict[str, Any]:
    if message.attachment is not None:
        raise ValueError("the outbox does not carry attachments")
    return {
        "text": message.text,
        "buttons": [[[b.label, b.payload] for b in row] for row in message.buttons],
        "private": message.private,
        "ephemeral": message.ephemeral,
        "open_private": message.open_private,
    }


def decode(chat_id: str, payload: dict[str, Any]) -> Outbound:
    return Outbound(
        chat_id=chat_id,
        text=str(payload.get("text", "")),
        buttons=tuple(
            tuple(Button(str(label), str(data)) for label, data in row)
            for row in payload.get("buttons", [])
        ),
        private=bool(payload.get("private", False)),
        ephemeral=bool(payload.get("ephemeral", False)),
        open_private=bool(payload.get("open_private", False)),
    )
