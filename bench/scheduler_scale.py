"""Bench 3 — the scheduler at scale, against one APScheduler job per user.

    .venv/bin/python -m bench.scheduler_scale [--sizes 100000,1000000] [--db postgresql|sqlite]
                                              [--perjob-cap N] [--quick]

For each size N, on a fresh scratch database:

1. bulk-insert N onboarded users (COPY on PostgreSQL, executemany on SQLite): a realistic
   profile JSON, timezones from a mix of zones, reminder times spread over the day (every
   minute), `next_checkin_at` computed with the project's own DST-safe function; ~2 % paused,
   ~1 % unreachable;
2. the claim query (`outbox.claim_due_checkins`, batch 50) for the users due in one minute:
   its EXPLAIN (ANALYZE) plan and its time alone (median of 7, rolled back);
3. `Scheduler.tick(now)` for five successive minutes (each claims that minute's users, runs
   their reminder turn and writes the outbox): median time and users per tick;
4. RSS of a real `python -m bot.cli clock` process (no platform configured; tick every 2 s)
   on that database, sampled from /proc/<pid>/status while it ticks;
5. the common alternative side by side: APScheduler 3 with a SQLAlchemyJobStore on the same
   kind of database, one CronTrigger job per user in the user's timezone: time to add jobs
   (add_job, measured on a sample and extrapolated to N), start-up with N persisted jobs,
   RSS of a process holding that scheduler (it imports the same app), and the time to
   reschedule one user — each printed next to ours, with the ratio.

The per-job store is capped at --perjob-cap jobs (default 1,000,000); a capped size says so.
`--quick` runs N=2,000 (and a 300-job sample) as a smoke test in about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from bench._common import (
    Timer,
    machine_note,
    median,
    print_table,
    rss_mb,
    scratch_pg,
    scratch_sqlite,
)
from bot.engine.flows.account import next_checkin_at
from bot.service import Coach
from bot.storage import outbox
from bot.storage.db import Database
from bot.storage.repository import Repository
from scheduler import Scheduler, SchedulerConfig

ROOT = Path(__file__).resolve().parent.parent

ZONES = [
    "Europe/Berlin", "Europe/London", "Europe/Madrid", "Europe/Helsinki", "Europe/Moscow",
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Sao_Paulo", "America/Mexico_City", "America/Toronto", "Asia/Tokyo",
    "Asia/Kolkata", "Asia/Shanghai", "Asia/Singapore", "Asia/Dubai", "Australia/Sydney",
    "Australia/Adelaide", "Pacific/Auckland", "Africa/Johannesburg", "Africa/Lagos",
    "Asia/Kathmandu", "America/St_Johns",
]  # fmt: skip
COUNTRY = {"Europe/Berlin": "DE", "Europe/London": "GB", "America/New_York": "US"}

PROFILE = {
    "consented_at": "2026-11-01T07:00:00Z", "adult": True, "onboarded": True,
    "presentation": "outside", "running": "easy", "phase": 1, "level": 1,
    "phase_started_on": "2026-11-01", "level_started_on": "2026-11-01",
    "timezone": None, "country": None, "reminder_time": None, "nudges": True,
    "paused": False, "escalation": None, "escalated_on": None, "review": None,
    "review_reason": None, "baseline": None, "last_full_screen_on": "2026-11-20",
    "cross_train_until": None, "last_physio_nudge_on": None,
}  # fmt: skip
CONVERSATION = {
    "flow": None, "qid": None, "turn": 40, "text": "", "options": [], "columns": 3,
    "free": None, "data": {},
}  # fmt: skip


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- data ------------------------------------------------------------------------------------


@dataclass
class Population:
    base: datetime
    schedules: list[tuple[str, str]]  # (reminder_time, timezone) per user id (1-based)
    _next: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def next_at(self, rt: str, tz: str) -> datetime:
        key = (rt, tz)
        if key not in self._next:
            self._next[key] = next_checkin_at(rt, tz, self.base)
        return self._next[key]


def make_population(n: int, base: datetime, seed: int = 6) -> Population:
    rnd = random.Random(seed)
    schedules = []
    for _ in range(n):
        minute = rnd.randrange(24 * 60)
        schedules.append((f"{minute // 60:02d}:{minute % 60:02d}", rnd.choice(ZONES)))
    return Population(base, schedules)


def user_rows(pop: Population) -> Any:
    """Tuples in USER_COLUMNS order (aware datetimes, JSON as text)."""
    rnd = random.Random(7)
    created = pop.base - timedelta(days=30)
    for uid, (rt, tz) in enumerate(pop.schedules, start=1):
        paused = rnd.random() < 0.02
        unreachable = rnd.random() < 0.01
        profile = {**PROFILE, "timezone": tz, "reminder_time": rt, "paused": paused}
        profile["country"] = COUNTRY.get(tz)
        yield (
            uid, "telegram", str(10_000_000 + uid), str(10_000_000 + uid), None, created, created,
            tz, rt, paused, unreachable, None if paused else pop.next_at(rt, tz), None,
            json.dumps(profile), json.dumps(CONVERSATION), 1,
        )  # fmt: skip


USER_COLUMNS = [
    "id", "platform", "platform_user_id", "chat_id", "display_name", "created_at",
    "updated_at", "timezone", "reminder_time", "paused", "unreachable", "next_checkin_at",
    "next_nudge_at", "profile", "conversation", "version",
]  # fmt: skip


def _pg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(url).database)


async def bulk_insert_users(url: str, pop: Population) -> float:
    with Timer() as t:
        if url.startswith("postgresql"):
            import asyncpg

            conn = await asyncpg.connect(_pg_dsn(url))
            try:
                await conn.copy_records_to_table(
                    "users", records=user_rows(pop), columns=USER_COLUMNS
                )
                await conn.execute(
                    "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users"
                )
                await conn.execute("VACUUM ANALYZE users")
            finally:
                await conn.close()
        else:
            import sqlite3

            def fmt(v: Any) -> Any:
                if isinstance(v, datetime):  # SQLAlchemy's SQLite format, naive UTC
                    return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                if isinstance(v, bool):
                    return int(v)
                return v

            con = sqlite3.connect(_sqlite_path(url))
            try:
                marks = ", ".join("?" for _ in USER_COLUMNS)
                con.executemany(
                    f"INSERT INTO users ({', '.join(USER_COLUMNS)}) VALUES ({marks})",
                    (tuple(fmt(v) for v in row) for row in user_rows(pop)),
                )
                con.commit()
                con.execute("ANALYZE")
                con.commit()
            finally:
                con.close()
    return t.seconds


# --- ours: claim query, tick, reschedule --------------------------------------------------


async def explain_claim(db: Database, now: datetime) -> tuple[list[str], float]:
    """The claim query's plan (run on its real SQL and parameters) and its median time."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM users" in statement and "next_checkin_at" in statement:
            captured.append((statement, params))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    times = []
    try:
        for _ in range(7):
            async with db._sessions() as session:
                t0 = time.perf_counter()
                await outbox.claim_due_checkins(Repository(session), now, 50)
                times.append(time.perf_counter() - t0)
                await session.rollback()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    statement, params = captured[-1]
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if not db.is_sqlite else "EXPLAIN QUERY PLAN "
    async with db.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + statement, params)).all()
        await conn.rollback()
    plan = [str(r[0]) if not db.is_sqlite else str(r[-1]) for r in rows]
    return plan, median(times)


