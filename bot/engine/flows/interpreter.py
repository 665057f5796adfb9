"""One interpreter for the flows declared in content/data/flows/*.yaml.

A flow spec is a map of states (the shape of python-telegram-bot's ConversationHandler
`states`, kept as data): each state asks one question, or runs one built-in sequence (the
red-flag screen, where-it-hurts triage, the timezone, the reminder time), and says where
each answer leads. This module asks, reads the answer, records it, and follows the spec;
named conditions and outcomes live in `conditions` and in the flow modules.

It also owns the escalation latch (clinical rules G2), for every flow in one place: an
EMERGENCY or URGENT flag, from a flow's own question or from a screen, pauses the plan at
once (the worst level wins and is never lowered by a milder one), records the escalation,
ends the flow, and from then on any flow but clearance is refused until a clinician has
cleared the runner. SOON referrals are collected and said first when the flow ends (W3).

Conversation data of a running flow (JSON):
    facts      {name: value}            the answers so far, by fact name
    answers    [[state, value], ...]    every answer in the order given
    trail      [{...}]                  flows with `back`: each answered question and the
                                        data before its answer, to go back to (`back`)
    no_back    true                     a safety answer other than "no": no going back
    screen     {item: answer}           red-flag answers given so far in this flow
    scr        {...}                    the screen in progress (bot.engine.screening)
    triage     {...}                    where-it-hurts in progress
    referrals  [{...}]                  SOON referrals to say when the flow ends
    lines      [str]                    confirmations to say with the next question
    date       "yyyy-mm-dd"             the local day a check-in began
    ask_first  [item, ...]              screen items to ask before a full screen (free text)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from bot.engine import hints, screening
from bot.engine.context import Ctx
from bot.engine.events import COMMANDS, Topic
from bot.engine.flows import checkin_facts, preferences
from bot.engine.flows.conditions import CONDITIONS
from bot.engine.parse import matching_choice, minutes, pain_score
from bot.engine.rules import registry
from bot.engine.rules import triage as triage_rules
from bot.engine.rules.return_to_running import rp8_watch_items
from bot.engine.rules.screen import daily_screen, latched_level
from bot.engine.turn import RecordEscalation, RecordScreening, SaveCheckin
from content.loader import Content
from content.schema import Flag, FlowSpec, FlowState, Level, Step

SCREEN_PREFIX = "s/"
TRAIL = "trail"  # the data key of the Back trail (entries never change once written)
PAIN_SCALE = range(11)  # the 0-10 buttons of a pain question
PAIN_COLUMNS = 6
SCREEN_COLUMNS = (1, 3)  # one per row for groups and follow-ups; yes/no/unsure on one row
REASON_MAX = 64  # the checkins.reason column
CLEARANCE_FLOWS = ("clearance",)
Outcome = Callable[[Ctx, dict[str, Any]], None]
OUTCOMES: dict[tuple[str, str], Outcome] = {}
# Facts that change the profile the moment they are answered (consent's timestamp).
ON_FACT: dict[tuple[str, str], Callable[[Ctx, Any], None]] = {}
TOPICS = {
    "start": Topic.SETUP,
    "checkin": Topic.CHECKIN,
    "clearance": Topic.CLEARANCE,
    "review": Topic.CLEARANCE,
    "symptoms": Topic.SCREEN,
}


def outcome(flow: str, name: str) -> Callable[[Outcome], Outcome]:
    """Register the code that runs when `flow` ends in the outcome `name`."""

    def register(fn: Outcome) -> Outcome:
        OUTCOMES[(flow, name)] = fn
        return fn

    return register


def on_fact(
    flow: str, fact: str
) -> Callable[[Callable[[Ctx, Any], None]], Callable[[Ctx, Any], None]]:
    """Register what an answer changes in the profile at once (before the flow ends)."""

    def register(fn: Callable[[Ctx, Any], None]) -> Callable[[Ctx, Any], None]:
        ON_FACT[(flow, fact)] = fn
        return fn

    return register


def is_spec_flow(ctx: Ctx, flow: str | None) -> bool:
    return flow is not None and flow in ctx.content.flows


# --- starting a flow -----------------------------------------------------------------------


def begin(
    ctx: Ctx,
    flow_id: str,
    *,
    at: str | None = None,
    preface: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Start `flow_id` at its first state (or `at`). While the plan is latched (G2) only
    clearance may start: anything else starts clearance instead."""
    if ctx.profile.plan_paused and flow_id not in CLEARANCE_FLOWS:
        flow_id, at, preface, data = "clearance", None, None, None
    spec = ctx.content.flows[flow_id]
    ctx.conv.flow = flow_id
    ctx.conv.data = {"facts": {}, "answers": [], "screen": {}, "referrals": [], "lines": []}
    ctx.conv.data.update(data or {})
    if spec.records_checkin and "date" not in ctx.conv.data:
        ctx.conv.data["date"] = ctx.today.isoformat()
    if preface:
        ctx.conv.data["lines"].append(preface)
    _enter(ctx, spec, at or spec.first)


