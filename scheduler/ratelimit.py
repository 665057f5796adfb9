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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformLimit:
    overall: float = 0.0  # seconds between any two messages (0 = no limit)
    per_chat: float = 0.0  # seconds between two messages to one chat
    per_group: float | None = None  # per-chat pace for group chats, if different
    # Checked against the times messages really go out (`admit`, just before each send), so
    # a late wake-up (a busy event loop, a busy machine) never turns into a burst: at most
    # `window_count` messages in any `window` seconds overall, and at most `group_count` in
    # any `group_window` seconds to one group (0 = no such check).
    window_count: int = 0
    window: float = 1.0
    group_count: int = 0
    group_window: float = 60.0

    def chat_interval(self, platform: str, chat_id: str) -> float:
        if self.per_group is not None and _is_group(platform, chat_id):
            return self.per_group
        return self.per_chat


def _is_group(platform: str, chat_id: str) -> bool:
    # Telegram group and supergroup ids are negative; private chats are positive.
    return platform == "telegram" and chat_id.startswith("-")


# Pace a little under the documented limits. Telegram counts messages as they arrive, and
# arrival times jitter by milliseconds (event loop, network), so sending exactly on a 1/30 s
# grid still puts 31 arrivals into some 1-second window. 2% of headroom absorbs ~20 ms of
# jitter (bench/dispatch_rate.py measures violations against a fake that enforces the limits).
HEADROOM = 0.98

DEFAULT_LIMITS: dict[str, PlatformLimit] = {
    "telegram": PlatformLimit(
        overall=1 / (30 * HEADROOM),
        per_chat=1.0 / HEADROOM,
        per_group=3.0 / HEADROOM,
        window_count=30,
        window=1.0 / HEADROOM,
        group_count=20,
        group_window=60.0 / HEADROOM,
    ),
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
        self._went: dict[str, deque[float]] = {}  # recent real send times per platform
        self._chat_went: dict[tuple[str, str], deque[float]] = {}  # ... per chat

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

    def admit(self, platform: str, chat_id: str) -> float:
        """Just before sending (after waiting for the reserved slot): seconds still to wait
        so that, by the times messages really went out, no limit is exceeded; 0 means send
        now, and the send is recorded."""
        limit = self.limits.get(platform)
        if limit is None:
            return 0.0
        now = self.monotonic()
        wait = 0.0
        went = self._went.setdefault(platform, deque())
        if limit.window_count > 0:
            while went and went[0] <= now - limit.window:
                went.popleft()
            if len(went) >= limit.window_count:
                wait = max(wait, went[-limit.window_count] + limit.window - now)
        key = (platform, chat_id)
        chat_went = self._chat_went.get(key)
        if chat_went:
            gap = limit.chat_interval(platform, chat_id)
            if limit.group_count > 0 and _is_group(platform, chat_id):
                while chat_went and chat_went[0] <= now - limit.group_window:
                    chat_went.popleft()
                if len(chat_went) >= limit.group_count:
                    first = chat_went[-limit.group_count]
                    wait = max(wait, first + limit.group_window - now)
                gap = limit.per_chat
            if chat_went:
                wait = max(wait, chat_went[-1] + gap - now)
        if wait > 0:
            return wait
        went.append(now)
        if limit.window_count > 0 and len(went) > limit.window_count:
            went.popleft()
        if chat_went is None:
            chat_went = self._chat_went[key] = deque()
        chat_went.append(now)
        keep = max(limit.group_count, 1) if _is_group(platform, chat_id) else 1
        while len(chat_went) > keep:
            chat_went.popleft()
        return 0.0

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
        horizon = max((limit.group_window for limit in self.limits.values()), default=60.0)
        self._chat_went = {k: v for k, v in self._chat_went.items() if v and v[-1] > now - horizon}
        for platform, taken in self._taken.items():
            limit = self.limits[platform]
            floor = math.floor(now / limit.overall) if limit.overall > 0 else 0
            self._taken[platform] = {i for i in taken if i >= floor}