class NullSender:
    async def send(self, message: Any) -> None:  # the tick never sends
        raise AssertionError("tick does not send")


async def measure_ticks(db: Database, base: datetime, minutes: int = 5) -> dict[str, Any]:
    coach = Coach(db, clock=lambda: base)
    config = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600)
    sched = Scheduler(db, coach, {"telegram": NullSender()}, config=config)  # type: ignore[dict-item]
    times, counts = [], []
    await sched.tick(base)  # warm-up: anything due exactly at base, statement caches
    for m in range(1, minutes + 1):
        with Timer() as t:
            queued = await sched.tick(base + timedelta(minutes=m))
        times.append(t.seconds)
        counts.append(queued)
    with Timer() as idle:
        await sched.tick(base + timedelta(minutes=minutes))  # nothing left: queries only
    return {
        "tick_s": median(times),
        "tick_users": median(counts),
        "idle_tick_s": idle.seconds,
        "per_user_ms": 1000 * sum(times) / max(sum(counts), 1),
    }


async def measure_reschedule_ours(db: Database, pop: Population, n: int = 200) -> float:
    """Change one user's reminder time the way the settings flow stores it (load the row
    locked, set the time, compute next_checkin_at, save): median seconds."""
    rnd = random.Random(9)
    times = []
    now = datetime.now(UTC)
    for _ in range(n):
        uid = rnd.randrange(1, len(pop.schedules) + 1)
        rt = f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}"
        t0 = time.perf_counter()
        async with db.transaction() as repo:
            user = await repo.get_user_by_id(uid)
            assert user is not None
            user.reminder_time = rt
            user.profile = {**user.profile, "reminder_time": rt}
            user.next_checkin_at = next_checkin_at(rt, user.timezone or "UTC", now)
            await repo.save_user(user)
        times.append(time.perf_counter() - t0)
    return median(times)