def _enter(ctx: Ctx, spec: FlowSpec, state_id: str) -> None:
    state = spec.states[state_id]
    if state.when is not None and not _holds(ctx, state.when):
        assert state.otherwise is not None
        _take(ctx, spec, state.otherwise)
        return
    _ask(ctx, spec, state_id, state)


def _holds(ctx: Ctx, name: str) -> bool:
    return CONDITIONS[name](ctx, ctx.conv.data["facts"])


def _preface(ctx: Ctx, state: FlowState) -> str | None:
    lines: list[str] = ctx.conv.data.get("lines", [])
    parts = [*lines]
    if state.preface:
        parts.append(ctx.t(state.preface))
    ctx.conv.data["lines"] = []
    return "\n\n".join(parts) if parts else None


def _topic(spec: FlowSpec) -> str:
    return TOPICS.get(spec.id, Topic.INFO)


def _ask(ctx: Ctx, spec: FlowSpec, sid: str, state: FlowState) -> None:
    topic = _topic(spec)
    if state.kind == "screen":
        _start_screen(ctx, spec, sid, state)
        return
    if state.kind == "triage":
        ctx.conv.data["triage"] = {"state": sid}
        _ask_location(ctx, spec, _preface(ctx, state))
        return
    if state.kind == "timezone":
        preferences.ask_timezone(ctx, spec.id, sid, preface=_preface(ctx, state), topic=topic)
        return
    if state.kind == "reminder":
        preferences.ask_reminder(ctx, spec.id, sid, preface=_preface(ctx, state), topic=topic)
        return
    assert state.ask is not None
    extra = [(o.value, ctx.t(o.label)) for o in state.options]
    free: str | None = "words" if any(o.words for o in state.options) else None
    if state.kind == "pain":
        options = [(str(n), str(n)) for n in PAIN_SCALE] + extra
        columns, free = PAIN_COLUMNS, "pain"
    elif state.kind == "minutes":
        options = extra + [(str(m), ctx.t("minutes_label", n=m)) for m in state.minutes]
        columns, free = state.columns, "minutes"
    else:
        options, columns = extra, state.columns
    ctx.ask(
        spec.id,
        sid,
        ctx.t(state.ask),
        options,
        columns=columns,
        free=free,
        preface=_preface(ctx, state),
        topic=topic,
    )


# --- answers -------------------------------------------------------------------------------


def resumable(ctx: Ctx) -> bool:
    """Can the waiting question of a spec flow take an answer? Not when it was stored by an
    older version of the flows (a question that no longer exists, data in an older shape)."""
    conv = ctx.conv
    spec = ctx.content.flows.get(conv.flow or "")
    data = conv.data
    if spec is None or conv.qid is None or "facts" not in data:
        return False
    if conv.qid.startswith(SCREEN_PREFIX):
        scr = data.get("scr")
        return isinstance(scr, dict) and scr.get("state") in spec.states
    if "triage" in data:
        tri = data["triage"]
        return isinstance(tri, dict) and tri.get("state") in spec.states
    return conv.qid in spec.states


