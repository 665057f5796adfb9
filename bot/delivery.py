"""How messages the bot starts itself reach a platform: the sender contract.

The outbox dispatcher hands each stored `Outbound` to the sender of its platform. A sender
either delivers it or raises one of the errors below, so the dispatcher knows whether to
retry later, back off, or stop scheduling for that target.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bot.engine.events import Outbound


class DeliveryError(Exception):
    """Base class: the message was not delivered."""


class RetryAfter(DeliveryError):
    """The platform asked us to slow down (HTTP 429); try again after `seconds`."""

    def __init__(self, seconds: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.seconds = seconds


class TransientFailure(DeliveryError):
    """A network error, timeout or 5xx: retry with backoff."""


class PermanentFailure(DeliveryError):
    """The target is gone for good (bot blocked, chat deleted): do not retry."""


class Sender(Protocol):
    platform: str

    async def send(self, message: Outbound) -> None:
        """Deliver one message (or raise a DeliveryError)."""
        ...


class Pacer(Protocol):
    """One pacing per platform for everything a process sends (scheduler/ratelimit.py):
    replies sent at once and the dispatcher's messages take their slots from it."""

    def slot(
        self, platform: str, chat_id: str, *, urgent: bool = False, edit: bool = False
    ) -> AbstractAsyncContextManager[None]:
        """Wait for a send slot; the send inside the block is in flight until it ends."""
        ...

    def ready_in(self, platform: str, chat_id: str, *, urgent: bool = False) -> float:
        """Seconds until a message to this chat could start (0 = now)."""
        ...

    def retry_after(self, platform: str, chat_id: str, seconds: float) -> None:
        """The platform refused a message (429) and asked us to wait."""
        ...
