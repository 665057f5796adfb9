"""The ASGI app of `hipcoach web`: platform webhooks plus a health check.

Stateless: every request is handled through the database, so any number of copies can
run behind a load balancer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.storage.db import Database

log = logging.getLogger("hipcoach.web")


class WebAdapter(Protocol):
    """A platform adapter that serves HTTP routes (Telegram webhook, Slack events)."""

    def routes(self) -> list[BaseRoute]: ...

    async def start_web(self) -> None:
        """Prepare for serving (e.g. register the webhook)."""
        ...

    async def stop(self) -> None: ...


def build_app(db: Database, adapters: Sequence[WebAdapter] = ()) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        try:
            await db.ping()
        except Exception:  # any failure means "not healthy"; the reason goes to the log
            log.exception("health check: database unreachable")
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for adapter in adapters:
            await adapter.start_web()
        try:
            yield
        finally:
            for adapter in adapters:
                await adapter.stop()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    for adapter in adapters:
        routes.extend(adapter.routes())
    return Starlette(routes=routes, lifespan=lifespan)
