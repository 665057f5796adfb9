"""Bench 3 — the scheduler at scale: the tick at 100k and 1M users, the clock process's
RSS, and real start-up against the per-job designs hobby bots use.

    .venv/bin/python -m bench.scheduler_scale [--runs 3] [--sizes 100000,1000000]
        [--db postgresql,sqlite] [--compare-db postgresql] [--rss-seconds 20]
        [--ptb-cap 100000] [--cold-cap 100000] [--no-compare] [--quick]

Data: N onboarded users (a realistic profile JSON, timezones from a mix of zones, reminder
times spread over every minute of the day, `next_checkin_at` from the project's own
DST-safe function, ~2 % paused, ~1 % unreachable), relative to a fixed instant BASE. A
population is built once per database kind and size with COPY (PostgreSQL) or executemany
(SQLite) and cached: a PostgreSQL template database `bench_tmpl_sched_<N>_<key>` and a
SQLite file in BENCH_CACHE_DIR (default /tmp/hipcoach-bench-cache). The key hashes the
migrations and the generator, so a schema change rebuilds the cache (and says so); stale
caches of the same size are removed. Every run works on a fresh copy (CREATE DATABASE ...
TEMPLATE, or a file copy).

Per run, per database kind, per size:
1. `Scheduler.tick(now)` for five successive minutes after BASE (each claims that minute's
   due users, runs their reminder turn, writes the outbox): median seconds per tick, users
   per tick, this process's CPU per due user (on PostgreSQL the server's CPU is not in it)
   and SQL statements per due user. The first run also prints the plan of the claim query
   (the first statement of a tick that reads due users).
2. The real clock process: `hipcoach clock` (bot.cli) in its own process with the scheduler's
   clock shifted to BASE + 5 min 59 s (so the window holds known work without waiting for
   real minutes) and a Telegram sender that delivers on no network (the clock refuses to
   start without a platform; its dispatcher still claims, paces and marks every reminder),
   HIPCOACH_TICK_SECONDS=2. Its RSS is sampled every
   0.1 s from /proc for `--rss-seconds`; the child reports every tick that queued
   reminders, and a window without one is flagged (the RSS target then counts as missed).
   Its start-up = process spawned -> the first tick that queued reminders has returned.

Side by side (once per size, on `--compare-db`): real start-up = process spawned -> jobs in
place -> the first due job has fired, and the RSS of that process, for
- ours (the clock process above, median of the runs);
- python-telegram-bot's JobQueue with its default in-memory store, one `run_daily` per user
  (the hobby-bot pattern: load the users, add a job each, start) — up to `--ptb-cap` users;
- APScheduler 3's SQLAlchemyJobStore, one CronTrigger job per user: cold (an empty store:
  add_job for every user, then start; up to `--cold-cap`, beyond that extrapolated from the
  add_job rate) and restart (N jobs already persisted; start).
Each per-job process imports and opens the same app (Database, Coach). A job due at start
is the "first due job".

Targets (issue 14, "Done when"): tick <= 1 s for one minute's due users among 1M, on
PostgreSQL and on SQLite; clock RSS <= 150 MB (peak over a window with ticks that did
work) at 100k and at 1M, and flat: at most +10 MB from 100k to 1M. Judged on medians of
the runs. `--quick` runs 1 run at 2,000 and 10,000 users as a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, event, insert, text

from bench._common import (
    Target,
    Timer,
    add_runs_argument,
    cache_dir,
    machine_note,
    median,
    print_table,
    print_targets,
    rss_mb,
    schema_key,
)
from bot.engine.flows.account import next_checkin_at
from bot.service import Coach
from bot.storage.db import Database, upgrade_async
from scheduler import Scheduler, SchedulerConfig

ROOT = Path(__file__).resolve().parent.parent
# A fixed instant: cached populations stay valid whatever the date (the tick takes `now`).
BASE = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
GENERATOR = "sched-pop-v2"
TICK_TARGET_S = 1.0
RSS_TARGET_MB = 150.0
RSS_FLAT_MB = 10.0  # "flat": growth allowed from the smallest to the largest size

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


def _server_url() -> str:
    from bench._common import pg_server_url

    return pg_server_url()


def _db_url(server: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server).set(database=name).render_as_string(hide_password=False)


# --- cached populations ------------------------------------------------------------------


def _sqlite_rows(pop: Population) -> Iterator[tuple[Any, ...]]:
    def fmt(v: Any) -> Any:
        if isinstance(v, datetime):  # SQLAlchemy's SQLite format, naive UTC
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(v, bool):
            return int(v)
        return v

    for row in user_rows(pop):
        yield tuple(fmt(v) for v in row)


async def build_sqlite(path: Path, n: int) -> None:
    import sqlite3

    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    await upgrade_async(f"sqlite+aiosqlite:///{tmp}")
    con = sqlite3.connect(tmp)
    try:
        marks = ", ".join("?" for _ in USER_COLUMNS)
        con.executemany(
            f"INSERT INTO users ({', '.join(USER_COLUMNS)}) VALUES ({marks})",
            _sqlite_rows(make_population(n, BASE)),
        )
        con.commit()
        con.execute("ANALYZE")
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode = DELETE")
    finally:
        con.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.rename(path)


async def build_pg(server: str, name: str, n: int) -> None:
    import asyncpg

    building = f"bench_build_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_pg_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{building}"')
    finally:
        await admin.close()
    url = _db_url(server, building)
    try:
        await upgrade_async(url)
        conn = await asyncpg.connect(_pg_dsn(url))
        try:
            await conn.copy_records_to_table(
                "users", records=user_rows(make_population(n, BASE)), columns=USER_COLUMNS
            )
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users"
            )
            await conn.execute("VACUUM ANALYZE users")
        finally:
            await conn.close()
        admin = await asyncpg.connect(_pg_dsn(server))
        try:
            await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        finally:
            await admin.close()
    except BaseException:
        admin = await asyncpg.connect(_pg_dsn(server))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        finally:
            await admin.close()
        raise


async def cached_population(kind: str, n: int) -> str:
    """The cached population of `n` users for this kind: a SQLite file path or a
    PostgreSQL template database name. Built (and stale ones removed) when missing."""
    key = schema_key(GENERATOR, n, BASE.isoformat())
    if kind == "sqlite":
        directory = cache_dir()
        path = directory / f"sched-sqlite-{n}-{key}.db"
        stale = [p for p in directory.glob(f"sched-sqlite-{n}-*.db") if p != path]
        for p in stale:
            log(f"cache: removing {p.name} (schema or generator changed)")
            p.unlink()
        if path.exists():
            log(f"cache: reusing {path}")
        else:
            log(f"cache: building {path} ({n:,} users)")
            with Timer() as t:
                await build_sqlite(path, n)
            log(f"cache: built in {t.seconds:.0f}s")
        return str(path)
    import asyncpg

    server = _server_url()
    name = f"bench_tmpl_sched_{n}_{key}"
    admin = await asyncpg.connect(_pg_dsn(server))
    try:
        # Compared in Python: in LIKE, "_" matches any character (100000_ would match 1000000).
        prefix = f"bench_tmpl_sched_{n}_"
        names = [
            r["datname"]
            for r in await admin.fetch("SELECT datname FROM pg_database")
            if r["datname"].startswith(prefix) and "_" not in r["datname"][len(prefix) :]
        ]
        for other in names:
            if other != name:
                log(f"cache: dropping {other} (schema or generator changed)")
                await admin.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')
    finally:
        await admin.close()
    if name in names:
        log(f"cache: reusing template database {name}")
    else:
        log(f"cache: building template database {name} ({n:,} users)")
        with Timer() as t:
            await build_pg(server, name, n)
        log(f"cache: built in {t.seconds:.0f}s")
    return name


@contextlib.asynccontextmanager
async def fresh_copy(kind: str, n: int) -> AsyncIterator[str]:
    """A private copy of the cached population; yields its SQLAlchemy URL."""
    source = await cached_population(kind, n)
    if kind == "sqlite":
        import tempfile

        with tempfile.TemporaryDirectory(
            prefix="bench_sched_", dir=os.environ.get("BENCH_TMPDIR")
        ) as d:
            target = Path(d) / "hipcoach.db"
            shutil.copyfile(source, target)
            yield f"sqlite+aiosqlite:///{target}"
        return
    import asyncpg

    server = _server_url()
    name = f"bench_sched_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_pg_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY')
    finally:
        await admin.close()
    try:
        yield _db_url(server, name)
    finally:
        admin = await asyncpg.connect(_pg_dsn(server))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --- ours: the tick --------------------------------------------------------------------------


class NullSender:
    async def send(self, message: Any) -> None:  # the tick never sends
        raise AssertionError("tick does not send")


def _is_claim(statement: str) -> bool:
    s = statement.lower()
    return (
        "from users" in s
        and "next_checkin_at" in s
        and s.lstrip().startswith(("select", "update", "with"))
    )


async def measure_ticks(db: Database, minutes: int = 5) -> dict[str, Any]:
    coach = Coach(db, clock=lambda: BASE)
    config = SchedulerConfig(tick_seconds=3600, dispatch_seconds=3600)
    sched = Scheduler(db, coach, {"telegram": NullSender()}, config=config)  # type: ignore[dict-item]
    statements = 0
    claim: list[tuple[str, Any]] = []

    def count(_conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        nonlocal statements
        statements += 1
        if not claim and _is_claim(statement):
            claim.append((statement, params))

    await sched.tick(BASE)  # warm-up: nothing is due exactly at BASE
    times, counts, cpus = [], [], []
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for m in range(1, minutes + 1):
            with Timer() as t:
                queued = await sched.tick(BASE + timedelta(minutes=m))
            times.append(t.seconds)
            cpus.append(t.cpu)
            counts.append(queued)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    with Timer() as idle:
        await sched.tick(BASE + timedelta(minutes=minutes))  # nothing left: queries only
    users = max(sum(counts), 1)
    return {
        "tick_s": median(times),
        "tick_users": median(counts),
        "idle_tick_s": idle.seconds,
        "cpu_ms_per_user": 1000 * sum(cpus) / users,
        "sql_per_user": statements / users,
        "claim": claim[0] if claim else None,
    }


def _shift_params(params: Any, by: timedelta) -> Any:
    def shift(v: Any) -> Any:
        return v + by if isinstance(v, datetime) else v

    if isinstance(params, dict):
        return {k: shift(v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return type(params)(shift(v) for v in params)
    return params


async def explain(db: Database, claim: tuple[str, Any] | None) -> list[str]:
    if claim is None:
        return ["(no claim statement seen)"]
    statement, params = claim
    # The captured users are claimed by now: explain the same query five minutes later,
    # where due users are waiting, so the plan's actual rows are a tick's real work.
    params = _shift_params(params, timedelta(minutes=5))
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    try:
        async with db.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(prefix + statement, params)).all()
            await conn.rollback()
    except Exception as error:  # the plan is information only
        return [f"(EXPLAIN failed: {type(error).__name__}: {error})"]
    return [str(r[-1]) if db.is_sqlite else str(r[0]) for r in rows]


# --- child processes ------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "SLACK_", "DATABASE_URL", "HIPCOACH_"))
    }
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def bench_line(kind: str, **values: Any) -> None:
    """A line the parent reads from a child's stderr (monotonic clock: system-wide)."""
    payload = json.dumps({"at": time.monotonic(), **values})
    print(f"BENCH {kind} {payload}", file=sys.stderr, flush=True)


