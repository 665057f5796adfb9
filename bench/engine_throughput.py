"""Bench 1 — engine throughput: full daily check-ins through Coach.handle and a real database.

    .venv/bin/python -m bench.engine_throughput [--runs 3] [--db sqlite|postgresql|both]
                        [--runners N] [--days D] [--concurrency C] [--quick] [--no-pin]

Simulated runners (onboarded once through the Coach, then copied with a bulk insert) each
do a full daily check-in — `checkin`, morning pain, a 20-minute run, pain during it, how the
hip took it, yesterday's exercise pain and the holds, the short safety screen (the full screen
on its weekly day) — then `today` and one exercise logged done: 10 inbound events on a usual
day (8 on the plan's first day, 13 on the weekly full-screen day), each one `Coach.handle`
call in its own transaction, exactly as an adapter makes it. No platform and no network besides the
database.

Two variants, each on a fresh scratch database:
- sequential: one asyncio task sends every event one after the other;
- concurrent: C runners at once on one event loop (each runner's own events stay in order).

The process is pinned to one CPU (`--no-pin` to turn that off) and its garbage collector
set up as every `hipcoach` process sets it up (bot/gc_tuning.py). Each run (`--runs`,
default 3) is a fresh scratch database per variant; within a run every simulated day is
one round (a warm-up day first, not measured). Per run: events/s (median over its days),
events per CPU second and CPU ms per event (this process's user+system CPU over the
measured days: the bot's own work, SQLite included; on PostgreSQL the server's CPU is not
in it), and p50/p90/p99/max latency over every measured event. The table shows the
medians of the runs; the targets are judged on them.

Targets (issue 14, "Done when"), on SQLite, sequential: >= 1,000 events per CPU-second
(<= 1 ms CPU per event) and p99 <= 10 ms (the latter meant for a quiet machine).
PostgreSQL figures are reported beside them, not judged.

`--profile FILE` runs the sequential SQLite variant under cProfile and prints the top
functions (cumulative), saving the stats to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from bench._common import (
    Target,
    Timer,
    add_runs_argument,
    fmt_ms,
    machine_note,
    median,
    pin_to_one_core,
    print_table,
    print_targets,
    scratch_pg,
    scratch_sqlite,
    summarize_ms,
)
from bot import gc_tuning
from bot.engine.events import COMMANDS, Button, Inbound, InboundKind, Outbound
from bot.service import Coach
from bot.storage.db import Database
from bot.storage.models import User
from tests.chat_driver import ONBOARDING_TAPS

PLATFORM = "console"
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, midday UTC
EVENTS_PER_DAY = 10  # a usual day, without the weekly full screen

_ids = itertools.count(1)


async def _sent(_: Outbound) -> None:
    """A platform that accepts every reply at once."""


@dataclass
class SimClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Runner:
    """One simulated person: sends events, remembers the last buttons it was shown."""

    coach: Coach
    user_id: str
    latencies: list[float]
    buttons: list[Button] = field(default_factory=list)
    ref: int = 0

    def _inbound(self, kind: InboundKind, **kw: Any) -> Inbound:
        return Inbound(
            platform=PLATFORM,
            event_id=f"b{next(_ids)}",
            user_id=self.user_id,
            chat_id=self.user_id,
            kind=kind,
            **kw,
        )

    async def _deliver(self, inbound: Inbound) -> list[Outbound]:
        started = time.perf_counter()
        # As an adapter does: the replies are stored with the turn, then "sent" (a no-op
        # here) and their outbox rows settled.
        replies = await self.coach.handle(inbound, send=_sent)
        self.latencies.append(time.perf_counter() - started)
        for reply in replies:
            if reply.edit_ref is None:
                self.ref += 1
            if reply.buttons:
                self.buttons = reply.flat_buttons
        return replies

    async def send(self, word: str) -> None:
        assert word in COMMANDS
        await self._deliver(self._inbound(InboundKind.COMMAND, command=word))

    async def press(self, *choices: str) -> str:
        """Press the first button whose label is one of `choices` (in that order)."""
        labels = {b.label: b for b in self.buttons}
        for choice in choices:
            if choice in labels:
                button = labels[choice]
                await self._deliver(
                    self._inbound(
                        InboundKind.BUTTON, payload=button.payload, message_ref=str(self.ref)
                    )
                )
                return choice
        raise RuntimeError(f"{self.user_id}: none of {choices} in {list(labels)}")

    async def daily(self) -> None:
        """One day: the full check-in, then today's session and one exercise logged."""
        await self.send("checkin")
        await self.press("2")  # morning pain
        await self.press("20 min")
        await self.press("2")  # worst pain during the run
        await self.press("All fine")  # after the run
        if any(b.label == "Skipped them" for b in self.buttons):
            await self.press("2")  # yesterday's exercises (not asked on the plan's first day)
        if any(b.label == "No, same or easier" for b in self.buttons):
            await self.press("No, same or easier")  # the holds
        for _ in range(8):  # the short screen; on its weekly day the full one
            if not any(b.label == "None of these" for b in self.buttons):
                break
            await self.press("None of these")
        await self.send("today")
        await self.press("1")  # the first exercise of the card
        await self.press("Done ✅")


