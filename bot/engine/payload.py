"""Button payloads: one typed encoder and decoder for every button the engine makes.

A payload is what a platform hands back when a button is pressed (Telegram
`callback_data`, a Slack button `value`, the console's numbered choice). The wire format
stays short and readable:

    <turn>:<value>                      the answer to the waiting question
    x:l:<yyyymmdd>:<exercise>:<d|p|s>   log one exercise of a day's session
    x:z:<minutes>                       snooze the check-in
    x:k                                 skip today's check-in
    x:c                                 "I've been checked" (after an escalation)
    x:r                                 "I've been seen" (after a referral)
    x:s                                 set up my plan
    x:v:<yyyymmdd>:<exercise>           show one exercise of a day's card (steps, cue, stop-if)
    x:t:<yyyymmdd>                      back to a day's card (today's card when it is stale)
    x:d                                 send today's card (as a new message)
    x:e                                 change today's check-in (run it again, answers replaced)
    x:b:<turn>                          back to the question before the waiting one
    x:w / x:wn                          start / skip this week's outcome check
    x:p                                 a one-page summary for my physio

`encode` refuses a payload over Telegram's 64-byte `callback_data` limit when it is built,
so a long value fails in tests rather than on a runner's phone. `decode` never raises: it
bounds every number by length before converting it (Python refuses int() on strings of
thousands of digits) and returns None for anything it does not recognise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

MAX_BYTES = 64  # Telegram callback_data; Slack allows more, so this is the binding limit
MAX_TURN_DIGITS = 9
LOG_OUTCOMES = {"d": "done", "p": "painful", "s": "skipped"}


class PayloadTooLong(ValueError):
    """A button payload over the 64 bytes a Telegram button can carry."""


@dataclass(frozen=True)
class Answer:
    turn: int
    value: str


@dataclass(frozen=True)
class LogEntry:
    day: date
    exercise_id: str
    code: str  # d | p | s

    @property
    def outcome(self) -> str:
        return LOG_OUTCOMES[self.code]


@dataclass(frozen=True)
class SnoozeFor:
    minutes: int


@dataclass(frozen=True)
class SkipToday:
    pass


@dataclass(frozen=True)
class BeenChecked:
    pass


@dataclass(frozen=True)
class BeenSeen:
    pass


@dataclass(frozen=True)
class SetUp:
    pass


@dataclass(frozen=True)
class ShowExercise:
    day: date
    exercise_id: str


@dataclass(frozen=True)
class ShowToday:
    day: date


@dataclass(frozen=True)
class RedoCheckin:
    pass


@dataclass(frozen=True)
class SendToday:
    pass


@dataclass(frozen=True)
class GoBack:
    turn: int


@dataclass(frozen=True)
class WeeklyCheck:
    start: bool  # False: not this week


@dataclass(frozen=True)
class PhysioSummary:
    pass


Payload = (
    Answer
    | LogEntry
    | SnoozeFor
    | SkipToday
    | BeenChecked
    | BeenSeen
    | SetUp
    | ShowExercise
    | ShowToday
    | RedoCheckin
    | SendToday
    | GoBack
    | WeeklyCheck
    | PhysioSummary
)

_FIXED: dict[str, Payload] = {
    "x:k": SkipToday(),
    "x:c": BeenChecked(),
    "x:r": BeenSeen(),
    "x:s": SetUp(),
    "x:e": RedoCheckin(),
    "x:d": SendToday(),
    "x:w": WeeklyCheck(True),
    "x:wn": WeeklyCheck(False),
    "x:p": PhysioSummary(),
}


def small_int(text: str, max_digits: int) -> int | None:
    """The value of a short run of ASCII digits, or None (bounded before converting)."""
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def answer_payload(turn: int, value: str) -> str:
    """`encode(Answer(turn, value))`, without building the Answer: a question's buttons
    are made on nearly every turn (eleven for a 0-10 pain scale)."""
    text = f"{turn}:{value}"
    return text if len(text) <= MAX_BYTES // 4 else _checked(text)


def _checked(text: str) -> str:
    if len(text.encode()) > MAX_BYTES:
        raise PayloadTooLong(f"button payload of {len(text.encode())} bytes: {text[:40]!r}")
    return text


def encode(payload: Payload) -> str:
    match payload:
        case Answer(turn=turn, value=value):
            return answer_payload(turn, value)
        case LogEntry(day=day, exercise_id=exercise_id, code=code):
            if code not in LOG_OUTCOMES:
                raise ValueError(f"unknown log outcome {code!r}")
            text = f"x:l:{day.strftime('%Y%m%d')}:{exercise_id}:{code}"
        case SnoozeFor(minutes=minutes):
            text = f"x:z:{minutes}"
        case ShowExercise(day=day, exercise_id=exercise_id):
            text = f"x:v:{day.strftime('%Y%m%d')}:{exercise_id}"
        case ShowToday(day=day):
            text = f"x:t:{day.strftime('%Y%m%d')}"
        case GoBack(turn=turn):
            text = f"x:b:{turn}"
        case _:
            text = next(k for k, v in _FIXED.items() if v == payload)
    return _checked(text)


def decode(text: str) -> Payload | None:
    if not text or len(text.encode()) > MAX_BYTES:
        return None
    if text in _FIXED:
        return _FIXED[text]
    if text.startswith("x:z:"):
        minutes = small_int(text[4:], 4)
        return SnoozeFor(minutes) if minutes is not None else None
    if text.startswith("x:l:"):
        parts = text.split(":")
        if len(parts) != 5 or parts[4] not in LOG_OUTCOMES:
            return None
        day = _yyyymmdd(parts[2])
        if day is None or not parts[3]:
            return None
        return LogEntry(day, parts[3], parts[4])
    if text.startswith("x:v:"):
        parts = text.split(":")
        day = _yyyymmdd(parts[2]) if len(parts) == 4 else None
        if day is None or not parts[3]:
            return None
        return ShowExercise(day, parts[3])
    if text.startswith("x:t:"):
        day = _yyyymmdd(text[4:])
        return ShowToday(day) if day is not None else None
    if text.startswith("x:b:"):
        turn = small_int(text[4:], MAX_TURN_DIGITS)
        return GoBack(turn) if turn is not None else None
    if text.startswith("x:"):
        return None
    turn_text, sep, value = text.partition(":")
    turn = small_int(turn_text, MAX_TURN_DIGITS)
    if not sep or turn is None:
        return None
    return Answer(turn, value)


def _yyyymmdd(text: str) -> date | None:
    if small_int(text, 8) is None or len(text) != 8:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