@dataclass
class ChildResult:
    startup_s: float  # spawned -> first due job fired (nan: never)
    ready_s: float  # spawned -> jobs in place and the scheduler started
    peak_mb: float
    end_mb: float
    peak_after_work_mb: float
    work_ticks: int
    samples: int
    lines: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def run_child(
    argv: list[str], env: dict[str, str], *, after_fire: float, timeout: float, cwd: Path = ROOT
) -> ChildResult:
    """Start a process, sample its RSS every 0.1 s until `after_fire` seconds after it
    reported its first fired job (or `timeout`), stop it with SIGTERM."""
    lines: list[tuple[float, str, dict[str, Any]]] = []
    tail: list[str] = []
    spawned = time.monotonic()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )

    def reader() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("BENCH "):
                _, kind, payload = line.rstrip("\n").split(" ", 2)
                lines.append((time.monotonic(), kind, json.loads(payload)))
            else:
                tail.append(line)
                del tail[:-40]

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    samples: list[tuple[float, float]] = []
    fired_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[3:5]} exited early ({proc.returncode}): {''.join(tail)}")
            with contextlib.suppress(FileNotFoundError, RuntimeError):
                samples.append((now, rss_mb(proc.pid)))
            if fired_at is None:
                fired = [v["at"] for _, k, v in lines if k == "fired"]
                fired_at = fired[0] if fired else None
            if fired_at is not None and now >= fired_at + after_fire:
                break
            if now - spawned > timeout:
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        thread.join(timeout=5)
    ready = [v["at"] for _, k, v in lines if k == "ready"]
    work = [v["at"] for _, k, v in lines if k == "tick" and v.get("queued", 0) > 0]
    first_work = work[0] if work else None
    after_work = [mb for at, mb in samples if first_work is not None and at >= first_work]
    return ChildResult(
        startup_s=(fired_at - spawned) if fired_at is not None else float("nan"),
        ready_s=(ready[0] - spawned) if ready else float("nan"),
        peak_mb=max((mb for _, mb in samples), default=float("nan")),
        end_mb=samples[-1][1] if samples else float("nan"),
        peak_after_work_mb=max(after_work, default=float("nan")),
        work_ticks=len(work),
        samples=len(samples),
        lines=[(k, v) for _, k, v in lines],
    )


