"""A small in-process rate limiter for the outbox dispatcher.

Each platform has an overall pace and a per-chat pace (Telegram: ~30 messages a second
overall, 1 a second per chat, 20 a minute per group; Slack: ~1 a second per channel).
`reserve` hands out send slots: it returns how long to wait before sending, or None when
the slot is further away than the caller is willing to wait (the dispatcher then puts the
row back with a `not_before`, instead of holding it while sleeping).

Per process only: with several dispatchers the platform's own 429 (RetryAfter) is the
backstop, and the dispatcher honours it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformLimit:
    overall: float = 0.0  # seconds between any two messages (0 = no limit)
    per_chat: float = 0.0  # seconds between two messages to one chat
    per_group: float | None = None  # per-chat pace for group chats, if different

    def chat_interval(self, platform: str, chat_id: str) -> float:
        if self.per_group is not None and _is_group(platform, chat_id):
            return self.per_group
        return self.per_chat


def _is_group(platform: str, chat_id: str) -> bool:
    # Telegram group and supergroup ids are negative; private chats are positive.
    return platform == "telegram" and chat_id.startswith("-")


DEFAULT_LIMITS: dict[str, PlatformLimit] = {
    "telegram": PlatformLimit(overall=1 / 30, per_chat=1.0, per_group=3.0),
    "slack": PlatformLimit(overall=0.0, per_chat=1.0),
}

_PRUNE_EVERY = 1000


class RateLimiter:
    """Send slots per platform: the overall pace is a grid of slots (1/30 s apart for
    Telegram) of which each message takes one; the per-chat pace is the gap to that
    chat's previous message."""

    def __init__(
        self,
        limits: dict[str, PlatformLimit] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = DEFAULT_LIMITS if limits is None else limits
        self.monotonic = monotonic
        self._taken: dict[str, set[int]] = {}
        self._chats: dict[tuple[str, str], float] = {}
        self._calls = 0

    def wait_for(self, platform: str, chat_id: str) -> float:
        """Seconds until the next free slot for this chat (without reserving it)."""
        limit = self.limits.get(platform)
        if limit is None:
            return 0.0
        return max(0.0, self._slot(platform, chat_id, limit)[0] - self.monotonic())

    def reserve(self, platform: str, chat_id: str, horizon: float) -> float | None:
        """Take the next free slot if it is within `horizon` seconds; returns the wait."""
        limit = self.limits.get(platform)
        if limit is None:
            return 0.0
        now = self.monotonic()
        slot, index = self._slot(platform, chat_id, limit)
        if slot - now > horizon:
            return None
        if index is not None:
            self._taken.setdefault(platform, set()).add(index)
        self._chats[(platform, chat_id)] = slot + limit.chat_interval(platform, chat_id)
        self._calls += 1
        if self._calls % _PRUNE_EVERY == 0:
            self._prune(now)
        return max(0.0, slot - now)

    def hold(self, platform: str, chat_id: str, seconds: float) -> None:
        """The platform asked this chat to wait (429): keep its slots closed meanwhile."""
        until = self.monotonic() + seconds
        key = (platform, chat_id)
        self._chats[key] = max(self._chats.get(key, 0.0), until)

    def _slot(self, platform: str, chat_id: str, limit: PlatformLimit) -> tuple[float, int | None]:
        now = self.monotonic()
        earliest = max(now, self._chats.get((platform, chat_id), now))
        if limit.overall <= 0:
            return earliest, None
        taken = self._taken.get(platform, set())
        index = math.ceil(earliest / limit.overall - 1e-9)
        while index in taken:
            index += 1
        return index * limit.overall, index

    def _prune(self, now: float) -> None:
        self._chats = {k: v for k, v in self._chats.items() if v > now}
        for platform, taken in self._taken.items():
            limit = self.limits[platform]
            floor = math.floor(now / limit.overall) if limit.overall > 0 else 0
            self._taken[platform] = {i for i in taken if i >= floor}
