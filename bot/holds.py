"""The claims this process holds on replies still waiting to go out, kept alive together.

A reply is claimed for its sender with a lease (bot/sending.py): if the process dies, the
dispatcher takes the row once the lease runs out. In a burst (a club answering the morning
check-in at once, Telegram's 30 messages a second for the whole bot), replies wait in this
process's pacing for longer than a lease. Renewing each reply's claim on its own cost a
transaction per reply, and a reply waiting inside the pacer could not renew at all: its
lease ran out while it waited, the dispatcher sent it too, and the rest of its chat fell to
the dispatcher (two transactions per message; issue 14). Here every claim the process holds
is renewed in one transaction every third of a lease, for as long as it is held.

Hand-written because it is a few lines over our own outbox; APScheduler's interval jobs
would add a job store and an executor to a loop this small.

A hold that outlives `MAX_HOLD` is no longer renewed: a sender that never came back for
its rows must not keep them from the dispatcher for good.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.storage import outbox
from bot.storage.db import Database

__all__ = ["MAX_HOLD_SECONDS", "Holds"]

log = logging.getLogger("hipcoach.holds")

MAX_HOLD_SECONDS = 15 * 60.0


@dataclass
class _Hold:
    row: outbox.ClaimedMessage
    until: datetime
    since: float  # time.monotonic() when claimed


class Holds:
    """Rows claimed by this process and not yet sent or handed back."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        lease: Callable[[], timedelta],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self._lease = lease
        self._monotonic = monotonic
        self._held: dict[int, _Hold] = {}
        self._keeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, rows: Iterable[outbox.ClaimedMessage], until: datetime) -> None:
        now = self._monotonic()
        for row in rows:
            self._held[row.id] = _Hold(row, until, now)
        loop = asyncio.get_running_loop()
        keeper = self._keeper
        if self._held and (keeper is None or keeper.done() or keeper.get_loop() is not loop):
            self._keeper = loop.create_task(self._keep())

    def until(self, row: outbox.ClaimedMessage) -> datetime | None:
        """How long this row is ours for sure; None once it is no longer held here."""
        hold = self._held.get(row.id)
        return hold.until if hold is not None and hold.row.token == row.token else None

    def renewed(self, rows: Iterable[outbox.ClaimedMessage], until: datetime) -> None:
        for row in rows:
            hold = self._held.get(row.id)
            if hold is not None:
                hold.until = max(hold.until, until)

    def drop(self, rows: Iterable[outbox.ClaimedMessage]) -> None:
        """Sent, handed back or given up: no longer ours to renew."""
        for row in rows:
            hold = self._held.get(row.id)
            if hold is not None and hold.row.token == row.token:
                del self._held[row.id]

    async def close(self) -> None:
        """Stop renewing (the process is stopping): what is held runs out as if it died."""
        self._held.clear()
        keeper = self._keeper
        if (
            keeper is not None
            and not keeper.done()
            and keeper.get_loop() is asyncio.get_running_loop()
        ):
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        self._keeper = None

    async def _keep(self) -> None:
        while self._held:
            await asyncio.sleep(self._lease().total_seconds() / 3)
            try:
                await self._renew_all()
            except Exception as error:  # an outage: the claims run out, the dispatcher sends
                log.warning("reply claims not renewed error=%s", type(error).__name__)

    async def _renew_all(self) -> None:
        now, lease = self._clock(), self._lease()
        horizon = self._monotonic() - MAX_HOLD_SECONDS
        expired = [h for h in self._held.values() if h.since < horizon]
        for hold in expired:
            log.warning("reply held too long, left to the dispatcher id=%s", hold.row.id)
            del self._held[hold.row.id]
        # Renewed well before they run out: those with less than two thirds of a lease left.
        due = [h for h in self._held.values() if h.until - now < lease * 2 / 3]
        if not due:
            return
        until = now + lease
        async with self._db.transaction() as repo:
            kept = await outbox.renew_each(repo, [h.row for h in due], until)
        for hold in due:
            if self._held.get(hold.row.id) is not hold:
                continue  # sent or dropped while the renewal ran
            if hold.row.id in kept:
                hold.until = until
            else:  # taken over (our lease had run out): not ours to send any more
                del self._held[hold.row.id]