def child_ours(url: str, shift_to: str) -> None:
    """`hipcoach clock` as the product runs it, with the scheduler's clock shifted."""
    import bot.cli as cli

    target = datetime.fromisoformat(shift_to)
    offset = target - datetime.now(UTC)

    def clock() -> datetime:
        return datetime.now(UTC) + offset

    def make(db: Database, coach: Coach, senders: dict[str, Any]) -> Scheduler:
        sched = Scheduler(db, coach, senders, clock=clock)
        original = sched.tick
        fired = False

        async def tick(now: datetime | None = None) -> int:
            nonlocal fired
            queued = await original(now)
            bench_line("tick", queued=queued)
            if queued and not fired:
                fired = True
                bench_line("fired")
            return queued

        sched.tick = tick  # type: ignore[method-assign]
        original_start = sched.start

        async def start() -> None:
            await original_start()
            bench_line("ready")

        sched.start = start  # type: ignore[method-assign]
        return sched

    class Delivered:
        """A Telegram sender that delivers at once, on no network: the clock refuses to
        start without a platform, and what is measured here is the clock's own work (its
        dispatcher still claims, paces and marks every reminder)."""

        platform = "telegram"

        async def start_sender(self) -> None:
            return None

        async def send(self, message: Any) -> None:
            return None

        def health(self) -> str | None:
            return None

        async def stop(self) -> None:
            return None

    for name in ("_scheduler", "_platform_adapters"):
        if not hasattr(cli, name):
            raise SystemExit(f"bot.cli no longer has {name}(): update bench/scheduler_scale.py")
    cli._scheduler = make  # type: ignore[assignment]
    cli._platform_adapters = lambda settings, coach: [Delivered()]  # type: ignore[assignment]
    os.environ.update(
        DATABASE_URL=url, HIPCOACH_TICK_SECONDS="2", TELEGRAM_BOT_TOKEN="123456:bench"
    )
    cli.main(["clock"])


