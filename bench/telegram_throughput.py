"""Benchmark 2: Telegram end to end, at a real round trip per Bot API call.

Two processes, so the bot is charged only for its own work:
- the bot: the real `hipcoach run` (`python -m bot.cli run`), configured the way an operator
  does (DATABASE_URL, TELEGRAM_BOT_TOKEN, TELEGRAM_API_URL pointing at the fake). It runs the
  real polling loop, Coach and database path, and the real scheduler beside them (its
  dispatcher on the product's default cadence; HIPCOACH_TICK_SECONDS=3600 so that no
  runner's own reminder falls due in the middle of a run);
- this process: a fake Bot API (bench/fake_telegram_limits.py on 127.0.0.1, with a round
  trip of `--rtt-ms` per call: half before the call "arrives", half before the bot gets the
  answer) and the driver that queues updates and checks what arrives.
The bot's CPU is read from /proc/<pid>/stat (user + system, all threads).

Runners are onboarded once through the Coach (a template), then copied. Each runner's
script: /checkin, six taps through the check-in, /today, free text, /help. A lone reference
runner first goes through the script closed-loop; its replies are what every runner must get.

Scenario `throughput` (run at 0 ms and at `--rtt-ms`, default 30 ms): every runner's whole
script is queued at once, interleaved across runners (a club answering the 7:30 check-in).
- handled/s = updates / (first queued -> every update handled). An update counts as handled
  when the bot has confirmed it to the fake (a getUpdates offset past it) *and* its dedup
  record is committed (the processed_events row): answer committed, reply sent or queued.
  If the bot confirms updates before committing them, that is reported as an error;
- bot CPU per update = the bot process's CPU from the first update queued until the last
  reply arrived, divided by the updates (replies and their retries included);
- per-chat order: every runner's replies must be exactly the reference runner's, in the same
  order (a reordered or interleaved turn shows up as a different question, a re-prompt for
  a stale button, or texts out of order);
- reply latency: update queued -> the last reply it caused arriving at the fake (p50/p99).
  This fake counts Telegram's flood limits but does not refuse (figures reported as info).

Scenario `burst`: 10,000 reminders (`--reminders`) are queued in the outbox at once, the
fake enforces Telegram's limits (30 messages/s overall, 1/s per chat, 20/min per group:
429 with retry_after, counted as violations), and once the dispatcher is under way
`--burst-runners` runners (default 30) go through their script closed-loop, 1-3 s of
thinking between taps. Figures: reply latency from each runner's update to the last reply
it caused arriving at the fake (p99 target <= 2 s), limit violations while the bot ran
(target 0), and the reminders delivered meanwhile. The run ends when the runners are done
(the queue still holds most reminders then; they are removed before the next run).

Each run starts a fresh bot process on the same database with fresh runners; figures are
medians of `--runs` runs (default 3) and the targets are judged on them.

    .venv/bin/python -m bench.telegram_throughput [--runs 3] [--users 200] [--rtt-ms 30]
        [--db sqlite|postgresql] [--scenarios throughput,burst] [--reminders 10000]
        [--burst-runners 30] [--quick]

Figures are for a shared machine: read them with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import math
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select

from bench._common import (
    Target,
    add_runs_argument,
    die_with_parent,
    machine_note,
    median,
    percentile,
    print_table,
    print_targets,
    proc_cpu_seconds,
    scratch_pg,
    scratch_sqlite,
)
from bench.fake_telegram_limits import LimitedTelegram
from bot.engine.events import Button, Outbound
from bot.service import Coach
from bot.storage.db import Database
from bot.storage.models import OutboxMessage, ProcessedEvent, User
from scheduler.payload import encode
from tests.chat_driver import Chat
from tests.fake_telegram import TOKEN, Call, Sent
from tests.test_scheduler_helpers import setup_runner

ROOT = Path(__file__).resolve().parent.parent

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
USER_BASE = 700_000_000
REMINDER_CHAT_BASE = 900_000_000
STALL_SECONDS = 60.0  # no progress for this long ends a run as stalled
STEP_TIMEOUT = 30.0  # a closed-loop runner gives up waiting for one reply after this
QUIET_SECONDS = 1.5  # the reference runner's turn is over after this long without a call
THROUGHPUT_TARGET = 300.0  # updates/s handled at the target round trip
CPU_TARGET_MS = 3.0  # bot CPU per update
BURST_P99_TARGET_S = 2.0
PAIN = tuple(Button(str(n), f"9:{n}") for n in range(11))


# --- the fake Bot API -----------------------------------------------------------------------


@dataclass
class Record:
    at: float
    method: str
    chat_id: int | None
    text: str
    message_id: int | None


class BenchTelegram(LimitedTelegram):
    """The limit-counting fake plus what the driver needs: message ids numbered per chat
    (as in Telegram private chats), incoming messages numbered apart from the bot's, a
    timestamp on every call the bot makes, and the getUpdates offset the bot confirmed."""

    def __init__(self, *, rtt: float, enforce: bool) -> None:
        super().__init__(clock=time.perf_counter, rtt=rtt, enforce=enforce)
        self.per_chat_ids = True
        self.records: list[Record] = []
        self.per_chat: dict[int, list[Record]] = defaultdict(list)
        self.answered_at: dict[str, float] = {}
        self._incoming = itertools.count(10_000_000)
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self.confirmed = 0  # every update id below this has been confirmed by the bot
        self.confirmed_at = 0.0
        self.confirm_changed = asyncio.Event()
        self.get_updates_calls = 0

    def wait_chat(self, chat_id: int, count: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self.per_chat[chat_id]) >= count:
            future.set_result(None)
        else:
            self._waiters[chat_id] = (count, future)
        return future

    def _note(self, call: Call, message_id: int | None) -> None:
        now = time.perf_counter()
        raw_chat = call.params.get("chat_id")
        chat = int(raw_chat) if raw_chat is not None else None
        query = call.params.get("callback_query_id")
        record = Record(now, call.method, chat, call.text, message_id)
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
        offset = int(call.params.get("offset") or 0)
        if offset > self.confirmed:
            self.confirmed, self.confirmed_at = offset, time.perf_counter()
            self.confirm_changed.set()
        return await super().api_getUpdates(call)

    def message_update(
        self, chat: dict[str, Any], user: dict[str, Any], text: str
    ) -> dict[str, Any]:
        update = super().message_update(chat, user, text)
        update["message"]["message_id"] = next(self._incoming)
        return update

    def chat_replies(self, chat_id: int) -> list[Record]:
        return self.per_chat[chat_id]


# --- the script -------------------------------------------------------------------------------


@dataclass
class Step:
    """One update of the script, resolved against the lone reference runner."""

    action: str  # "send" | "tap"
    text: str  # the text sent, or the button's callback data
    message_id: int | None  # the message whose button is tapped
    replies: list[tuple[str, str]]  # (method, text) of the calls into this chat


def _chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": "Sam"}


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Sam"}


def make_update(fake: BenchTelegram, user_id: int, step: Step) -> dict[str, Any]:
    if step.action == "send":
        return fake.message_update(_chat(user_id), _user(user_id), step.text)
    assert step.message_id is not None
    # Queued before the bot has sent it (burst): per-chat ids make the id the reference's.
    sent = fake.messages.get((user_id, step.message_id)) or Sent(
        user_id, step.message_id, "?", None
    )
    return fake.callback_update(_chat(user_id), _user(user_id), sent, step.text)


def _find_button(fake: BenchTelegram, chat_id: int, label: str) -> tuple[int, str] | None:
    sent = fake.last_keyboard_message(chat_id)
    if sent is None or not sent.markup:
        return None
    for row in sent.markup["inline_keyboard"]:
        for button in row:
            if button["text"] == label and "callback_data" in button:
                return sent.message_id, str(button["callback_data"])
    return None


async def wait_confirmed(fake: BenchTelegram, update_id: int, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while fake.confirmed <= update_id:
        fake.confirm_changed.clear()
        left = deadline - time.perf_counter()
        if left <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fake.confirm_changed.wait(), min(left, 1.0))
    return True


async def reference_script(fake: BenchTelegram, user_id: int) -> list[Step]:
    """Run the script closed-loop for one runner; record what each update produced."""
    steps: list[Step] = []
    for action, value in SCRIPT:
        if action == "tap":
            found = _find_button(fake, user_id, value)
            if found is None:
                raise RuntimeError(f"reference runner: no button {value!r} offered")
            step = Step("tap", found[1], found[0], [])
        else:
            step = Step("send", value, None, [])
        before = len(fake.per_chat[user_id])
        update_id = fake.push(make_update(fake, user_id, step))
        if not await wait_confirmed(fake, update_id, STALL_SECONDS):
            raise RuntimeError("reference runner: the bot never confirmed an update")
        count, quiet_since = -1, time.perf_counter()
        while time.perf_counter() - quiet_since < QUIET_SECONDS:
            if len(fake.per_chat[user_id]) != count:
                count, quiet_since = len(fake.per_chat[user_id]), time.perf_counter()
            await asyncio.sleep(0.05)
        step.replies = [(r.method, r.text) for r in fake.per_chat[user_id][before:]]
        steps.append(step)
    return steps


# --- set-up -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def scratch(db_kind: str) -> AsyncIterator[str]:
    if db_kind == "postgresql":
        async with scratch_pg("bench_tg") as url:
            yield url
    else:
        async with scratch_sqlite("bench_tg") as url:
            yield url


async def onboard(db: Database, users: list[int]) -> None:
    """Onboard one runner through the Coach (the real flow), then copy its row for every
    runner (one executemany), so set-up does not dominate the bench."""
    template_id = USER_BASE - 1
    chat = Chat(Coach(db), user_id=str(template_id), platform="telegram", chat_id=str(template_id))
    await setup_runner(chat, zone="Europe/Berlin", reminder="07:30")
    table = User.__table__
    key = str(template_id)
    async with db.transaction() as repo:
        row = (
            (await repo.session.execute(select(table).where(table.c.platform_user_id == key)))
            .mappings()
            .one()
        )
        template = {k: v for k, v in row.items() if k != "id"}
        rows = [{**template, "platform_user_id": str(u), "chat_id": str(u)} for u in users]
        for start in range(0, len(rows), 5000):
            await repo.session.execute(insert(table), rows[start : start + 5000])


async def processed_count(db: Database, update_ids: list[int]) -> int:
    """How many of these updates have their dedup record committed."""
    total = 0
    async with db.transaction(readonly=True) as repo:
        for start in range(0, len(update_ids), 500):
            chunk = [str(u) for u in update_ids[start : start + 500]]
            result = await repo.session.execute(
                select(func.count())
                .select_from(ProcessedEvent)
                .where(ProcessedEvent.platform == "telegram", ProcessedEvent.event_id.in_(chunk))
            )
            total += int(result.scalar_one())
    return total


def bot_env(url: str, api_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "SLACK_", "DATABASE_URL", "HIPCOACH_"))
    }
    env.update(
        DATABASE_URL=url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api_url,
        HIPCOACH_TICK_SECONDS="3600",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


class BotProcess:
    """`python -m bot.cli run` in its own process, logging to a file."""

    def __init__(self, url: str, fake: BenchTelegram, workdir: Path, n: int) -> None:
        self.url, self.fake, self.workdir = url, fake, workdir
        self.log_path = workdir / f"bot-{n}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        calls_before = self.fake.get_updates_calls
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env=bot_env(self.url, self.fake.api_url),
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            preexec_fn=die_with_parent,
        )
        deadline = time.perf_counter() + 120
        while self.fake.get_updates_calls == calls_before:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot exited early: {self.log_tail()}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"bot never polled: {self.log_tail()}")
            await asyncio.sleep(0.05)

    def cpu(self) -> float:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            for _ in range(600):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    def errors(self) -> int:
        text = self.log_path.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if " ERROR " in line or "Traceback" in line)


# --- scenario: throughput -----------------------------------------------------------------------


@dataclass
class ThroughputRun:
    rtt_ms: float
    updates: int
    handled_s: float
    replies_s: float
    cpu_handled: float
    cpu_all: float
    latencies: list[float]
    order_ok: int
    order_bad: int
    missing: int
    early_confirms: int
    violations: int
    stalled: bool
    examples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.updates / self.handled_s if self.handled_s > 0 else float("nan")

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_all / self.updates

    @property
    def order_kept(self) -> bool:
        return self.order_bad == 0 and not self.stalled


async def run_throughput(
    fake: BenchTelegram,
    bot: BotProcess,
    db: Database,
    users: list[int],
    steps: list[Step],
    rtt: float,
) -> ThroughputRun:
    fake.rtt = rtt
    expected = [r for step in steps for r in step.replies]
    pushed: dict[int, list[tuple[float, str | None]]] = defaultdict(list)
    violations_before = sum(fake.violations.values())
    cpu0 = bot.cpu()
    started = time.perf_counter()
    last_id = 0
    ids: list[int] = []
    for step in steps:
        for user in users:
            update = make_update(fake, user, step)
            query = update.get("callback_query", {}).get("id")
            pushed[user].append((time.perf_counter(), query))
            last_id = fake.push(update)
            ids.append(last_id)
    total = len(users) * len(steps)

    # Handled: confirmed to the fake, and committed (every dedup row is there).
    stalled = not await _wait_progress(lambda: fake.confirmed > last_id, lambda: fake.confirmed)
    handled_at = fake.confirmed_at
    committed = await processed_count(db, ids)
    early = total - committed
    while committed < total and not stalled:
        await asyncio.sleep(0.02)
        committed = await processed_count(db, ids)
        handled_at = time.perf_counter()
        stalled = handled_at - started > STALL_SECONDS * 5
    cpu_handled = bot.cpu() - cpu0

    # Every reply delivered (they may be paced), then order and latency.
    per_user = len(expected)

    def delivered() -> int:
        return sum(min(len(fake.per_chat[u]), per_user) for u in users)

    stalled = stalled or not await _wait_progress(
        lambda: delivered() >= per_user * len(users), delivered
    )
    replies_at = max((fake.per_chat[u][-1].at for u in users if fake.per_chat[u]), default=started)
    cpu_all = bot.cpu() - cpu0
    ok = bad = missing = 0
    latencies: list[float] = []
    examples: list[str] = []
    for user in users:
        records = fake.per_chat[user]
        got = [(r.method, r.text) for r in records]
        if got != expected:
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
        ok += 1
        index = 0
        for step, (pushed_at, query_id) in zip(steps, pushed[user], strict=True):
            index += len(step.replies)
            if step.replies:
                latencies.append(records[index - 1].at - pushed_at)
            elif query_id is not None and query_id in fake.answered_at:
                latencies.append(fake.answered_at[query_id] - pushed_at)
    return ThroughputRun(
        rtt_ms=round(rtt * 1000, 3),
        updates=total,
        handled_s=handled_at - started,
        replies_s=replies_at - started,
        cpu_handled=cpu_handled,
        cpu_all=cpu_all,
        latencies=latencies,
        order_ok=ok,
        order_bad=bad,
        missing=missing,
        early_confirms=early,
        violations=sum(fake.violations.values()) - violations_before,
        stalled=stalled,
        examples=examples,
    )


async def _wait_progress(done: Any, progress: Any) -> bool:
    """Until `done()`; False if `progress()` has not moved for STALL_SECONDS."""
    seen, since = progress(), time.perf_counter()
    while not done():
        await asyncio.sleep(0.005)
        now_seen = progress()
        if now_seen != seen:
            seen, since = now_seen, time.perf_counter()
        elif time.perf_counter() - since > STALL_SECONDS:
            return False
    return True


# --- scenario: replies during a reminder burst ----------------------------------------------


@dataclass
class BurstRun:
    runners: int
    updates: int
    latencies: list[float]  # seconds; inf for a reply that never came
    first_latencies: list[float]
    violations: Counter[str]
    reminders_in_window: int
    window_s: float
    reminders_queued: int
    cpu: float
    order_bad: int

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


async def queue_reminders(db: Database, run: int, count: int) -> None:
    """`count` check-in reminders to distinct private chats, all due now, in one go."""
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        chat = str(REMINDER_CHAT_BASE + run * count + i)
        out = Outbound(
            chat_id=chat,
            text=f"Time for your daily hip check-in (#{i})",
            buttons=(PAIN[:6], PAIN[6:]),
        )
        rows.append(
            {
                "idempotency_key": f"bench-burst:{run}:{i}",
                "platform": "telegram",
                "chat_id": chat,
                "kind": "checkin",
                "payload": encode(out),
                "status": "pending",
                "not_before": now,
                "attempts": 0,
                "created_at": now,
            }
        )
    async with db.transaction() as repo:
        for start in range(0, len(rows), 2000):
            await repo.session.execute(insert(OutboxMessage), rows[start : start + 2000])


async def drop_reminders(db: Database) -> None:
    async with db.transaction() as repo:
        await repo.session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.idempotency_key.like("bench-burst:%"),
                OutboxMessage.status.in_(("pending", "sending")),
            )
        )


def _reminders_delivered(fake: BenchTelegram, since: float) -> int:
    return sum(1 for at, chat, _ in fake.accepted if chat >= REMINDER_CHAT_BASE and at >= since)


async def run_burst(
    fake: BenchTelegram,
    bot: BotProcess,
    db: Database,
    users: list[int],
    steps: list[Step],
    rtt: float,
    run: int,
    reminders: int,
) -> BurstRun:
    fake.rtt = rtt
    fake.enforce = True
    violations_before = Counter(fake.violations)
    cpu0 = bot.cpu()
    queued_at = time.perf_counter()
    await queue_reminders(db, run, reminders)
    # Wait until the dispatcher is well under way (30 reminders delivered).
    deadline = time.perf_counter() + 60
    while _reminders_delivered(fake, queued_at) < 30 and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    window_start = time.perf_counter()
    rng = random.Random(run)
    latencies: list[float] = []
    first: list[float] = []
    bad = 0

    async def runner(user: int, delay: float, think: list[float]) -> None:
        nonlocal bad
        await asyncio.sleep(delay)
        for n, step in enumerate(steps):
            before = len(fake.per_chat[user])
            target = before + len(step.replies)
            update = make_update(fake, user, step)
            query = update.get("callback_query", {}).get("id")
            pushed_at = time.perf_counter()
            fake.push(update)
            try:
                await asyncio.wait_for(fake.wait_chat(user, target), STEP_TIMEOUT)
            except TimeoutError:
                latencies.append(math.inf)
                first.append(math.inf)
                bad += 1
                return  # the rest of this runner's script would be out of step
            got = fake.per_chat[user][before:target]
            if [(r.method, r.text) for r in got] != step.replies:
                bad += 1
            if got:
                latencies.append(got[-1].at - pushed_at)
                first.append(got[0].at - pushed_at)
            elif query is not None and query in fake.answered_at:
                latencies.append(fake.answered_at[query] - pushed_at)
                first.append(latencies[-1])
            await asyncio.sleep(think[n])

    await asyncio.gather(
        *(runner(u, rng.uniform(0, 5), [rng.uniform(1.0, 3.0) for _ in steps]) for u in users)
    )
    window_end = time.perf_counter()
    in_window = sum(
        1
        for at, chat, _ in fake.accepted
        if chat >= REMINDER_CHAT_BASE and window_start <= at <= window_end
    )
    delivered = _reminders_delivered(fake, queued_at)
    cpu = bot.cpu() - cpu0
    await bot.stop()  # violations count until the bot has stopped sending
    violations = Counter(fake.violations)
    violations.subtract(violations_before)
    await drop_reminders(db)
    return BurstRun(
        runners=len(users),
        updates=len(users) * len(steps),
        latencies=latencies,
        first_latencies=first,
        violations=+violations,
        reminders_in_window=in_window,
        window_s=window_end - window_start,
        reminders_queued=reminders - delivered,
        cpu=cpu,
        order_bad=bad,
    )


# --- driver --------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    rtts = sorted({0.0, args.rtt_ms / 1000})
    per_run = len(rtts) * args.users + args.burst_runners
    all_users = [USER_BASE + 1 + i for i in range(per_run * args.runs + 1)]
    ref_user = all_users.pop(0)
    throughput: list[ThroughputRun] = []
    bursts: list[BurstRun] = []
    errors = 0
    async with scratch(args.db) as url:
        workdir = Path(url.split("///")[-1]).parent if args.db == "sqlite" else None
        with contextlib.ExitStack() as stack:
            if workdir is None:
                import tempfile

                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_tg_")))
            db = Database(url)
            fake = BenchTelegram(rtt=0.0, enforce=False)
            await fake.start()
            try:
                t0 = time.perf_counter()
                await onboard(db, [ref_user, *all_users])
                log(f"onboarded {len(all_users) + 1} runners in {time.perf_counter() - t0:.1f}s")
                steps: list[Step] = []
                for run in range(args.runs):
                    users = all_users[run * per_run : (run + 1) * per_run]
                    bot = BotProcess(url, fake, workdir, run)
                    await bot.start()
                    try:
                        if not steps:
                            fake.enforce = False
                            steps = await reference_script(fake, ref_user)
                            log(
                                f"script: {len(steps)} updates, "
                                f"{sum(len(s.replies) for s in steps)} calls into the chat"
                            )
                        if "throughput" in scenarios:
                            for n, rtt in enumerate(rtts):
                                fake.enforce = False
                                group = users[n * args.users : (n + 1) * args.users]
                                result = await run_throughput(fake, bot, db, group, steps, rtt)
                                throughput.append(result)
                                log(
                                    f"run {run + 1} throughput rtt {rtt * 1000:.0f} ms: "
                                    f"{result.rate:.0f} handled/s, {result.cpu_ms:.2f} ms CPU"
                                    f"/update, order {result.order_ok}/{len(group)}"
                                )
                                await asyncio.sleep(0.5)
                        if "burst" in scenarios:
                            group = users[len(rtts) * args.users :]
                            burst = await run_burst(
                                fake,
                                bot,
                                db,
                                group,
                                steps,
                                args.rtt_ms / 1000,
                                run,
                                args.reminders,
                            )
                            bursts.append(burst)
                            log(
                                f"run {run + 1} burst: p99 {burst.p99:.2f}s, "
                                f"violations {dict(burst.violations)}"
                            )
                    finally:
                        await bot.stop()
                        errors += bot.errors()
            finally:
                await fake.stop()
                await db.dispose()
    report(args, rtts, throughput, bursts, errors)
    return 0


def _order(runs: list[ThroughputRun]) -> str:
    return f"{sum(r.order_ok for r in runs)}/{sum(r.order_ok + r.order_bad for r in runs)}"


def _each(runs: list[Any], attr: str, spec: str) -> str:
    return ", ".join(format(getattr(r, attr), spec) for r in runs)


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def report(
    args: argparse.Namespace,
    rtts: list[float],
    throughput: list[ThroughputRun],
    bursts: list[BurstRun],
    errors: int,
) -> None:
    print()
    print(f"Bench 2 — Telegram end to end ({args.db}); the bot: `hipcoach run`, own process")
    print(f"machine: {machine_note()}")
    print(
        f"runs {args.runs} | runners per throughput run {args.users} | "
        f"{len(SCRIPT)} updates per runner | burst: {args.reminders} reminders, "
        f"{args.burst_runners} runners | bot log errors: {errors}"
    )
    targets: list[Target] = []
    if throughput:
        print()
        print("throughput: every runner's script queued at once (medians of runs; per run in ())")
        rows = []
        for rtt in rtts:
            runs = [r for r in throughput if r.rtt_ms == round(rtt * 1000, 3)]
            lat = [percentile(r.latencies, 50) * 1000 for r in runs]
            lat99 = [percentile(r.latencies, 99) * 1000 for r in runs]
            rows.append(
                [
                    f"{rtt * 1000:.0f} ms",
                    f"{runs[0].updates}",
                    f"{median(r.rate for r in runs):.0f} ({_each(runs, 'rate', '.0f')})",
                    f"{median(r.updates / r.replies_s for r in runs):.0f}",
                    f"{median(r.cpu_ms for r in runs):.2f} ({_each(runs, 'cpu_ms', '.2f')})",
                    f"{median(1000 * r.cpu_handled / r.updates for r in runs):.2f}",
                    f"{median(r.updates / r.cpu_all for r in runs):.0f}",
                    f"{median(lat):.0f}",
                    f"{median(lat99):.0f}",
                    _order(runs),
                    f"{sum(r.early_confirms for r in runs)}",
                    f"{sum(r.violations for r in runs)}",
                ]
            )
        print_table(
            [
                "round trip",
                "updates",
                "handled/s",
                "replies done/s",
                "bot CPU ms/update",
                "CPU ms until handled",
                "updates/CPU-s",
                "p50 reply ms",
                "p99 reply ms",
                "order ok",
                "confirmed early",
                "would-be 429s",
            ],
            rows,
        )
        for r in throughput:
            for example in r.examples:
                print(f"  rtt {r.rtt_ms:.0f} ms: {example}")
            if r.stalled:
                print(f"  rtt {r.rtt_ms:.0f} ms: a run STALLED ({STALL_SECONDS:.0f}s, no progress)")
        rtt = args.rtt_ms
        runs = [r for r in throughput if r.rtt_ms == round(rtt, 3)]
        rate = median(r.rate for r in runs)
        cpu = median(r.cpu_ms for r in runs)
        kept = sum(r.order_kept for r in throughput)  # every run, at every round trip
        early = sum(r.early_confirms for r in runs)
        targets += [
            Target(
                f"telegram handled/s at {rtt:.0f} ms round trip",
                f"{rate:.0f} updates/s" + (f" ({early} confirmed uncommitted)" if early else ""),
                f">= {THROUGHPUT_TARGET:.0f} updates/s",
                rate >= THROUGHPUT_TARGET and early == 0,
            ),
            Target(
                "telegram per-chat order",
                f"kept in {kept}/{len(throughput)} runs (all round trips)",
                "every run",
                kept == len(throughput),
            ),
            Target(
                f"telegram bot CPU per update at {rtt:.0f} ms",
                f"{cpu:.2f} ms",
                f"<= {CPU_TARGET_MS:.0f} ms",
                cpu <= CPU_TARGET_MS,
            ),
        ]
    if bursts:
        print()
        print(
            f"burst: {args.reminders} reminders queued, runners answering meanwhile "
            f"(round trip {args.rtt_ms:.0f} ms; the fake refuses what breaks a limit)"
        )
        rows = []
        for n, b in enumerate(bursts, 1):
            rows.append(
                [
                    n,
                    b.updates,
                    f"{percentile(b.first_latencies, 50) * 1000:.0f}",
                    f"{percentile(b.latencies, 50) * 1000:.0f}",
                    f"{b.p99 * 1000:.0f}",
                    f"{max(b.latencies) * 1000:.0f}",
                    sum(1 for x in b.latencies if math.isinf(x)),
                    b.order_bad,
                    dict(b.violations) or 0,
                    f"{b.reminders_in_window / b.window_s:.1f}",
                    b.reminders_queued,
                    f"{1000 * b.cpu / (b.updates + b.reminders_in_window):.2f}",
                ]
            )
        print_table(
            [
                "run",
                "updates",
                "p50 first reply ms",
                "p50 reply ms",
                "p99 reply ms",
                "max ms",
                "never",
                "wrong replies",
                "violations",
                "reminders/s meanwhile",
                "still queued",
                "bot CPU ms/event",
            ],
            rows,
        )
        p99 = median(b.p99 for b in bursts)
        violations = [sum(b.violations.values()) for b in bursts]
        targets += [
            Target(
                "telegram reply p99 during a reminder burst",
                f"{p99:.2f} s (runs {', '.join(f'{b.p99:.2f}' for b in bursts)})",
                f"<= {BURST_P99_TARGET_S:.0f} s",
                p99 <= BURST_P99_TARGET_S,
            ),
            Target(
                "telegram limit violations during a reminder burst",
                f"{median(violations):.0f} (runs {', '.join(str(v) for v in violations)})",
                "0",
                max(violations) == 0,
            ),
        ]
    print(
        "\nnotes: handled = confirmed to the fake and committed; bot CPU = the bot process's"
        " user+system CPU from the first update queued to the last reply delivered, / updates;"
        " 'would-be 429s' = messages that broke a Telegram limit (this scenario's fake lets"
        " them through); burst 'bot CPU ms/event' counts updates and reminders sent."
    )
    print_targets(targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_runs_argument(parser)
    parser.add_argument("--users", type=int, default=200, help="runners per throughput run")
    parser.add_argument("--rtt-ms", type=float, default=30.0, help="round trip per API call")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--scenarios", default="throughput,burst")
    parser.add_argument("--reminders", type=int, default=10_000, help="queued in the burst")
    parser.add_argument("--burst-runners", type=int, default=30)
    parser.add_argument(
        "--quick", action="store_true", help="1 run, 30 runners, 1,000 reminders, 10 in the burst"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.users, args.reminders, args.burst_runners = 1, 30, 1000, 10
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
