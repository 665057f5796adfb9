"""Every clinical rule the coach follows, by its id in the clinical rules.

A rule is implemented either by a Python predicate or transition (registered with the
`@rule` decorator where it is defined) or by content data that carries its id (a screen
item in screen.yaml, a tagged transition in a flow file); `content_rule` registers those,
and `bot.engine.flows.interpreter.check_content` verifies at start-up that the data really
carries each one. `NOT_APPLICABLE` lists ids that need no code, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Rule:
    id: str
    section: str  # as in the clinical rules: "0", "1", "2", "3e", "4a", "4c", "5b", "7"
    summary: str  # what the coach does, in our own words
    where: tuple[str, ...]  # "bot.engine.rules.pain_monitoring.p3_morning_after", "screen.yaml"


RULES: dict[str, Rule] = {}

# Ids of the clinical rules that need no implementation of their own, and why.
NOT_APPLICABLE: dict[str, str] = {
    "RP5": (
        "a prohibition: the coach never computes or shows an acute:chronic workload ratio; "
        "test_RP5_no_acute_chronic_ratio_is_computed checks that no code does"
    ),
}


def _add(rule_id: str, section: str, summary: str, where: str) -> None:
    known = RULES.get(rule_id)
    if known is None:
        if not summary:
            raise ValueError(f"rule {rule_id} needs a summary where it is first registered")
        RULES[rule_id] = Rule(rule_id, section, summary, (where,))
        return
    if known.section != section:
        raise ValueError(f"rule {rule_id} registered under sections {known.section}, {section}")
    if where not in known.where:
        RULES[rule_id] = Rule(rule_id, section, known.summary, (*known.where, where))


def rule(rule_id: str, section: str, summary: str = "") -> Callable[[F], F]:
    """Mark a predicate or transition as the implementation of a clinical rule (the
    summary is given once, where the rule is first registered)."""

    def register(fn: F) -> F:
        _add(rule_id, section, summary, f"{fn.__module__}.{fn.__qualname__}")
        return fn

    return register


def content_rule(rule_id: str, section: str, summary: str, where: str) -> None:
    """A rule implemented by content data that carries its id (`where` names the file)."""
    _add(rule_id, section, summary, where)


def content_files(rule_id: str) -> tuple[str, ...]:
    return tuple(w for w in RULES[rule_id].where if w.endswith(".yaml"))
