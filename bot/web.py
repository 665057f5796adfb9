"""The ASGI app: platform webhooks, `/healthz` and `/metrics`.

`hipcoach web` serves it with the webhook adapters; `hipcoach run` (polling / Socket Mode
only) and `hipcoach clock` serve it without webhook routes when PORT is set, so every
long-running process can be health-checked and scraped the same way.

Stateless: every request is handled through the database, so any number of copies can
run behind a load balancer.

Health: 200 only when the database answers and every configured platform connection says
it is healthy (`adapter.health() -> str | None`: None when healthy, else a short reason
with no user data in it; an adapter without the method counts as healthy). Otherwise 503
with the reasons, so a load balancer or orchestrator takes the process out or restarts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import metrics
from bot.storage.db import Database
from bot.storage.stats import outbox_stats

log = logging.getLogger("hipcoach.web")

HEALTH_TIMEOUT = 5.0  # seconds for each check; a hung database is an unhealthy one


class WebAdapter(Protocol):
    """A platform adapter that serves HTTP routes (Telegram webhook, Slack events)."""

    platform: str

    def routes(self) -> list[BaseRoute]: ...

    async def start_web(self) -> None:
        """Prepare for serving (e.g. register the webhook)."""
        ...

    async def stop(self) -> None: ...


async def adapter_problem(adapter: Any) -> str | None:
    """The adapter's own health verdict; None (healthy) when it has no `health` method."""
    check = getattr(adapter, "health", None)
    if check is None:
        return None
    result = check()
    if asyncio.iscoroutine(result):
        result = await asyncio.wait_for(result, HEALTH_TIMEOUT)
    return None if result is None else str(result)


def build_app(
    db: Database,
    adapters: Sequence[WebAdapter] = (),
    *,
    watch: Sequence[Any] = (),
    metrics_enabled: bool = True,
    start_adapters: bool = True,
) -> Starlette:
    """`adapters` serve their routes (and are started and stopped with the app, unless the
    caller does that itself: `start_adapters=False`, as the CLI does to report a platform
    that refuses the connection in one line); `watch` are other running adapters
    (polling, Socket Mode, senders) that /healthz also asks."""
    checked = [*adapters, *(a for a in watch if a not in adapters)]

    async def healthz(_: Request) -> JSONResponse:
        problems: dict[str, str] = {}
        try:
            await asyncio.wait_for(db.ping(), HEALTH_TIMEOUT)
        except Exception as error:  # any failure means "not healthy"; the class is enough
            log.warning("health check: database unreachable error=%s", type(error).__name__)
            problems["database"] = "unreachable"
        for adapter in checked:
            name = str(getattr(adapter, "platform", type(adapter).__name__))
            try:
                reason = await adapter_problem(adapter)
            except Exception as error:
                reason = f"health check failed ({type(error).__name__})"
            if reason is not None:
                problems[name] = reason
        if problems:
            return JSONResponse({"status": "unhealthy", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_page(_: Request) -> Response:
        try:
            async with db.transaction(readonly=True) as repo:
                reading = outbox_stats(repo, datetime.now(UTC))
                stats = await asyncio.wait_for(reading, HEALTH_TIMEOUT)
        except Exception as error:
            # Counters are still worth serving; the outbox figures are simply not refreshed.
            log.warning("metrics: outbox figures unavailable error=%s", type(error).__name__)
        else:
            metrics.observe_outbox(stats.depth, stats.oldest_due, datetime.now(UTC))
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not start_adapters:
            yield
            return
        for adapter in adapters:
            await adapter.start_web()
        try:
            yield
        finally:
            for adapter in adapters:
                await adapter.stop()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    if metrics_enabled:
        routes.append(Route("/metrics", metrics_page, methods=["GET"]))
    for adapter in adapters:
        routes.extend(adapter.routes())
    return Starlette(routes=routes, lifespan=lifespan)
