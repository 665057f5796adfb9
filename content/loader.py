"""Load the coaching content from content/data, validate it and check its cross-references.

Everything is checked at load, so a typo in a data file stops the program at start-up with
a message that names the file and the field, instead of failing in front of a runner.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from content.schema import (
    Exercise,
    FlowSpec,
    FlowState,
    LadderLevel,
    Outcomes,
    Phase,
    Region,
    Regions,
    Screen,
    ScreenItem,
    Strict,
    SymptomWords,
    Tip,
    Triage,
    TriageQuestion,
    Warmup,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
# A command hint in messages.yaml, "{cmd:warmup add tue,thu 18:00 before 15}", is stored as
# the command between these two marks; each chat adapter writes it the way its platform
# needs (/warmup ..., /hip warmup ..., warmup ... in the console). See bot/engine/hints.py.
CMD_OPEN, CMD_CLOSE = "\u27e6", "\u27e7"
_CMD_SYNTAX = re.compile(r"\{cmd:((?:[^{}]|\{\w+\})+)\}")
PRESENTATIONS = ("front", "outside", "mixed", "out_of_scope")

T = TypeVar("T")


class ContentError(Exception):
    """A data file is missing, unreadable, invalid or refers to something that doesn't exist.

    The message starts with the file, then the field path:
    "content/data/exercises.yaml: [3].dosage.sets: Input should be ...".
    """


class _PhasesFile(Strict):
    phases: list[Phase]
    ladder: list[LadderLevel]


# --- the loaded content ----------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    exercises: dict[str, Exercise]
    phases: dict[int, Phase]
    ladder: list[LadderLevel]
    screen: Screen
    triage: Triage
    warmups: dict[str, Warmup]
    tips: list[Tip]
    regions: Regions
    messages: dict[str, str]
    flows: dict[str, FlowSpec] = field(default_factory=dict)
    symptom_words: SymptomWords | None = None
    # Section 6 outcome measures and the summaries' wording (outcomes.yaml), if present.
    outcomes: Outcomes | None = None
    # Values the engine derives from the content once (dose tables, plan shapes), by key.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    _items: dict[str, ScreenItem] = field(init=False, repr=False, compare=False)
    _questions: dict[str, TriageQuestion] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_items", {i.id: i for i in self.screen.items})
        object.__setattr__(self, "_questions", {q.id: q for q in self.triage.questions})

    def screen_item(self, item_id: str) -> ScreenItem:
        try:
            return self._items[item_id]
        except KeyError:
            raise KeyError(f"no screen item {item_id!r}") from None

    def triage_question(self, question_id: str) -> TriageQuestion:
        try:
            return self._questions[question_id]
        except KeyError:
            raise KeyError(f"no triage question {question_id!r}") from None

    def exercises_for(self, phase: int, presentation: str) -> list[Exercise]:
        """The phase's exercises in order, minus those this presentation must avoid.

        "mixed" takes the restrictions of both sides; "out_of_scope" is treated as mixed.
        """
        if presentation not in PRESENTATIONS:
            raise ValueError(f"unknown presentation {presentation!r}; expected {PRESENTATIONS}")
        if phase not in self.phases:
            raise KeyError(f"no phase {phase!r}")
        effective = "mixed" if presentation == "out_of_scope" else presentation
        chosen = (self.exercises[i] for i in self.phases[phase].exercises)
        return [ex for ex in chosen if not ex.avoided_for(effective)]

    def region(self, country: str | None) -> Region:
        """The country's emergency number and same-day route; the default when unknown."""
        if not country:
            return self.regions.default
        return self.regions.countries.get(country.strip().upper(), self.regions.default)

    def message(self, key: str, **kw: Any) -> str:
        try:
            template = self.messages[key]
        except KeyError:
            raise KeyError(f"no message {key!r} in messages.yaml") from None
        return template.format(**kw) if kw else template


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a mapping with the same key twice (PyYAML keeps the last one
    silently, so a pasted duplicate would quietly replace a message)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,
)


# --- loading ---------------------------------------------------------------------------


def _display(path: Path) -> str:
    """content/data/x.yaml for the shipped files; the full path for any other folder."""
    try:
        return path.resolve().relative_to(DATA_DIR.parent.parent).as_posix()
    except ValueError:
        return str(path)


