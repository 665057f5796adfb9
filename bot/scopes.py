"""One tenant of a platform that serves many (a Slack workspace): stop, resume, adopt.

A platform adapter that serves several tenants stores ids as "<scope><separator><id>"
(see bot/adapters/slack/workspace.py). These functions act on every stored row of one
scope at once, each in one transaction, without knowing what a scope means:

- `stop`: the tenant removed the app or its token: no more reminders or warm-up cards;
- `resume`: the tenant installed the app again;
- `adopt_unscoped`: rows stored before scopes existed belong to this (the only) tenant.
"""

from __future__ import annotations

import logging

from bot.storage.db import Database

log = logging.getLogger("hipcoach.scopes")


async def stop(db: Database, platform: str, prefix: str) -> tuple[int, int]:
    """Mark the scope's users and team chats unreachable; returns how many of each."""
    async with db.transaction() as repo:
        users, chats = await repo.set_scope_reachable(platform, prefix, reachable=False)
    log.info("scope stopped platform=%s users=%d chats=%d", platform, users, chats)
    return users, chats


async def resume(db: Database, platform: str, prefix: str) -> tuple[int, int]:
    """Make the scope's users and team chats reachable again; returns how many of each."""
    async with db.transaction() as repo:
        users, chats = await repo.set_scope_reachable(platform, prefix, reachable=True)
    log.info("scope resumed platform=%s users=%d chats=%d", platform, users, chats)
    return users, chats


async def adopt_unscoped(db: Database, platform: str, prefix: str, separator: str) -> int:
    """Give every unscoped id of `platform` the scope `prefix`; returns rows changed."""
    async with db.transaction() as repo:
        changed = await repo.scope_unscoped_ids(platform, prefix, separator)
    if changed:
        log.info("unscoped rows adopted platform=%s rows=%d", platform, changed)
    return changed
