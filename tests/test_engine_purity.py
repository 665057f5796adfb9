"""The engine's step never changes what it is given.

The Coach keeps the profile and conversation of a user's last turn in memory and hands the
same objects to the next turn (bot/service.py, `Coach._states`). That is only safe while
the step works on copies: a step that edited its input in place would change the kept
values too, and a turn retried after a failed commit would start from a state that was
never stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.engine import machine
from bot.engine.turn import Result, Turn
from content.loader import Content
from tests.chat_driver import CHECKIN, Chat, Clock, answer_flow, checkin, onboard

_real_step = machine.step


def _snapshot(turn: Turn) -> tuple[Any, ...]:
    return (
        turn.profile.model_dump(mode="json"),
        turn.conversation.model_dump(mode="json"),
        turn.history,
    )


async def test_a_runners_weeks_of_turns_never_change_the_state_they_start_from(
    chat: Chat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = 0

    def checked_step(turn: Turn, content: Content) -> Result:
        nonlocal steps
        before = _snapshot(turn)
        result = _real_step(turn, content)
        assert _snapshot(turn) == before, f"the step changed its input: {turn.inbound}"
        steps += 1
        return result

    monkeypatch.setattr(machine, "step", checked_step)
    await onboard(chat)
    for day in range(8):  # a weekly full screen, a level change, the logs of a week
        clock.advance(days=1)
        if day == 1:  # Back twice: the trail's entries are shared with the step's input
            await chat.send("checkin")
            await chat.press("3")
            await chat.press("No run")
            await chat.press("◀ Back")
            await chat.press("◀ Back")
            await answer_flow(chat, CHECKIN)
        else:
            await checkin(chat, pain="3" if day == 3 else "2")
        await chat.send("today")
        if "1" in chat.labels:
            await chat.press("1")
            if "Done ✅" in chat.labels:
                await chat.press("Done ✅")
    for word in ("progress", "settings", "help", "pause", "summary"):
        await chat.send(word)
    await chat.send("I'm not sure what to type here")
    assert steps > 80  # the story really went through the flows
