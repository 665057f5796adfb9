"""Small helpers shared by the benchmarks: timing, percentiles, RSS, scratch databases.

Kept deliberately small and stable (other bench scripts import it). Nothing here is timed
in tests; the benches print their figures and `bench/RESULTS.md` records them.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PG_SERVER",
    "BusyLoad",
    "Target",
    "Timer",
    "add_runs_argument",
    "cache_dir",
    "cpu_seconds",
    "die_with_parent",
    "fmt_ms",
    "git_commit",
    "machine_note",
    "median",
    "median_of_runs",
    "percentile",
    "pg_server_url",
    "pin_to_one_core",
    "print_table",
    "print_targets",
    "proc_cpu_seconds",
    "rss_mb",
    "schema_key",
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


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (all its threads, dead ones included),
    from /proc/<pid>/stat; 1/CLK_TCK (10 ms) resolution, so measure windows of seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / ticks


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    if math.isinf(ordered[hi]):  # an event that never completed counts as infinitely late
        return ordered[hi] if k > lo else ordered[lo]
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


# --- targets and runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One target of issue 14's "Done when", judged on a figure (a median of runs).

    `line()` is the one line every bench prints per target, exactly:
    `target <name>: <figure> vs <goal>: met|MISSED`."""

    name: str
    figure: str
    goal: str
    met: bool

    def line(self) -> str:
        verdict = "met" if self.met else "MISSED"
        return f"target {self.name}: {self.figure} vs {self.goal}: {verdict}"


def print_targets(targets: Sequence[Target]) -> None:
    print()
    for t in targets:
        print(t.line())


def add_runs_argument(parser: Any, default: int = 3) -> None:
    parser.add_argument(
        "--runs",
        type=int,
        default=default,
        help=f"independent repetitions; figures and targets use their medians (default {default})",
    )


def median_of_runs(per_run: Sequence[float]) -> str:
    """How a median-of-runs figure is shown next to its runs: "12.3 (runs 11.9, 12.3, 14.0)"."""
    return ", ".join(f"{v:.3g}" for v in per_run)


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
    """One line: host, CPUs, load average, Python, commit (the one checked out when the
    bench started, i.e. the code that ran), date."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()} | {os.cpu_count()} CPUs | load avg {load} | "
        f"Python {platform.python_version()} | commit {_COMMIT_AT_START} | "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )


def die_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGTERM when the bench process dies (Linux's
    PR_SET_PDEATHSIG), so an interrupted bench leaves no bot or fake running."""
    with suppress(OSError, AttributeError):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


BUSY_CODE = """
import os, sys, time
parent, deadline = os.getppid(), time.monotonic() + float(sys.argv[1])
n = 0
while time.monotonic() < deadline:
    for _ in range(200_000):
        n += 1
    if os.getppid() != parent:
        break
"""


class BusyLoad:
    """`with BusyLoad(n):` keeps n CPUs busy with separate spinning processes (pure-Python
    loops, normal priority), like another engineer's test suite on a shared machine. Each
    process stops by itself when its parent goes away or after `max_seconds`."""

    def __init__(self, processes: int | None = None, max_seconds: float = 3600.0) -> None:
        self.processes = max(1, (os.cpu_count() or 2) - 1) if processes is None else processes
        self.max_seconds = max_seconds
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BusyLoad:
        for _ in range(self.processes):
            self._procs.append(
                subprocess.Popen([sys.executable, "-c", BUSY_CODE, str(self.max_seconds)])
            )
        time.sleep(0.5)  # let them get going before anything is measured
        return self

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._procs:
            with suppress(FileNotFoundError, ProcessLookupError):
                total += proc_cpu_seconds(proc.pid)
        return total

    def __exit__(self, *_exc: object) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()


def cache_dir() -> Path:
    """Where big generated data sets are kept between runs (BENCH_CACHE_DIR, else
    /tmp/hipcoach-bench-cache)."""
    path = Path(os.environ.get("BENCH_CACHE_DIR") or "/tmp/hipcoach-bench-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def schema_key(*extra: object) -> str:
    """A short hash of the migrations (the schema) and `extra` (the generator's version and
    parameters): a cached data set is reused only while this key is unchanged."""
    digest = hashlib.sha256()
    versions = Path(__file__).resolve().parent.parent / "bot" / "storage" / "migrations"
    for path in sorted(versions.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for item in extra:
        digest.update(repr(item).encode())
    return digest.hexdigest()[:12]


_COMMIT_AT_START = git_commit()


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
