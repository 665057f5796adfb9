"""Prometheus metrics: every definition, and the small functions the rest of the code calls.

Counts and durations only. No label ever holds a user id, a chat id, a name or an answer:
labels are the platform, the inbound kind, a send result and an escalation level, each from
a fixed set (anything else is counted as "other"), so the number of series stays small and
a scrape can be shown to anyone running the service.

The service, the scheduler and the adapters call the functions below (one line each); the
HTTP side (`/metrics`) is `render()`. Metrics live in this module's own registry, so a test
process that builds several apps still sees one set. HIPCOACH_METRICS=off only removes the
`/metrics` route: counting costs next to nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

from bot.delivery import RetryAfter, Sender
from bot.engine.events import InboundKind, Outbound

__all__ = [
    "CONTENT_TYPE",
    "PLATFORMS",
    "REGISTRY",
    "counted_senders",
    "due_users",
    "escalation",
    "observe_outbox",
    "observe_turn",
    "render",
    "timed_tick",
]

P = ParamSpec("P")
R = TypeVar("R")

PLATFORMS = ("telegram", "slack", "console")
SEND_RESULTS = ("ok", "429", "failed")
# Escalation levels of the clinical rules' section 0 that stop or flag self-management.
ESCALATION_LEVELS = ("EMERGENCY", "URGENT", "SOON_72H", "SOON")
CONTENT_TYPE = CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry()
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

EVENTS = Counter(
    "hipcoach_events_handled",
    "Inbound events the coach handled (duplicates included), by platform and kind",
    ["platform", "kind"],
    registry=REGISTRY,
)
REPLY_LATENCY = Histogram(
    "hipcoach_reply_latency_seconds",
    "From the coach taking an event to its replies being committed and ready to send",
    ["platform"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "hipcoach_outbox_depth",
    "Outbox messages waiting or being sent, by platform (read from the database at scrape)",
    ["platform"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_DUE = Gauge(
    "hipcoach_outbox_oldest_due_age_seconds",
    "How long the oldest due, unsent outbox message has been waiting (0 when none is due)",
    ["platform"],
    registry=REGISTRY,
)
SENDS = Counter(
    "hipcoach_sends",
    "Outbox sends by platform and result: ok, 429 (rate limited) or failed",
    ["platform", "result"],
    registry=REGISTRY,
)
TICK_DURATION = Histogram(
    "hipcoach_tick_duration_seconds",
    "How long one scheduler tick (due check-ins, nudges, warm-ups) took",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
TICK_DUE_USERS = Histogram(
    "hipcoach_tick_due_users",
    "Users whose check-in or nudge was due, per scheduler tick",
    buckets=(0, 1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000),
    registry=REGISTRY,
)
ESCALATIONS = Counter(
    "hipcoach_escalations",
    "Red-flag escalations recorded, by action level",
    ["level"],
    registry=REGISTRY,
)

_KINDS = tuple(kind.value for kind in InboundKind)

# Every series exists from the start (at 0), so a rate() works from the first scrape and a
# dashboard shows "none yet" rather than "no data".
for _platform in PLATFORMS:
    REPLY_LATENCY.labels(_platform)
    OUTBOX_DEPTH.labels(_platform).set(0)
    OUTBOX_OLDEST_DUE.labels(_platform).set(0)
    for _kind in _KINDS:
        EVENTS.labels(_platform, _kind)
    for _result in SEND_RESULTS:
        SENDS.labels(_platform, _result)
for _level in ESCALATION_LEVELS:
    ESCALATIONS.labels(_level)


def _known(value: str, allowed: Iterable[str]) -> str:
    """A label value from a fixed set; anything else is "other" (never free text)."""
    return value if value in allowed else "other"


# --- the coach ------------------------------------------------------------------------------


def observe_turn(
    handle: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorates `Coach.record(inbound)`: counts the event and times its turn."""

    @functools.wraps(handle)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        inbound = kwargs.get("inbound", args[1] if len(args) > 1 else None)
        platform = _known(str(getattr(inbound, "platform", "")), PLATFORMS)
        kind = _known(str(getattr(getattr(inbound, "kind", None), "value", "")), _KINDS)
        started = time.perf_counter()
        try:
            return await handle(*args, **kwargs)
        finally:
            EVENTS.labels(platform, kind).inc()
            REPLY_LATENCY.labels(platform).observe(time.perf_counter() - started)

    return timed


def escalation(level: str) -> None:
    ESCALATIONS.labels(_known(str(level), ESCALATION_LEVELS)).inc()


# --- the scheduler --------------------------------------------------------------------------

_due_in_tick: ContextVar[list[int] | None] = ContextVar("hipcoach_due_in_tick", default=None)


def timed_tick(
    tick: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Decorates `Scheduler.tick`: its duration, and the due users `due_users` counted."""

    @functools.wraps(tick)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        due = [0]
        token = _due_in_tick.set(due)
        started = time.perf_counter()
        try:
            return await tick(*args, **kwargs)
        finally:
            TICK_DURATION.observe(time.perf_counter() - started)
            TICK_DUE_USERS.observe(due[0])
            _due_in_tick.reset(token)

    return timed


def due_users(count: int) -> None:
    """Called with each batch of due users a tick claims."""
    due = _due_in_tick.get()
    if due is not None:
        due[0] += count


class _CountedSender:
    """A sender whose results are counted; everything else is the wrapped sender's."""

    def __init__(self, platform: str, sender: Sender) -> None:
        self._sender = sender
        self._platform = _known(platform, PLATFORMS)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sender, name)

    async def send(self, message: Outbound) -> None:
        try:
            await self._sender.send(message)
        except RetryAfter:
            SENDS.labels(self._platform, "429").inc()
            raise
        except Exception:
            SENDS.labels(self._platform, "failed").inc()
            raise
        SENDS.labels(self._platform, "ok").inc()


def counted_senders(senders: Mapping[str, Sender]) -> dict[str, Any]:
    """The dispatcher's senders, each counting its sends by result."""
    return {platform: _CountedSender(platform, sender) for platform, sender in senders.items()}


# --- the outbox (read at scrape time) ---------------------------------------------------------


def observe_outbox(
    depth: Mapping[str, int], oldest_due: Mapping[str, datetime], now: datetime
) -> None:
    """Set the outbox gauges from one database read (see bot.storage.stats)."""
    platforms = set(PLATFORMS) | set(depth) | set(oldest_due)
    for platform in platforms:
        label = _known(platform, PLATFORMS)
        OUTBOX_DEPTH.labels(label).set(depth.get(platform, 0))
        since = oldest_due.get(platform)
        OUTBOX_OLDEST_DUE.labels(label).set(max((now - since).total_seconds(), 0.0) if since else 0)


def render() -> bytes:
    return generate_latest(REGISTRY)
