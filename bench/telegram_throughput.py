"""Benchmark 2: updates per second through the real Telegram adapter, end to end.

The real `TelegramAdapter` (python-telegram-bot `Application`, long polling) runs against a
local fake Bot API (tests/fake_telegram.py, extended here to time every call and to number
messages per chat like Telegram does). Many runners, already onboarded, each send the same
script of updates — `/checkin`, five or six button taps through the check-in, `/today`, free
text, `/help` — queued into getUpdates. Figures:

- updates/s end to end: all updates / (last reply arriving at the fake - first enqueue);
- reply latency per update: enqueue -> the last API call of its reply (p50 / p99);
- per-user order: every runner's replies must be exactly the replies a lone runner gets
  for the same script, in the same order (a reordered or interleaved turn shows up as a
  different question, a re-prompt for a stale button, or texts out of order).

Two load shapes run back to back:
- `burst`: every runner's whole script is queued at once (open loop; order under
  concurrency is really tested, since one runner's updates are in flight together);
- `closed`: each runner sends its next update as soon as the previous reply arrived
  (N updates in flight; the latency figure that matters).

    .venv/bin/python -m bench.telegram_throughput [--users 200] [--updates-per-user 10]
        [--db sqlite|postgresql] [--quick]

Figures are ratios within one run on a shared machine; no timed assertions anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bench._common import machine_note, percentile, scratch_pg, scratch_sqlite
from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.service import Coach
from bot.storage.db import Database
from tests.chat_driver import Chat
from tests.fake_telegram import TOKEN, Call, FakeTelegram, Sent
from tests.test_scheduler_helpers import setup_runner

# Actions of one runner's script: ("send", text) or ("tap", button label).
SCRIPT: tuple[tuple[str, str], ...] = (
    ("send", "/checkin"),
    ("tap", "2"),
    ("tap", "20 min"),
    ("tap", "1"),
    ("tap", "All fine"),
    ("tap", "None of these"),  # the plan's first day: no exercise questions yet
    ("send", "/today"),
    ("send", "hello"),
    ("send", "/help"),
)
RECORDED = (
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "editMessageText",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
)
USER_BASE = 700_000_000
STALL_SECONDS = 30.0


@dataclass
class Record:
    at: float
    method: str
    chat_id: int | None
    text: str
    message_id: int | None
    query_id: str | None


class TimedFake(FakeTelegram):
    """The tests' fake Bot API, plus: per-chat message ids (as in Telegram private chats),
    incoming messages numbered apart from the bot's, and a timestamp on every reply call."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[Record] = []
        self.per_chat: dict[int, list[Record]] = defaultdict(list)
        self.answered_at: dict[str, float] = {}
        self._chat_ids: dict[int, itertools.count[int]] = {}
        self._incoming = itertools.count(10_000_000)
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self.get_updates_calls = 0
        self.get_me_calls = 0
        self.other_calls: dict[str, int] = defaultdict(int)

    def wait_chat(self, chat_id: int, count: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self.per_chat[chat_id]) >= count:
            future.set_result(None)
        else:
            self._waiters[chat_id] = (count, future)
        return future

    def _note(self, call: Call, message_id: int | None = None) -> None:
        now = time.perf_counter()
        raw_chat = call.params.get("chat_id")
        chat = int(raw_chat) if raw_chat is not None else None
        query = call.params.get("callback_query_id")
        record = Record(now, call.method, chat, call.text, message_id, query)
        self.records.append(record)
        if query is not None:
            self.answered_at[str(query)] = now
        if chat is not None:
            self.per_chat[chat].append(record)
            waiter = self._waiters.get(chat)
            if waiter is not None and len(self.per_chat[chat]) >= waiter[0]:
                del self._waiters[chat]
                if not waiter[1].done():
                    waiter[1].set_result(None)

    async def _timed(self, method: str, call: Call) -> Any:
        result = await getattr(super(), f"api_{method}")(call)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        self._note(call, message_id)
        return result

    async def api_sendMessage(self, call: Call) -> Any:
        return await self._timed("sendMessage", call)

    async def api_sendPhoto(self, call: Call) -> Any:
        return await self._timed("sendPhoto", call)

    async def api_sendDocument(self, call: Call) -> Any:
        return await self._timed("sendDocument", call)

    async def api_editMessageText(self, call: Call) -> Any:
        return await self._timed("editMessageText", call)

    async def api_editMessageReplyMarkup(self, call: Call) -> Any:
        return await self._timed("editMessageReplyMarkup", call)

    async def api_answerCallbackQuery(self, call: Call) -> Any:
        return await self._timed("answerCallbackQuery", call)

    async def api_getUpdates(self, call: Call) -> Any:
        self.get_updates_calls += 1
        return await super().api_getUpdates(call)

    async def api_getMe(self, call: Call) -> Any:
        self.get_me_calls += 1
        return await super().api_getMe(call)

    async def api_getChatMember(self, call: Call) -> Any:
        self.other_calls["getChatMember"] += 1
        return await super().api_getChatMember(call)

    def _store(self, call: Call, text: str, markup: dict[str, Any] | None, kind: str) -> Any:
        chat_id = int(call.params["chat_id"])
        if chat_id in self.blocked:
            return super()._store(call, text, markup, kind)
        counter = self._chat_ids.setdefault(chat_id, itertools.count(1))
        sent = Sent(chat_id, next(counter), text, markup, kind)
        self.messages[(chat_id, sent.message_id)] = sent
        return self._message_json(sent)

    def message_update(
        self, chat: dict[str, Any], user: dict[str, Any], text: str
    ) -> dict[str, Any]:
        update = super().message_update(chat, user, text)
        update["message"]["message_id"] = next(self._incoming)
        return update