async def _load_schedules(url: str) -> list[tuple[int, str, str, str]]:
    """What a per-job bot reads at boot: every active user's id, chat, time and zone."""
    db = Database(url)
    try:
        async with db.transaction(readonly=True) as repo:
            rows = await repo.session.execute(
                text(
                    "SELECT id, chat_id, reminder_time, timezone FROM users "
                    "WHERE NOT paused AND NOT unreachable AND reminder_time IS NOT NULL"
                )
            )
            return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]
    finally:
        await db.dispose()


def child_ptb(url: str) -> None:
    """The hobby-bot pattern: python-telegram-bot's JobQueue (in-memory store), one
    run_daily job per user, added at boot from the users table."""
    from datetime import time as dtime
    from zoneinfo import ZoneInfo

    from telegram.ext import ApplicationBuilder

    from tests.fake_telegram import TOKEN

    async def remind(context: Any) -> None:
        bench_line("fired")

    async def main() -> None:
        db = Database(url)
        Coach(db)
        app = ApplicationBuilder().token(TOKEN).base_url("http://127.0.0.1:9/bot").build()
        queue = app.job_queue
        assert queue is not None, "python-telegram-bot without its job-queue extra"
        zones: dict[str, ZoneInfo] = {}
        for uid, chat, rt, tz in await _load_schedules(url):
            hh, mm = rt.split(":")
            zone = zones.get(tz) or zones.setdefault(tz, ZoneInfo(tz))
            queue.run_daily(
                remind,
                time=dtime(int(hh), int(mm), tzinfo=zone),
                chat_id=int(chat),
                user_id=uid,
                name=f"checkin-{uid}",
            )
        queue.run_once(remind, when=0, name="due-at-start")
        await queue.start()
        bench_line("ready", jobs=len(queue.jobs()))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await queue.stop(wait=False)
        await db.dispose()

    asyncio.run(main())


