"""A fake Telegram Bot API that ENFORCES Telegram's flood limits and counts violations.

Built on the tests' fake (tests/fake_telegram.py). Every message the bot sends
(sendMessage, sendPhoto, sendDocument) is checked on arrival, by the server's own clock:

- overall: at most 30 messages in any 1-second window;
- per chat: at least 1 second between two messages to one chat;
- per group (negative chat id): at most 20 messages in any 60-second window.

A message that would break a limit is refused with HTTP 429 and
`parameters.retry_after` (whole seconds, as Telegram does), is not delivered, and counts
as a violation of that kind (`enforce=False` only counts it and delivers the message).
Accepted messages are recorded with their arrival time, so rates, duplicates and losses
can be computed afterwards.

Every Bot API call takes a round trip of `rtt` seconds (default 0): half before the
request "arrives" (when the limits are checked), half before the answer reaches the bot,
as over a real network. getUpdates holds a long poll open for the timeout the bot asks for
(as Telegram does), returning as soon as an update is queued.

Run it in its own process (so its CPU and event loop do not disturb the bot's timing):

    .venv/bin/python -m bench.fake_telegram_limits [--port 0] [--rtt-ms 30]

prints `PORT <n>` once listening; `GET /_stats` returns the figures as JSON and
`POST /_reset` forgets everything recorded. It can also be used in-process
(`LimitedTelegram().start()`), like the tests' fake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import signal
import sys
import time
from collections import Counter, defaultdict, deque
from typing import Any

from aiohttp import web

from tests.fake_telegram import ApiError, Call, FakeTelegram, Sent

OVERALL_PER_SECOND = 30
PER_CHAT_SECONDS = 1.0
GROUP_PER_MINUTE = 20


class FloodLimited(ApiError):
    def __init__(self, kind: str, retry_after: int) -> None:
        super().__init__(f"Too Many Requests: retry after {retry_after}", 429)
        self.kind = kind
        self.retry_after = retry_after


MAX_LONG_POLL = 25.0  # seconds a getUpdates long poll is held at most


class LimitedTelegram(FakeTelegram):
    def __init__(
        self, clock: Any = time.monotonic, *, rtt: float = 0.0, enforce: bool = True
    ) -> None:
        super().__init__()
        self.clock = clock
        self.rtt = rtt
        self.enforce = enforce
        # Number the bot's messages per chat, as Telegram does in private chats (so a runner
        # can tap a button of a message that has not been sent yet in a burst).
        self.per_chat_ids = False
        self.reset()

    def reset(self) -> None:
        self.calls.clear()
        self.messages.clear()
        self.accepted: list[tuple[float, int, str]] = []  # (arrival, chat, text)
        self.violations: Counter[str] = Counter()
        self._window: deque[float] = deque()
        self._last_in_chat: dict[int, float] = {}
        self._group_windows: dict[int, deque[float]] = defaultdict(deque)
        self._chat_ids: dict[int, itertools.count[int]] = {}

    # --- limits -------------------------------------------------------------------------------

    def _admit(self, chat_id: int) -> None:
        now = self.clock()
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= OVERALL_PER_SECOND:
            raise FloodLimited("overall", 1)
        last = self._last_in_chat.get(chat_id)
        if last is not None and now - last < PER_CHAT_SECONDS:
            raise FloodLimited("per_chat", max(1, math.ceil(PER_CHAT_SECONDS - (now - last))))
        if chat_id < 0:
            group = self._group_windows[chat_id]
            while group and group[0] <= now - 60.0:
                group.popleft()
            if len(group) >= GROUP_PER_MINUTE:
                raise FloodLimited("group", max(1, math.ceil(group[0] + 60.0 - now)))
            group.append(now)
        window.append(now)
        self._last_in_chat[chat_id] = now

    def _store(self, call: Call, text: str, markup: dict[str, Any] | None, kind: str) -> Any:
        chat_id = int(call.params["chat_id"])
        if chat_id in self.blocked:
            raise ApiError("Forbidden: bot was blocked by the user", 403)
        try:
            self._admit(chat_id)
        except FloodLimited as error:
            self.violations[error.kind] += 1
            if self.enforce:
                raise
            self._record_arrival(chat_id)
        if self.per_chat_ids:
            message_id = next(self._chat_ids.setdefault(chat_id, itertools.count(1)))
        else:
            message_id = next(self._message_ids)
        sent = Sent(chat_id, message_id, text, markup, kind)
        self.messages[(chat_id, message_id)] = sent
        self.accepted.append((self.clock(), chat_id, text))
        return self._message_json(sent)

    def _record_arrival(self, chat_id: int) -> None:
        """A message let through despite a limit (enforce=False) still counts for the
        windows, as it would for Telegram."""
        now = self.clock()
        self._window.append(now)
        self._last_in_chat[chat_id] = now
        if chat_id < 0:
            self._group_windows[chat_id].append(now)

    async def _dispatch(self, request: web.Request) -> web.Response:
        if self.rtt > 0:
            await asyncio.sleep(self.rtt / 2)
        response = await super()._dispatch(request)
        if response.status == 429:
            # The base fake always says retry_after 1; say what this limit really needs.
            retry = self._pending_retry
            if retry is not None:
                body = {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry}",
                    "parameters": {"retry_after": retry},
                }
                response = web.json_response(body, status=429)
        if self.rtt > 0:
            await asyncio.sleep(self.rtt / 2)
        return response

    async def api_getUpdates(self, call: Call) -> Any:
        """Like Telegram: hold the long poll open for the requested timeout (the tests'
        fake gives up after 0.5 s, which would make an idle bot poll twice a second)."""
        offset = int(call.params.get("offset") or 0)
        timeout = min(float(call.params.get("timeout") or 0), MAX_LONG_POLL)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout=timeout)
        limit = int(call.params.get("limit") or 100)
        return [u for u in self.updates if u["update_id"] >= offset][:limit]

    _pending_retry: int | None = None

    async def api_sendMessage(self, call: Call) -> Any:
        return await self._limited(super().api_sendMessage, call)

    async def api_sendPhoto(self, call: Call) -> Any:
        return await self._limited(super().api_sendPhoto, call)

    async def api_sendDocument(self, call: Call) -> Any:
        return await self._limited(super().api_sendDocument, call)

    async def _limited(self, handler: Any, call: Call) -> Any:
        self._pending_retry = None
        try:
            return await handler(call)
        except FloodLimited as error:
            self._pending_retry = error.retry_after
            raise

    # --- figures ------------------------------------------------------------------------------

    def stats(self, *, detail: bool = False) -> dict[str, Any]:
        accepted = self.accepted
        per_key = Counter((chat, text) for _, chat, text in accepted)
        per_chat: dict[int, list[float]] = defaultdict(list)
        for at, chat, _ in accepted:
            per_chat[chat].append(at)
        stats: dict[str, Any] = {
            "accepted": len(accepted),
            "violations": dict(self.violations),
            "duplicates": sum(n - 1 for n in per_key.values() if n > 1),
            "chats": len(per_chat),
            "first": accepted[0][0] if accepted else None,
            "last": accepted[-1][0] if accepted else None,
            "max_in_1s": _max_in_window([a for a, _, _ in accepted], 1.0),
            # The shortest time 31 consecutive messages took: under 1 s breaks 30/s.
            "min_span_31": min(
                (b[0] - a[0] for a, b in zip(accepted, accepted[30:], strict=False)),
                default=None,
            ),
            "max_group_in_60s": max(
                (_max_in_window(v, 60.0) for c, v in per_chat.items() if c < 0), default=0
            ),
            "min_chat_gap": min(
                (b - a for v in per_chat.values() for a, b in itertools.pairwise(v)),
                default=None,
            ),
        }
        if detail:
            stats["delivered"] = [[chat, text] for _, chat, text in accepted]
            stats["times"] = [at for at, _, _ in accepted]
            stats["group_times"] = {str(c): v for c, v in per_chat.items() if c < 0}
        return stats


def _max_in_window(times: list[float], width: float) -> int:
    """The most arrivals inside any half-open window (t - width, t]."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - width:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- stand-alone server -----------------------------------------------------------------------


async def serve(port: int, rtt: float = 0.0) -> None:
    fake = LimitedTelegram(rtt=rtt)
    app = web.Application(client_max_size=20 * 1024 * 1024)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(fake.stats(detail=request.query.get("detail") == "1"))

    async def reset(_: web.Request) -> web.Response:
        fake.reset()
        return web.json_response({"ok": True})

    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_route("*", "/bot{token}/{method}", fake._dispatch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fake Bot API enforcing flood limits")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round trip per API call")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.rtt_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