# --- set-up ----------------------------------------------------------------------------------


async def onboard_template(coach: Coach) -> tuple[dict[str, Any], User]:
    """Onboard one runner through the Coach (the real flow) and return its stored row."""
    r = Runner(coach, "template", [])
    await r.send("start")
    for label in ONBOARDING_TAPS:
        await r.press(label)
    async with coach.db.transaction(readonly=True) as repo:
        user = await repo.get_user(PLATFORM, "template", lock=False)
    assert user is not None and user.profile.get("onboarded"), "template runner not onboarded"
    return dict(user.profile), user


async def copy_runners(db: Database, template: User, n: int, prefix: str) -> list[str]:
    """Insert `n` onboarded runners that look like `template` (one executemany)."""
    ids = [f"{prefix}{i}" for i in range(n)]
    rows = [
        {
            "platform": PLATFORM,
            "platform_user_id": uid,
            "chat_id": uid,
            "display_name": None,
            "created_at": template.created_at,
            "updated_at": template.updated_at,
            "timezone": template.timezone,
            "reminder_time": template.reminder_time,
            "paused": False,
            "unreachable": False,
            "next_checkin_at": template.next_checkin_at,
            "next_nudge_at": None,
            "profile": template.profile,
            "conversation": template.conversation,
            "version": 1,
        }
        for uid in ids
    ]
    async with db.transaction() as repo:
        await repo.session.execute(insert(User), rows)
    return ids


# --- one measured variant ------------------------------------------------------------------


@dataclass
class VariantResult:
    db: str
    variant: str
    runners: int
    events: int
    rates: list[float]  # events/s per measured day
    cpu_rates: list[float]  # events per CPU second per measured day
    latencies: list[float]
    statements: int = 0  # SQL statements sent in the measured days (COMMITs not counted)
    cpu: float = 0.0  # CPU seconds of this process over the measured days
    run: int = 0

    @property
    def ev_per_cpu_s(self) -> float:
        return self.events / self.cpu if self.cpu > 0 else float("nan")

    @property
    def p99_ms(self) -> float:
        return summarize_ms(self.latencies)["p99"]

    def row(self) -> list[object]:
        lat = summarize_ms(self.latencies)
        return [
            self.db,
            self.variant,
            self.runners,
            self.events,
            f"{median(self.rates):.0f}",
            f"{min(self.rates):.0f}-{max(self.rates):.0f}",
            f"{median(self.cpu_rates):.0f}",
            fmt_ms(lat["p50"]),
            fmt_ms(lat["p90"]),
            fmt_ms(lat["p99"]),
            fmt_ms(lat["max"]),
            f"{self.statements / max(self.events, 1):.1f}",
        ]


