"""One pacing per platform for everything the bot sends: replies, reminders, warm-up cards.

Telegram allows ~30 messages a second overall, 1 a second to one chat and 20 a minute to one
group; Slack ~1 a second to one channel. Those limits hold for the bot as a whole, so the
replies a turn sends at once (`Coach.deliver`) and what the outbox dispatcher sends
(scheduler/core.py) take their send slots from the same `RateLimiter` (`hipcoach run` wires
one per process; bot/cli.py).

Window semantics, counted on completion. The platform counts a message when it *arrives*,
and we cannot see that moment; but it lies between the moment we start the call and the
moment its answer is back. So a message may start only when, counting every message
still in flight and every one *completed* within the window, the window has room: e.g.
the 31st message starts at least 1 s after the answer to the 1st came back, so their
arrivals are at least 1 s apart whatever the network, the event loop or a busy machine did
in between (a late wake-up only makes us later, never burstier). The same holds per chat
(a message starts at least 1 s after the previous one to that chat was answered) and per
group (20 in any 60 s). The price is one round trip per window: ~30/(1 s + round trip).

Bulk to a group (warm-up cards) is spread evenly, one per ~3 s counted from the previous
start, so it never uses the group's whole minute in a burst and a reply in that group still
finds room; replies use the window. (The group's window, counted on completion as above,
still holds for every message: the even spread is for the group's readers, not the rule.)

Priority: interactive replies (`urgent=True`) go ahead of reminders and cards waiting for
the same budget, so a runner who taps during the 7:30 burst of thousands of reminders waits
for at most the next free slot, not for the queue. Waiters that cannot go yet (their chat
had a message a moment ago) do not hold up those that can.

Edits (`edit=True`) change a message already in the chat: they take a slot of the overall
budget but none of the chat's (the platforms count new messages per chat).

429: `retry_after(platform, chat, seconds)` closes that chat for the time the platform
asked; a second chat refused within the overall window means the platform-wide limit was
hit (e.g. another process sends too), and the whole platform pauses for that time.

Per process only: with several processes sending, the platform's own 429 is the backstop.

Cost: the pump runs on every acquire, every completion and on every timer, so it keeps
waiters in two queues in arrival order (replies, the rest) instead of sorting them each time,
works out the platform-wide opening once per pass (again only after a grant), and drops the
served waiters in one rebuild of each queue.

Why hand-written: aiolimiter (a leaky bucket), limits and pyrate-limiter count a hit when it
is taken. None counts a message until its call completed, none serves waiters by priority
across keys, and none knows per-key gaps next to a shared window; those three are what keep
the limits under load, so this small scheduler is ours. Time is `time.monotonic` (or the
clock given, for tests).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

__all__ = ["DEFAULT_LIMITS", "PlatformLimit", "RateLimiter"]


@dataclass(frozen=True)
class PlatformLimit:
    overall_count: int = 0  # at most this many messages ...
    overall_window: float = 1.0  # ... in any window of this many seconds (0 count = none)
    chat_gap: float = 0.0  # seconds between two messages to one chat
    group_count: int = 0  # at most this many to one group ...
    group_window: float = 60.0  # ... in any window of this many seconds
    group_bulk_gap: float = 0.0  # bulk (not urgent) to a group: spread this far apart
    groups: Callable[[str], bool] | None = None  # which chat ids are groups


def _telegram_group(chat_id: str) -> bool:
    # Telegram group and supergroup ids are negative; private chats are positive.
    return chat_id.startswith("-")


# A few milliseconds on every window and gap: the rule is already exact (counted from the
# answer), this only keeps float rounding on our side of it.
MARGIN = 0.005

DEFAULT_LIMITS: dict[str, PlatformLimit] = {
    "telegram": PlatformLimit(
        overall_count=30,
        overall_window=1.0 + MARGIN,
        chat_gap=1.0 + MARGIN,
        group_count=20,
        group_window=60.0 + MARGIN,
        group_bulk_gap=3.05,  # from start to start: 20 of them span 61 s
        groups=_telegram_group,
    ),
    "slack": PlatformLimit(chat_gap=1.0 + MARGIN),
}

_PRUNE_EVERY = 2000


@dataclass
class _Chat:
    in_flight: int = 0  # messages (not edits) being sent to it now
    last_done: float | None = None  # when the last answer came back
    last_start: float | None = None  # when the last message to it started
    hold_until: float = 0.0  # a 429 asked us to wait
    done: deque[float] = field(default_factory=deque)  # groups: recent completions


@dataclass(eq=False)  # identity: each waiter is one sender (`in` and `remove` stay cheap)
class _Waiter:
    chat_id: str
    urgent: bool
    edit: bool
    seq: int
    future: asyncio.Future[None]


@dataclass
class _Platform:
    limit: PlatformLimit
    in_flight: int = 0
    done: deque[float] = field(default_factory=deque)  # recent completions, oldest first
    hold_until: float = 0.0
    last_refused: tuple[str, float] | None = None  # (chat, when) of the last 429
    chats: dict[str, _Chat] = field(default_factory=dict)
    # Waiters in arrival order, replies apart: seq is handed out as each one is appended, so
    # `urgent + queued` is the order they go in (urgent first, then FIFO) with no sort.
    urgent: list[_Waiter] = field(default_factory=list)
    queued: list[_Waiter] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    timer_at: float = math.inf


class RateLimiter:
    """Send slots per platform, shared by every sender of the process.

    `async with limiter.slot(platform, chat_id, urgent=...):` waits for a slot, and the
    send inside the block counts as in flight until the block ends (its completion).
    A platform without limits (`RateLimiter({})`, the console) never waits."""

    def __init__(
        self,
        limits: dict[str, PlatformLimit] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = DEFAULT_LIMITS if limits is None else limits
        self.monotonic = monotonic
        self._platforms: dict[str, _Platform] = {}
        self._seq = itertools.count()
        self._grants = 0

    # --- the public side ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(
        self, platform: str, chat_id: str, *, urgent: bool = False, edit: bool = False
    ) -> AsyncIterator[None]:
        state = self._state(platform)
        if state is None:
            yield
            return
        await self._acquire(state, chat_id, urgent=urgent, edit=edit)
        try:
            yield
        finally:
            self._complete(state, chat_id, edit)

    def ready_in(self, platform: str, chat_id: str, *, urgent: bool = False) -> float:
        """Seconds until a message to this chat could start, ignoring other waiters (0 when
        it could go now; the chat's own message in flight counts as a short wait)."""
        state = self._state(platform)
        if state is None:
            return 0.0
        now = self.monotonic()
        at = self._earliest(state, chat_id, urgent, False, now)
        if math.isinf(at):
            return 0.0  # waiting for an answer under way: a round trip, not a long wait
        return max(0.0, at - now)

    def retry_after(self, platform: str, chat_id: str, seconds: float) -> None:
        """The platform refused a message (429) and asked us to wait `seconds`."""
        state = self._state(platform)
        if state is None:
            return
        now = self.monotonic()
        until = now + max(seconds, 0.0)
        chat = state.chats.setdefault(chat_id, _Chat())
        chat.hold_until = max(chat.hold_until, until)
        last = state.last_refused
        if last is not None and last[0] != chat_id and now - last[1] <= state.limit.overall_window:
            # Two different chats refused within a window: the platform-wide limit.
            state.hold_until = max(state.hold_until, until)
        state.last_refused = (chat_id, now)

    def paused_for(self, platform: str) -> float:
        """Seconds the whole platform is still paused after 429s (0 = not paused)."""
        state = self._state(platform)
        return max(0.0, state.hold_until - self.monotonic()) if state is not None else 0.0

    def waiting(self, platform: str) -> list[tuple[str, bool]]:
        """(chat, urgent) of the senders waiting for a slot, in the order they would go."""
        state = self._state(platform)
        if state is None:
            return []
        return [(w.chat_id, w.urgent) for w in (*state.urgent, *state.queued)]

    def poke(self) -> None:
        """Look again at every waiter now (after the clock moved, in tests)."""
        for state in self._platforms.values():
            self._pump(state)

    # --- waiting and granting -------------------------------------------------------------

    def _state(self, platform: str) -> _Platform | None:
        state = self._platforms.get(platform)
        if state is None:
            limit = self.limits.get(platform)
            if limit is None or not _limited(limit):
                return None
            state = self._platforms[platform] = _Platform(limit)
        return state

    async def _acquire(self, state: _Platform, chat_id: str, *, urgent: bool, edit: bool) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(chat_id, urgent, edit, next(self._seq), future)
        queue = state.urgent if urgent else state.queued
        queue.append(waiter)
        self._pump(state)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._complete(state, chat_id, edit)  # granted as we were cancelled
            elif waiter in queue:  # a pump may have dropped it already
                queue.remove(waiter)
            raise

    def _pump(self, state: _Platform) -> None:
        """Grant every waiter that may go now, replies first; set a timer for the rest."""
        now = self.monotonic()
        next_at = math.inf
        # Only a grant (one more in flight) changes when the platform opens within this pass,
        # so it is worked out once here and again after each grant, not once per waiter.
        opens = self._platform_opens(state, now) if state.urgent or state.queued else now
        blocked = False
        for queue in (state.urgent, state.queued):
            # The waiters looked at that stay, in order: the looked-at part of the queue is
            # replaced by them in one go, not with a `remove` (a scan) per waiter served.
            kept: list[_Waiter] = []
            looked = len(queue)
            dropped = False
            for i, waiter in enumerate(queue):
                if waiter.future.done():  # cancelled meanwhile
                    dropped = True
                    continue
                if opens > now:
                    # Nobody goes before the platform-wide window opens again: no need to look
                    # at each of the (hundreds of, in a burst) other waiters now.
                    next_at = min(next_at, opens)
                    looked = i
                    blocked = True
                    break
                # The platform is open (opens == now), so the chat's own opening decides.
                at = self._chat_opens(state, waiter.chat_id, waiter.urgent, waiter.edit, now)
                if at <= now:
                    dropped = True
                    self._grant(state, waiter.chat_id, waiter.edit)
                    waiter.future.set_result(None)
                    opens = self._platform_opens(state, now)
                else:
                    kept.append(waiter)
                    next_at = min(next_at, at)
            if dropped:
                queue[:looked] = kept
            if blocked:
                break
        if state.timer is not None and (math.isinf(next_at) or next_at < state.timer_at):
            state.timer.cancel()
            state.timer, state.timer_at = None, math.inf
        if state.timer is None and not math.isinf(next_at):
            loop = asyncio.get_running_loop()
            state.timer = loop.call_later(max(0.0, next_at - now), self._on_timer, state)
            state.timer_at = next_at

    def _on_timer(self, state: _Platform) -> None:
        state.timer, state.timer_at = None, math.inf
        self._pump(state)

    def _platform_opens(self, state: _Platform, now: float) -> float:
        """When any message at all could start (the pause after 429s, the overall window);
        inf while only an answer under way can free room."""
        limit = state.limit
        at = max(now, state.hold_until)
        if limit.overall_count > 0:
            opens = _window_opens(
                state.done, state.in_flight, limit.overall_count, limit.overall_window, now
            )
            at = max(at, opens)
        return at

    def _earliest(
        self, state: _Platform, chat_id: str, urgent: bool, edit: bool, now: float
    ) -> float:
        """When a message to `chat_id` could start; inf while it waits for an answer."""
        return max(
            self._platform_opens(state, now), self._chat_opens(state, chat_id, urgent, edit, now)
        )

    def _chat_opens(
        self, state: _Platform, chat_id: str, urgent: bool, edit: bool, now: float
    ) -> float:
        """When the chat itself lets a message start (its 429 hold, gap and group window),
        leaving out the platform-wide part `_platform_opens` gives; inf while it waits for an
        answer."""
        limit = state.limit
        chat = state.chats.get(chat_id)
        if chat is None:
            return now
        at = max(now, chat.hold_until)
        if edit:
            return at
        if chat.in_flight:
            return math.inf
        group = limit.groups is not None and limit.groups(chat_id)
        if chat.last_done is not None:
            at = max(at, chat.last_done + limit.chat_gap)
        if group and not urgent and chat.last_start is not None:
            at = max(at, chat.last_start + limit.group_bulk_gap)
        if group and limit.group_count > 0:
            at = max(at, _window_opens(chat.done, 0, limit.group_count, limit.group_window, now))
        return at

    def _grant(self, state: _Platform, chat_id: str, edit: bool) -> None:
        state.in_flight += 1
        if not edit:
            chat = state.chats.setdefault(chat_id, _Chat())
            chat.in_flight += 1
            chat.last_start = self.monotonic()
        self._grants += 1
        if self._grants % _PRUNE_EVERY == 0:
            self._prune(state)

    def _complete(self, state: _Platform, chat_id: str, edit: bool) -> None:
        now = self.monotonic()
        state.in_flight -= 1
        limit = state.limit
        if limit.overall_count > 0:
            state.done.append(now)
            while len(state.done) > limit.overall_count:
                state.done.popleft()
        if not edit:
            chat = state.chats.setdefault(chat_id, _Chat())
            chat.in_flight -= 1
            chat.last_done = now
            if limit.group_count > 0 and limit.groups is not None and limit.groups(chat_id):
                chat.done.append(now)
                while len(chat.done) > limit.group_count:
                    chat.done.popleft()
        self._pump(state)

    def _prune(self, state: _Platform) -> None:
        """Forget chats whose last message is older than every window and gap."""
        limit = state.limit
        horizon = max(limit.chat_gap, limit.group_bulk_gap, limit.group_window)
        now = self.monotonic()
        state.chats = {
            k: c
            for k, c in state.chats.items()
            if c.in_flight
            or c.hold_until > now
            or (c.last_done is not None and c.last_done > now - horizon)
        }


def _limited(limit: PlatformLimit) -> bool:
    return limit.overall_count > 0 or limit.chat_gap > 0 or limit.group_count > 0


def _window_opens(
    done: deque[float], in_flight: int, count: int, window: float, now: float
) -> float:
    """When one more message fits: at most `count` in flight or completed within the last
    `window` seconds. inf when only an answer still under way can free room. `done` holds
    completion times, oldest first."""
    kept = len(done)
    if in_flight + kept < count:
        return now  # room even if every kept completion were still in the window
    # Oldest first (the clock is monotonic), so the completions still in the window are a
    # tail: find where it starts by bisection instead of copying it out.
    first = bisect.bisect_right(done, now - window)
    recent = kept - first
    used = in_flight + recent
    if used < count:
        return now
    need = used - count + 1  # completions that must leave the window first
    if need > recent:
        return math.inf
    return done[first + need - 1] + window
