"""Typed answers where people type them: "7/10", "about 30 min", "swollen a bit".

Every parse checks the length of its input first, so a pasted essay or a number of
thousands of digits costs nothing and never reaches int(). Hand-written because the
phrases are few and specific to this coach; no parsing library fits them better.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

MAX_TYPED = 80  # an answer typed by a person is short; anything longer is not one
PAIN_MAX = 10  # the 0-10 numeric rating scale (clinical rules section 2a)
MAX_MINUTES = 300  # a run longer than five hours is a typo

NUMBER_WORDS = {
    "zero": 0,
    "none": 0,
    "nil": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
# Words people put around a number ("about a 3", "pain 7/10", "I ran about 30 min").
_HEDGES = (
    "i i'd id say it is was my the a an about around roughly approx approximately maybe like just"
)
_PAIN_FILLER = frozenset(f"{_HEDGES} pain worst hip score".split())
_RUN_FILLER = frozenset(f"{_HEDGES} ran run did jog jogged for easy".split())
_PAIN = re.compile(r"(\d{1,2})(?:\s*(?:/|out of|of)\s*10)?")
_DURATION = re.compile(
    r"(?:(?P<h>\d{1,2}(?:[.,]5)?)\s*(?:h|hr|hrs|hour|hours))?\s*"
    r"(?:(?P<m>\d{1,3})\s*(?:m|min|mins|minute|minutes|')?)?"
)


def clean(text: str) -> str:
    """NFKC, no control characters, one space between words, lower case."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split()).casefold()


def _core(text: str, filler: frozenset[str]) -> str:
    """The typed text without the filler words around the number."""
    words = [w for w in clean(text).replace("~", " ").split() if w.strip(".,!") not in filler]
    return " ".join(words).strip(" .,!")


def pain_score(text: str) -> int | None:
    """0-10 from "7", "7/10", "7 out of 10", "about a 3", "pain 3", "seven"; None for
    anything else ("-1", "7.5", "7 or 8", a sentence with other words in it)."""
    if len(text) > MAX_TYPED:
        return None
    core = _core(text, _PAIN_FILLER)
    if core in NUMBER_WORDS:
        return NUMBER_WORDS[core]
    match = _PAIN.fullmatch(core)
    if match is None:
        return None
    value = int(match.group(1))
    return value if 0 <= value <= PAIN_MAX else None


def minutes(text: str) -> int | None:
    """A duration in minutes from "30", "about 30 min", "45 mins", "1h", "1.5 hours",
    "1h 20", "half an hour"; None otherwise."""
    if len(text) > MAX_TYPED:
        return None
    core = _core(text, _RUN_FILLER)
    if core in ("half an hour", "half hour", "30 minutes"):
        return 30
    match = _DURATION.fullmatch(core)
    if match is None or not (match["h"] or match["m"]):
        return None
    total = round(float(match["h"].replace(",", ".")) * 60) if match["h"] else 0
    total += int(match["m"]) if match["m"] else 0
    if total <= 0 or total > MAX_MINUTES:
        return None
    return total


def matching_choice(text: str, choices: Sequence[tuple[str, Iterable[str]]]) -> str | None:
    """The one choice whose words appear in the text ("a bit swollen" -> "swollen").

    Two different choices matching is ambiguous, so the question is asked again.
    """
    if len(text) > MAX_TYPED * 3:
        return None
    t = clean(text)
    hits = {value for value, words in choices if any(_has_word(t, w) for w in words)}
    return hits.pop() if len(hits) == 1 else None


def _has_word(text: str, word: str) -> bool:
    """Short words must stand alone ("no", not "now"); longer ones may start a word
    ("swell" in "swelling")."""
    tail = r"\b" if len(word) < 4 else ""
    return re.search(rf"\b{re.escape(word)}{tail}", text) is not None
