"""The shape of the coaching content. Every data file in content/data is checked against it.

Cross-references (phase -> exercise, screen item -> follow-up, warm-up -> exercise) are
checked in `Content` so a typo fails at load, not in front of a runner.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Level(StrEnum):
    """Action levels from the clinical rules (section 0), most severe first."""

    EMERGENCY = "EMERGENCY"
    URGENT = "URGENT"
    SOON_72H = "SOON_72H"
    SOON = "SOON"
    SELF = "SELF"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    @property
    def escalates(self) -> bool:
        """EMERGENCY and URGENT stop the plan until a clinician clears the runner (G2)."""
        return self in (Level.EMERGENCY, Level.URGENT)

    @staticmethod
    def worst(*levels: Level | None) -> Level:
        present = [lv for lv in levels if lv is not None]
        return max(present, key=lambda lv: lv.rank, default=Level.SELF)


_LEVEL_RANK = {
    Level.SELF: 0,
    Level.SOON: 1,
    Level.SOON_72H: 2,
    Level.URGENT: 3,
    Level.EMERGENCY: 4,
}

Side = Literal["front", "outside"]
SIDES: tuple[Side, ...] = ("front", "outside")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- exercises -------------------------------------------------------------------------


class Dosage(Strict):
    sets: int = Field(ge=1, le=10)
    reps: int | None = Field(default=None, ge=1, le=100)
    hold_seconds: int | None = Field(default=None, ge=1, le=300)
    per_side: bool = False
    # What one rep is, when it is not a plain repetition: "steps each way", "swings each way".
    unit: str = "reps"
    # The load, in words, once a progression has added one: "with a light band".
    load: str | None = Field(default=None, max_length=60)

    @model_validator(mode="after")
    def _reps_or_hold(self) -> Dosage:
        if self.reps is None and self.hold_seconds is None:
            raise ValueError("a dosage needs reps or hold_seconds")
        return self

    def render(self) -> str:
        parts: list[str] = []
        if self.reps is not None and self.hold_seconds is not None:
            parts.append(f"{self.sets} x {self.reps} {self.unit}, hold {self.hold_seconds} s each")
        elif self.reps is not None:
            parts.append(f"{self.sets} x {self.reps} {self.unit}")
        else:
            parts.append(f"{self.sets} x {self.hold_seconds} s hold")
        if self.per_side:
            parts.append("per side")
        text = " ".join(parts)
        return f"{text}, {self.load}" if self.load else text


class DoseStep(Strict):
    """One variable of an exercise's progression and its range (clinical rules 3b).

    A progression moves one variable by one step at a time (P5): the numbers in `step`
    increments up to `to`, or the load through `loads`, in the order the steps are listed.
    """

    vary: Literal["reps", "sets", "hold_seconds", "load"]
    to: int | None = Field(default=None, ge=1, le=300)
    step: int = Field(default=1, ge=1, le=30)
    loads: list[str] = Field(default=[], max_length=5)

    @model_validator(mode="after")
    def _shape(self) -> DoseStep:
        if self.vary == "load":
            if not self.loads or self.to is not None:
                raise ValueError("a load step lists its loads, in order, and no 'to'")
        elif self.to is None or self.loads:
            raise ValueError(f"a {self.vary} step needs 'to' (the top of its range)")
        return self


class Fit(Strict):
    """How an exercise suits each presentation (clinical rules 3b, 3c, 3d, 5c)."""

    suits: list[Side] = Field(min_length=1)
    modify: dict[Side, str] = {}  # the modification to show for that presentation
    avoid: list[Side] = []

    @model_validator(mode="after")
    def _consistent(self) -> Fit:
        overlap = set(self.avoid) & set(self.suits)
        if overlap:
            raise ValueError(f"an exercise cannot both suit and avoid {sorted(overlap)}")
        return self


class Exercise(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    name: str = Field(min_length=3, max_length=60)
    kind: Literal["isometric", "strength", "mobility", "stretch", "warmup", "cardio", "plyo"]
    phases: list[int] = Field(min_length=1)
    dosage: Dosage
    steps: list[str] = Field(min_length=2, max_length=4)
    cue: str = Field(min_length=5, max_length=200)
    stop_if: str = Field(min_length=5, max_length=200)
    fit: Fit
    # When this exercise is too painful, the engine offers this easier one instead.
    easier: str | None = None
    # How the dose grows when P5 is met, one variable and one step at a time (3b ranges).
    progress: list[DoseStep] = []

    @field_validator("phases")
    @classmethod
    def _phases_known(cls, v: list[int]) -> list[int]:
        if any(p not in (1, 2, 3, 4) for p in v):
            raise ValueError("phases are 1, 2, 3 or 4")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> Exercise:
        for step in self.progress:
            if step.vary == "load":
                continue
            start = getattr(self.dosage, step.vary)
            if start is None:
                raise ValueError(f"{self.id}: progresses {step.vary} but its dose has none")
            assert step.to is not None
            if step.to <= start:
                raise ValueError(f"{self.id}: {step.vary} range must rise above {start}")
        varied = [s.vary for s in self.progress]
        if len(set(varied)) != len(varied):
            raise ValueError(f"{self.id}: each variable is listed once in its progression")
        return self

    @cached_property
    def doses(self) -> list[Dosage]:
        """Every dose of the progression, the starting dose first: one variable moves by
        one step each time (P5), the variables in the order listed, each up to its top."""
        doses = [self.dosage]
        current = self.dosage
        for step in self.progress:
            if step.vary == "load":
                for load in step.loads:
                    current = current.model_copy(update={"load": load})
                    doses.append(current)
                continue
            assert step.to is not None
            value = getattr(current, step.vary)
            while value < step.to:
                value = min(value + step.step, step.to)
                current = current.model_copy(update={step.vary: value})
                doses.append(current)
        return doses

    def avoided_for(self, presentation: str) -> bool:
        """Mixed presentations take both sets of restrictions (clinical rules TL4).

        Anything that is not exactly "front" or "outside" ("mixed", "out_of_scope", an
        unknown value) takes both sets too: the stricter choice is the safe one.
        """
        return any(side in self.fit.avoid for side in _sides(presentation))

    def modification_for(self, presentation: str) -> list[str]:
        return [self.fit.modify[s] for s in _sides(presentation) if s in self.fit.modify]


def _sides(presentation: str) -> tuple[Side, ...]:
    if presentation == "front":
        return ("front",)
    if presentation == "outside":
        return ("outside",)
    return ("front", "outside")


# --- phases and the walk-run ladder ----------------------------------------------------


class Stage(Strict):
    """One step of phase 4: more distance first, then hills, then speed (RP4, RP6)."""

    id: str = Field(pattern=r"^[a-z_]{2,20}$")
    running: str  # what running looks like at this stage
    intensity: bool = False  # hills or speed: one new stimulus, never with more volume


class Phase(Strict):
    number: int = Field(ge=1, le=4)
    name: str
    goal: str
    entry: list[str] = Field(min_length=1)
    exit: list[str] = Field(min_length=0)
    typical: str  # typical duration, in words
    min_days: int = Field(ge=0)  # the fewest days in this phase before its exit is checked
    exercises: list[str] = Field(min_length=1)
    running: str  # what running looks like in this phase
    stages: list[Stage] = []  # phase 4 only: the order new stimuli come back


class LadderLevel(Strict):
    level: int = Field(ge=1, le=10)
    session: str
    minutes: int = Field(ge=5, le=90)


# --- safety screen ---------------------------------------------------------------------


class Option(Strict):
    """One answer to a follow-up question, and the action level it leads to."""

    id: str = Field(pattern=r"^[a-z0-9_]{1,16}$")
    label: str = Field(min_length=1, max_length=40)
    level: Level


class FollowUp(Strict):
    question: str
    options: list[Option] = Field(min_length=2, max_length=4)


class Combination(Strict):
    """A stricter level when this item is yes together with any of the listed items."""

    with_any: list[str] = Field(min_length=1)
    level: Level


class ScreenItem(Strict):
    id: str = Field(pattern=r"^R\d{1,2}$")
    question: str
    clarify: str  # the one clarifying question after "not sure" (G3)
    summary: str  # a lay description for escalation messages: "numbness around your bottom"
    nerve: bool = False  # R1-R3: "not sure" twice stays EMERGENCY (G3)
    yes_level: Level | None = None  # the level when "yes" needs no follow-up
    follow_up: FollowUp | None = None  # asked when "yes", its option picks the level
    combinations: list[Combination] = []
    # W2: what a same-day message may say this could be a sign of (escalations only).
    could_be: str | None = None
    # For a SOON referral: who to book (W4 routes), and whether the hip plan must wait for
    # that clinician's approval before it starts (R18, R19).
    see: Literal["physio", "gp", "doctor"] = "physio"
    hold_plan: bool = False

    @model_validator(mode="after")
    def _has_action(self) -> ScreenItem:
        if (self.yes_level is None) == (self.follow_up is None):
            raise ValueError("a screen item needs exactly one of yes_level or follow_up")
        return self


class ScreenGroup(Strict):
    id: str = Field(pattern=r"^[a-z_]{2,20}$")
    intro: str  # "Do any of these apply to you?"
    items: list[str] = Field(min_length=1)  # screen item ids, asked in order


class MiniItem(Strict):
    """One of the four daily mini-screen questions (G5) and the full rows it leads to."""

    id: str = Field(pattern=r"^[a-z_]{2,20}$")
    question: str
    rows: list[str] = Field(min_length=1)  # screen items asked one by one after a "yes"


class Screen(Strict):
    groups: list[ScreenGroup] = Field(min_length=1)
    items: list[ScreenItem] = Field(min_length=1)
    mini: list[MiniItem] = Field(min_length=4, max_length=4)


# --- triage (front / outside) ----------------------------------------------------------


class Location(Strict):
    id: str = Field(pattern=r"^[a-z_]{2,20}$")
    label: str = Field(max_length=40)
    presentation: Literal["front", "outside", "mixed", "out_of_scope"]
    # Where it hurts, as the plan's summary says it ("a plan for pain at the front of the
    # hip"): the place the runner chose, whatever the questions after it pointed to.
    phrase: str = Field(min_length=5, max_length=60)


class TriageQuestion(Strict):
    id: str = Field(pattern=r"^T\d$")
    question: str
    points_to: Literal["front", "outside", "soon"]  # "soon": also recommend a physio (R20)


class Triage(Strict):
    location_question: str
    locations: list[Location] = Field(min_length=3)
    # Asked after the location, in order; each a yes/no.
    front: list[str] = Field(min_length=1)  # question ids for front-of-hip pain
    outside: list[str] = Field(min_length=1)  # question ids for outside-of-hip pain
    questions: list[TriageQuestion] = Field(min_length=2)


# --- warm-up, tips, regions, messages ----------------------------------------------------


class WarmupItem(Strict):
    exercise: str  # an exercise id
    amount: str  # "10 each leg", "30 s"


class Warmup(Strict):
    id: str
    name: str
    minutes: int = Field(ge=8, le=10)
    intro: str
    drills: list[WarmupItem] = Field(min_length=2)  # dynamic drills
    activation: list[WarmupItem] = Field(min_length=2)  # glute activation


class Tip(Strict):
    id: str = Field(pattern=r"^[a-z_]{2,30}$")
    topic: Literal["cadence", "pelvis", "sitting", "cross_training", "professional", "load"]
    text: str = Field(min_length=20, max_length=400)
    # Who a tip fits: the presentations (clinical rules 5c) and plan phases it is shown in.
    # "mixed" and "out_of_scope" runners get the tips of both sides.
    presentations: list[Side] = Field(default_factory=lambda: list(SIDES), min_length=1)
    phases: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)

    def fits(self, presentation: str | None, phase: int) -> bool:
        if phase not in self.phases:
            return False
        if presentation in ("front", "outside"):
            return presentation in self.presentations
        return True


class RedFlagWords(Strict):
    """Words that can point to one red flag (a screen item's rule id, section 1)."""

    rule: str = Field(pattern=r"^R\d{1,2}$")
    words: list[str] = Field(min_length=1)


class SymptomWords(Strict):
    """Free text about the hip: which words ask the safety questions at once (G4), and
    which start the check-in. See symptom_words.yaml."""

    red_flags: list[RedFlagWords] = Field(min_length=1)
    symptoms: list[str] = Field(min_length=1)


class Region(Strict):
    """Where to send a runner in a given country (clinical rules W4)."""

    emergency: str  # "112"
    same_day: str  # "NHS 111 or an urgent GP appointment"


class Regions(Strict):
    default: Region
    countries: dict[str, Region]  # ISO 3166 alpha-2 -> Region

    @field_validator("countries")
    @classmethod
    def _codes(cls, v: dict[str, Region]) -> dict[str, Region]:
        bad = [c for c in v if len(c) != 2 or not c.isupper()]
        if bad:
            raise ValueError(f"country codes must be ISO alpha-2: {bad}")
        return v


# --- flows: the questions of onboarding, check-in and clearance --------------------------

RULE_ID = r"^(G|R|P|RR|RP|TL|W)\d{1,2}$"


class Flag(Strict):
    """A red flag or referral raised by an answer (clinical rules section 0 levels).

    EMERGENCY and URGENT latch the plan at once (G2); SOON and SOON_72H are referrals the
    flow collects and says first when it ends (W3).
    """

    level: Level
    rule: str = Field(pattern=RULE_ID)
    reason: str | None = None  # message key: why a referral is made ("because ...")
    message: str | None = None  # message key of an escalation with its own words (G1)
    see: Literal["physio", "gp", "doctor"] = "physio"
    hold_plan: bool = False  # R18/R19: the hip plan waits for the clinician


class Step(Strict):
    """Where an answer leads: another question (`go`), a named end of the flow (`end`), or
    an escalation (a `flag` at EMERGENCY or URGENT, after which nothing else is asked)."""

    go: str | None = None
    end: str | None = None
    flag: Flag | None = None
    rule: str | None = Field(default=None, pattern=RULE_ID)  # the rule this transition is

    @model_validator(mode="after")
    def _one_way(self) -> Step:
        if self.flag is not None and self.flag.level.escalates:
            if self.go is not None:
                raise ValueError("an escalating flag ends the flow: it cannot 'go' on")
            return self
        if (self.go is None) == (self.end is None):
            raise ValueError("a step needs exactly one of 'go' or 'end'")
        return self


class Choice(Step):
    value: str = Field(pattern=r"^[a-z0-9_]{1,24}$")
    label: str  # message key of the button label
    words: list[str] = []  # typed words that mean this choice ("swollen", "stiff")


class Branch(Step):
    when: str | None = None  # a named condition; None = otherwise (must come last)


class FlowState(Strict):
    kind: Literal["choice", "pain", "minutes", "screen", "triage", "timezone", "reminder"]
    ask: str | None = None  # message key of the question
    preface: str | None = None  # message key said before the question
    fact: str | None = None  # the name the answer is kept under
    options: list[Choice] = []  # choice: the answers; pain/minutes: buttons beside the scale
    minutes: list[int] = []  # minutes: the durations offered as buttons
    then: list[Branch] = []  # every kind but choice: where to go next
    when: str | None = None  # ask only when this condition holds ...
    otherwise: Step | None = None  # ... and go here when it does not
    screen: Literal["full", "daily", "items"] | None = None  # screen: which one
    items: list[str] = []  # screen "items": the items asked; "full": items already yes
    columns: int = Field(default=2, ge=1, le=6)
    rule: str | None = Field(default=None, pattern=RULE_ID)

    @model_validator(mode="after")
    def _complete(self) -> FlowState:
        if self.kind == "choice":
            if len(self.options) < 2 or self.then:
                raise ValueError("a choice lists two or more options, each with its step")
        else:
            if not self.then:
                raise ValueError(f"a {self.kind} state needs 'then'")
            if any(b.when is None for b in self.then[:-1]) or self.then[-1].when is not None:
                raise ValueError("'then' is checked in order and ends with one unconditional step")
        if self.kind in ("choice", "pain", "minutes") and not self.ask:
            raise ValueError(f"a {self.kind} question needs 'ask'")
        if self.kind == "minutes" and not self.minutes:
            raise ValueError("a minutes question lists the durations offered")
        if self.kind == "screen" and self.screen is None:
            raise ValueError("a screen state says which screen: full, daily or items")
        if self.screen == "items" and not self.items:
            raise ValueError("an items screen lists the items it asks")
        if (self.when is None) != (self.otherwise is None):
            raise ValueError("'when' and 'otherwise' come together")
        values = [o.value for o in self.options]
        if len(set(values)) != len(values):
            raise ValueError("option values must be unique")
        return self

    def steps(self) -> list[Step]:
        out: list[Step] = [*self.options, *self.then]
        if self.otherwise is not None:
            out.append(self.otherwise)
        return out


class Outcome(Strict):
    # decision: the flow gives coaching (a plan, a load decision): every path to it must
    # pass a safety screen. exit: the flow stops without coaching (declined, not yet seen).
    kind: Literal["decision", "exit"]


class FlowSpec(Strict):
    id: str = Field(pattern=r"^[a-z_]{2,20}$")
    first: str
    # Other states the engine may start the flow at (e.g. "redo" for a runner already set up).
    entries: list[str] = []
    outcomes: dict[str, Outcome] = Field(min_length=1)
    states: dict[str, FlowState] = Field(min_length=1)
    # The facts of this flow are a day's check-in, saved as each answer comes in.
    records_checkin: bool = False
    # Each question after the first offers Back: the one before is asked again.
    back: bool = False


# --- outcome measures (clinical rules section 6) -------------------------------------------


class GrocPoint(Strict):
    value: int = Field(ge=-3, le=3)
    label: str = Field(min_length=2, max_length=40)


class Activity(Strict):
    id: str = Field(pattern=r"^[a-z0-9_]{2,16}$")
    label: str = Field(min_length=3, max_length=40)


class Outcomes(Strict):
    """content/data/outcomes.yaml: the GROC scale, the PSFS activity buttons and the
    wording of the weekly check, the Sunday summary and the physio summary."""

    groc: list[GrocPoint] = Field(min_length=7, max_length=7)
    activities: list[Activity] = Field(min_length=1, max_length=8)
    messages: dict[str, str] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Outcomes:
        # A 7-point scale from -3 to +3, each step once (O3).
        if sorted(p.value for p in self.groc) != list(range(-3, 4)):
            raise ValueError("groc must have each of -3..3 exactly once")
        ids = [a.id for a in self.activities]
        if len(set(ids)) != len(ids):
            raise ValueError("activity ids must be unique")
        for key, text in self.messages.items():
            if not text.strip():
                raise ValueError(f"message {key} is empty")
        return self