def perjob_fire(user_id: int) -> None:
    """The per-job reminder (APScheduler runs it in its thread pool)."""
    bench_line("fired", user=user_id)


def _cron(rt: str, tz: str) -> Any:
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    hh, mm = rt.split(":")
    return CronTrigger(hour=int(hh), minute=int(mm), timezone=ZoneInfo(tz))


def _aps(store_url: str, cls: str = "asyncio") -> Any:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    kwargs = {
        "jobstores": {"default": SQLAlchemyJobStore(url=store_url)},
        "job_defaults": {"coalesce": True, "misfire_grace_time": 3600},
        "timezone": UTC,
    }
    if cls == "background":
        from apscheduler.schedulers.background import BackgroundScheduler

        return BackgroundScheduler(**kwargs)
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    return AsyncIOScheduler(**kwargs)


def child_aps(store_url: str, app_url: str, mode: str) -> None:
    """APScheduler with a SQLAlchemyJobStore: `cold` adds one job per user first (an empty
    store), `restart` starts on the jobs already persisted."""

    async def main() -> None:
        db = Database(app_url)
        Coach(db)
        sched = _aps(store_url)
        if mode == "cold":
            for uid, _chat, rt, tz in await _load_schedules(app_url):
                sched.add_job(
                    "bench.scheduler_scale:perjob_fire",
                    _cron(rt, tz),
                    args=(uid,),
                    id=f"checkin-{uid}",
                    replace_existing=True,
                )
            sched.add_job(
                "bench.scheduler_scale:perjob_fire",
                "date",
                run_date=datetime.now(UTC),
                args=(0,),
                id="due-at-start",
            )
        sched.start()
        bench_line("ready")
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        sched.shutdown(wait=False)
        await db.dispose()

    asyncio.run(main())


def sync_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def aps_prepare_store(store_url: str, pop: Population, n: int, sample: int) -> float:
    """Fill the store with n persisted jobs (what n add_job calls leave behind): `sample`
    real add_job calls (timed: seconds per job), the rest written as pickled job states.
    User 1's job is due now (the first due job at the restart)."""
    from sqlalchemy import create_engine

    now = datetime.now(UTC)
    sched = _aps(store_url, "background")
    sched.start(paused=True)
    k = min(n, sample)
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
    engine = create_engine(store_url)
    triggers: dict[tuple[str, str], Any] = {}
    nexts: dict[tuple[str, str], datetime] = {}
    # A Core insert() so SQLAlchemy batches the rows (insertmanyvalues); a text() statement
    # would go row by row through the driver's executemany.
    jobs_table = Table("apscheduler_jobs", MetaData(), autoload_with=engine)
    insert_sql = insert(jobs_table)
    with engine.begin() as conn:
        rows = []
        for uid in range(k + 1, n + 1):
            rt, tz = pop.schedules[uid - 1]
            trig = triggers.get((rt, tz)) or triggers.setdefault((rt, tz), _cron(rt, tz))
            nxt = nexts.get((rt, tz)) or nexts.setdefault((rt, tz), next_checkin_at(rt, tz, now))
            state = {**template, "id": f"checkin-{uid}", "args": (uid,), "trigger": trig,
                     "next_run_time": nxt}  # fmt: skip
            rows.append(
                {
                    "id": state["id"],
                    "next_run_time": nxt.timestamp(),
                    "job_state": pickle.dumps(state, pickle.HIGHEST_PROTOCOL),
                }
            )
            if len(rows) >= 20_000:
                conn.execute(insert_sql, rows)
                rows.clear()
        if rows:
            conn.execute(insert_sql, rows)
        due = now - timedelta(seconds=1)
        state = {**template, "next_run_time": due}
        conn.execute(
            text(
                "UPDATE apscheduler_jobs SET next_run_time = :t, job_state = :s "
                "WHERE id = 'checkin-1'"
            ),
            {"t": due.timestamp(), "s": pickle.dumps(state, pickle.HIGHEST_PROTOCOL)},
        )
    engine.dispose()
    return per_job