def restart(ctx: Ctx) -> None:
    """Start the waiting flow again from its first question (its stored state is stale)."""
    flow = ctx.conv.flow
    assert flow is not None
    kept = {"date": ctx.conv.data["date"]} if "date" in ctx.conv.data else None
    begin(ctx, flow, preface=ctx.t("flow_changed"), data=kept)


def typed_answer(ctx: Ctx, text: str) -> str | None:
    """The option value that typed text means at the waiting question, if any."""
    conv = ctx.conv
    spec = ctx.content.flows.get(conv.flow or "")
    if spec is None or conv.qid is None or conv.qid not in spec.states:
        return None
    state = spec.states[conv.qid]
    words = [(o.value, o.words) for o in state.options if o.words]
    if state.kind == "pain":
        score = pain_score(text)
        if score is not None:
            return str(score)
    if state.kind == "minutes":
        found = minutes(text)
        if found is not None:
            return str(found)
    if state.kind in ("pain", "minutes") and any(ch.isdigit() for ch in text):
        return None  # a number that did not read as one: ask again, don't guess from words
    return matching_choice(text, words) if words else None


def answer(ctx: Ctx, qid: str, value: str) -> None:
    """Feed the answer to the waiting question of a spec flow."""
    conv = ctx.conv
    assert conv.flow is not None
    spec = ctx.content.flows[conv.flow]
    data = conv.data
    if spec.back:
        _keep_for_back(ctx, qid, value)
    data.setdefault("answers", []).append([qid, value])
    if qid.startswith(SCREEN_PREFIX):
        _screen_answer(ctx, spec, qid[len(SCREEN_PREFIX) :], value)
        return
    if "triage" in data and qid not in spec.states:
        _triage_answer(ctx, spec, qid, value)
        return
    state = spec.states[qid]
    if state.kind == "triage":
        _triage_answer(ctx, spec, qid, value)
        return
    if state.kind == "timezone":
        data["lines"].append(preferences.set_timezone(ctx, value))
        _take(ctx, spec, _branch(ctx, state))
        return
    if state.kind == "reminder":
        data["reminder_line"] = preferences.set_reminder(ctx, value)
        _take(ctx, spec, _branch(ctx, state))
        return
    option = next((o for o in state.options if o.value == value), None)
    fact_value: Any = value if option is not None or state.kind == "choice" else int(value)
    if state.fact is not None:
        _remember(ctx, spec, state.fact, fact_value)
    if option is not None:
        _take(ctx, spec, option)
        return
    _take(ctx, spec, _branch(ctx, state))


# --- Back -----------------------------------------------------------------------------------


def _keep_for_back(ctx: Ctx, qid: str, value: str) -> None:
    """Before an answer is taken: remember the question and the data as they were, so
    Back can ask it again. A safety-screen answer other than "no" ends going back: red
    flags win, and a flag cannot be taken back by stepping round it."""
    conv = ctx.conv
    data = conv.data
    trail: list[dict[str, Any]] = data.setdefault(TRAIL, [])
    before = {k: v for k, v in data.items() if k != TRAIL}
    trail.append(
        {
            "qid": qid,
            "text": conv.text,
            "options": [list(o) for o in conv.options],
            "columns": conv.columns,
            "free": conv.free,
            "topic": conv.topic,
            "data": _copy(before),
        }
    )
    if qid.startswith(SCREEN_PREFIX) and value not in screening.NEGATIVE_ANSWERS:
        data["no_back"] = True
        data["trail"] = []


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def back(ctx: Ctx) -> None:
    """Go back one question: the current one shows it was left, the one before is asked
    again with the data as it was before its answer. Referrals already made stay made
    (and are still said when the flow ends)."""
    conv = ctx.conv
    trail: list[dict[str, Any]] = conv.data.get("trail", [])
    if not trail or conv.data.get("no_back") or conv.flow is None:
        ctx.repeat_question(preface=ctx.t("button_expired"))
        return
    ctx.edit_answered(conv.text, ctx.t("opt_back"))
    last = trail.pop()
    referrals = conv.data.get("referrals", [])
    # A copy: the entry is shared with the turn's input (machine._copy_data).
    data: dict[str, Any] = _copy(last["data"])
    data["trail"] = trail
    kept = data.setdefault("referrals", [])
    data["referrals"] = kept + [r for r in referrals if r not in kept]
    conv.data = data
    ctx.ask(
        conv.flow,
        last["qid"],
        last["text"],
        [(v, label) for v, label in last["options"]],
        columns=last["columns"],
        free=last["free"],
        preface=ctx.t("back_asked_again"),
        topic=last["topic"],
    )


