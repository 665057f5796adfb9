"""Numbers typed or pressed with thousands of digits are refused, never crash the coach.

Python refuses to convert a string of more than 4300 digits to an int (ValueError), so
every parse of a number from a person or a payload checks its length first.
"""

from __future__ import annotations

from bot.adapters.console import ConsoleChat
from bot.engine.events import Button, ChatKind
from bot.service import Coach
from tests.chat_driver import Chat, onboard

HUGE = "9" * 5000


def test_a_huge_number_typed_in_the_console_is_text_not_a_button(coach: Coach) -> None:
    console = ConsoleChat(coach)
    console.buttons = [Button("I agree", "1:yes"), Button("No thanks", "1:no")]
    inbound = console.to_inbound(HUGE)
    assert inbound is not None and inbound.payload is None


async def test_a_button_with_a_turn_of_thousands_of_digits_has_expired(chat: Chat) -> None:
    await chat.send("start")
    await chat.tap(f"{HUGE}:yes")
    assert "expired" in chat.text


async def test_a_pain_score_of_thousands_of_digits_asks_again(chat: Chat) -> None:
    await onboard(chat)
    await chat.send("checkin")
    await chat.send(HUGE)
    assert "0" in chat.labels and "10" in chat.labels  # the pain question again


async def test_a_snooze_of_thousands_of_digits_has_expired(chat: Chat) -> None:
    await onboard(chat)
    await chat.tap(f"x:z:{HUGE}")
    assert "expired" in chat.text


async def test_removing_warmup_number_thousands_of_digits_is_refused(coach: Coach) -> None:
    admin = Chat(coach, user_id="captain", chat_id="club", chat_kind=ChatKind.GROUP, is_admin=True)
    await admin.send(f"warmup remove {HUGE}")
    assert "Which one?" in admin.text
