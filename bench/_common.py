"""Small helpers shared by the benchmarks: timing, percentiles, RSS, scratch databases.

Kept deliberately small and stable (other bench scripts import it). Nothing here is timed
in tests; the benches print their figures and `bench/RESULTS.md` records them.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

__all__ = [
    "DEFAULT_PG_SERVER",
    "Timer",
    "cpu_seconds",
    "fmt_ms",
    "git_commit",
    "machine_note",
    "median",
    "percentile",
    "pg_server_url",
    "pin_to_one_core",
    "print_table",
    "rss_mb",
    "scratch_pg",
    "scratch_sqlite",
    "summarize_ms",
]

# The local server used in development; override with BENCH_PG_URL or TEST_DATABASE_URL.
DEFAULT_PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


# --- timing ----------------------------------------------------------------------------------


class Timer:
    """`with Timer() as t: ...` then `t.seconds` (wall) and `t.cpu` (this process's CPU)."""

    def __enter__(self) -> Timer:
        self._wall = time.perf_counter()
        self._cpu = cpu_seconds()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu = cpu_seconds() - self._cpu


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def summarize_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max of latencies given in seconds, in milliseconds."""
    return {
        "p50": percentile(latencies_s, 50) * 1000,
        "p90": percentile(latencies_s, 90) * 1000,
        "p99": percentile(latencies_s, 99) * 1000,
        "max": (max(latencies_s) if latencies_s else float("nan")) * 1000,
    }


def fmt_ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        pairs = enumerate(zip(row, widths, strict=True))
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in pairs))
        if n == 0:
            print("  ".join("-" * w for w in widths))


# --- processes --------------------------------------------------------------------------------


def rss_mb(pid: int | None = None) -> float:
    """Resident set size (VmRSS) of a process in MiB; this process by default."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def pin_to_one_core(cpu: int | None = None) -> int | None:
    """Pin this process (and threads it starts later) to one CPU; returns it, or None
    where affinity is not supported. Default: the highest-numbered allowed CPU."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu is not None else allowed[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_note() -> str:
    """One line: host, CPUs, load average, Python, commit, date."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()} | {os.cpu_count()} CPUs | load avg {load} | "
        f"Python {platform.python_version()} | commit {git_commit()} | "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )


# --- scratch databases ------------------------------------------------------------------------


def pg_server_url() -> str:
    """The PostgreSQL server to create scratch databases on (SQLAlchemy asyncpg URL)."""
    from bot.storage.db import normalize_database_url

    raw = os.environ.get("BENCH_PG_URL") or os.environ.get("TEST_DATABASE_URL") or ""
    return normalize_database_url(raw.strip() or DEFAULT_PG_SERVER)


def _dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@asynccontextmanager
async def scratch_pg(prefix: str = "bench", *, migrate: bool = True) -> AsyncIterator[str]:
    """A new PostgreSQL database `<prefix>_<random>` (migrated to head unless told not
    to), dropped afterwards whatever happens. Yields its SQLAlchemy asyncpg URL."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from bot.storage.db import upgrade_async

    server = pg_server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            await upgrade_async(url)
        yield url
    finally:
        admin = await asyncpg.connect(_dsn(server))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextmanager
def _tempdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"{prefix}_", dir=os.environ.get("BENCH_TMPDIR")) as d:
        yield Path(d)


@asynccontextmanager
async def scratch_sqlite(prefix: str = "bench", *, migrate: bool = True) -> AsyncIterator[str]:
    """A new SQLite file in a temporary directory (migrated to head unless told not to),
    removed afterwards. Yields its SQLAlchemy aiosqlite URL."""
    from bot.storage.db import upgrade_async

    with _tempdir(prefix) as directory:
        url = f"sqlite+aiosqlite:///{directory / 'hipcoach.db'}"
        if migrate:
            await upgrade_async(url)
        yield url