@contextlib.asynccontextmanager
async def job_store(kind: str) -> AsyncIterator[str]:
    """An empty database for APScheduler's job table; yields a synchronous URL."""
    if kind == "sqlite":
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench_aps_") as d:
            yield f"sqlite:///{Path(d) / 'jobs.db'}"
        return
    from bench._common import scratch_pg

    async with scratch_pg("bench_apsjobs", migrate=False) as url:
        yield sync_url(url)


# --- runs --------------------------------------------------------------------------------------


@dataclass
class RunResult:
    kind: str
    n: int
    run: int
    ticks: dict[str, Any]
    plan: list[str]
    clock: ChildResult


@dataclass
class Comparison:
    kind: str
    n: int
    ptb: ChildResult | None = None
    cold: ChildResult | None = None
    restart: ChildResult | None = None
    add_job_s: float = float("nan")
    notes: list[str] = field(default_factory=list)


def _child_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.scheduler_scale", "--child", *args]


async def run_once(kind: str, n: int, run: int, args: argparse.Namespace) -> RunResult:
    async with fresh_copy(kind, n) as url:
        db = Database(url)
        try:
            log(f"{kind} N={n:,} run {run + 1}: ticks")
            ticks = await measure_ticks(db)
            plan = await explain(db, ticks.pop("claim")) if run == 0 else []
        finally:
            await db.dispose()
        log(f"{kind} N={n:,} run {run + 1}: clock process RSS for {args.rss_seconds:.0f}s")
        shift = BASE + timedelta(minutes=5, seconds=59)
        clock = await asyncio.to_thread(
            run_child,
            _child_argv("ours", url, shift.isoformat()),
            clean_env(),
            after_fire=args.rss_seconds,
            timeout=args.rss_seconds + 300,
        )
    return RunResult(kind, n, run, ticks, plan, clock)


async def compare(kind: str, n: int, args: argparse.Namespace) -> Comparison:
    result = Comparison(kind, n)
    async with fresh_copy(kind, n) as url:
        if n <= args.ptb_cap:
            log(f"compare N={n:,}: python-telegram-bot JobQueue, in-memory")
            result.ptb = await asyncio.to_thread(
                run_child, _child_argv("ptb", url), clean_env(), after_fire=5, timeout=1800
            )
        else:
            result.notes.append(
                f"PTB JobQueue not run at {n:,} (--ptb-cap {args.ptb_cap:,}): an in-memory store"
                " grows with every job and inserts into one sorted list, so on a shared machine"
                " it is not feasible here; see the smaller size"
            )
        if n <= args.cold_cap:
            log(f"compare N={n:,}: SQLAlchemyJobStore cold start (add_job x N)")
            async with job_store(kind) as store:
                result.cold = await asyncio.to_thread(
                    run_child,
                    _child_argv("aps", store, url, "cold"),
                    clean_env(),
                    after_fire=5,
                    timeout=3600,
                )
        log(f"compare N={n:,}: SQLAlchemyJobStore restart ({n:,} persisted jobs)")
        async with job_store(kind) as store:
            pop = make_population(n, BASE)
            result.add_job_s = await asyncio.to_thread(
                aps_prepare_store, store, pop, n, args.sample
            )
            del pop
            result.restart = await asyncio.to_thread(
                run_child,
                _child_argv("aps", store, url, "restart"),
                clean_env(),
                after_fire=5,
                timeout=600,
            )
        if result.cold is None:
            result.notes.append(
                f"SQLAlchemyJobStore cold start not run at {n:,} (--cold-cap {args.cold_cap:,}):"
                f" ~{result.add_job_s * n:,.0f} s of add_job at the measured"
                f" {result.add_job_s * 1000:.2f} ms/job (sample of {min(n, args.sample):,})"
            )
    return result


