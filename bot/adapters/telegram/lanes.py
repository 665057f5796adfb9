"""Concurrent update handling: in parallel across chats, strictly in order within a chat.

Two pieces, both plain asyncio (no Telegram types), so the rules are easy to read:

- `Lanes`: one worker per key (a chat) that has work queued, handling that key's items one
  after the other in the order they were submitted; different keys run at once, at most
  `limit` items at a time. A worker ends when its queue is empty, so an idle chat costs
  nothing. An item with no key is a barrier: it waits until every lane is idle, runs alone,
  and items submitted after it wait for it (a group that became a supergroup touches two
  chats' rows at once).
- `Watermark`: which update ids have been taken from getUpdates and how far each got, so
  the polling loop can confirm (ask for the offset past) only a prefix of updates that are
  all handled. Telegram's `offset` confirms every update below it at once, so a single
  unfinished update holds back the confirmation of everything after it, but not their
  handling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Job = Callable[[], Awaitable[None]]

TAKEN, RECORDED, DONE = 0, 1, 2


@dataclass
class _Lane:
    queue: deque[Job] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class Lanes:
    """Per-key FIFO workers under one global bound."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._lanes: dict[str, _Lane] = {}
        self._open = asyncio.Event()  # cleared while a barrier runs
        self._open.set()
        self._idle = asyncio.Event()  # set while no lane has work
        self._idle.set()
        self._barrier_lock = asyncio.Lock()

    @property
    def busy(self) -> int:
        """Keys with work queued or running."""
        return len(self._lanes)

    async def submit(self, key: str | None, job: Job) -> None:
        """Queue `job` behind the earlier jobs of `key`; returns once it is queued (a
        barrier: once it has run)."""
        await self._open.wait()
        if key is None:
            await self._run_alone(job)
            return
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
            self._idle.clear()
        lane.queue.append(job)
        if lane.task is None:
            lane.task = asyncio.create_task(self._work(key, lane), name=f"lane-{key}")

    async def _work(self, key: str, lane: _Lane) -> None:
        try:
            while lane.queue:
                job = lane.queue[0]
                # The job reports its own failures; one failing never stops a lane.
                async with self._slots:
                    with contextlib.suppress(Exception):
                        await job()
                lane.queue.popleft()
        finally:
            lane.task = None
            if self._lanes.get(key) is lane and not lane.queue:
                del self._lanes[key]
                if not self._lanes:
                    self._idle.set()

    async def _run_alone(self, job: Job) -> None:
        async with self._barrier_lock:
            self._open.clear()
            try:
                await self._idle.wait()
                with contextlib.suppress(Exception):
                    await job()
            finally:
                self._open.set()

    async def drain(self) -> None:
        """Until every queued job has run."""
        await self._idle.wait()

    async def cancel(self) -> None:
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._lanes.clear()
        self._idle.set()


class Watermark:
    """Update ids taken from getUpdates, in order, and how far each has got.

    `offset()` is what the next getUpdates asks for: the first id not yet handled, so
    everything confirmed is handled and every update before it too. `offset(recorded=True)`
    also passes updates whose turn is committed but whose replies are still being sent:
    they are safe to confirm (the replies wait in the outbox, a restart sends them), and
    the polling loop uses it only when Telegram's window of 100 pending updates is full of
    updates it already has, so that a reply call can never hold everyone else back.
    """

    def __init__(self) -> None:
        self._ids: deque[int] = deque()
        self._state: dict[int, int] = {}
        self.highest = -1  # the highest id taken so far
        self._waiter: asyncio.Future[None] | None = None

    def take(self, update_id: int) -> bool:
        """Note a fetched update; False when it was taken before (a re-fetch of an update
        not yet confirmed)."""
        if update_id <= self.highest:
            return False
        self.highest = update_id
        self._ids.append(update_id)
        self._state[update_id] = TAKEN
        return True

    def recorded(self, update_id: int) -> None:
        if self._state.get(update_id) == TAKEN:
            self._state[update_id] = RECORDED
            self._wake()

    def done(self, update_id: int) -> None:
        if update_id in self._state:
            self._state[update_id] = DONE
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def pending(self) -> int:
        """Taken and not yet confirmed by an offset."""
        return len(self._ids)

    def offset(self, *, recorded: bool = False) -> int | None:
        """The getUpdates offset that confirms the longest handled prefix (None before
        anything was taken)."""
        enough = RECORDED if recorded else DONE
        for update_id in self._ids:
            if self._state[update_id] < enough:
                return update_id
        return self.highest + 1 if self.highest >= 0 else None

    def confirmed(self, offset: int | None) -> None:
        """Telegram was asked for `offset`: ids below it are forgotten."""
        if offset is None:
            return
        while self._ids and self._ids[0] < offset:
            self._state.pop(self._ids.popleft(), None)

    async def wait_moved(self, last: int | None, timeout: float, *, recorded: bool) -> None:
        """Until `offset(recorded=...)` is past `last`, or `timeout` seconds.

        A bare future and a timer rather than asyncio.wait_for: this runs for every batch,
        and on Python 3.11 wait_for can swallow a cancellation that arrives just as the
        awaited thing finishes, which would leave the polling loop running after stop()."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.offset(recorded=recorded) == last:
            left = deadline - loop.time()
            if left <= 0:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = waiter
            timer = loop.call_later(left, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