def _remember(ctx: Ctx, spec: FlowSpec, fact: str, value: Any) -> None:
    ctx.conv.data["facts"][fact] = value
    hook = ON_FACT.get((spec.id, fact))
    if hook is not None:
        hook(ctx, value)
    if spec.records_checkin:
        fields = checkin_facts.columns(fact, value)
        if fields:
            ctx.effect(SaveCheckin(local_date=checkin_day(ctx), fields=fields))


def checkin_day(ctx: Ctx) -> date:
    """A check-in belongs to the day it started, even when it ends after midnight."""
    raw = ctx.conv.data.get("date")
    return date.fromisoformat(raw) if isinstance(raw, str) else ctx.today


def _branch(ctx: Ctx, state: FlowState) -> Step:
    for branch in state.then:
        if branch.when is None or _holds(ctx, branch.when):
            return branch
    raise AssertionError("the loader guarantees an unconditional last branch")


def _take(ctx: Ctx, spec: FlowSpec, step: Step) -> None:
    if step.flag is not None:
        if step.flag.level.escalates:
            escalate_flag(ctx, spec, step.flag)
            if step.end is not None:
                OUTCOMES[(spec.id, step.end)](ctx, {"escalated": True})
            return
        refer(
            ctx,
            spec.id,
            rule=step.flag.rule,
            level=step.flag.level,
            reason=ctx.t(step.flag.reason) if step.flag.reason else ctx.t("summary_generic"),
            see=step.flag.see,
            hold=step.flag.hold_plan,
        )
    if step.go is not None:
        _enter(ctx, spec, step.go)
        return
    assert step.end is not None
    facts = dict(ctx.conv.data.get("facts", {}))
    OUTCOMES[(spec.id, step.end)](ctx, facts)


def planned_taps(ctx: Ctx, flow_id: str, facts: dict[str, Any]) -> int:
    """How many taps `flow_id` takes today if the answers are `facts` (a question whose
    fact is not given takes its first option or its default branch): the same conditions
    and screens the flow will use, so a message can say the real count."""
    spec = ctx.content.flows[flow_id]
    taps, sid = 0, spec.first
    for _ in range(len(spec.states) + 1):
        state = spec.states[sid]
        if state.when is not None and not CONDITIONS[state.when](ctx, facts):
            assert state.otherwise is not None
            step = state.otherwise
        else:
            taps += _taps_of(ctx, spec, state)
            value = facts.get(state.fact) if state.fact else None
            chosen = next((o for o in state.options if o.value == str(value)), None)
            if chosen is None and not state.then and state.options:
                chosen = state.options[0]
            step = chosen or next(
                b for b in state.then if b.when is None or CONDITIONS[b.when](ctx, facts)
            )
        if step.go is None:
            return taps
        sid = step.go
    raise AssertionError("the loader guarantees every path ends")


def _taps_of(ctx: Ctx, spec: FlowSpec, state: FlowState) -> int:
    if state.kind != "screen":
        return 1
    which: str | None = state.screen
    if which == "daily":
        which = daily_screen(ctx.profile, checkin_day(ctx) if spec.records_checkin else ctx.today)
    if which == "full":
        return len(ctx.content.screen.groups)  # "none of these" once per group
    if which == "mini":
        return 1
    return len(state.items)


