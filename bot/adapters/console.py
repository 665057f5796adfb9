"""The console adapter: the whole coach in a terminal, or driven by a script on stdin.

Buttons are shown as numbered choices; typing the number or the label presses it. Where
the buttons are themselves numbered (a pain scale, the exercises of today's card), a typed
number is that button, not the n-th choice. A message edited in place (today's card after
an exercise is logged) is printed again. Long lines wrap to the terminal's width. Images
and files are saved to a folder and their paths printed. Log lines never come here: the
`chat` command sends them to a file (bot/cli.py).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.engine import hints
from bot.engine.events import COMMANDS, Button, Inbound, InboundKind, Outbound
from bot.engine.payload import small_int
from bot.service import Coach

QUIT_WORDS = ("quit", "exit", ":q")
MAX_CHOICE_DIGITS = 3  # a numbered choice; longer numbers are text (bounded before int())
COMMAND_PREFIX = ""  # the console reads a bare word as a command


def render_text(text: str) -> str:
    """The engine's text as the console shows it: command hints as bare words."""
    return hints.render(text, COMMAND_PREFIX)


class ConsoleChat:
    """Reads lines, prints replies; also the console's sender for scheduled reminders."""

    platform = "console"

    def __init__(
        self,
        coach: Coach,
        *,
        user_id: str = "local",
        files_dir: Path = Path("hipcoach-files"),
        out: TextIO | None = None,
        width: int | None = None,
    ) -> None:
        self.coach = coach
        self.user_id = user_id
        self.files_dir = files_dir
        self.out = out or sys.stdout
        # None: the terminal's width at each message (COLUMNS, else the real terminal).
        self.width = width
        self.buttons: list[Button] = []
        self.buttons_ref: str | None = None
        self._message_no = 0

    # --- input -----------------------------------------------------------------------------

    def to_inbound(self, line: str) -> Inbound | None:
        text = line.strip()
        if not text:
            return None
        base: dict[str, Any] = {
            "platform": "console",
            "event_id": uuid.uuid4().hex,
            "user_id": self.user_id,
            "chat_id": self.user_id,
        }
        pressed = self._pressed(text)
        if pressed is not None:
            return Inbound(
                **base,
                kind=InboundKind.BUTTON,
                payload=pressed.payload,
                message_ref=self.buttons_ref,
            )
        word, _, args = text.lstrip("/").partition(" ")
        if word.lower() in COMMANDS:
            return Inbound(
                **base, kind=InboundKind.COMMAND, command=word.lower(), text=args.strip()
            )
        return Inbound(**base, kind=InboundKind.TEXT, text=text)

    def _pressed(self, text: str) -> Button | None:
        wanted = text.casefold()
        for button in self.buttons:
            if button.label.casefold() == wanted:
                return button
        # On a scale (0-10, with maybe a "Skipped" beside it) or today's card ("1 ✅", "2")
        # a number is the button of that number itself.
        number = small_int(text, MAX_CHOICE_DIGITS)
        if number is None:
            return None
        if any(_numbered(b.label) for b in self.buttons):
            return next((b for b in self.buttons if _numbered(b.label) == str(number)), None)
        if 1 <= number <= len(self.buttons):
            return self.buttons[number - 1]
        return None

    # --- output ----------------------------------------------------------------------------

    def show(self, replies: list[Outbound]) -> None:
        for reply in replies:
            reply = replace(reply, text=render_text(reply.text))
            if reply.edit_ref is not None and not reply.buttons:
                # An answered question: the chosen answer under it is enough.
                answer = reply.text.rsplit("\n", 1)[-1]
                self._print(self._wrap(f"  {answer}"))
                continue
            self._message_no += 1
            self._print("")
            self._print(self._wrap(_indent(reply.text)))
            if reply.attachment is not None:
                path = self._save(reply.attachment.filename, reply.attachment.data)
                self._print(f"  [file saved: {path}]")
            if reply.buttons:
                self.buttons = reply.flat_buttons
                self.buttons_ref = str(self._message_no)
                self._print(self._wrap(_choices(reply.buttons)))

    async def send(self, message: Outbound) -> None:
        """The sender for replies and for messages the bot starts itself (reminders)."""
        self.show([message])

    def _save(self, filename: str, data: bytes) -> Path:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
        path = (self.files_dir / f"{stamp}-{safe}").resolve()
        path.write_bytes(data)
        return path

    def _wrap(self, text: str) -> str:
        """Each line wrapped to the terminal, continuing under its own indent."""
        width = self.width or shutil.get_terminal_size((80, 24)).columns
        width = max(width, 20)
        out: list[str] = []
        for line in text.split("\n"):
            if len(line) <= width:
                out.append(line)
                continue
            body = line.lstrip(" ")
            indent = " " * (len(line) - len(body))
            hang = indent + " " * _hanging(body)
            out.extend(
                textwrap.wrap(
                    body,
                    width=width,
                    initial_indent=indent,
                    subsequent_indent=hang,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
                or [line]
            )
        return "\n".join(out)

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --- loop ------------------------------------------------------------------------------

    async def type_line(self, line: str) -> list[Outbound]:
        inbound = self.to_inbound(line)
        if inbound is None:
            return []
        # Each reply is shown as it is sent; the coach has stored it first.
        return await self.coach.handle(inbound, send=self.send)

    async def run(self, read_line: Callable[[], str], *, prompt: bool) -> None:
        if prompt:
            self._print("hipcoach — type start to begin, help for commands, quit to leave.")
        while True:
            if prompt:
                print("\nyou> ", end="", file=self.out, flush=True)
            line = await asyncio.to_thread(read_line)
            if line == "":  # end of input
                break
            if line.strip().lower() in QUIT_WORDS:
                break
            if not prompt and line.strip():
                self._print(f"\nyou> {line.strip()}")
            await self.type_line(line)


def _indent(text: str) -> str:
    return "\n".join(f"  {row}" if row else "" for row in text.split("\n"))


def _choices(rows: tuple[tuple[Button, ...], ...]) -> str:
    """Numbered choices; rows of several short buttons (like log buttons) share a line."""
    flat = [b for row in rows for b in row]
    if any(_numbered(b.label) for b in flat):
        # A scale: type the number (or the label of a button beside it).
        return "  " + " ".join(f"[{b.label}]" for b in flat)
    lines, n = [], 0
    for row in rows:
        cells = []
        for button in row:
            n += 1
            cells.append(f"{n}) {button.label}")
        wide = len(row) > 2
        lines.extend(["  " + "   ".join(cells)] if wide else [f"  {c}" for c in cells])
    return "\n".join(lines)


def _numbered(label: str) -> str | None:
    """The number a button is labelled with ("7", "2 ✅"), if it starts with one."""
    first = label.split(" ", 1)[0]
    return first if first.isascii() and first.isdigit() else None


def _hanging(body: str) -> int:
    """How far a wrapped list line continues in: past "• ", "3. " or "2) "."""
    match = re.match(r"(?:[•\-*]|\S{1,2} \d{1,2}\.|\d{1,2}[.)])\s+", body)
    return len(match.group(0)) if match else 0
