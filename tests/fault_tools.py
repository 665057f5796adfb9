"""Helpers for the fault suite (tests/test_faults*.py); no tests in here.

- `TcpProxy`: a small asyncio TCP proxy put between the app and PostgreSQL. `cut()` drops
  every open connection and refuses new ones (what clients see while the server restarts);
  `restore()` accepts again on the same port.
- `FaultyTelegram`: the fake Bot API with scripted faults per method (429 with retry_after,
  5xx, a read timeout), a storm of faults on a clock the test moves, a gate that holds a
  method's requests (an update "in flight"), and a switch that keeps getUpdates from
  confirming (the confirming request never arrives).
- `Hipcoach`: `python -m bot.cli <command>` in a subprocess with its log in a file, killed
  with SIGKILL or stopped with SIGTERM.
- `wait_until`: a bounded wait for a condition (the bound only turns a hang into a failure;
  no test asserts on timing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from sqlalchemy.engine import make_url

from tests.fake_telegram import TOKEN, ApiError, Call, FakeTelegram, Sent

ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 60.0
# Longer than python-telegram-bot's default read timeout (5 s): the client gives up first.
TIMEOUT_STALL_SECONDS = 6.0


async def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    process: Hipcoach | None = None,
    timeout: float = WAIT_SECONDS,
) -> None:
    """Poll `condition` until it holds; fail (with the process log) if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if process is not None and process.returncode is not None:
            raise AssertionError(f"hipcoach exited while waiting for {what}:\n{process.log()}")
        if loop.time() > deadline:
            log = process.log() if process is not None else ""
            raise AssertionError(f"gave up waiting for {what}\n{log}")
        await asyncio.sleep(0.05)


# --- a TCP proxy that can emulate a database restart ------------------------------------------


