"""The engine's single entry point: one inbound event in, new state and replies out.

`step` is pure: it reads the `Turn` (stored state, the event, `now`) and the content, and
returns a `Result`. It never raises on user input; whatever arrives gets an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.engine import payload as payloads
from bot.engine.context import Ctx
from bot.engine.events import COMMANDS, GROUP_COMMANDS, Button, InboundKind
from bot.engine.flows import (
    account,
    checkin,
    clearance,
    interpreter,
    onboarding,
    outcomes,
    plan,
    preferences,
    symptoms,
    team,
)
from bot.engine.parse import clean
from bot.engine.payload import small_int
from bot.engine.turn import Result, Turn
from content.loader import Content

log = logging.getLogger(__name__)

Begin = Callable[[Ctx, str], None]
Answer = Callable[[Ctx, str, str], None]

# Commands that start a conversation of their own (and replace any other in progress).
FLOW_COMMANDS: dict[str, Begin] = {
    "start": onboarding.begin_start,
    "checkin": checkin.begin_checkin,
    "settings": account.settings,
    "delete": account.begin_delete,
    # `pause` alone asks how long; `pause 2 weeks` answers at once (account.pause).
    "pause": account.pause,
}
# Commands that answer at once; a conversation in progress stays where it was.
QUICK_COMMANDS: dict[str, Begin] = {
    "today": plan.today,
    "progress": plan.progress,
    "resume": account.resume,
    "export": account.export,
    "help": account.help_text,
    "warmup": team.warmup,
    "summary": outcomes.summary,
}
# Conversations written in code; the coaching flows are specs run by `interpreter`.
ANSWERS: dict[str, Answer] = {
    account.SETTINGS: account.answer_settings,
    account.DELETE: account.answer_delete,
    account.PAUSE: account.answer_pause,
    team.WARMUP: team.answer_warmup,
    outcomes.OUTCOMES: outcomes.answer,
}
FREE_TEXT: dict[str, Callable[[str], str | None]] = {
    "clock": preferences.parse_clock_value,
    "timezone": preferences.find_timezone,
    "country": preferences.parse_country,
    "activity": outcomes.parse_activity,
    "score": outcomes.parse_score,
}
MAX_TEXT = 2000  # longer messages are never a valid answer; don't spend time parsing them
BACK_WORDS = ("back", "go back", "undo")  # typed where a Back button is shown
MAX_OPTION_DIGITS = 3  # "2" picks the second option; nothing longer is an option number
_CHECKED: set[int] = set()  # ids of Content objects whose flows were checked against the engine


def step(turn: Turn, content: Content) -> Result:
    if id(content) not in _CHECKED:
        interpreter.check_content(content)
        _CHECKED.add(id(content))
    conv = turn.conversation
    ctx = Ctx(
        turn=turn,
        content=content,
        # The step must not change its input. Profile fields are immutable values, so a
        # shallow copy is enough; the conversation's data is plain JSON, copied by hand
        # (several times faster than deepcopy, which matters per event).
        profile=turn.profile.model_copy(),
        conv=conv.model_copy(update={"data": _copy_data(conv.data), "options": list(conv.options)}),
    )
    inbound = turn.inbound
    profile = ctx.profile
    dated_pause = profile.paused and profile.paused_until is not None
    if (
        dated_pause
        and inbound.kind != InboundKind.REMINDER
        and not profile.reminders_paused(ctx.today)
    ):
        # A dated pause is over on its local day, whatever the runner does first.
        profile.paused, profile.paused_until = False, None
    if inbound.kind == InboundKind.JOINED:
        team.joined(ctx)
    elif ctx.in_group:
        _group(ctx)
    elif inbound.kind == InboundKind.COMMAND and inbound.command in COMMANDS:
        _command(ctx, inbound.command, inbound.text)
    elif inbound.kind == InboundKind.BUTTON:
        _button(ctx, inbound.payload or "")
    elif inbound.kind == InboundKind.REMINDER:
        checkin.reminder(ctx, inbound.text)
        outcomes.offer_summary_with_escalations(ctx)
        return Result(
            profile=ctx.profile, conversation=ctx.conv, replies=ctx.replies, effects=ctx.effects
        )
    else:
        _text(ctx, inbound.text)
    if not ctx.replies and not ctx.in_group:
        ctx.say(ctx.t("fallback"))
    outcomes.offer_summary_with_escalations(ctx)
    return Result(
        profile=ctx.profile, conversation=ctx.conv, replies=ctx.replies, effects=ctx.effects
    )


def _copy_data(data: dict[str, Any]) -> dict[str, Any]:
    """The conversation's data, the step's own to change. The Back trail's entries are
    shared, not copied: once written they are never changed (`interpreter.back` copies the
    one it steps back to), and copying them was most of the copy, as the trail grows by a
    copy of the data with every answer."""
    trail = interpreter.TRAIL
    copied = {k: _copy_json(v) for k, v in data.items() if k != trail}
    if trail in data:
        copied[trail] = list(data[trail])
    return copied


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


SETUP_FIRST = ("start", "checkin", "today", "progress", "settings")


def _command(ctx: Ctx, command: str, args: str) -> None:
    if command in SETUP_FIRST and ctx.conv.waiting and ctx.conv.flow == onboarding.START:
        # Half-way through setup: carry on where we were instead of starting over.
        ctx.repeat_question(preface=ctx.t("setup_in_progress"))
        return
    if command in FLOW_COMMANDS:
        FLOW_COMMANDS[command](ctx, args)
        return
    waiting = ctx.conv.waiting
    QUICK_COMMANDS[command](ctx, args)
    if waiting and ctx.conv.waiting and command not in ("export",):
        ctx.repeat_question(preface=ctx.t("still_waiting"))


def _group(ctx: Ctx) -> None:
    inbound = ctx.turn.inbound
    if inbound.kind == InboundKind.COMMAND and inbound.command:
        if inbound.command == "start":
            # Set-up is personal: offer the private chat (its menu says so) rather than
            # posting the club introduction again.
            ctx.say(ctx.t("group_start_private"), open_private=True)
        elif inbound.command in GROUP_COMMANDS:
            if inbound.command == "warmup":
                team.warmup(ctx, inbound.text)
            elif inbound.command == "summary":
                outcomes.summary(ctx, inbound.text)
            else:
                account.help_text(ctx)
        else:
            # Personal coaching never happens in front of the club.
            ctx.say(ctx.t("group_personal_command"), private=False, open_private=True)
        return
    if ctx.conv.waiting and inbound.kind in (InboundKind.BUTTON, InboundKind.TEXT):
        if inbound.is_admin is not True:
            # A group's open question changes its settings: only admins may answer it, and
            # it stays open (with its buttons) for one who can. Members' chatter is ignored.
            if inbound.kind == InboundKind.BUTTON:
                ctx.say(ctx.t("warmup_admin_only"), private=True)
            return
        if inbound.kind == InboundKind.BUTTON:
            _button(ctx, inbound.payload or "")
        else:
            _text(ctx, inbound.text)
        return
    if inbound.kind == InboundKind.BUTTON:
        ctx.say(ctx.t("button_expired_group"), private=True)
        return
    # Ordinary chatter in a group is not for the bot; stay quiet rather than spam the club.


def _button(ctx: Ctx, raw: str) -> None:
    pressed = payloads.decode(raw)
    if pressed is None:
        _expired(ctx)
        return
    if not isinstance(pressed, payloads.Answer):
        _action(ctx, pressed)
        return
    conv = ctx.conv
    if not conv.waiting or pressed.turn != conv.turn:
        _expired(ctx)
        return
    label = conv.label_for(pressed.value)
    if label is None:
        _expired(ctx)
        return
    _answer(ctx, pressed.value, label)


def _action(ctx: Ctx, pressed: payloads.Payload) -> None:
    waiting_turn = ctx.conv.turn if ctx.conv.waiting else None
    private = not ctx.in_group
    match pressed:
        case payloads.LogEntry() if private:
            if plan.log_exercise(ctx, pressed):
                _still_waiting(ctx, waiting_turn)
                return
        case payloads.ShowExercise() if private:
            if plan.show_exercise(ctx, pressed):
                _still_waiting(ctx, waiting_turn)
                return
        case payloads.ShowToday() if private:
            if plan.show_card(ctx, pressed):
                _still_waiting(ctx, waiting_turn)
                return
        case payloads.SendToday() if private:
            plan.send_card(ctx)
            _still_waiting(ctx, waiting_turn)
            return
        case payloads.RedoCheckin() if private:
            # "Change today's check-in": asked again, today's answers are replaced and the
            # decision is made again from where the plan stood before it (checkin.decided).
            checkin.begin_checkin(ctx)
            return
        case payloads.GoBack(turn=turn):
            conv = ctx.conv
            if (
                conv.waiting
                and conv.back
                and turn == conv.turn
                and interpreter.is_spec_flow(ctx, conv.flow)
                and interpreter.resumable(ctx)
            ):
                interpreter.back(ctx)
                return
        case payloads.BeenChecked() if private:
            if ctx.profile.plan_paused:
                clearance.begin_clearance(ctx)
            else:
                plan.today(ctx)
                _still_waiting(ctx, waiting_turn)
            return
        case payloads.BeenSeen() if private:
            if ctx.profile.plan_paused:
                clearance.begin_clearance(ctx)
            elif ctx.profile.plan_held or ctx.profile.review is not None:
                clearance.begin_review(ctx)
            else:
                plan.today(ctx)
                _still_waiting(ctx, waiting_turn)
            return
        case payloads.SetUp() if private:
            onboarding.begin_start(ctx)
            return
        case payloads.SnoozeFor(minutes=minutes) if private and ctx.profile.onboarded:
            if minutes in checkin.SNOOZE_MINUTES:
                checkin.snooze(ctx, minutes)
                return
        case payloads.SkipToday() if private and ctx.profile.onboarded:
            checkin.skip_today(ctx)
            return
        case payloads.WeeklyCheck(start=start) if private:
            outcomes.pressed(ctx, start)
            return
        case payloads.PhysioSummary() if private:
            outcomes.summary(ctx)
            _still_waiting(ctx, waiting_turn)
            return
    _expired(ctx)


def _still_waiting(ctx: Ctx, turn: int | None) -> None:
    """A button answered by itself (a log entry, today's session) while a question was
    waiting: show that question again so the conversation visibly carries on."""
    if turn is not None and ctx.conv.waiting and ctx.conv.turn == turn:
        ctx.repeat_question(preface=ctx.t("still_waiting"))


def _expired(ctx: Ctx) -> None:
    if ctx.conv.waiting:
        ctx.repeat_question(preface=ctx.t("button_expired"))
    else:
        ctx.say(ctx.t("button_expired_idle"))


def _answer(ctx: Ctx, value: str, label: str) -> None:
    conv = ctx.conv
    flow, qid = conv.flow, conv.qid
    assert flow is not None and qid is not None
    if interpreter.is_spec_flow(ctx, flow):
        if not interpreter.resumable(ctx):
            interpreter.restart(ctx)
            return
        ctx.edit_answered(conv.text, label)
        interpreter.answer(ctx, qid, value)
        return
    ctx.edit_answered(conv.text, label)
    ANSWERS[flow](ctx, qid, value)


def normalise(text: str) -> str:
    return clean(text)


def _text(ctx: Ctx, raw: str) -> None:
    if len(raw) > MAX_TEXT:
        _unexpected(ctx, too_long=True)
        return
    text = normalise(raw)
    word = text.lstrip("/").split(" ", 1)
    quoted = ctx.turn.inbound.text_only  # a forward or a caption is not the person's command
    if not ctx.in_group and not quoted and word[0] in COMMANDS and not _matches_option(ctx, text):
        _command(ctx, word[0], word[1] if len(word) > 1 else "")
        return
    conv = ctx.conv
    if conv.waiting:
        match = _matches_option(ctx, text)
        if match is not None:
            _answer(ctx, match[0], match[1])
            return
        if conv.back and text in BACK_WORDS:
            interpreter.back(ctx)
            return
        value = _typed(ctx, raw[:200])
        if value is not None:
            _answer(ctx, value, conv.label_for(value) or raw[:200].strip())
            return
        if not symptoms.heard(ctx, raw):
            _unexpected(ctx)
        return
    if not symptoms.heard(ctx, raw):
        _unexpected(ctx)


def _typed(ctx: Ctx, text: str) -> str | None:
    """What typed text means at the waiting question, beyond its button labels."""
    free = ctx.conv.free
    if free is None:
        return None
    if free in FREE_TEXT:
        return FREE_TEXT[free](text)
    if free == account.PAUSE_FREE:
        return account.typed_pause(ctx, text)
    return interpreter.typed_answer(ctx, text)


def _matches_option(ctx: Ctx, text: str) -> tuple[str, str] | None:
    if not ctx.conv.waiting:
        return None
    options = ctx.conv.options
    for value, label in options:
        if text in (normalise(label), normalise(value)):
            return value, label
    # Numbered choices, for places that show buttons as a numbered list.
    numeric = any(label.isdigit() for _, label in options)
    number = small_int(text, MAX_OPTION_DIGITS)
    if number is not None and not numeric and 1 <= number <= len(options):
        return options[number - 1]
    return None


def _unexpected(ctx: Ctx, too_long: bool = False) -> None:
    conv = ctx.conv
    if conv.waiting:
        key = "reprompt_free" if conv.free else "reprompt"
        ctx.repeat_question(preface=ctx.t("too_long") if too_long else ctx.t(key))
        return
    if ctx.in_group:
        return
    if not ctx.profile.onboarded and not ctx.profile.plan_paused:
        setup = payloads.encode(payloads.SetUp())
        ctx.say(ctx.t("hello_new"), buttons=[[Button(ctx.t("opt_set_up"), setup)]])
        return
    ctx.say(ctx.t("unknown_text"))
