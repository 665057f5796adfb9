"""Concurrent update handling: in parallel across chats, strictly in order within a chat.

Two pieces, both plain asyncio (no Telegram types), so the rules are easy to read:

- `Lanes`: one worker per key (a chat) that has work queued, handling that key's items one
  after the other in the order they were submitted; different keys run at once, at most
  `limit` items at a time. A worker ends when its queue is empty, so an idle chat costs
  nothing. An item with no key is a barrier: it waits until every lane is idle, runs alone,
  and items submitted after it wait for it (a group that became a supergroup touches two
  chats' rows at once).
- `Chains`: a chat's reply deliveries, in order, after the chat's lane has moved on to its
  next update (see the class).
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


@dataclass
class _Chain:
    token: str
    queued: int = 0
    broken: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Chains:
    """Each chat's reply deliveries, one after the other, apart from its update lane.

    A chat's lane records update n+1 while the replies of update n are still going out
    (Telegram allows about one message a second per chat), so a busy chat's answers are
    committed and its taps answered at once. Recorded under the chain's claim `token`, the
    replies of n+1 are claimed for this process too (an older reply being sent under the
    same token does not hold them back: bot/storage/outbox.py) and go out right after
    those of n. Once a delivery leaves replies to the dispatcher (a 429, the claim running
    out), every later delivery of the chain hands its replies back unsent instead, so the
    dispatcher sends the chat's messages in order.
    """

    def __init__(self, limit: int, new_token: Callable[[], str]) -> None:
        self._lanes = Lanes(limit)
        self._chains: dict[str, _Chain] = {}
        self._new_token = new_token

    @property
    def busy(self) -> int:
        return self._lanes.busy

    def token(self, key: str) -> str:
        """The claim token for `key`'s next turn: its chain's while one runs."""
        chain = self._chains.get(key)
        return chain.token if chain is not None else self._new_token()

    async def submit(
        self,
        key: str,
        token: str,
        deliver: Callable[[], Awaitable[bool]],
        hand_back: Callable[[], Awaitable[None]],
    ) -> None:
        """Queue a delivery (True: nothing was left to the dispatcher) behind the chain's
        earlier ones; `hand_back` runs instead once an earlier one left something."""
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = _Chain(token)
        chain.queued += 1

        async def job() -> None:
            try:
                if chain.broken:
                    await hand_back()
                elif not await deliver():
                    chain.broken = True
            except BaseException:
                chain.broken = True  # what it held waits for its claim to run out
                raise
            finally:
                chain.queued -= 1
                if chain.queued == 0 and self._chains.get(key) is chain:
                    del self._chains[key]
                    chain.ended.set()

        await self._lanes.submit(key, job)

    async def quiet(self, key: str) -> None:
        """Until `key` has no delivery queued or running."""
        chain = self._chains.get(key)
        if chain is not None:
            await chain.ended.wait()

    async def drain(self) -> None:
        await self._lanes.drain()

    async def cancel(self) -> None:
        await self._lanes.cancel()
        for chain in self._chains.values():
            chain.ended.set()
        self._chains.clear()


class Watermark:
    """Update ids taken from getUpdates, in order, and how far each has got.

    `offset()` is what the next getUpdates asks for: the first id not yet handled, so
    everything confirmed is handled and every update before it too. `offset(recorded=True)`
    also passes updates whose turn is committed but whose tap is still being answered or
    replies sent: they are safe to confirm (the replies wait in the outbox, a restart sends
    them), and the polling loop confirms that far, so no call to Telegram holds back the
    confirmation of everything after it.
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
