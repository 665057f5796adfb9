"""Clinical rules section 5b: front or outside of the hip (TL1-TL6).

The questions are content (content/data/triage.yaml); these rules turn the answers into
a presentation and, where the answers are unclear or out of scope, a physio referral.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.rules.registry import content_rule, rule
from content.schema import Triage

content_rule(
    "TL1",
    "5b",
    "Groin pain on walking or standing (T8) is asked first, as R9 in the safety screen: a "
    "yes is same-day and no pathway is assigned.",
    "flows/start.yaml",
)


@dataclass(frozen=True)
class TriageResult:
    presentation: str  # front | outside | mixed | out_of_scope
    referrals: tuple[tuple[str, str], ...] = ()  # (rule id, reason message key)


@rule("TL2", "5b", "Outside of the hip plus lying-on-side or stairs pain: outside-of-hip plan.")
def lateral(location_presentation: str, hits: list[str]) -> bool:
    return location_presentation == "outside" and "outside" in hits


@rule(
    "TL3",
    "5b",
    "Front of the hip plus knee-lift or stride pain: front-of-hip plan; "
    "clicking or a deep pinch also means a physio soon (R20).",
)
def anterior(location_presentation: str, hits: list[str]) -> bool:
    return location_presentation == "front" and "front" in hits


@rule("TL3", "5b")
def pinch_needs_a_physio(hits: list[str]) -> bool:
    return "soon" in hits


@rule(
    "TL4",
    "5b",
    "Both places, or answers that point nowhere: both sets of restrictions and a physio soon.",
)
def mixed(location_presentation: str, hits: list[str]) -> bool:
    if location_presentation == "mixed":
        return True
    side = location_presentation
    return side in ("front", "outside") and side not in hits


@rule(
    "TL5",
    "5b",
    "Buttock, inner groin or pain below the knee: out of scope, a physio "
    "soon (the screen has asked R19).",
)
def out_of_scope(location_presentation: str) -> bool:
    return location_presentation == "out_of_scope"


@rule(
    "TL6",
    "5b",
    "The coach describes where it hurts (front or outside of the hip) and never names a condition.",
)
def label_key(presentation: str) -> str:
    """The message key that describes the presentation to the runner."""
    return f"presentation_{presentation}"


def questions_for(triage: Triage, location_presentation: str) -> list[str]:
    """The yes/no questions asked after the location, in order."""
    if location_presentation in ("front", "outside"):
        return list(getattr(triage, location_presentation))
    return []


def classify(location_presentation: str, hits: list[str]) -> TriageResult:
    if out_of_scope(location_presentation):
        return TriageResult("out_of_scope", (("TL5", "review_out_of_scope"),))
    if mixed(location_presentation, hits):
        reason = "review_mixed" if location_presentation == "mixed" else "review_unclear"
        presentation = "mixed"
    elif lateral(location_presentation, hits):
        presentation, reason = "outside", ""
    else:
        assert anterior(location_presentation, hits)
        presentation, reason = "front", ""
    referrals: list[tuple[str, str]] = [("TL4", reason)] if reason else []
    if pinch_needs_a_physio(hits):
        referrals.append(("TL3", "review_pinch"))
    return TriageResult(presentation, tuple(referrals))