async def run_variant(
    url: str, kind: str, *, runners: int, days: int, concurrency: int
) -> VariantResult:
    clock = SimClock()
    db = Database(url)
    try:
        coach = Coach(db, clock=clock)
        _, template = await onboard_template(coach)
        ids = await copy_runners(db, template, runners, "r")
        latencies: list[float] = []
        people = [Runner(coach, uid, latencies) for uid in ids]

        async def day(group: list[Runner]) -> None:
            if concurrency <= 1:
                for person in group:
                    await person.daily()
                return
            gate = asyncio.Semaphore(concurrency)

            async def one(person: Runner) -> None:
                async with gate:
                    await person.daily()

            await asyncio.gather(*(one(p) for p in group))

        # Warm-up day (not measured): compiles statements, fills caches and pools.
        clock.now = START
        await day(people[: max(1, min(len(people), 20))])
        latencies.clear()

        rates: list[float] = []
        cpu_rates: list[float] = []
        total = 0
        statements = 0
        cpu = 0.0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        for d in range(1, days + 1):
            clock.now = START + timedelta(days=d)
            before = len(latencies)
            with Timer() as t:
                await day(people)
            n = len(latencies) - before
            total += n
            rates.append(n / t.seconds)
            cpu += t.cpu
            cpu_rates.append(n / t.cpu if t.cpu > 0 else float("nan"))
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        variant = "sequential" if concurrency <= 1 else f"concurrent x{concurrency}"
        return VariantResult(
            kind, variant, runners, total, rates, cpu_rates, latencies, statements, cpu
        )
    finally:
        await db.dispose()


async def fresh_db(kind: str) -> Any:
    return scratch_sqlite("bench_engine") if kind == "sqlite" else scratch_pg("bench_engine")


