"""Button payloads: one typed encoder and decoder, within Telegram's 64 bytes."""

from __future__ import annotations

from datetime import date

import pytest

from bot.engine.payload import (
    Answer,
    BeenChecked,
    BeenSeen,
    LogEntry,
    PayloadTooLong,
    SetUp,
    SkipToday,
    SnoozeFor,
    decode,
    encode,
)

EVERY_KIND = [
    Answer(12, "yes"),
    LogEntry(date(2026, 11, 26), "clamshell", "p"),
    SnoozeFor(30),
    SkipToday(),
    BeenChecked(),
    BeenSeen(),
    SetUp(),
]


@pytest.mark.parametrize("payload", EVERY_KIND, ids=lambda p: type(p).__name__)
def test_every_payload_round_trips(payload: object) -> None:
    assert decode(encode(payload)) == payload  # type: ignore[arg-type]


def test_the_wire_format_stays_readable() -> None:
    assert encode(Answer(3, "no")) == "3:no"
    assert encode(SnoozeFor(60)) == "x:z:60"
    assert encode(LogEntry(date(2026, 1, 2), "hops", "d")) == "x:l:20260102:hops:d"


def test_a_payload_over_64_bytes_is_refused_when_it_is_built() -> None:
    with pytest.raises(PayloadTooLong):
        encode(Answer(1, "x" * 70))
    encode(Answer(1, "x" * 62))  # 64 bytes exactly is fine


@pytest.mark.parametrize(
    "junk",
    [
        "",
        ":",
        "x:",
        "x:z:",
        "x:z:-5",
        "x:z:" + "9" * 5000,
        "9" * 5000 + ":yes",
        "1²:3",
        "x:l:20261340:clamshell:d",
        "x:l:2026112:clamshell:d",
        "x:l:20261126::d",
        "x:l:20261126:clamshell:q",
        "seven:yes",
        "-1:x",
    ],
)
def test_junk_decodes_to_nothing_and_never_raises(junk: str) -> None:
    assert decode(junk) is None