# --- the red-flag screen inside a flow ---------------------------------------------------------


def _start_screen(ctx: Ctx, spec: FlowSpec, sid: str, state: FlowState) -> None:
    data = ctx.conv.data
    known: dict[str, str] = data.setdefault("screen", {})
    which: str | None = state.screen
    if which == "daily":
        which = daily_screen(ctx.profile, checkin_day(ctx) if spec.records_checkin else ctx.today)
        if which == "full":
            data["lines"].append(ctx.t("weekly_screen_intro"))  # G4: say why it is longer
    if which == "full":
        screening.start_full(
            data, "full", known=known, preset=tuple(state.items), content=ctx.content
        )
        # Items the runner's own words pointed to are asked first (free text, G4).
        first = [i for i in data.pop("ask_first", []) if i in _screen_ids(ctx.content)]
        data["scr"]["queue"][:0] = [f"i:{i}" for i in first if i not in known]
    elif which == "mini":
        screening.start_mini(data, known=known)
    else:
        screening.start_items(data, list(state.items), "item", known=known)
    data["scr"]["state"] = sid
    _next_screen_question(ctx, spec, preface=_preface(ctx, state))


def _next_screen_question(ctx: Ctx, spec: FlowSpec, preface: str | None = None) -> None:
    q = screening.next_question(ctx.conv.data, ctx.content)
    if q is None:
        _screen_done(ctx, spec)
        return
    wide, narrow = SCREEN_COLUMNS
    columns = wide if q.qid.startswith(("g:", "m", "f:")) else narrow
    topic = Topic.CLEARANCE if spec.id in CLEARANCE_FLOWS else Topic.SCREEN
    ctx.ask(
        spec.id,
        SCREEN_PREFIX + q.qid,
        q.text,
        q.options,
        columns=columns,
        preface=preface,
        topic=topic,
    )


def _screen_answer(ctx: Ctx, spec: FlowSpec, qid: str, value: str) -> None:
    screening.answer(ctx.conv.data, qid, value, ctx.content)
    _next_screen_question(ctx, spec)


def _screen_done(ctx: Ctx, spec: FlowSpec) -> None:
    data = ctx.conv.data
    result = screening.outcome(data, ctx.content)
    scr = data.pop("scr")
    kind = scr["kind"]
    state = spec.states[scr["state"]]
    data["screen"] = {**data.get("screen", {}), **result.answers}
    data["screen_kind"] = kind
    recorded = "start" if spec.id == "start" and kind == "full" else kind
    if spec.id in CLEARANCE_FLOWS and kind == "full":
        recorded = "clearance"
    ctx.effect(RecordScreening(kind=recorded, answers=result.answers, level=result.level.value))
    if kind == "full":
        ctx.profile.last_full_screen_on = ctx.today
    if result.level.escalates:
        escalate(
            ctx,
            spec,
            level=result.level,
            triggers=result.triggers,
            summary=result.summary,
        )
        return
    if result.level in (Level.SOON, Level.SOON_72H):
        for item_id in result.triggers:
            item = ctx.content.screen_item(item_id)
            refer(
                ctx,
                spec.id,
                rule=item_id,
                level=result.level,
                reason=item.summary,
                see=item.see,
                hold=item.hold_plan,
            )
    _take(ctx, spec, _branch(ctx, state))


# --- where it hurts (clinical rules 5a, 5b) -----------------------------------------------------


def _ask_location(ctx: Ctx, spec: FlowSpec, preface: str | None = None) -> None:
    triage = ctx.content.triage
    options = [(loc.id, loc.label) for loc in triage.locations]
    ctx.ask(
        spec.id,
        "loc",
        triage.location_question,
        options,
        columns=1,
        preface=preface,
        topic=_topic(spec),
    )