# --- report --------------------------------------------------------------------------------


def _runs(values: list[float], spec: str) -> str:
    return ", ".join(format(v, spec) for v in values)


def report(
    results: list[RunResult], comparisons: list[Comparison], args: argparse.Namespace
) -> None:
    print()
    print("Bench 3 — scheduler at scale")
    print(f"machine: {machine_note()}")
    print(f"runs {args.runs} | sizes {args.sizes} | databases {args.db} | BASE {BASE.isoformat()}")
    print()
    print("Ours: Scheduler.tick for one minute's due users (medians of runs; per run in ())")
    groups: dict[tuple[str, int], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.kind, r.n), []).append(r)
    rows = []
    for (kind, n), runs in groups.items():
        ticks = [r.ticks["tick_s"] for r in runs]
        peaks = [r.clock.peak_after_work_mb for r in runs]
        rows.append(
            [
                kind,
                f"{n:,}",
                f"{median(ticks):.3f} ({_runs(ticks, '.3f')})",
                f"{median(r.ticks['tick_users'] for r in runs):.0f}",
                f"{median(r.ticks['cpu_ms_per_user'] for r in runs):.2f}",
                f"{median(r.ticks['sql_per_user'] for r in runs):.1f}",
                f"{median(r.ticks['idle_tick_s'] for r in runs) * 1000:.1f}",
                f"{median(peaks):.1f} ({_runs(peaks, '.1f')})",
                f"{min(r.clock.work_ticks for r in runs)}",
                f"{median(r.clock.startup_s for r in runs):.2f}",
            ]
        )
    print_table(
        [
            "db",
            "users",
            "tick s",
            "due/tick",
            "CPU ms/due user",
            "SQL/due user",
            "idle tick ms",
            "clock RSS peak MB",
            "ticks w/ work",
            "clock start-up s",
        ],
        rows,
    )
    print(
        "(CPU = this process's; on PostgreSQL the server's is not in it. clock RSS = peak"
        " from the first tick that queued reminders to the end of the window)"
    )
    for r in results:
        if r.plan:
            print(f"\nclaim query plan, {r.kind}, {r.n:,} users:")
            for line in r.plan:
                print(f"    {line}")
    if comparisons:
        print()
        print(
            "Start-up side by side: process spawned -> jobs in place -> first due job fired"
            " (RSS = peak of that process)"
        )
        rows = []
        for c in comparisons:
            ours = groups.get((c.kind, c.n), [])
            ours_start = median(r.clock.startup_s for r in ours) if ours else float("nan")
            ours_rss = median(r.clock.peak_mb for r in ours) if ours else float("nan")
            ours_ready = median(r.clock.ready_s for r in ours) if ours else float("nan")
            rows.append([f"{c.n:,}", "ours (hipcoach clock)", f"{ours_start:.2f}",
                         f"{ours_ready:.2f}", f"{ours_rss:.1f}", "-"])  # fmt: skip
            for name, child in (
                ("PTB JobQueue, in-memory", c.ptb),
                ("SQLAlchemyJobStore, cold", c.cold),
                ("SQLAlchemyJobStore, restart", c.restart),
            ):
                if child is None:
                    rows.append(["", name, "not run", "-", "-", "-"])
                    continue
                rows.append(
                    [
                        "",
                        name,
                        f"{child.startup_s:.2f}",
                        f"{child.ready_s:.2f}",
                        f"{child.peak_mb:.1f}",
                        f"{child.peak_mb - ours_rss:+.1f}",
                    ]
                )
            rows.append(
                ["", "(add_job rate, SQLAlchemyJobStore)", f"{c.add_job_s * 1000:.2f} ms/job",
                 "-", "-", "-"]
            )  # fmt: skip
        print_table(["users", "design", "start-up s", "ready s", "RSS MB", "RSS vs ours MB"], rows)
        for c in comparisons:
            for note in c.notes:
                print(f"  note: {note}")
        print(f"  (compared on {comparisons[0].kind}; ours = median of the runs above)")
    targets: list[Target] = []
    for kind in args.kinds:
        sizes = sorted(n for k, n in groups if k == kind)
        if not sizes:
            continue
        big = sizes[-1]
        runs = groups[(kind, big)]
        tick = median(r.ticks["tick_s"] for r in runs)
        due = median(r.ticks["tick_users"] for r in runs)
        targets.append(
            Target(
                f"tick at {big:,} users ({kind})",
                f"{tick:.3f} s for {due:.0f} due users",
                f"<= {TICK_TARGET_S:.0f} s",
                tick <= TICK_TARGET_S,
            )
        )
        peaks: dict[int, float] = {}
        for n in sizes:
            runs = groups[(kind, n)]
            idle = sum(1 for r in runs if r.clock.work_ticks == 0)
            peaks[n] = median(r.clock.peak_after_work_mb for r in runs)
            figure = f"{peaks[n]:.1f} MB peak"
            if idle:
                figure += f" ({idle} windows without a tick that did work)"
            targets.append(
                Target(
                    f"clock RSS at {n:,} users ({kind})",
                    figure,
                    f"<= {RSS_TARGET_MB:.0f} MB",
                    peaks[n] <= RSS_TARGET_MB and not idle,
                )
            )
        if len(sizes) > 1:
            growth = peaks[sizes[-1]] - peaks[sizes[0]]
            targets.append(
                Target(
                    f"clock RSS flat {sizes[0]:,} -> {sizes[-1]:,} users ({kind})",
                    f"{growth:+.1f} MB",
                    f"<= +{RSS_FLAT_MB:.0f} MB",
                    growth <= RSS_FLAT_MB,
                )
            )
    print_targets(targets)