async def main_async(args: argparse.Namespace) -> list[VariantResult]:
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: list[VariantResult] = []
    for run in range(1, args.runs + 1):
        for kind in kinds:
            for conc in (1, args.concurrency):
                async with await fresh_db(kind) as url:
                    result = await run_variant(
                        url, kind, runners=args.runners, days=args.days, concurrency=conc
                    )
                result.run = run
                results.append(result)
                print(
                    f"  run {run}: {kind} {result.variant}: {median(result.rates):.0f} ev/s, "
                    f"{result.ev_per_cpu_s:.0f} ev/cpu-s, p99 {result.p99_ms:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    return results


async def driver_floor(kind: str, n: int = 2000) -> float:
    """Median seconds of one trivial statement through SQLAlchemy's async engine."""
    async with await fresh_db(kind) as url:
        db = Database(url)
        try:
            # Through an AsyncSession, as the app's statements go: AsyncConnection.execute
            # insists on a real await, which the inline SQLite driver never makes.
            async with AsyncSession(db.engine) as session:
                for _ in range(100):
                    await session.execute(text("SELECT 1"))
                times = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    await session.execute(text("SELECT 1"))
                    times.append(time.perf_counter() - t0)
                await session.rollback()
        finally:
            await db.dispose()
    return median(times)


def report(
    results: list[VariantResult],
    args: argparse.Namespace,
    pinned: int | None,
    floor: dict[str, float] | None = None,
) -> None:
    print()
    print("Bench 1 — engine throughput (Coach.handle, real database, no platform)")
    print(f"machine: {machine_note()}")
    print(
        f"client pinned to CPU {pinned}" if pinned is not None else "client not pinned",
        f"| runs {args.runs} | runners {args.runners} | measured days {args.days} (+1 warm-up)"
        f" | {EVENTS_PER_DAY} events per runner-day (+3 on the weekly full-screen day)",
    )
    print()
    groups: dict[tuple[str, str], list[VariantResult]] = {}
    for r in results:
        groups.setdefault((r.db, r.variant), []).append(r)
    rows = []
    for (db, variant), runs in groups.items():
        lats = [summarize_ms(r.latencies) for r in runs]
        rows.append(
            [
                db,
                variant,
                runs[0].events,
                f"{median(median(r.rates) for r in runs):.0f}",
                f"{median(r.ev_per_cpu_s for r in runs):.0f}",
                " / ".join(f"{r.ev_per_cpu_s:.0f}" for r in runs),
                f"{median(1000 / r.ev_per_cpu_s for r in runs):.2f}",
                fmt_ms(median(x["p50"] for x in lats)),
                fmt_ms(median(x["p90"] for x in lats)),
                fmt_ms(median(x["p99"] for x in lats)),
                " / ".join(fmt_ms(x["p99"]) for x in lats),
                fmt_ms(median(x["max"] for x in lats)),
                f"{median(r.statements / max(r.events, 1) for r in runs):.1f}",
            ]
        )
    print_table(
        [
            "db",
            "variant",
            "events/run",
            "ev/s",
            "ev/cpu-s",
            "ev/cpu-s per run",
            "CPU ms/event",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99 per run",
            "max ms",
            "SQL/event",
        ],
        rows,
    )
    print("(medians of the runs; ev/s is wall clock, ev/cpu-s is events per CPU second)")
    if floor:
        print()
        for kind, seconds in floor.items():
            print(
                f"driver floor {kind}: one `SELECT 1` through the async engine = "
                f"{seconds * 1e6:.0f} us (SQL/event x this = the I/O part of a turn)"
            )
    targets: list[Target] = []
    sequential = groups.get(("sqlite", "sequential"))
    if sequential:
        per_cpu = median(r.ev_per_cpu_s for r in sequential)
        p99 = median(r.p99_ms for r in sequential)
        targets += [
            Target(
                "engine sqlite events per CPU-second (sequential)",
                f"{per_cpu:.0f} ev/cpu-s = {1000 / per_cpu:.2f} ms CPU/event",
                ">= 1000 ev/cpu-s (<= 1 ms)",
                per_cpu >= 1000,
            ),
            Target(
                "engine sqlite p99 (sequential)",
                f"{p99:.2f} ms",
                "<= 10 ms",
                p99 <= 10,
            ),
        ]
    pg = groups.get(("postgresql", "sequential"))
    if pg:
        print(
            f"postgresql beside them (not judged): sequential "
            f"{median(r.ev_per_cpu_s for r in pg):.0f} ev/cpu-s, "
            f"p99 {median(r.p99_ms for r in pg):.2f} ms"
        )
    print_targets(targets)


def profile(args: argparse.Namespace, path: str) -> None:
    import cProfile
    import pstats

    async def go() -> None:
        async with scratch_sqlite("bench_engine") as url:
            await run_variant(url, "sqlite", runners=args.runners, days=args.days, concurrency=1)

    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(go())
    profiler.disable()
    profiler.dump_stats(path)
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(45)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.engine_throughput", description=__doc__.split("\n")[0])
    add_runs_argument(p)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--runners", type=int, default=150, help="simulated runners (default 150)")
    p.add_argument("--days", type=int, default=3, help="measured days = rounds (default 3)")
    p.add_argument(
        "--concurrency", type=int, default=50, help="runners at once in the concurrent variant"
    )
    p.add_argument("--quick", action="store_true", help="small smoke run: 1 run (~30 s)")
    p.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    p.add_argument("--profile", metavar="FILE", help="cProfile the sequential SQLite variant")
    args = p.parse_args(argv)
    if args.quick:
        args.runners, args.days, args.concurrency, args.runs = 20, 2, 10, 1
    return args


def main(argv: list[str] | None = None, *, announce: Callable[[str], None] = print) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    pinned = None if args.no_pin else pin_to_one_core()
    gc_tuning.tune()  # as `hipcoach` does in each of its processes
    if args.profile:
        profile(args, args.profile)
        return 0
    results = asyncio.run(main_async(args))
    kinds = sorted({r.db for r in results})
    floor = {kind: asyncio.run(driver_floor(kind)) for kind in kinds}
    report(results, args, pinned, floor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
