"""The check-in flow's answers as check-in columns (and back, as a CheckinRecord)."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.engine.turn import CheckinRecord

# Fact name -> how its value becomes columns of the day's check-in row.
FACTS = (
    "pain_now",
    "run_minutes",
    "run_pain",
    "after_run",
    "exercise_pain",
    "holds",
    "review_check",
    "gate_rr2",
    "gate_rr3",
    "gate_rr4",
    "gate_rr5",
)
_GATE_FACTS = ("review_check", "gate_rr2", "gate_rr3", "gate_rr4", "gate_rr5")


def columns(fact: str, value: Any) -> dict[str, Any]:
    """The columns an answer sets. Answers that are not check-in data set none."""
    if fact == "pain_now":
        return {"pain_now": value}
    if fact == "run_minutes":
        if value == "no":
            return {
                "ran": "no",
                "run_minutes": None,
                "pain_during": None,
                "swelling": None,
                "run_sharp": None,
            }
        return {"ran": "yes", "run_minutes": value}
    if fact == "run_pain":
        return {"pain_during": value}
    if fact == "after_run":
        return {"swelling": value == "swollen", "run_sharp": value in ("sharp", "limp")}
    if fact == "exercise_pain":
        if value == "skipped":
            return {"exercises": "none", "exercise_pain": None, "isometric_worse": None}
        return {"exercises": "done", "exercise_pain": value}
    if fact == "holds":
        return {"isometric_worse": value == "worse"}
    if fact in _GATE_FACTS:
        return {}
    raise KeyError(f"the check-in has no fact {fact!r}")


ANSWER_COLUMNS = (
    "pain_now",
    "ran",
    "run_minutes",
    "pain_during",
    "exercises",
    "exercise_pain",
    "swelling",
    "run_sharp",
    "isometric_worse",
)


def all_columns(facts: dict[str, Any]) -> dict[str, Any]:
    """Every answer column of a day's row from these facts (None where not asked)."""
    fields: dict[str, Any] = dict.fromkeys(ANSWER_COLUMNS)
    for fact, value in facts.items():
        if fact in FACTS:
            fields.update(columns(fact, value))
    return fields


def record(day: date, facts: dict[str, Any], phase: int, level: int) -> CheckinRecord:
    fields: dict[str, Any] = {}
    for fact, value in facts.items():
        fields.update(columns(fact, value))
    known = {k: v for k, v in fields.items() if k in CheckinRecord.__dataclass_fields__}
    return CheckinRecord(local_date=day, phase=phase, level=level, **known)
