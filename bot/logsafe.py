"""Log records that never carry what people wrote, their names or their answers.

Our own log calls pass ids, kinds and counts only (tests scan them). Libraries are not that
careful: python-telegram-bot logs a whole getUpdates batch (other runners' messages) at
CRITICAL when one update cannot be parsed, and every API result at DEBUG; httpx logs request
URLs, which hold the bot token; SQLAlchemy logs statement parameters at INFO; slack_bolt logs
the body of a request it has no listener for. Exception messages anywhere can quote data too:
a SQLAlchemy error carries the statement's parameters, pydantic quotes its input.

`install()` wraps the logging record factory, so each record is cleaned once, when it is
made, whichever handler later writes it (the CLI's stderr, uvicorn's handlers, pytest's
caplog):

- a library's record keeps its format string, numbers and booleans; every other argument
  becomes its type name (`<dict>`). A message the library formatted itself (no arguments)
  keeps only its text up to the first quote, bracket, brace or line break.
- any record's exception (ours too) keeps its traceback frames and its type, not its message.

Neither the standard library nor the libraries we use ship such a filter, hence this module.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

__all__ = ["OUR_LOGGERS", "clean", "install", "is_ours"]

OUR_LOGGERS = ("hipcoach", "bot", "scheduler", "content")
MAX_LIBRARY_TEXT = 200
# Where a message a library formatted itself starts quoting data (a dict, a repr, a body).
_DATA_START = re.compile(r"[\"'{\[\n<]")
_WITHHELD = "(message withheld)"
_MARK = "_hipcoach_logsafe"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class _Withheld:
    """Stands in for a library's log argument: prints as its type name only."""

    __slots__ = ("name",)

    def __init__(self, value: object) -> None:
        self.name = type(value).__name__

    def __str__(self) -> str:
        return f"<{self.name}>"

    __repr__ = __str__


def is_ours(name: str) -> bool:
    return name.split(".", 1)[0] in OUR_LOGGERS


def _safe(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    return _Withheld(value)


def _access_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    # uvicorn.access: (client, method, path with query, http version, status). The method,
    # the route and the status are what an operator needs; the query string may hold OAuth
    # codes, and the client address is nobody's business here.
    if len(args) != 5:
        return tuple(_safe(a) for a in args)
    _client, method, path, version, status = args
    route = str(path).split("?", 1)[0][:100]
    return ("-", str(method)[:10], route, str(version)[:10], _safe(status))


def _own_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    # APScheduler's arguments are our own fixed jobs (no job arguments), their triggers and
    # run times: worth keeping, and never anyone's data.
    return args


_SPECIAL_ARGS: dict[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {
    "uvicorn.access": _access_args,
    "apscheduler.executors.default": _own_args,
    "apscheduler.scheduler": _own_args,
}


def _library_message(record: logging.LogRecord) -> None:
    args = record.args
    if isinstance(args, Mapping):
        record.args = {key: _safe(value) for key, value in args.items()}
    elif isinstance(args, tuple) and args:
        special = _SPECIAL_ARGS.get(record.name)
        record.args = special(args) if special else tuple(_safe(a) for a in args)
    if not isinstance(record.msg, str):
        record.msg, record.args = str(_Withheld(record.msg)), ()
    elif not record.args:
        text = record.msg
        match = _DATA_START.search(text)
        if match is not None:
            text = text[: match.start()].rstrip() + " …"
        if len(text) > MAX_LIBRARY_TEXT:
            text = text[:MAX_LIBRARY_TEXT] + "…"
        record.msg, record.args = text, ()  # no arguments: getMessage() never formats it


def _chain(error: BaseException) -> list[tuple[BaseException, str | None]]:
    """The exception and its causes, oldest first, with the line Python prints between."""
    out: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "direct cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "context"
        else:
            current = None
    out.reverse()
    return out


def _exception_text(exc_info: ExcInfo) -> str:
    """A traceback like Python's, with every exception's message left out."""
    lines: list[str] = []
    chain = _chain(exc_info[1])
    for n, (error, _) in enumerate(chain):
        if n:
            # chain[n - 1] is the cause (or the context) of chain[n].
            lines.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if chain[n - 1][1] == "direct cause"
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        frames = traceback.extract_tb(error.__traceback__)
        if frames:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.format_list(frames))
        kind = type(error)
        module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
        lines.append(f"{module}{kind.__qualname__}: {_WITHHELD}\n")
    return "".join(lines).rstrip("\n")


def clean(record: logging.LogRecord) -> logging.LogRecord:
    """Make one record safe to write (see the module docstring); returns the same record."""
    if not is_ours(record.name):
        _library_message(record)
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = _exception_text(record.exc_info)
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = _WITHHELD
    return record


def install() -> None:
    """Clean every log record this process makes from now on (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, _MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return clean(previous(*args, **kwargs))

    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)