class TcpProxy:
    """127.0.0.1:<port> -> target. While cut, open connections are dropped and new ones are
    refused (the listening socket is closed), as during a PostgreSQL restart."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or 5432)

    def url_through(self, url: str) -> str:
        """`url` with its host and port replaced by this proxy's."""
        return (
            make_url(url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Drop every connection and refuse new ones until `restore()`."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def stop(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            for w in (writer, up_writer):
                self._writers.discard(w)
                with contextlib.suppress(Exception):
                    w.transport.abort()
            self._tasks.difference_update(pumps)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


# --- the fake Bot API with faults ---------------------------------------------------------------


class Timeout:
    """A scripted fault: hold the request longer than the client waits, never handle it."""

    def __repr__(self) -> str:
        return "Timeout()"


TIMEOUT = Timeout()
Fault = ApiError | Timeout


def too_many_requests(retry_after: int = 1) -> ApiError:
    return ApiError(
        f"Too Many Requests: retry after {retry_after}", 429, {"retry_after": retry_after}
    )


def server_error(code: int = 500) -> ApiError:
    return ApiError("Internal Server Error" if code == 500 else "Bad Gateway", code)


class FaultyTelegram(FakeTelegram):
    """FakeTelegram plus scripted faults, held requests and unconfirmed getUpdates."""

    def __init__(self) -> None:
        super().__init__()
        self.faults: dict[str, list[Fault]] = {}  # method -> faults for its next calls
        self.down: list[Fault] | None = None  # while set: every send fails, cycling these
        self.faults_served: Counter[str] = Counter()  # per method
        self.codes_served: Counter[int] = Counter()  # per HTTP status (0: a timeout)
        # method -> closed gate holding its calls (sendMessage and editMessageText)
        self.gates: dict[str, asyncio.Event] = {}
        self.held: Counter[str] = Counter()  # requests that reached a closed gate
        self.served: list[int] = []  # update ids handed out by getUpdates, in order
        self.freeze_after: int | None = None  # once this update is served, stop confirming
        self.frozen_polls = 0  # getUpdates requests that were not allowed to confirm
        self._down_calls = 0
        # A storm on a clock the test moves: (from, until, fault) windows for sends/edits.
        self._storm: tuple[Callable[[], datetime], list[tuple[datetime, datetime, Fault]]] | None
        self._storm = None

    # --- controls ----------------------------------------------------------------------------

    def hold(self, method: str) -> None:
        self.gates[method] = asyncio.Event()

    def release(self, method: str) -> None:
        gate = self.gates.pop(method, None)
        if gate is not None:
            gate.set()

    def storm(self, clock: Callable[[], datetime], plan: list[tuple[timedelta, Fault]]) -> None:
        """From the clock's now on, every send and edit fails with the fault of the window
        it falls in, e.g. [(30 s, 429), (30 s, 500)]; after the last window all goes well."""
        windows, start = [], clock()
        for length, fault in plan:
            windows.append((start, start + length, fault))
            start += length
        self._storm = (clock, windows)

    def unfreeze(self) -> None:
        self.freeze_after = None

    @property
    def frozen(self) -> bool:
        return self.freeze_after is not None and self.freeze_after in self.served

    # --- the server ----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = self.method_of(request)
        fault = self._next_fault(method)
        if fault is None:
            return await super()._dispatch(request)
        self.faults_served[method] += 1
        self.codes_served[fault.code if isinstance(fault, ApiError) else 0] += 1
        if isinstance(fault, Timeout):
            await asyncio.sleep(TIMEOUT_STALL_SECONDS)
            fault = server_error(504)  # nobody reads this: the client has given up
        body: dict[str, Any] = {
            "ok": False,
            "error_code": fault.code,
            "description": fault.description,
        }
        if fault.parameters:
            body["parameters"] = fault.parameters
        return web.json_response(body, status=fault.code)

    def _next_fault(self, method: str) -> Fault | None:
        if method in ("getUpdates", "getMe", "answerCallbackQuery"):
            return None
        if self._storm is not None and method.startswith(("send", "edit")):
            clock, windows = self._storm
            now = clock()
            for start, end, fault in windows:
                if start <= now < end:
                    return fault
        if self.down is not None and method.startswith(("send", "edit")):
            fault = self.down[self._down_calls % len(self.down)]
            self._down_calls += 1
            return fault
        queued = self.faults.get(method)
        return queued.pop(0) if queued else None

    async def _gate(self, method: str) -> None:
        # Called once the request has been read: Telegram has it, even if the client dies.
        gate = self.gates.get(method)
        if gate is not None:
            self.held[method] += 1
            await gate.wait()

    async def api_sendMessage(self, call: Call) -> Any:
        await self._gate("sendMessage")
        return await super().api_sendMessage(call)

    async def api_editMessageText(self, call: Call) -> Any:
        await self._gate("editMessageText")
        return await super().api_editMessageText(call)

    async def api_answerCallbackQuery(self, call: Call) -> Any:
        # Answered after the turn commits and before its replies are sent: holding it
        # stops a process right between the two.
        await self._gate("answerCallbackQuery")
        return await super().api_answerCallbackQuery(call)

    async def api_getUpdates(self, call: Call) -> Any:
        if self.frozen:
            # The confirming request (offset = last id + 1) never reaches Telegram.
            self.frozen_polls += 1
            await asyncio.sleep(0.2)
            return []
        result = await super().api_getUpdates(call)
        self.served.extend(int(u["update_id"]) for u in result)
        return result

    # --- reading ----------------------------------------------------------------------------

    def delivered(self, chat_id: int) -> list[Sent]:
        """Messages that really reached the chat (failed calls store nothing)."""
        return [m for (chat, _), m in self.messages.items() if chat == chat_id]

    def delivered_texts(self, chat_id: int, needle: str = "") -> list[str]:
        return [m.text for m in self.delivered(chat_id) if needle in m.text]

    def button_data(self, chat_id: int, label: str) -> tuple[Sent, str]:
        """The newest message in the chat with a button `label`, and its callback data."""
        for sent in reversed(self.delivered(chat_id)):
            for row in (sent.markup or {}).get("inline_keyboard", []):
                for button in row:
                    if button.get("text") == label and "callback_data" in button:
                        return sent, str(button["callback_data"])
        raise AssertionError(f"no button {label!r} in chat {chat_id}")

    def tap(self, chat_id: int, label: str, name: str = "Sam") -> int:
        """Queue a tap on the newest `label` button in a private chat; returns the update id."""
        sent, data = self.button_data(chat_id, label)
        chat = {"id": chat_id, "type": "private", "first_name": name}
        user = {"id": chat_id, "is_bot": False, "first_name": name}
        return self.push(self.callback_update(chat, user, sent, data))

    def say(self, chat_id: int, text: str, name: str = "Sam") -> int:
        chat = {"id": chat_id, "type": "private", "first_name": name}
        user = {"id": chat_id, "is_bot": False, "first_name": name}
        return self.push(self.message_update(chat, user, text))


# --- hipcoach in a subprocess ---------------------------------------------------------------------


def hipcoach_env(
    database_url: str, fake: FakeTelegram | None = None, **extra: str
) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, **extra}
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_URL",
        "TELEGRAM_WEBHOOK_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
    ):
        if name not in extra:
            env.pop(name, None)
    if fake is not None:
        env["TELEGRAM_BOT_TOKEN"] = TOKEN
        env["TELEGRAM_API_URL"] = fake.api_url
    return env


class Hipcoach:
    """`python -m bot.cli <command>` with its output in a log file."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> Hipcoach:
        self._log = self.log_path.open("ab")
        self._log.write(f"\n--- hipcoach {self.command} ---\n".encode())
        self._log.flush()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            self.command,
            cwd=str(ROOT),
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        return self

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    def log(self, tail: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-tail:]
        return ""

    async def wait_exit(self, timeout: float = WAIT_SECONDS) -> int:
        """Wait until the process ends by itself; its exit code."""
        assert self._process is not None
        try:
            return await asyncio.wait_for(self._process.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"hipcoach did not exit:\n{self.log()}") from None

    async def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or confirmed."""
        assert self._process is not None
        if self._process.returncode is None:
            os.kill(self._process.pid, signal.SIGKILL)
        await self._process.wait()
        self._close_log()

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 15)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def sqlite_write_lock(url: str) -> Iterator[None]:
    """Hold SQLite's write lock (BEGIN IMMEDIATE) from outside the app: its next write
    transaction waits (busy timeout) until the block ends."""
    path = make_url(url).database
    assert path
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()
