"""Which coaching tip a runner sees: one that fits their presentation and phase.

A tip about raising a bike saddle so the front of the hip doesn't pinch is wrong for an
outside-of-hip runner, and a cadence tip means nothing before running comes back; each
tip says who it fits (content/data/tips.yaml) and the day picks among those.
"""

from __future__ import annotations

from datetime import date

from bot.engine.rules.registry import rule
from content.loader import Content
from content.schema import Tip


@rule("TL6", "5b")
def tip_for(content: Content, presentation: str | None, phase: int, day: date) -> Tip | None:
    """The day's tip among those that fit (the same one all day, a different one the next)."""
    fitting = [t for t in content.tips if t.fits(presentation, phase)]
    return fitting[day.toordinal() % len(fitting)] if fitting else None
