"""The history a turn starts from is the one the database holds (bot/kept_history.py).

The Coach keeps, with a runner's last turn, the check-ins and exercise logs that turn left,
and starts the runner's next turn from them instead of reading them again. Every decision
rule reads that history, so these stories check, before every single turn, that what the
turn is given equals what the database holds, field by field and type by type: through
check-ins on several days, Back, a changed check-in, exercises logged and re-logged, a
red flag, a seeded row and a turn that rolled back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot import service
from bot.engine import machine
from bot.engine.localtime import local_date
from bot.engine.state import Profile
from bot.engine.turn import History, Turn
from bot.service import Coach, load_history
from tests.chat_driver import (
    CHECKIN,
    NIGHT_PAIN,
    Chat,
    Clock,
    answer_flow,
    checkin,
    local_day,
    onboard,
)

BACK = "◀ Back"


def _typed(history: History) -> list[Any]:
    """The history with each value's type, so 1 and True (or "a" and an enum) differ."""
    rows = [*history.checkins, *history.exercise_logs]
    return [
        [(f.name, type(getattr(r, f.name)), getattr(r, f.name)) for f in dataclasses.fields(r)]
        for r in rows
    ]


class Witness:
    """Records the history each turn was given, and what the database held just before."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.given: list[History] = []
        self.held: list[History] = []
        self.turns = 0

    async def db_history(self) -> History | None:
        coach = self.chat.coach
        async with coach.db.transaction(readonly=True) as repo:
            user = await repo.get_user(self.chat.platform, self.chat.user_id, lock=False)
            if user is None:
                return None
            profile = Profile.model_validate(user.profile or {})
            today = local_date(coach.clock(), profile.timezone or "UTC")
            return await load_history(repo, user.id, today)

    def check(self) -> None:
        assert len(self.given) == len(self.held)
        for n, (given, held) in enumerate(zip(self.given, self.held, strict=True)):
            assert _typed(given) == _typed(held), f"turn {n + 1} started from a stale history"


@pytest.fixture
def witness(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> Iterator[Witness]:
    seen = Witness(chat)
    real_step = machine.step
    real_deliver = chat.deliver

    def step(turn: Turn, content: Any) -> Any:
        seen.given.append(turn.history)
        return real_step(turn, content)

    async def deliver(inbound: Any) -> Any:
        held = await seen.db_history()
        before = len(seen.given)
        replies = await real_deliver(inbound)
        if len(seen.given) > before and held is not None:
            seen.held.append(held)
        elif len(seen.given) > before:  # the turn that created the user: nothing held yet
            seen.given.pop()
        return replies

    monkeypatch.setattr(service.machine, "step", step)
    monkeypatch.setattr(chat, "deliver", deliver)
    yield seen
    seen.check()


def _card_exercises(chat: Chat) -> list[str]:
    return [b.payload.rsplit(":", 1)[1] for b in chat.buttons if b.payload.startswith("x:v:")]


async def test_a_week_of_checkins_back_and_changes_each_turn_starts_from_the_stored_history(
    chat: Chat, clock: Clock, witness: Witness
) -> None:
    await onboard(chat)
    for day in range(4):
        clock.advance(days=1)
        await chat.send("checkin")
        await chat.press("3")
        await chat.press(BACK)  # a mis-tap on the first morning answer
        await answer_flow(chat, {**CHECKIN, "pain": "2", "ran": "20 min" if day % 2 else "No run"})
        if day == 3:  # the run hurt more than first said: today's check-in is changed
            await chat.press("Change today's answers")
            await answer_flow(
                chat,
                {**CHECKIN, "ran": "20 min", "run_pain": "4", "after_run": "All fine"},
            )
        await chat.send("today")
        exercises = _card_exercises(chat)
        await chat.log_exercise(exercises[0], "d")
        await chat.log_exercise(exercises[0], "p")  # changed: too painful after all
        await chat.send("today")
        await chat.log_exercise(exercises[-1], "s")
    witness.check()
    assert len(witness.given) > 40


async def test_a_red_flag_in_a_changed_checkin_and_a_seeded_row_are_seen_by_the_next_turn(
    chat: Chat, clock: Clock, witness: Witness
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat)
    # A row written outside a turn (as the tests' seed does) moves the user's version on.
    earlier = local_day(clock) - timedelta(days=3)
    await chat.seed_checkin(earlier, pain_now=5, ran="no", decision="hold")
    await chat.press("Change today's answers")
    await answer_flow(chat, CHECKIN, screen=NIGHT_PAIN)  # night pain: R11, escalated
    witness.check()


async def test_a_turn_that_rolled_back_leaves_nothing_for_the_next_one(
    chat: Chat, clock: Clock, coach: Coach, witness: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await chat.send("checkin")
    await chat.press("2")  # today's row is written...
    real_add = service.outbox.add_replies
    calls = 0

    async def fails_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # ...and the next answer's transaction fails after its writes
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return await real_add(*args, **kwargs)

    monkeypatch.setattr(service.outbox, "add_replies", fails_once)
    ran_pressed = next(b for b in chat.buttons if b.label == "20 min")
    with pytest.raises(OperationalError):
        await chat.tap(ran_pressed.payload)
    witness.given.pop()  # that turn never committed: nothing to compare
    await chat.tap(ran_pressed.payload)  # delivered again, as the platform would
    await answer_flow(chat, {**CHECKIN, "ran": "20 min"})
    witness.check()


async def test_the_next_answer_of_a_checkin_reads_no_history_again(
    chat: Chat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    reads: list[date] = []
    real = service.load_history

    async def counted(repo: Any, user_id: int, today: date) -> History:
        reads.append(today)
        return await real(repo, user_id, today)

    monkeypatch.setattr(service, "load_history", counted)
    await chat.send("checkin")  # the first turn of the day reads it (the window moved)
    await chat.press("2")
    await chat.press("No run")
    assert reads == [local_day(clock)]
