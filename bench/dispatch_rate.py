"""Benchmark 4: outbox dispatch against Telegram's flood limits.

Due reminders are written to the outbox, then drained by the real `Scheduler` (APScheduler
driving `dispatch()` on the real clock) with the real `TelegramAdapter` as the sender,
against a fake Bot API in its own process that enforces the limits
(bench/fake_telegram_limits.py: 30 msg/s overall, 1 msg/s per chat, 20 msg/min per group,
answering 429 with retry_after and counting violations).

Two scenarios, one after the other, each on a fresh outbox:

- private: N reminders, one per private chat. Figure: achieved rate between the first and
  the last delivery as a fraction of 30 msg/s (target >= 0.95).
- groups: G warm-up cards spread evenly over K groups (default 200 over 5: 40 cards a
  group, so each group goes past the 20-in-any-minute window; about 2 minutes at 20/min).
  Figure: per-group rate (cards after the first, over the time from the first card to the
  last) as a fraction of 20/min, median over groups.

For both: violations (429s the fake had to give, by kind: overall ~30/s, per chat 1/s,
per group 20/min; target 0), lost (rows not delivered; target 0), duplicates (a message
delivered twice; target 0), the outbox's final states, and the dispatcher's CPU per
message sent (this process's CPU / messages; the fake runs in its own process).

Every Bot API call takes `--rtt-ms` (default 30 ms) of round trip at the fake, as real calls
do. `--busy` keeps the other CPUs loaded with separate spinning processes while it runs
(bench/_common.BusyLoad), the way a shared machine is. Each scenario runs `--runs` times
(default 3) on a fresh outbox and fresh chats; the targets are judged on the medians of
the rates, and violations, losses and duplicates must be 0 in every run.

    .venv/bin/python -m bench.dispatch_rate [--runs 3] [--busy] [--reminders 10000]
        [--groups 200] [--group-chats 5] [--rtt-ms 30] [--db sqlite|postgresql]
        [--only private|groups] [--quick]

One run takes about 6 minutes (10,000 / 30 per second) plus 2 minutes for the groups.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import time
import urllib.request
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench._common import (
    BusyLoad,
    Target,
    add_runs_argument,
    cpu_seconds,
    die_with_parent,
    machine_note,
    median,
    print_targets,
    scratch_pg,
    scratch_sqlite,
)
from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.engine.events import Button, Outbound
from bot.payload import encode
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.models import OutboxMessage
from scheduler import Scheduler, SchedulerConfig
from tests.fake_telegram import TOKEN

OVERALL_LIMIT = 30.0  # msg/s
GROUP_LIMIT = 20.0  # msg/min per group
PRIVATE_BASE = 500_000_000
GROUP_BASE = -1_009_000_000
ROOT = Path(__file__).resolve().parent.parent
PAIN = tuple(Button(str(n), f"9:{n}") for n in range(11))


@contextlib.asynccontextmanager
async def scratch(db_kind: str) -> AsyncIterator[str]:
    if db_kind == "postgresql":
        async with scratch_pg("bench_dispatch") as url:
            yield url
    else:
        async with scratch_sqlite("bench_dispatch") as url:
            yield url


@contextlib.asynccontextmanager
async def fake_server(rtt_ms: float) -> AsyncIterator[str]:
    """The limit-enforcing fake in a child process; yields its Bot API base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.fake_telegram_limits",
        "--rtt-ms",
        str(rtt_ms),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=die_with_parent,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
            if process.returncode is None:
                process.kill()
                await process.wait()


