"""A scripted chat against the real Coach service and database, for conversation tests.

Reads like a script: `await chat.send("checkin")`, `await chat.press("About usual")`,
then assertions on `chat.text`. Time is a `Clock` the test moves forward.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.engine.events import COMMANDS, Button, ChatKind, Inbound, InboundKind, Outbound
from bot.service import Coach

_event_ids = itertools.count(1)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 7, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Chat:
    coach: Coach
    user_id: str = "runner-1"
    platform: str = "console"
    chat_id: str | None = None
    chat_kind: ChatKind = ChatKind.PRIVATE
    is_admin: bool | None = None
    user_tz: str | None = None
    replies: list[Outbound] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    buttons_ref: str | None = None
    transcript: list[str] = field(default_factory=list)
    _messages: int = 0

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.buttons]

    def inbound(self, kind: InboundKind, **kw: object) -> Inbound:
        return Inbound(
            platform=self.platform,
            event_id=f"e{next(_event_ids)}",
            user_id=self.user_id,
            chat_id=self.chat_id or self.user_id,
            kind=kind,
            chat_kind=self.chat_kind,
            is_admin=self.is_admin,
            user_tz=self.user_tz,
            **kw,  # type: ignore[arg-type]
        )

    async def deliver(self, inbound: Inbound) -> list[Outbound]:
        self.replies = await self.coach.handle(inbound)
        for reply in self.replies:
            if reply.edit_ref is None:
                self._messages += 1
            if reply.buttons:
                self.buttons = reply.flat_buttons
                self.buttons_ref = str(self._messages)
            self.transcript.append(reply.text)
        return self.replies

    async def send(self, text: str) -> list[Outbound]:
        word, _, args = text.strip().lstrip("/").partition(" ")
        if word in COMMANDS:
            return await self.deliver(self.inbound(InboundKind.COMMAND, command=word, text=args))
        return await self.deliver(self.inbound(InboundKind.TEXT, text=text))

    async def press(self, label: str) -> list[Outbound]:
        for button in self.buttons:
            if button.label == label:
                return await self.tap(button.payload)
        raise AssertionError(f"no button {label!r}; buttons are {self.labels}")

    async def tap(self, payload: str) -> list[Outbound]:
        return await self.deliver(
            self.inbound(InboundKind.BUTTON, payload=payload, message_ref=self.buttons_ref)
        )

    async def answer_all(self, *labels: str) -> None:
        for label in labels:
            await self.press(label)


NO_FLAGS = ("None of these",) * 4


async def onboard(
    chat: Chat,
    *,
    location: str = "Side of the hip, on the bony bump",
    triage: tuple[str, ...] = ("Yes",),
    pain: str = "2",
    zone: str = "Europe/Berlin",
    reminder: str = "07:30",
) -> None:
    """A runner with no red flags goes through the whole setup."""
    await chat.send("start")
    await chat.answer_all("I agree", "18 or older", zone, *NO_FLAGS, location, *triage)
    await chat.answer_all("Easy runs only", pain, reminder)