def _loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _read_yaml(path: Path) -> Any:
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(f"{name}: file not found") from None
    except OSError as exc:
        raise ContentError(f"{name}: cannot read: {exc}") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(YAML)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(f"{name}: {where}: invalid YAML: {problem}") from exc


def _validate(path: Path, data: Any, kind: type[T] | Any) -> T:
    name = _display(path)
    try:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return kind.model_validate(data)  # type: ignore[return-value]
        return TypeAdapter(kind).validate_python(data)
    except ValidationError as exc:
        lines = [f"{name}: {_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ContentError("\n".join(lines)) from None


def _load(directory: Path, filename: str, kind: Any) -> Any:
    path = directory / filename
    return _validate(path, _read_yaml(path), kind)


def _load_messages(directory: Path) -> dict[str, str]:
    path = directory / "messages.yaml"
    if not path.exists():
        return {}  # the lead is still writing it
    data = _read_yaml(path)
    if data is None:
        return {}
    messages: dict[str, str] = _validate(path, data, dict[str, str])
    return _marked(path, messages)


def _marked(path: Path, messages: dict[str, str]) -> dict[str, str]:
    """The messages with each {cmd:...} hint stored as a neutral token."""
    for key, text in messages.items():
        if not text.strip():
            raise ContentError(f"{_display(path)}: {key}: a message cannot be empty")
        if CMD_OPEN in text or CMD_CLOSE in text:
            raise ContentError(f"{_display(path)}: {key}: write command hints as {{cmd:...}}")
        marked = _CMD_SYNTAX.sub(lambda m: CMD_OPEN + " ".join(m[1].split()) + CMD_CLOSE, text)
        if "{cmd:" in marked:
            raise ContentError(f"{_display(path)}: {key}: a {{cmd:...}} hint is not closed")
        messages[key] = marked
    return messages


def load_content(directory: Path | None = None) -> Content:
    """Read and check every data file in `directory` (default: content/data)."""
    d = Path(directory) if directory is not None else DATA_DIR
    exercises: list[Exercise] = _load(d, "exercises.yaml", list[Exercise])
    phases_file: _PhasesFile = _load(d, "phases.yaml", _PhasesFile)
    screen: Screen = _load(d, "screen.yaml", Screen)
    triage: Triage = _load(d, "triage.yaml", Triage)
    warmups: list[Warmup] = _load(d, "warmups.yaml", list[Warmup])
    tips: list[Tip] = _load(d, "tips.yaml", list[Tip])
    regions: Regions = _load(d, "regions.yaml", Regions)
    messages = _load_messages(d)
    flows = _load_flows(d, messages, screen)
    symptom_words: SymptomWords = _load(d, "symptom_words.yaml", SymptomWords)
    # After the flows: their check is skipped while messages.yaml is still missing.
    outcomes = _load_outcomes(d, messages)

    _check_exercises(d / "exercises.yaml", exercises)
    ex_by_id = {e.id: e for e in exercises}
    _check_phases(d / "phases.yaml", phases_file, ex_by_id)
    _check_screen(d / "screen.yaml", screen)
    _check_triage(d / "triage.yaml", triage)
    _check_warmups(d / "warmups.yaml", warmups, ex_by_id)
    _check_unique(d / "tips.yaml", "id", [t.id for t in tips])
    item_ids = {i.id for i in screen.items}
    for n, entry in enumerate(symptom_words.red_flags):
        if entry.rule not in item_ids:
            raise _fail(
                d / "symptom_words.yaml", f"red_flags[{n}].rule", f"no screen item {entry.rule!r}"
            )

    return Content(
        exercises=ex_by_id,
        phases={p.number: p for p in phases_file.phases},
        ladder=list(phases_file.ladder),
        screen=screen,
        triage=triage,
        warmups={w.id: w for w in warmups},
        tips=list(tips),
        regions=regions,
        messages=messages,
        flows=flows,
        symptom_words=symptom_words,
        outcomes=outcomes,
    )


def _load_outcomes(directory: Path, messages: dict[str, str]) -> Outcomes | None:
    """outcomes.yaml, whose wording joins the messages (a key may not be in both)."""
    path = directory / "outcomes.yaml"
    if not path.exists():
        return None
    outcomes: Outcomes = _validate(path, _read_yaml(path), Outcomes)
    clash = sorted(set(outcomes.messages) & set(messages))
    if clash:
        raise _fail(path, "messages", f"keys already in messages.yaml: {clash}")
    if messages:  # no messages.yaml yet: no messages at all, as before
        messages.update(_marked(path, dict(outcomes.messages)))
    return outcomes


@functools.cache
def default_content() -> Content:
    """The shipped content, loaded once per process."""
    return load_content()


# --- cross-reference checks ------------------------------------------------------------


def _fail(path: Path, where: str, problem: str) -> ContentError:
    return ContentError(f"{_display(path)}: {where}: {problem}")


def _check_unique(path: Path, where: str, ids: list[str]) -> None:
    dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dupes:
        raise _fail(path, where, f"duplicate ids {dupes}")


def _check_exercises(path: Path, exercises: list[Exercise]) -> None:
    _check_unique(path, "id", [e.id for e in exercises])
    ids = {e.id for e in exercises}
    for n, ex in enumerate(exercises):
        if ex.easier is not None and ex.easier not in ids:
            raise _fail(path, f"[{n}].easier", f"{ex.id}: unknown exercise {ex.easier!r}")
        if ex.easier == ex.id:
            raise _fail(path, f"[{n}].easier", f"{ex.id}: cannot be easier than itself")


def _check_phases(path: Path, pf: _PhasesFile, exercises: dict[str, Exercise]) -> None:
    numbers = [p.number for p in pf.phases]
    if numbers != [1, 2, 3, 4]:
        raise _fail(path, "phases", f"must be numbered 1, 2, 3, 4 in order, got {numbers}")
    for n, phase in enumerate(pf.phases):
        where = f"phases[{n}].exercises"
        _check_unique(path, where, phase.exercises)
        for k, ex_id in enumerate(phase.exercises):
            ex = exercises.get(ex_id)
            if ex is None:
                raise _fail(path, f"{where}[{k}]", f"unknown exercise {ex_id!r}")
            if phase.number not in ex.phases:
                raise _fail(
                    path,
                    f"{where}[{k}]",
                    f"exercise {ex_id!r} does not list phase {phase.number} in its phases",
                )
    levels = [lv.level for lv in pf.ladder]
    if levels != list(range(1, len(levels) + 1)) or not levels:
        raise _fail(path, "ladder", f"levels must run 1, 2, 3, ... without gaps, got {levels}")


def _check_screen(path: Path, screen: Screen) -> None:
    ids = [i.id for i in screen.items]
    _check_unique(path, "items", ids)
    _check_unique(path, "groups", [g.id for g in screen.groups])
    _check_unique(path, "mini", [m.id for m in screen.mini])
    known = set(ids)
    seen: Counter[str] = Counter()
    for n, group in enumerate(screen.groups):
        for k, item_id in enumerate(group.items):
            if item_id not in known:
                raise _fail(path, f"groups[{n}].items[{k}]", f"unknown screen item {item_id!r}")
            seen[item_id] += 1
    for n, item in enumerate(screen.items):
        if seen[item.id] != 1:
            raise _fail(
                path,
                f"items[{n}]",
                f"{item.id} must be in exactly one group, found in {seen[item.id]}",
            )
        for c, combo in enumerate(item.combinations):
            for k, other in enumerate(combo.with_any):
                if other not in known or other == item.id:
                    raise _fail(
                        path,
                        f"items[{n}].combinations[{c}].with_any[{k}]",
                        f"{item.id}: unknown or self-referencing screen item {other!r}",
                    )
        if item.follow_up is not None:
            _check_unique(
                path, f"items[{n}].follow_up.options", [o.id for o in item.follow_up.options]
            )
    for n, mini in enumerate(screen.mini):
        for k, row in enumerate(mini.rows):
            if row not in known:
                raise _fail(path, f"mini[{n}].rows[{k}]", f"unknown screen item {row!r}")


def _check_triage(path: Path, triage: Triage) -> None:
    _check_unique(path, "locations", [loc.id for loc in triage.locations])
    _check_unique(path, "questions", [q.id for q in triage.questions])
    known = {q.id for q in triage.questions}
    for side in ("front", "outside"):
        for k, qid in enumerate(getattr(triage, side)):
            if qid not in known:
                raise _fail(path, f"{side}[{k}]", f"unknown triage question {qid!r}")


def _check_warmups(path: Path, warmups: list[Warmup], exercises: dict[str, Exercise]) -> None:
    _check_unique(path, "id", [w.id for w in warmups])
    for n, warmup in enumerate(warmups):
        for part in ("drills", "activation"):
            for k, item in enumerate(getattr(warmup, part)):
                if item.exercise not in exercises:
                    raise _fail(
                        path, f"[{n}].{part}[{k}].exercise", f"unknown exercise {item.exercise!r}"
                    )


# --- flows --------------------------------------------------------------------------------


def _load_flows(directory: Path, messages: dict[str, str], screen: Screen) -> dict[str, FlowSpec]:
    """Every content/data/flows/*.yaml, each checked as a whole (see `_check_flow`)."""
    folder = directory / "flows"
    if not folder.is_dir():
        raise ContentError(f"{_display(folder)}: folder not found")
    flows: dict[str, FlowSpec] = {}
    for path in sorted(folder.glob("*.yaml")):
        spec: FlowSpec = _validate(path, _read_yaml(path), FlowSpec)
        if path.stem != spec.id:
            raise _fail(path, "id", f"{spec.id!r} must match the file name {path.stem!r}")
        _check_flow(path, spec, messages, screen)
        flows[spec.id] = spec
    return flows


def _check_flow(path: Path, spec: FlowSpec, messages: dict[str, str], screen: Screen) -> None:
    """Every target exists, every message key exists, and every path from the first
    question ends: in a named outcome or an escalation, never in a loop; and no path
    reaches a coaching decision without passing a safety screen (red flags win)."""
    for entry in (spec.first, *spec.entries):
        if entry not in spec.states:
            raise _fail(path, "first", f"no state {entry!r}")
    item_ids = {i.id for i in screen.items}
    for sid, state in spec.states.items():
        where = f"states.{sid}"
        keys = [state.ask, state.preface]
        keys += [o.label for o in state.options]
        for n, step in enumerate(state.steps()):
            if step.go is not None and step.go not in spec.states:
                raise _fail(path, f"{where}", f"step {n} goes to unknown state {step.go!r}")
            if step.end is not None and step.end not in spec.outcomes:
                raise _fail(path, f"{where}", f"step {n} ends in unknown outcome {step.end!r}")
            if step.flag is not None:
                keys += [step.flag.reason, step.flag.message]
        if messages:
            for key in keys:
                if key is not None and key not in messages:
                    raise _fail(path, where, f"no message {key!r} in messages.yaml")
        for item in state.items:
            if item not in item_ids:
                raise _fail(path, f"{where}.items", f"unknown screen item {item!r}")

    reached: set[str] = set()
    done: set[tuple[str, bool]] = set()
    visited: set[str] = set()

    def visit(sid: str, screened: bool, trail: tuple[str, ...]) -> None:
        if sid in trail:
            raise _fail(path, f"states.{sid}", f"loops back: {' -> '.join((*trail, sid))}")
        if (sid, screened) in done:
            return
        visited.add(sid)
        state: FlowState = spec.states[sid]
        asked = screened or state.kind == "screen"
        nexts = [(step, asked) for step in (*state.options, *state.then)]
        if state.otherwise is not None:
            nexts.append((state.otherwise, screened))
        for step, safe in nexts:
            if step.go is not None:
                visit(step.go, safe, (*trail, sid))
            elif step.end is not None:
                reached.add(step.end)
                if spec.outcomes[step.end].kind == "decision" and not safe:
                    raise _fail(
                        path,
                        f"states.{sid}",
                        f"reaches the decision {step.end!r} without a safety screen",
                    )
        done.add((sid, screened))

    for entry in (spec.first, *spec.entries):
        visit(entry, False, ())
    orphans = sorted(set(spec.states) - visited)
    if orphans:
        raise _fail(path, "states", f"never asked: {orphans}")
    unused = sorted(set(spec.outcomes) - reached)
    if unused:
        raise _fail(path, "outcomes", f"never reached: {unused}")