async def skip_backlog(url: str, until: datetime) -> int:
    """Move check-ins that fell due while we were busy to the next day, so the clock
    process sees one minute's worth per minute (steady state), not a catch-up."""
    db = Database(url)
    try:
        async with db.transaction() as repo:
            if db.is_sqlite:
                stmt = text(
                    "UPDATE users SET next_checkin_at = "
                    "strftime('%Y-%m-%d %H:%M:%f000', next_checkin_at, '+1 day') "
                    "WHERE next_checkin_at <= :until"
                )
                until_v: Any = until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            else:
                stmt = text(
                    "UPDATE users SET next_checkin_at = next_checkin_at + interval '1 day' "
                    "WHERE next_checkin_at <= :until"
                )
                until_v = until
            result = await repo.session.execute(stmt, {"until": until_v})
            return int(result.rowcount)  # type: ignore[attr-defined]
    finally:
        await db.dispose()


# --- RSS of a process --------------------------------------------------------------------


def sample_rss(
    argv: list[str], env: dict[str, str], seconds: float, ready: Callable[[], bool] | None = None
) -> dict[str, float]:
    """Start a process, sample its VmRSS every 0.25 s for `seconds`, stop it (SIGTERM).

    Reminder times are whole minutes, so work falls due at minute boundaries: start at
    second ~50 so the window spans one, with ticks after it."""
    time.sleep((50 - datetime.now(UTC).second) % 60)
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    samples: list[float] = []
    try:
        deadline = started + seconds
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"{argv} exited early ({proc.returncode}): {err[-2000:]}")
            with contextlib.suppress(FileNotFoundError, RuntimeError):
                samples.append(rss_mb(proc.pid))
            time.sleep(0.25)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    tail = samples[len(samples) // 2 :] or samples
    if os.environ.get("BENCH_DEBUG"):
        print(err[-3000:], file=sys.stderr)
    return {
        "peak": max(samples),
        "steady": median(tail),
        "ticks_logged": float(err.count("tick queued=")),
    }


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "SLACK_", "DATABASE_URL", "HIPCOACH_"))
    }
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --- the alternative: one APScheduler job per user ----------------------------------------


def perjob_fire(user_id: int) -> None:  # the job's function (never meant to do work here)
    return None


def sync_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def _cron(rt: str, tz: str) -> Any:
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    hh, mm = rt.split(":")
    return CronTrigger(hour=int(hh), minute=int(mm), timezone=ZoneInfo(tz))


def _perjob_scheduler(store_url: str) -> Any:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=store_url)},
        job_defaults={"coalesce": True, "misfire_grace_time": 3600},
        timezone=UTC,
    )