# --- main ------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> None:
    results: list[RunResult] = []
    comparisons: list[Comparison] = []
    for kind in args.kinds:
        for n in args.size_list:
            await cached_population(kind, n)
    for run in range(args.runs):
        for kind in args.kinds:
            for n in args.size_list:
                results.append(await run_once(kind, n, run, args))
                r = results[-1]
                log(
                    f"{kind} N={n:,} run {run + 1}: tick {r.ticks['tick_s']:.3f}s for "
                    f"{r.ticks['tick_users']:.0f} due, clock RSS peak "
                    f"{r.clock.peak_after_work_mb:.1f} MB ({r.clock.work_ticks} ticks w/ work)"
                )
    if args.compare:
        for n in args.size_list:
            comparisons.append(await compare(args.compare_db, n, args))
    report(results, comparisons, args)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.scheduler_scale", description=__doc__.split("\n")[0])
    add_runs_argument(p)
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--db", default="postgresql,sqlite", help="comma list: postgresql, sqlite")
    p.add_argument("--compare-db", choices=["postgresql", "sqlite"], default=None)
    p.add_argument("--no-compare", dest="compare", action="store_false")
    p.add_argument("--ptb-cap", type=int, default=100_000, help="largest PTB JobQueue run")
    p.add_argument("--cold-cap", type=int, default=100_000, help="largest add_job-all run")
    p.add_argument("--sample", type=int, default=3000, help="add_job calls to time")
    p.add_argument("--rss-seconds", type=float, default=20.0)
    p.add_argument("--quick", action="store_true", help="1 run at 2,000 and 10,000 users")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.sizes, args.sample, args.rss_seconds = 1, "2000,10000", 300, 8.0
    args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    args.kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    for kind in args.kinds:
        if kind not in ("postgresql", "sqlite"):
            p.error(f"unknown database kind {kind!r}")
    args.compare_db = args.compare_db or args.kinds[0]
    return args


def _die_with_parent() -> None:
    """A child gets SIGTERM when the bench process dies, so none is left behind (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import logging

    # Jobs the stopped per-job schedulers could not submit are expected here.
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
    if args.child:
        _die_with_parent()
        role, *rest = args.child
        {"ours": child_ours, "ptb": child_ptb, "aps": child_aps}[role](*rest)
        return 0
    with Timer() as total:
        asyncio.run(main_async(args))
    print(f"total bench time {total.seconds:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