# --- the script ---------------------------------------------------------------------------------


@dataclass
class Step:
    """One update of the script, resolved against a lone reference runner."""

    action: str  # "send" | "tap"
    text: str  # the text sent, or the button's callback data
    message_id: int | None  # the message whose button is tapped
    replies: list[tuple[str, str, int | None]]  # (method, text, message id) in this chat


def _chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": "Sam"}


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Sam"}


def make_update(fake: TimedFake, user_id: int, step: Step) -> dict[str, Any]:
    if step.action == "send":
        return fake.message_update(_chat(user_id), _user(user_id), step.text)
    assert step.message_id is not None
    sent = fake.messages.get((user_id, step.message_id)) or Sent(
        user_id, step.message_id, "?", None
    )
    return fake.callback_update(_chat(user_id), _user(user_id), sent, step.text)


def actions(count: int) -> list[tuple[str, str]]:
    return [SCRIPT[i % len(SCRIPT)] for i in range(count)]


async def reference_script(fake: TimedFake, user_id: int, count: int) -> list[Step]:
    """Run the script closed-loop for one runner; record what each update produced."""
    steps: list[Step] = []
    for action, value in actions(count):
        if action == "tap":
            found = _find_button(fake, user_id, value)
            if found is None:  # not offered here: send it as text instead
                action, text, message_id = "send", value, None
            else:
                text, message_id = found[1], found[0]
        else:
            text, message_id = value, None
        step = Step(action, text, message_id, [])
        before = len(fake.per_chat[user_id])
        update_id = fake.push(make_update(fake, user_id, step))
        await _settle(fake, user_id, update_id)
        step.replies = [(r.method, r.text, r.message_id) for r in fake.per_chat[user_id][before:]]
        steps.append(step)
    return steps


def _find_button(fake: TimedFake, chat_id: int, label: str) -> tuple[int, str] | None:
    sent = fake.last_keyboard_message(chat_id)
    if sent is None or not sent.markup:
        return None
    for row in sent.markup["inline_keyboard"]:
        for button in row:
            if button["text"] == label and "callback_data" in button:
                return sent.message_id, str(button["callback_data"])
    return None


async def _settle(fake: TimedFake, chat_id: int, update_id: int) -> None:
    """Wait until the update was fetched and this chat has been quiet for a moment."""
    deadline = time.perf_counter() + STALL_SECONDS
    while any(u["update_id"] <= update_id for u in fake.updates):
        await asyncio.sleep(0.005)
    count = -1
    while count != len(fake.per_chat[chat_id]):
        count = len(fake.per_chat[chat_id])
        await asyncio.sleep(0.15)
        if time.perf_counter() > deadline:
            raise RuntimeError("reference runner stalled")