def perjob_add_sample(store_url: str, pop: Population, k: int) -> tuple[float, dict[str, Any]]:
    """add_job for the first k users on a started (paused) scheduler: seconds per job, and
    one job's pickled state as the template for the bulk load."""
    sched = _perjob_scheduler(store_url)
    sched.start(paused=True)
    try:
        t0 = time.perf_counter()
        for uid in range(1, k + 1):
            rt, tz = pop.schedules[uid - 1]
            sched.add_job(
                "bench.scheduler_scale:perjob_fire",
                _cron(rt, tz),
                args=(uid,),
                id=f"checkin-{uid}",
                replace_existing=True,
            )
        per_job = (time.perf_counter() - t0) / k
        template = sched.get_job("checkin-1").__getstate__()
    finally:
        sched.shutdown(wait=False)
    return per_job, template


def perjob_bulk_load(store_url: str, pop: Population, n: int, template: dict[str, Any]) -> float:
    """Persist jobs k+1..n straight into the job store's table (what n add_job calls would
    have left behind), to measure a scheduler that starts with n jobs."""
    from sqlalchemy import create_engine

    engine = create_engine(store_url)
    triggers: dict[tuple[str, str], Any] = {}
    with Timer() as t:
        table_rows = []
        with engine.begin() as conn:
            existing = conn.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar_one()
            for uid in range(existing + 1, n + 1):
                rt, tz = pop.schedules[uid - 1]
                trig = triggers.get((rt, tz)) or triggers.setdefault((rt, tz), _cron(rt, tz))
                nxt = pop.next_at(rt, tz)
                state = {
                    **template,
                    "id": f"checkin-{uid}",
                    "args": (uid,),
                    "trigger": trig,
                    "next_run_time": nxt,
                }
                table_rows.append(
                    {
                        "id": state["id"],
                        "next_run_time": nxt.timestamp(),
                        "job_state": pickle.dumps(state, pickle.HIGHEST_PROTOCOL),
                    }
                )
                if len(table_rows) >= 20_000:
                    conn.execute(
                        text(
                            "INSERT INTO apscheduler_jobs (id, next_run_time, job_state) "
                            "VALUES (:id, :next_run_time, :job_state)"
                        ),
                        table_rows,
                    )
                    table_rows.clear()
            if table_rows:
                conn.execute(
                    text(
                        "INSERT INTO apscheduler_jobs (id, next_run_time, job_state) "
                        "VALUES (:id, :next_run_time, :job_state)"
                    ),
                    table_rows,
                )
    engine.dispose()
    return t.seconds


def perjob_reschedule(store_url: str, pop: Population, n_jobs: int, k: int = 200) -> float:
    sched = _perjob_scheduler(store_url)
    sched.start(paused=True)
    rnd = random.Random(9)
    times = []
    try:
        for _ in range(k):
            uid = rnd.randrange(1, n_jobs + 1)
            tz = pop.schedules[uid - 1][1]
            rt = f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}"
            t0 = time.perf_counter()
            sched.reschedule_job(f"checkin-{uid}", trigger=_cron(rt, tz))
            times.append(time.perf_counter() - t0)
    finally:
        sched.shutdown(wait=False)
    return median(times)


