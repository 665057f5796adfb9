"""The clinical rules, grouped as clinical-rules.md groups them.

- `screen`: sections 0 and 1 (G1-G5, R1-R21)
- `pain_monitoring`: section 2 (baseline, P1-P11)
- `progression`: P5's one-step progression, the dose ranges of 3b and the phase gates of 3e
- `return_to_running`: section 4 (RR1-RR6, RP1-RP8)
- `triage`: section 5b (TL1-TL6)
- `daily`: today's decision, combining the above
- `registry`: every rule id and where it is implemented
"""

from bot.engine.rules import daily, pain_monitoring, progression, return_to_running, screen, triage
from bot.engine.rules.registry import NOT_APPLICABLE, RULES, Rule

__all__ = [
    "NOT_APPLICABLE",
    "RULES",
    "Rule",
    "daily",
    "pain_monitoring",
    "progression",
    "return_to_running",
    "screen",
    "triage",
]