# --- runs ---------------------------------------------------------------------------------------


@dataclass
class RunResult:
    shape: str
    updates: int
    seconds: float
    latencies: list[float]
    order_ok: int
    order_bad: int
    missing: int
    examples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds > 0 else float("nan")


def _expected(steps: list[Step]) -> list[tuple[str, str]]:
    return [(method, text) for step in steps for method, text, _ in step.replies]


def _check(
    fake: TimedFake,
    users: list[int],
    steps: list[Step],
    pushed: dict[int, list[tuple[float, str | None]]],
    shape: str,
    started: float,
) -> RunResult:
    expected = _expected(steps)
    latencies: list[float] = []
    ok = bad = missing = 0
    examples: list[str] = []
    last = started
    for user in users:
        records = [r for r in fake.per_chat[user] if r.method != "answerCallbackQuery"]
        got = [(r.method, r.text) for r in records]
        if records:
            last = max(last, records[-1].at)
        if got == expected:
            ok += 1
        else:
            bad += 1
            missing += max(0, len(expected) - len(got))
            if len(examples) < 3:
                where = next(
                    (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                    min(len(got), len(expected)),
                )
                examples.append(
                    f"user {user}: first difference at reply {where} "
                    f"(got {len(got)} replies, expected {len(expected)})"
                )
            continue
        # Same replies in the same order: attribute them to updates by the reference counts.
        index = 0
        for step, (pushed_at, query_id) in zip(steps, pushed[user], strict=True):
            chat_calls = [r for r in step.replies if r[0] != "answerCallbackQuery"]
            index += len(chat_calls)
            if chat_calls:
                done = records[index - 1].at
            elif query_id is not None and query_id in fake.answered_at:
                done = fake.answered_at[query_id]
            else:
                continue
            latencies.append(done - pushed_at)
    return RunResult(
        shape, len(users) * len(steps), last - started, latencies, ok, bad, missing, examples
    )


async def run_burst(
    fake: TimedFake, users: list[int], steps: list[Step], grouped: bool
) -> RunResult:
    """Every runner's whole script queued at once (interleaved across runners, or grouped:
    one runner's updates back to back)."""
    pushed: dict[int, list[tuple[float, str | None]]] = defaultdict(list)
    updates = [
        (user, step)
        for user, step in (
            ((u, s) for u in users for s in steps)
            if grouped
            else ((u, s) for s in steps for u in users)
        )
    ]
    expected_calls = sum(len(s.replies) for s in steps)
    started = time.perf_counter()
    for user, step in updates:
        update = make_update(fake, user, step)
        query = update.get("callback_query", {}).get("id")
        pushed[user].append((time.perf_counter(), query))
        fake.push(update)
    await _wait_all(fake, users, expected_calls)
    return _check(fake, users, steps, pushed, "burst-grouped" if grouped else "burst", started)


async def run_closed(fake: TimedFake, users: list[int], steps: list[Step]) -> RunResult:
    """Each runner sends its next update when the previous reply has arrived."""
    pushed: dict[int, list[tuple[float, str | None]]] = defaultdict(list)

    async def runner(user: int) -> None:
        target = len(fake.per_chat[user])
        for step in steps:
            target += len(step.replies)
            update = make_update(fake, user, step)
            query = update.get("callback_query", {}).get("id")
            pushed[user].append((time.perf_counter(), query))
            fake.push(update)
            await asyncio.wait_for(fake.wait_chat(user, target), STALL_SECONDS)

    started = time.perf_counter()
    results = await asyncio.gather(*(runner(u) for u in users), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    result = _check(fake, users, steps, pushed, "closed", started)
    if failures:
        result.examples.append(f"{len(failures)} runners stalled ({type(failures[0]).__name__})")
    return result


async def _wait_all(fake: TimedFake, users: list[int], per_user: int) -> None:
    """Until every runner has all its replies, or nothing has arrived for a while."""
    seen, quiet_since = -1, time.perf_counter()
    while True:
        done = sum(min(len(fake.per_chat[u]), per_user) for u in users)
        if done >= per_user * len(users):
            return
        if done != seen:
            seen, quiet_since = done, time.perf_counter()
        elif time.perf_counter() - quiet_since > STALL_SECONDS:
            return
        await asyncio.sleep(0.01)


# --- set-up -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def scratch(db_kind: str) -> AsyncIterator[str]:
    if db_kind == "postgresql":
        async with scratch_pg("bench_tg") as url:
            yield url
    else:
        async with scratch_sqlite("bench_tg") as url:
            yield url


async def onboard(coach: Coach, users: list[int], parallel: int = 8) -> None:
    """Onboard runners straight through the service (no Telegram traffic), all the same way."""
    gate = asyncio.Semaphore(parallel)

    async def one(user: int) -> None:
        async with gate:
            chat = Chat(coach, user_id=str(user), platform="telegram", chat_id=str(user))
            await setup_runner(chat, zone="Europe/Berlin", reminder="07:30")

    await asyncio.gather(*(one(u) for u in users))


def _summary(result: RunResult) -> list[str]:
    lat = sorted(result.latencies)
    p50 = percentile(lat, 50) * 1000
    p99 = percentile(lat, 99) * 1000
    return [
        result.shape,
        str(result.updates),
        f"{result.seconds:.2f}",
        f"{result.rate:.0f}",
        f"{p50:.1f}",
        f"{p99:.1f}",
        f"{result.order_ok}/{result.order_ok + result.order_bad}",
        str(result.missing),
    ]


async def main_async(args: argparse.Namespace) -> int:
    users_n, per_user = args.users, args.updates_per_user
    async with scratch(args.db) as url:
        db = Database(url)
        fake = TimedFake()
        await fake.start()
        adapter = TelegramAdapter(
            Settings(database_url=url, telegram_bot_token=TOKEN, telegram_api_url=fake.api_url),
            Coach(db),
        )
        try:
            ref_user = USER_BASE
            shapes = args.shapes.split(",")
            all_users = [USER_BASE + 1 + i for i in range(users_n * len(shapes))]
            t0 = time.perf_counter()
            await onboard(adapter.coach, [ref_user, *all_users])
            print(
                f"onboarded {len(all_users) + 1} runners in {time.perf_counter() - t0:.1f}s",
                file=sys.stderr,
            )
            await adapter.start_polling()
            steps = await reference_script(fake, ref_user, per_user)
            print(
                f"script ({len(steps)} updates, {sum(len(s.replies) for s in steps)} API calls): "
                + ", ".join(f"{s.action}:{s.text}" for s in steps),
                file=sys.stderr,
            )
            results = []
            for n, shape in enumerate(shapes):
                users = all_users[n * users_n : (n + 1) * users_n]
                if shape == "closed":
                    result = await run_closed(fake, users, steps)
                else:
                    result = await run_burst(fake, users, steps, grouped=shape == "grouped")
                results.append(result)
                await asyncio.sleep(0.3)
        finally:
            await adapter.stop()
            await fake.stop()
            await db.dispose()

    print(f"# bench 2 — Telegram end to end ({args.db}); {machine_note()}")
    print(
        f"runners={users_n} updates/runner={len(steps)} "
        f"getUpdates calls={fake.get_updates_calls} getMe calls={fake.get_me_calls} "
        f"other={dict(fake.other_calls)}"
    )
    headers = [
        "shape",
        "updates",
        "seconds",
        "updates/s",
        "p50 ms",
        "p99 ms",
        "order ok",
        "missing",
    ]
    rows = [_summary(r) for r in results]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in results:
        for example in r.examples:
            print(f"  {r.shape}: {example}")
    best = max(r.rate for r in results)
    print(f"target >= 300 updates/s: {'met' if best >= 300 else 'MISSED'} (best {best:.0f})")
    return 0 if all(r.order_bad == 0 for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--updates-per-user", type=int, default=len(SCRIPT))
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--shapes",
        default="burst,grouped,closed",
        help="comma list of burst (interleaved), grouped (one runner's updates back to back), "
        "closed (one update in flight per runner)",
    )
    parser.add_argument("--quick", action="store_true", help="40 runners, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.users = min(args.users, 40)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
