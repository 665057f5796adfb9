"""Clinical rules sections 0 and 1: the global safety conventions (G1-G5) and red flags
(R1-R21).

The red-flag questions themselves are content (content/data/screen.yaml): each item is
named by its rule id and carries its action level, so R1-R20 are registered as content
rules. This module holds the logic around them: how "not sure" is read (G3), when the
full screen is due (G4, G5), the escalation latch (G2), the time-based half of R21, and
which free text reports a symptom (G4, G5; the words are content/data/symptom_words.yaml).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from statistics import mean

from bot.engine.rules.registry import content_rule, rule
from bot.engine.state import Profile
from bot.engine.turn import CheckinRecord
from content.loader import Content
from content.schema import Level, ScreenItem

FULL_SCREEN_EVERY = timedelta(days=7)  # G4: weekly
R21_SIX_WEEKS = timedelta(weeks=6)  # R21: not better after 6 weeks of consistent rehab
R21_WEEK = 7  # days in the weekly means R21 compares


content_rule(
    "G1",
    "0",
    "Asks who the coaching is for. Under-18s and parents asking about a child get no plan: "
    "a child or teen who cannot walk is sent for emergency help, one who limps or has pain "
    "from the hip to the knee sees a doctor the same day.",
    "flows/start.yaml",
)

_SCREEN_ITEMS = {
    "R1": "Numbness or tingling in the saddle area: emergency.",
    "R2": "A new change in bladder, bowel or sexual sensation: emergency.",
    "R3": "Both legs weak or numb: emergency; one leg getting weaker: same day.",
    "R4": "Pain after a fall or knock: emergency if they cannot walk or the leg looks "
    "wrong, otherwise same day.",
    "R5": "Cannot bear weight: emergency; limping: same day.",
    "R6": "Fever or feeling unwell: emergency with a hot, very painful hip, else same day.",
    "R7": "Red, hot or swollen skin over the sore spot: same day (emergency with R6).",
    "R8": "A groin lump: emergency when painful, hard, stuck or with vomiting, else a GP.",
    "R9": "Deep groin pain on walking or standing: same day; running and impact stop.",
    "R10": "Groin pain on hopping or landing (never tested): same day.",
    "R11": "Rest or night pain in any position: same day.",
    "R12": "A big rise in running with worsening groin pain: doctor within 3 days, no "
    "running; same day with R9-R11 or R13.",
    "R13": "Bone-health risks: a doctor soon and no running progression; with groin pain "
    "they lower the threshold of R12.",
    "R14": "Past cancer treatment: same day when constant or at night, else within 3 days.",
    "R15": "Weight loss without trying: a GP soon; same day with night pain or fever.",
    "R16": "Pain suddenly much worse, or 7/10 or more: same day.",
    "R17": "Other swollen joints or long morning stiffness: a GP soon.",
    "R18": "Pregnancy or a recent birth, hip surgery, inflammatory arthritis: a clinician "
    "soon, and the hip plan waits for their approval.",
    "R19": "Leg tingling, pain below the knee or back pain: a physio soon, and the hip plan "
    "waits for their review.",
    "R20": "A deep pinch, clicking, locking or giving way: a sports physio soon; pain-free "
    "cross-training goes on.",
}
for _id, _summary in _SCREEN_ITEMS.items():
    content_rule(_id, "1", _summary, "screen.yaml")

content_rule(
    "R21",
    "1",
    "Asks at setup whether two weeks of running less already failed to help (a physio "
    "soon); later, two weeks without progress (P8) or six weeks of rehab without "
    "improvement recommend a physio.",
    "flows/start.yaml",
)


@rule("G2", "0", "An URGENT or EMERGENCY answer pauses the plan; the worst level wins.")
def latched_level(current: Level | None, new: Level) -> Level:
    """The latch only ever tightens: a milder flag later never lowers the level."""
    return Level.worst(current, new)


@rule("G2", "0")
def may_resume(clinician_cleared: bool, screen_level: Level) -> bool:
    """The plan resumes only when a clinician cleared exercise and the re-screen is clear
    of anything that would pause it again."""
    return clinician_cleared and not screen_level.escalates


@rule("G3", "0", "After 'not sure' twice, nerve items stay emergencies, others same-day.")
def unsure_level(item: ScreenItem) -> Level:
    """Still unsure after one clarifying question: err towards review.

    The nerve items R1-R3 keep their level; any other emergency becomes same-day (URGENT);
    everything else keeps the level a "yes" would give.
    """
    if item.follow_up is not None:
        worst = Level.worst(*(o.level for o in item.follow_up.options))
    else:
        assert item.yes_level is not None
        worst = item.yes_level
    if worst == Level.EMERGENCY and not item.nerve:
        return Level.URGENT
    return worst


@rule("G4", "0", "The full screen at setup, every 7 days, and at once on pain of 7/10+.")
def full_screen_due(profile: Profile, today: date) -> bool:
    last = profile.last_full_screen_on
    return last is None or today - last >= FULL_SCREEN_EVERY


@rule("G5", "0", "Every check-in asks the four-item mini-screen (or the full one when due).")
def daily_screen(profile: Profile, today: date) -> str:
    """Which screen today's check-in asks: "full" when G4 says so, else "mini"."""
    return "full" if full_screen_due(profile, today) else "mini"


def _phrase(words: str) -> re.Pattern[str]:
    parts = [re.escape(w).replace("'", "['’]?") for w in words.casefold().split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)")


def _patterns(content: Content) -> tuple[tuple[tuple[str, re.Pattern[str]], ...], re.Pattern[str]]:
    """The compiled word lists of symptom_words.yaml, once per Content."""
    key = "symptom_patterns"
    cached = content.memo.get(key)
    if cached is None:
        words = content.symptom_words
        assert words is not None
        flags = tuple((e.rule, _phrase(w)) for e in words.red_flags for w in e.words)
        general = "|".join(_phrase(w).pattern for w in words.symptoms)
        cached = content.memo[key] = (flags, re.compile(general))
    return cached


@rule("G4", "0")
def reported_red_flags(text: str, content: Content) -> tuple[str, ...]:
    """The red flags (screen item ids) free text may be reporting ("my leg went numb"):
    a new symptom is screened at once. Words, not a diagnosis: the questions decide."""
    said = text.casefold()
    flags, _ = _patterns(content)
    return tuple(dict.fromkeys(item for item, pattern in flags if pattern.search(said)))


@rule("G5", "0")
def talks_about_symptoms(text: str, content: Content) -> bool:
    """Free text about pain or symptoms: answered with the check-in, whose answers decide
    today's plan and whose mini-screen asks the red flags."""
    _, general = _patterns(content)
    return bool(reported_red_flags(text, content)) or bool(general.search(text.casefold()))


@rule("R21", "1")
def six_weeks_without_improvement(
    history: list[CheckinRecord], profile: Profile, today: date
) -> bool:
    """Six weeks on the plan and the last week's mornings are no better than the first."""
    start = profile.plan_started_on
    if start is None or today - start < R21_SIX_WEEKS:
        return False
    first = [
        c.pain_now
        for c in history
        if c.pain_now is not None and 0 <= (c.local_date - start).days < R21_WEEK
    ]
    last = [
        c.pain_now
        for c in history
        if c.pain_now is not None and 0 <= (today - c.local_date).days < R21_WEEK
    ]
    if not first or not last:
        return False
    return mean(last) >= mean(first)