def _triage_answer(ctx: Ctx, spec: FlowSpec, qid: str, value: str) -> None:
    tri = ctx.conv.data["triage"]
    triage = ctx.content.triage
    if qid == "loc":
        location = next(loc for loc in triage.locations if loc.id == value)
        tri.update(
            loc=value,
            side=location.presentation,
            pending=triage_rules.questions_for(triage, location.presentation),
            hits=[],
        )
    else:
        tri["pending"].pop(0)
        if value == "yes":
            tri["hits"].append(ctx.content.triage_question(qid).points_to)
    while tri["pending"]:
        question = ctx.content.triage_question(tri["pending"][0])
        # A second question pointing the same way adds nothing once one said yes.
        if question.points_to == tri["side"] and tri["side"] in tri["hits"]:
            tri["pending"].pop(0)
            continue
        ctx.ask(
            spec.id,
            question.id,
            question.question,
            [("yes", ctx.t("opt_yes")), ("no", ctx.t("opt_no"))],
            topic=_topic(spec),
        )
        return
    result = triage_rules.classify(tri["side"], tri["hits"])
    ctx.profile.presentation = result.presentation
    ctx.profile.pain_location = tri["loc"]
    for rule_id, reason_key in result.referrals:
        refer(ctx, spec.id, rule=rule_id, level=Level.SOON, reason=ctx.t(reason_key))
    state = spec.states[ctx.conv.data.pop("triage")["state"]]
    _take(ctx, spec, _branch(ctx, state))


# --- escalation and referrals -------------------------------------------------------------------


def region_words(ctx: Ctx) -> tuple[str, str]:
    """(emergency number words, same-day route) for the runner's country (W4)."""
    if ctx.profile.country:
        region = ctx.content.region(ctx.profile.country)
        if ctx.profile.country in ctx.content.regions.countries:
            return region.emergency, region.same_day
    default = ctx.content.regions.default
    return ctx.t("unknown_emergency_number", number=default.emergency), default.same_day


@registry.rule("G2", "0")
def escalate(
    ctx: Ctx,
    spec: FlowSpec,
    *,
    level: Level,
    triggers: tuple[str, ...],
    summary: str,
    message: str | None = None,
) -> None:
    """The latch: pause the plan at the worst level so far, record it, say what to do
    (W3: the action and timeframe first; W2: words that fit the trigger) and end the flow."""
    profile = ctx.profile
    profile.escalation = latched_level(profile.escalation, level)
    profile.escalated_on = ctx.today
    profile.last_urgent_on = ctx.today
    number, route = region_words(ctx)
    summary = summary or ctx.t("summary_generic")
    if message is not None:
        text = ctx.t(message, emergency=number, route=route)
    elif level == Level.EMERGENCY:
        text = ctx.t("escalate_emergency", emergency=number, summary=summary)
    else:
        could_be = next(
            (
                ctx.content.screen_item(t).could_be
                for t in triggers
                if t in _screen_ids(ctx.content) and ctx.content.screen_item(t).could_be
            ),
            None,
        ) or ctx.t("could_be_default", summary=summary)
        text = ctx.t("escalate_urgent", emergency=number, route=route, could_be=could_be)
    ctx.effect(
        RecordEscalation(level=level.value, trigger=",".join(triggers), flow=spec.id, message=text)
    )
    if spec.records_checkin:
        ctx.effect(
            SaveCheckin(
                local_date=checkin_day(ctx),
                fields={"decision": "escalated", "reason": ",".join(triggers)[:REASON_MAX]},
            )
        )
    ctx.finish()
    ctx.say(text, topic=Topic.ESCALATION)


def escalate_flag(ctx: Ctx, spec: FlowSpec, flag: Flag) -> None:
    escalate(
        ctx,
        spec,
        level=flag.level,
        triggers=(flag.rule,),
        summary=ctx.t("summary_generic"),
        message=flag.message,
    )


def _screen_ids(content: Content) -> set[str]:
    return {i.id for i in content.screen.items}


