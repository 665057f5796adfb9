"""Neutral values that cross the boundary between adapters and the engine.

Adapters turn a platform update into one `Inbound` and render each `Outbound`; nothing
here knows about Telegram or Slack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ChatKind(StrEnum):
    PRIVATE = "private"  # a DM / private chat / the console
    GROUP = "group"  # a Telegram group or a Slack channel


class InboundKind(StrEnum):
    COMMAND = "command"  # one of the chat command words, with optional args
    TEXT = "text"  # free text
    BUTTON = "button"  # a button press carrying a payload
    JOINED = "joined"  # the bot was added to a group or channel
    # A message the bot starts itself, from the scheduler: text is "checkin" or "nudge".
    REMINDER = "reminder"


COMMANDS: tuple[str, ...] = (
    "start",
    "checkin",
    "today",
    "progress",
    "settings",
    "pause",
    "resume",
    "warmup",
    "summary",
    "export",
    "delete",
    "help",
)
# `summary` in a group sends the PDF to the person's private chat, never to the group.
GROUP_COMMANDS: tuple[str, ...] = ("warmup", "help", "start", "summary")


@dataclass(frozen=True)
class Inbound:
    """One thing a person did, in platform-neutral form."""

    platform: str  # "console" | "telegram" | "slack"
    event_id: str  # the platform's own id, used to handle duplicates once
    user_id: str  # the platform's user id
    chat_id: str  # where replies go
    kind: InboundKind
    chat_kind: ChatKind = ChatKind.PRIVATE
    text: str = ""  # free text, or the args after a command
    command: str | None = None  # a word from COMMANDS (unknown words arrive as TEXT)
    payload: str | None = None  # button payload
    message_ref: str | None = None  # platform id of the message whose button was pressed
    display_name: str | None = None
    user_tz: str | None = None  # a timezone the platform knows for the user (Slack `tz`)
    is_admin: bool | None = None  # for group commands; filled by the adapter
    # Forwarded text or a photo's caption: read as text, never as one of the person's commands.
    text_only: bool = False
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)


class Topic(StrEnum):
    INFO = "info"  # help, settings, confirmations, re-prompts
    SETUP = "setup"  # onboarding questions and the plan summary
    CHECKIN = "checkin"  # daily check-in questions
    SCREEN = "screen"  # red-flag screen questions (asked in any flow)
    DECISION = "decision"  # today's progress / hold / back-off decision
    SESSION = "session"  # exercise content: today's session, a warm-up card
    REFERRAL = "referral"  # SOON / SOON-72H: book a physio or a doctor
    ESCALATION = "escalation"  # URGENT / EMERGENCY: get seen today, or now
    CLEARANCE = "clearance"  # "were you seen?" and what follows until cleared


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class Attachment:
    """A file the engine wants delivered: a chart image or an export."""

    filename: str
    data: bytes
    mime: str

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")


@dataclass(frozen=True)
class Outbound:
    """One message to send. Buttons are rows of (label, payload)."""

    chat_id: str
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachment: Attachment | None = None
    # Replace the message that carried the pressed button with this text and these buttons:
    # none for an answered question (it shows the chosen answer and cannot be pressed
    # twice); today's card keeps its buttons as it changes in place.
    edit_ref: str | None = None
    # Personal content: adapters must only ever send it to the user's private chat, and
    # in a shared chat only as an ephemeral (Slack) reply.
    private: bool = False
    # Only the person who acted should see it (Slack ephemeral); ignored where unsupported.
    ephemeral: bool = False
    # Ask the adapter to add a button that opens a private chat with the bot.
    open_private: bool = False
    # What kind of content this is (see Topic). Adapters may ignore it; the engine's
    # safety properties are stated in these terms (after an escalation only ESCALATION,
    # CLEARANCE and INFO go out until a clinician clears the runner).
    topic: str = "info"
    # The platform user id of the person a reply answers (set by the service), so a sender
    # can address an ephemeral reply in a shared chat to them.
    recipient: str | None = None

    @property
    def flat_buttons(self) -> list[Button]:
        return [b for row in self.buttons for b in row]
