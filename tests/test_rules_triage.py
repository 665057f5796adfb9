"""Clinical rules section 5b: front or outside of the hip (TL1-TL6), through setup."""

from __future__ import annotations

import re

from bot.engine.rules.triage import classify, label_key
from content.loader import default_content
from tests.chat_driver import FRONT, OUTSIDE, Chat, onboard

CONTENT = default_content()
BOTH = "Both front and outside"
BUTTOCK = "In the buttock"


async def test_TL1_groin_pain_on_walking_is_same_day_and_gets_no_pathway(chat: Chat) -> None:
    asked = await onboard(chat, screen={"s/g:bone": "Yes, one or more", "s/i:R9": "Yes"})
    assert "loc" not in asked  # the screen asks it before where-it-hurts
    profile, _ = await chat.stored()
    assert profile.escalation == "URGENT" and profile.presentation is None


async def test_TL2_outside_of_the_hip_with_side_lying_pain_gets_the_outside_plan(
    chat: Chat,
) -> None:
    await onboard(chat, location=OUTSIDE, triage=("Yes",))
    profile, _ = await chat.stored()
    assert profile.presentation == "outside" and profile.review is None


async def test_TL3_front_of_the_hip_with_knee_lift_pain_gets_the_front_plan(chat: Chat) -> None:
    await onboard(chat, location=FRONT, triage=("Yes", "No"))
    profile, _ = await chat.stored()
    assert profile.presentation == "front" and profile.review is None


async def test_TL3_a_deep_pinch_or_clicking_also_means_a_physio_soon(chat: Chat) -> None:
    await onboard(chat, location=FRONT, triage=("Yes", "Yes"))
    profile, _ = await chat.stored()
    assert profile.presentation == "front" and profile.review == "SOON"
    assert chat.replies[-1].text.startswith("Please book a sports physio")


async def test_TL4_both_places_take_both_sets_of_restrictions_and_a_physio(chat: Chat) -> None:
    await onboard(chat, location=BOTH, triage=())
    profile, _ = await chat.stored()
    assert profile.presentation == "mixed" and profile.review == "SOON"


async def test_TL4_answers_that_point_nowhere_are_treated_as_mixed(chat: Chat) -> None:
    await onboard(chat, location=OUTSIDE, triage=("No", "No"))
    profile, _ = await chat.stored()
    assert profile.presentation == "mixed" and profile.review == "SOON"


async def test_TL5_buttock_pain_is_out_of_scope_and_sees_a_physio(chat: Chat) -> None:
    await onboard(chat, location=BUTTOCK, triage=())
    profile, _ = await chat.stored()
    assert profile.presentation == "out_of_scope" and profile.review == "SOON"


def test_TL6_the_runner_is_told_where_the_pain_is_never_a_diagnosis() -> None:
    for presentation in ("front", "outside", "mixed", "out_of_scope"):
        text = CONTENT.message(label_key(presentation))
        assert re.search(r"front|outside|hip", text)
        assert not re.search(r"tendin|bursitis|impingement|fracture|syndrome", text, re.I)
    assert classify("outside", ["outside"]).presentation == "outside"
