"""How messages the bot starts itself reach a platform: the sender contract.

The outbox dispatcher hands each stored `Outbound` to the sender of its platform. A sender
either delivers it or raises one of the errors below, so the dispatcher knows whether to
retry later, back off, or stop scheduling for that target.
"""

from __future__ import annotations

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