def perjob_child(store_url: str, app_url: str) -> None:
    """The per-job process whose RSS is sampled: the same app (Coach, database) plus an
    AsyncIOScheduler on the SQLAlchemyJobStore holding one job per user."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    async def run() -> None:
        db = Database(app_url)
        Coach(db)
        sched = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=store_url)},
            job_defaults={"coalesce": True, "misfire_grace_time": 3600},
            timezone=UTC,
        )
        t0 = time.perf_counter()
        sched.start()
        print(f"started in {time.perf_counter() - t0:.3f}s", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        sched.shutdown(wait=False)
        await db.dispose()

    asyncio.run(run())


def perjob_startup(store_url: str) -> float:
    """Seconds for a scheduler holding n persisted jobs to start and finish its first pass
    over the store (due jobs and the next wake-up time)."""
    sched = _perjob_scheduler(store_url)
    t0 = time.perf_counter()
    sched.start(paused=True)
    sched._process_jobs()  # what the scheduler thread does first on resume
    elapsed = time.perf_counter() - t0
    sched.shutdown(wait=False)
    return elapsed


# --- one size ----------------------------------------------------------------------------


@dataclass
class SizeResult:
    n: int
    insert_s: float
    plan: list[str]
    claim_ms: float
    tick: dict[str, Any]
    start_ours_s: float
    resched_ours_ms: float
    rss_ours: dict[str, float]
    perjob_n: int = 0
    perjob_add_ms: float = float("nan")
    perjob_start_s: float = float("nan")
    perjob_resched_ms: float = float("nan")
    rss_perjob: dict[str, float] = field(default_factory=dict)
    perjob_load_s: float = float("nan")


@contextlib.asynccontextmanager
async def scratch(kind: str, prefix: str, migrate: bool = True) -> Any:
    maker = scratch_pg if kind == "postgresql" else scratch_sqlite
    async with maker(prefix, migrate=migrate) as url:
        yield url


async def run_size(n: int, args: argparse.Namespace) -> SizeResult:
    # `base` lies in the past so the timed ticks (base + 1..5 min) take users the clock
    # process (real time, later) will not need; those in between are moved by skip_backlog.
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    pop = make_population(n, base)
    async with scratch(args.db, "bench_sched") as url:
        log(f"N={n:,}: inserting users")
        insert_s = await bulk_insert_users(url, pop)
        log(f"N={n:,}: inserted in {insert_s:.1f}s; explain + ticks")
        db = Database(url)
        try:
            plan, claim_s = await explain_claim(db, base + timedelta(minutes=1))
            tick = await measure_ticks(db, base)
            resched = await measure_reschedule_ours(db, pop)
            # Start-up of ours: the three fixed APScheduler jobs plus a first tick at real
            # time (nothing depends on N except the indexed claim).
            skipped = await skip_backlog(url, datetime.now(UTC) + timedelta(seconds=30))
            coach = Coach(db)
            sched = Scheduler(
                db,
                coach,
                {"telegram": NullSender()},  # type: ignore[dict-item]
                config=SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600),
            )
            with Timer() as start:
                await sched.start()
                await sched.tick()
            await sched.shutdown()
        finally:
            await db.dispose()
        log(f"N={n:,}: moved {skipped} backlog users; sampling `hipcoach clock` RSS")
        await skip_backlog(url, datetime.now(UTC) + timedelta(seconds=10))
        rss_ours = sample_rss(
            [sys.executable, "-m", "bot.cli", "clock"],
            clean_env(DATABASE_URL=url, HIPCOACH_TICK_SECONDS="2"),
            args.rss_seconds,
        )
        result = SizeResult(
            n, insert_s, plan, claim_s * 1000, tick, start.seconds, resched * 1000, rss_ours
        )

    m = min(n, args.perjob_cap)
    result.perjob_n = m
    async with scratch(args.db, "bench_apsjobs", migrate=False) as store:
        store_url = sync_url(store)
        k = min(m, args.sample)
        log(f"N={n:,}: per-job store: add_job x{k:,} (sample)")
        per_job, template = perjob_add_sample(store_url, pop, k)
        result.perjob_add_ms = per_job * 1000
        log(f"N={n:,}: per-job store: loading {m:,} persisted jobs")
        result.perjob_load_s = perjob_bulk_load(store_url, pop, m, template)
        result.perjob_start_s = perjob_startup(store_url)
        result.perjob_resched_ms = perjob_reschedule(store_url, pop, m) * 1000
        log(f"N={n:,}: per-job store: sampling RSS")
        async with scratch(args.db, "bench_apsapp") as app_url:
            child = ["-m", "bench.scheduler_scale", "--child-perjob", store_url, app_url]
            result.rss_perjob = sample_rss(
                [sys.executable, *child],
                clean_env(),
                args.rss_seconds,
            )
    return result


# --- report ------------------------------------------------------------------------------


def ratio(ours: float, theirs: float) -> str:
    if not ours or ours != ours or theirs != theirs:
        return "-"
    return f"{theirs / ours:,.1f}x"


def report(results: list[SizeResult], args: argparse.Namespace) -> None:
    print()
    print(f"Bench 3 — scheduler at scale ({args.db})")
    print(f"machine: {machine_note()}")
    print()
    print("Ours: one tick over indexed next_checkin_at (batch 50, one transaction per batch)")
    print_table(
        [
            "users",
            "insert s",
            "claim query ms",
            "tick (1 min due) s",
            "users/tick",
            "ms/user",
            "idle tick ms",
            "clock RSS MB (steady/peak)",
            "clock ticks w/ work",
        ],
        [
            [
                f"{r.n:,}",
                f"{r.insert_s:.1f}",
                f"{r.claim_ms:.2f}",
                f"{r.tick['tick_s']:.3f}",
                f"{r.tick['tick_users']:.0f}",
                f"{r.tick['per_user_ms']:.2f}",
                f"{r.tick['idle_tick_s'] * 1000:.1f}",
                f"{r.rss_ours['steady']:.1f} / {r.rss_ours['peak']:.1f}",
                f"{r.rss_ours['ticks_logged']:.0f}",
            ]
            for r in results
        ],
    )
    for r in results:
        print()
        print(f"claim query plan at {r.n:,} users:")
        for line in r.plan:
            print(f"    {line}")
    print()
    print("Side by side: ours vs one APScheduler job per user (SQLAlchemyJobStore)")
    rows = []
    for r in results:
        capped = f" (capped at {r.perjob_n:,})" if r.perjob_n < r.n else ""
        add_total = r.perjob_add_ms / 1000 * r.n
        rows += [
            [
                f"{r.n:,}{capped}",
                "start-up s",
                f"{r.start_ours_s:.3f}",
                f"{r.perjob_start_s:.3f}",
                ratio(r.start_ours_s, r.perjob_start_s),
            ],
            [
                "",
                "adding N jobs s (add_job rate x N)",
                "0 (none)",
                f"{add_total:,.0f} ({r.perjob_add_ms:.2f} ms/job)",
                "-",
            ],
            [
                "",
                "process RSS MB (steady)",
                f"{r.rss_ours['steady']:.1f}",
                f"{r.rss_perjob.get('steady', float('nan')):.1f}",
                ratio(r.rss_ours["steady"], r.rss_perjob.get("steady", float("nan"))),
            ],
            [
                "",
                "reschedule one user ms",
                f"{r.resched_ours_ms:.2f}",
                f"{r.perjob_resched_ms:.2f}",
                ratio(r.resched_ours_ms, r.perjob_resched_ms),
            ],
        ]
    print_table(["users", "measure", "ours", "per-job", "per-job / ours"], rows)
    print()
    if results:
        small = min(results, key=lambda r: r.n)
        big = max(results, key=lambda r: r.n)
        rss100 = [r for r in results if r.n == 100_000]
        if rss100:
            ok = rss100[0].rss_ours["steady"] <= 150
            print(
                f"target RSS <= 150 MB at 100k: {'MET' if ok else 'MISSED'} "
                f"({rss100[0].rss_ours['steady']:.1f} MB)"
            )
        if big.n > small.n:
            growth = big.rss_ours["steady"] - small.rss_ours["steady"]
            print(
                f"RSS growth {small.n:,} -> {big.n:,} users: {growth:+.1f} MB "
                f"(steady), peak {small.rss_ours['peak']:.1f} -> {big.rss_ours['peak']:.1f} MB"
            )
    print(
        "notes: 'tick' = Scheduler.tick(now) with `now` one minute further each time (median"
        " of 5), including the engine's reminder turn and the outbox insert per user;"
        " per-job add_job time measured on a sample of"
        f" {args.sample:,} and multiplied by N; per-job start-up = start() plus the first"
        " pass over the store."
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.scheduler_scale", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--perjob-cap", type=int, default=1_000_000)
    p.add_argument("--sample", type=int, default=3000, help="add_job calls to time")
    p.add_argument("--rss-seconds", type=float, default=20.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument(
        "--child-perjob", nargs=2, metavar=("STORE_URL", "APP_URL"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.sample, args.rss_seconds = "2000", 300, 20.0
    args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import logging

    # Jobs the paused/stopped per-job schedulers could not submit are expected here.
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
    if args.child_perjob:
        perjob_child(*args.child_perjob)
        return 0
    results = []
    with Timer() as total:
        for n in args.size_list:
            results.append(asyncio.run(run_size(n, args)))
    report(results, args)
    print(f"total bench time {total.seconds:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
