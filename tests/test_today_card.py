"""Today's exercises as one compact card that changes in place (issue 11, point 6).

A runner asks for today's session and gets one short message: one line per exercise and
a numbered button each. A number shows that exercise's steps, cue and stop-if in the same
message, with the buttons that log it; logging shows the card again, ticked. Through the
service, the fake Bot API (editMessageText on the same message) and the fake Slack API
(chat.update on the same ts), and in the console, where a typed number is the exercise.
"""

from __future__ import annotations

import io
from typing import Any

from bot.adapters.console import ConsoleChat
from bot.service import Coach
from content.loader import default_content
from tests import test_slack, test_telegram
from tests.chat_driver import Chat, Clock, checkin, onboard
from tests.fake_telegram import FakeTelegram
from tests.test_slack import RUNNER, Slack
from tests.test_slack import onboard as slack_onboard
from tests.test_telegram import Person

# The platform tests' own fixtures: the fake servers and the real adapters on them.
fake, bot, runner = test_telegram.fake, test_telegram.bot, test_telegram.runner
slack = test_slack.slack

CONTENT = default_content()
PHONE_ROW = 4  # the most buttons a card puts on one row


async def test_the_card_is_short_and_logging_ticks_it_in_place(chat: Chat) -> None:
    await onboard(chat)
    await chat.send("today")
    (card,) = chat.replies
    numbers = [b.label for b in card.flat_buttons]
    assert numbers == [str(n) for n in range(1, len(numbers) + 1)]
    assert all(len(row) <= PHONE_ROW for row in card.buttons)
    assert len(card.text) < 1000, "a card, not a wall"
    first = CONTENT.exercises[card.flat_buttons[0].payload.split(":")[3]]
    assert first.steps[0] not in card.text  # the details are one tap away, not here
    card_ref = chat.buttons_ref

    await chat.press("1")
    (detail,) = chat.replies
    assert detail.edit_ref == card_ref  # the same message, now the exercise's details
    assert first.steps[0] in detail.text and first.cue in detail.text
    assert first.stop_if in detail.text
    assert chat.labels == ["Done ✅", "Too painful", "Skip", "◀ Today's list"]

    await chat.press("Done ✅")
    (ticked,) = chat.replies
    assert ticked.edit_ref == card_ref
    assert f"✅ 1. {first.name}" in ticked.text
    assert f"1 of {len(numbers)} done" in ticked.text
    assert chat.labels[0] == "1 ✅" and chat.labels[1] == "2"

    await chat.press("2")
    await chat.press("◀ Today's list")  # back without logging: the card as it was
    assert chat.replies[0].edit_ref == card_ref
    assert chat.labels[0] == "1 ✅" and chat.labels[1] == "2"


async def test_after_a_checkin_the_decision_offers_the_card_instead_of_resending_it(
    chat: Chat, clock: Clock
) -> None:
    await onboard(chat)
    clock.advance(days=1)
    await checkin(chat)
    assert "Today — phase" not in chat.text  # the decision, not the whole session again
    assert chat.labels == ["Today's exercises", "Change today's answers"]
    await chat.press("Today's exercises")
    (card,) = chat.replies
    assert card.edit_ref is None and "Today — phase" in card.text


async def test_in_the_console_a_typed_number_is_that_exercise(coach: Coach) -> None:
    out = io.StringIO()
    console = ConsoleChat(coach, out=out, width=200)
    script = Chat(coach, user_id="local")
    await onboard(script)
    await console.type_line("today")
    card_buttons = list(console.buttons)
    second = CONTENT.exercises[card_buttons[1].payload.split(":")[3]]
    await console.type_line("2")
    shown = out.getvalue()
    assert f"2. {second.name}" in shown and second.steps[0] in shown
    await console.type_line("1")  # on the details: the first choice, Done
    assert f"✅ 2. {second.name}" in out.getvalue().rsplit("Logged", 1)[-1]


# --- the real platforms ------------------------------------------------------------------------


def _keyboard_labels(markup: dict[str, Any] | None) -> list[str]:
    return [b["text"] for row in (markup or {}).get("inline_keyboard", []) for b in row]


async def test_telegram_edits_the_one_card_message_as_exercises_are_logged(
    fake: FakeTelegram, runner: Person
) -> None:
    from tests.chat_driver import onboarding_taps

    await runner.send("/start")
    await runner.taps(*onboarding_taps())
    await runner.send("/today")
    card = fake.last_keyboard_message(runner.chat_id)
    assert card is not None and "Today — phase" in card.text

    calls = await runner.tap("1")
    assert [c.method for c in calls if c.method != "answerCallbackQuery"] == ["editMessageText"]
    assert int(calls[-1].params["message_id"]) == card.message_id
    assert "Done ✅" in _keyboard_labels(card.markup)

    calls = await runner.tap("Done ✅")
    assert not [c for c in calls if c.method == "sendMessage"]  # no new message per tap
    edit = next(c for c in calls if c.method == "editMessageText")
    assert int(edit.params["message_id"]) == card.message_id
    assert "✅ 1." in card.text and "Logged" in card.text
    assert _keyboard_labels(card.markup)[:2] == ["1 ✅", "2"]


async def test_slack_updates_the_one_card_message_as_exercises_are_logged(slack: Slack) -> None:
    await slack_onboard(slack)
    await slack.dm("today")
    card = slack.fake.last("chat.postMessage", channel=f"D{RUNNER}")
    assert "Today — phase" in card.text
    await slack.press("1")
    detail = slack.fake.last("chat.update", channel=f"D{RUNNER}")
    assert detail["ts"] == card["_ts"]
    assert "Done ✅" in [b["text"]["text"] for b in detail.buttons]
    mark = len(slack.fake.calls)
    await slack.press("Done ✅")
    ticked = slack.fake.last("chat.update", channel=f"D{RUNNER}")
    assert ticked["ts"] == card["_ts"]
    assert "✅ 1." in ticked.text
    assert [b["text"]["text"] for b in ticked.buttons][:2] == ["1 ✅", "2"]
    assert not [c for c in slack.since(mark) if c.method == "chat.postMessage"]