def _control(base: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(
        base + path, method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


async def control(base: str, path: str, method: str = "GET") -> Any:
    return await asyncio.to_thread(_control, base, path, method)


async def queue_messages(db: Database, targets: list[tuple[str, str]], kind: str) -> None:
    """One outbox row per (chat id, text), due now."""
    now = datetime.now(UTC)
    for start in range(0, len(targets), 500):
        async with db.transaction() as repo:
            for n, (chat_id, text) in enumerate(targets[start : start + 500], start):
                buttons = (PAIN[:6], PAIN[6:]) if kind == "checkin" else ()
                await outbox.add_message(
                    repo,
                    idempotency_key=f"bench:{kind}:{n}",
                    platform="telegram",
                    chat_id=chat_id,
                    kind=kind,
                    payload=encode(Outbound(chat_id=chat_id, text=text, buttons=buttons)),
                    not_before=now,
                )


async def outbox_states(db: Database) -> Counter[str]:
    """Rows per status: one small GROUP BY, so watching does not disturb the dispatcher
    (loading every row each second stalled the event loop for ~0.1 s)."""
    async with db.transaction(readonly=True) as repo:
        result = await repo.session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return Counter({status: count for status, count in result.all()})


@dataclass
class Outcome:
    name: str
    queued: int
    accepted: int
    seconds: float  # first delivery -> last delivery
    wall: float  # dispatcher start -> all rows settled
    violations: dict[str, int]
    lost: int
    duplicates: int
    states: Counter[str]
    rate: float
    limit: float
    unit: str
    cpu: float = float("nan")  # dispatcher CPU seconds
    extra: str = ""

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.accepted if self.accepted else float("nan")

    @property
    def clean(self) -> bool:
        return not sum(self.violations.values()) and self.lost == 0 and self.duplicates == 0

    @property
    def fraction(self) -> float:
        return self.rate / self.limit


async def run_scenario(
    name: str,
    db_kind: str,
    fake: str,
    targets: list[tuple[str, str]],
    kind: str,
    config: SchedulerConfig,
    timeout: float,
) -> Outcome:
    await control(fake, "/_reset", "POST")
    async with scratch(db_kind) as url:
        db = Database(url)
        try:
            await queue_messages(db, targets, kind)
            settings = Settings(
                database_url=url, telegram_bot_token=TOKEN, telegram_api_url=fake + "/bot"
            )
            coach = Coach(db)
            adapter = TelegramAdapter(settings, coach)
            await adapter.start_sender()
            sched = Scheduler(db, coach, {"telegram": adapter}, config=config)
            started = time.perf_counter()
            cpu0 = cpu_seconds()
            await sched.start()
            try:
                deadline = started + timeout
                last_report = started
                while time.perf_counter() < deadline:
                    await asyncio.sleep(2.0)
                    states = await outbox_states(db)
                    if states.get("pending", 0) + states.get("sending", 0) == 0:
                        break
                    if time.perf_counter() - last_report > 30:
                        last_report = time.perf_counter()
                        print(
                            f"  {name}: {dict(states)} after {last_report - started:.0f}s",
                            file=sys.stderr,
                        )
                wall = time.perf_counter() - started
                cpu = cpu_seconds() - cpu0
            finally:
                await sched.shutdown()
                await adapter.stop()
            states = await outbox_states(db)
        finally:
            await db.dispose()
    stats = await control(fake, "/_stats?detail=1")
    if os.environ.get("BENCH_DUMP"):
        Path(os.environ["BENCH_DUMP"]).write_text(json.dumps(stats))
    delivered = Counter((str(chat), text) for chat, text in stats["delivered"])
    lost = sum(1 for t in targets if t not in delivered)
    span = (stats["last"] - stats["first"]) if stats["accepted"] > 1 else float("nan")
    if kind == "warmup":
        fractions = []
        for times in stats["group_times"].values():
            if len(times) > 1:
                per_minute = (len(times) - 1) / (times[-1] - times[0]) * 60
                fractions.append(per_minute)
        rate = statistics.median(fractions) if fractions else float("nan")
        extra = (
            f"groups={len(stats['group_times'])} per-group rate min/median/max = "
            f"{min(fractions):.2f}/{rate:.2f}/{max(fractions):.2f} msg/min; "
            f"most in any 60s window for one group: {stats['max_group_in_60s']}"
            if fractions
            else ""
        )
        limit, unit = GROUP_LIMIT, "msg/min per group"
    else:
        rate = (stats["accepted"] - 1) / span if stats["accepted"] > 1 else float("nan")
        extra = f"most in any 1s window: {stats['max_in_1s']}"
        if stats.get("min_span_31") is not None:
            extra += f"; shortest span of 31 consecutive messages: {stats['min_span_31']:.3f}s"
        limit, unit = OVERALL_LIMIT, "msg/s"
    return Outcome(
        name=name,
        queued=len(targets),
        accepted=stats["accepted"],
        seconds=span,
        wall=wall,
        violations=stats["violations"],
        lost=lost,
        duplicates=stats["duplicates"],
        states=states,
        rate=rate,
        limit=limit,
        unit=unit,
        cpu=cpu,
        extra=extra,
    )


def report(outcome: Outcome) -> None:
    print(f"## {outcome.name}")
    print(
        f"queued={outcome.queued} delivered={outcome.accepted} "
        f"first->last={outcome.seconds:.1f}s wall={outcome.wall:.1f}s"
    )
    print(
        f"rate={outcome.rate:.2f} {outcome.unit} = {outcome.fraction:.3f} of the limit "
        f"({outcome.limit:g} {outcome.unit}); dispatcher CPU {outcome.cpu_ms:.2f} ms/message"
    )
    violations = sum(outcome.violations.values())
    print(
        f"violations={violations} {outcome.violations or ''} lost={outcome.lost} "
        f"duplicates={outcome.duplicates} outbox={dict(outcome.states)}"
    )
    if outcome.extra:
        print(outcome.extra)


def judge(name: str, runs: list[Outcome], mode: str) -> list[Target]:
    fractions = [o.fraction for o in runs]
    frac = median(fractions)
    violations = [sum(o.violations.values()) for o in runs]
    kinds: Counter[str] = Counter()
    for o in runs:
        kinds.update(o.violations)
    lost = sum(o.lost for o in runs)
    dupes = sum(o.duplicates for o in runs)
    each = ", ".join(f"{f:.3f}" for f in fractions)
    return [
        Target(
            f"dispatch {name} rate ({mode})",
            f"{frac:.3f} of the limit (runs {each})",
            ">= 0.95",
            frac >= 0.95,
        ),
        Target(
            f"dispatch {name} violations ({mode})",
            f"{sum(violations)} in {len(runs)} runs {dict(kinds) or ''}".rstrip(),
            "0",
            sum(violations) == 0,
        ),
        Target(
            f"dispatch {name} lost and duplicates ({mode})",
            f"{lost} lost, {dupes} duplicates",
            "0 and 0",
            lost == 0 and dupes == 0,
        ),
    ]


async def main_async(args: argparse.Namespace) -> int:
    config = SchedulerConfig(tick_seconds=3600.0, dispatch_seconds=args.dispatch_seconds)
    mode = "busy" if args.busy else "quiet"
    print(f"# bench 4 — dispatch against Telegram limits ({args.db}, {mode}); {machine_note()}")
    print(
        f"dispatcher: every {config.dispatch_seconds}s, one row claimed per send, "
        f"{config.concurrency} in flight, max wait {config.max_wait}s; round trip "
        f"{args.rtt_ms:g} ms; runs {args.runs}"
    )
    private: list[Outcome] = []
    groups: list[Outcome] = []
    with contextlib.ExitStack() as stack:
        busy = stack.enter_context(BusyLoad()) if args.busy else None
        if busy is not None:
            print(f"busy: {busy.processes} spinning process(es) beside the dispatcher")
        async with fake_server(args.rtt_ms) as fake:
            for run in range(args.runs):
                if args.only in (None, "private"):
                    base = PRIVATE_BASE + run * 1_000_000
                    targets = [
                        (str(base + i), f"Time for your daily hip check-in (#{i})")
                        for i in range(args.reminders)
                    ]
                    timeout = args.reminders / OVERALL_LIMIT * 3 + 120
                    private.append(
                        await run_scenario(
                            f"run {run + 1}: private reminders",
                            args.db,
                            fake,
                            targets,
                            "checkin",
                            config,
                            timeout,
                        )
                    )
                    report(private[-1])
                if args.only in (None, "groups"):
                    chats = [str(GROUP_BASE - run * 1000 - g) for g in range(args.group_chats)]
                    targets = [
                        (chats[n % len(chats)], f"Warm-up before the club run (card #{n})")
                        for n in range(args.groups)
                    ]
                    per_group = -(-args.groups // len(chats))
                    timeout = per_group * 60 / GROUP_LIMIT * 3 + 120
                    groups.append(
                        await run_scenario(
                            f"run {run + 1}: group warm-ups ({args.groups} cards over "
                            f"{len(chats)} groups)",
                            args.db,
                            fake,
                            targets,
                            "warmup",
                            config,
                            timeout,
                        )
                    )
                    report(groups[-1])
        if busy is not None:
            print(f"busy processes used {busy.cpu_seconds():.0f} CPU-s")
    print(f"\nmachine at the end: {machine_note()}")
    targets_all: list[Target] = []
    if private:
        cpu = median(o.cpu_ms for o in private)
        print(f"private: dispatcher CPU {cpu:.2f} ms per message (median of runs)")
        targets_all += judge("private", private, mode)
    if groups:
        targets_all += judge("groups", groups, mode)
    print_targets(targets_all)
    return 0 if all(t.met for t in targets_all) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_runs_argument(parser)
    parser.add_argument("--busy", action="store_true", help="keep the other CPUs loaded")
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=200, help="warm-up cards")
    parser.add_argument("--group-chats", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=30.0, help="round trip per API call")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--only", choices=("private", "groups"))
    parser.add_argument("--dispatch-seconds", type=float, default=2.0)
    parser.add_argument(
        "--quick", action="store_true", help="1 run, 600 reminders, 60 cards over 2 groups"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 1
        args.reminders = min(args.reminders, 600)
        args.groups = min(args.groups, 60)
        args.group_chats = min(args.group_chats, 2)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: max instances"
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