def refer(
    ctx: Ctx,
    flow: str,
    *,
    rule: str,
    level: Level,
    reason: str,
    see: str = "physio",
    hold: bool = False,
) -> None:
    """A SOON referral: running stops progressing until seen (SOON-72H: no running), the
    plan waits for the clinician when the rule says so (R18, R19). It is recorded now and
    said when the flow ends (`referral_text`)."""
    profile = ctx.profile
    profile.review = Level.worst(profile.review, level)
    profile.review_reason = reason
    profile.review_since = profile.review_since or ctx.today
    if hold:
        profile.plan_hold = profile.plan_hold or rule
    entry = {"rule": rule, "level": level.value, "reason": reason, "see": see}
    ctx.conv.data.setdefault("referrals", []).append(entry)
    ctx.effect(
        RecordEscalation(
            level=level.value,
            trigger=rule,
            flow=flow,
            message=referral_text(ctx, [entry]) or reason,
        )
    )


SEE_ORDER = ("doctor", "gp", "physio")


def referral_text(ctx: Ctx, referrals: list[dict[str, str]]) -> str | None:
    """One message for every referral of a flow, the action and timeframe first (W3)."""
    if not referrals:
        return None
    reasons = list(dict.fromkeys(r["reason"] for r in referrals))
    reason = "; and ".join(reasons)
    if any(r["level"] == Level.SOON_72H for r in referrals):
        return ctx.t("escalate_soon_72h", reason=reason)
    see = next(s for s in SEE_ORDER if any(r["see"] == s for r in referrals))
    return ctx.t("escalate_soon", who=ctx.t(f"who_{see}"), reason=reason)


def pending_referrals(ctx: Ctx) -> list[dict[str, str]]:
    return list(ctx.conv.data.get("referrals", []))


# --- checked at start-up -------------------------------------------------------------------


class FlowError(Exception):
    """A flow spec names a condition, outcome, fact or rule the engine does not have."""


def check_content(content: Content) -> None:
    """What the content loader cannot know: every name a spec uses exists in the engine,
    every rule id a spec or the screen carries is a registered rule, and every rule the
    registry says is implemented by content is really carried by it."""
    carried: dict[str, set[str]] = {}
    for spec in content.flows.values():
        where = f"flows/{spec.id}.yaml"
        for sid, state in spec.states.items():
            if state.when is not None and state.when not in CONDITIONS:
                raise FlowError(f"{where}: {sid}: unknown condition {state.when!r}")
            if spec.records_checkin and state.fact and state.fact not in checkin_facts.FACTS:
                raise FlowError(f"{where}: {sid}: the check-in has no fact {state.fact!r}")
            tags = [state.rule]
            for step in state.steps():
                tags.append(step.rule)
                if step.flag is not None:
                    tags.append(step.flag.rule)
                when = getattr(step, "when", None)
                if when is not None and when not in CONDITIONS:
                    raise FlowError(f"{where}: {sid}: unknown condition {when!r}")
                if step.end is not None and (spec.id, step.end) not in OUTCOMES:
                    raise FlowError(f"{where}: {sid}: no code for outcome {step.end!r}")
            for tag in tags:
                if tag is None:
                    continue
                if tag not in registry.RULES:
                    raise FlowError(f"{where}: {sid}: unknown rule id {tag!r}")
                carried.setdefault(tag, set()).add(where)
    screen_ids = _screen_ids(content)
    for rule_id in registry.RULES:
        for where in registry.content_files(rule_id):
            if where == "screen.yaml":
                if rule_id not in screen_ids:
                    raise FlowError(f"rule {rule_id}: no screen item carries it")
            elif where not in carried.get(rule_id, set()):
                raise FlowError(f"rule {rule_id}: {where} does not carry it")
    for key, text in content.messages.items():
        for hint in hints.commands_in(text):
            word = hint.split(" ", 1)[0]
            if word not in COMMANDS:
                raise FlowError(f"messages.yaml: {key}: {{cmd:{hint}}} names no command")
    mini_rows = {r for m in content.screen.mini for r in m.rows}
    missing = [r for r in rp8_watch_items() if r not in mini_rows]
    if missing:
        raise FlowError(f"RP8/G5: the daily mini-screen does not reach {missing}")
