"""The bad-input corpus (tests/bad_inputs.py) sent to every question on every platform.

Each *stop* is a place a conversation can be: idle, or waiting at one question of one flow
(setup, check-in, settings, delete, clearance, a group's warm-up timezone question). The
stop is reached through the real service, its stored state is snapshotted, and then every
bad input is sent through a platform:

- console: `ConsoleChat.type_line` for typed lines, `Coach.handle` for button payloads;
- Telegram: updates through the real PTB Application polling a fake Bot API that rejects
  what the real one rejects (texts over 4096, callback_data over 64 bytes, ...);
- Slack: signed requests to the real Bolt app over ASGI, against a fake Web API that
  validates Block Kit limits.

For every input: nothing raises or logs an error, nothing the bot sends is refused by the
platform, the person gets a clear answer (the question again, an "expired" notice, or the
command's own answer; in a group, ordinary chatter may get silence, as documented in the
README), and the stored state is exactly the snapshot again — the same question with the
same buttons, so the right answer still works (which is checked at the end of each stop).
Entries that are by design a real answer or a new conversation (see bad_inputs.py) are
allowed to change the state; it is put back before the next input.

The console runs the whole corpus at every stop; Telegram and Slack run a sample at every
stop and the whole corpus at two stops (a free-text question and the pain scale).
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.adapters.console import ConsoleChat
from bot.adapters.slack import SlackAdapter
from bot.adapters.slack.render import escape as slack_escape
from bot.config import Settings
from bot.engine.events import ChatKind, InboundKind, Outbound
from bot.engine.localtime import local_date
from bot.engine.rules.progression import plan_shape
from bot.engine.session import build_session
from bot.engine.state import Conversation, Profile
from bot.service import Coach
from bot.storage.db import Database
from bot.storage.models import Base
from bot.storage.repository import Repository
from bot.web import build_app
from tests.bad_inputs import CLOCK, CORPUS, MINUTES, PAIN, SAMPLE, Bad
from tests.chat_driver import ONBOARDING_VALUES, Chat, Clock
from tests.fake_slack import TEAM, FakeSlack
from tests.fake_slack import TOKEN as SLACK_TOKEN
from tests.fake_telegram import FakeTelegram, Sent
from tests.test_slack import APP_ID, SECRET, Slack
from tests.test_telegram import Person, polling_bot, private_chat

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

# --- where a conversation can be ---------------------------------------------------------

Step = str | Callable[[Chat, Database], Awaitable[None]]


async def _near_the_phase_gate(chat: Chat, db: Database) -> None:
    """Top of phase 2 for six weeks: the check-in asks the first running check."""
    today = chat.coach.clock().date()
    async with db.transaction() as repo:
        user = await repo.get_user(chat.platform, chat.user_id)
        assert user is not None
        profile = Profile.model_validate(user.profile)
        profile.phase = 2
        profile.level = plan_shape(chat.coach.content, profile.presentation).top(2)
        profile.phase_started_on = profile.plan_started_on = today - timedelta(days=60)
        user.profile = profile.model_dump(mode="json")
        await repo.save_user(user)


async def _a_day_into_the_plan(chat: Chat, db: Database) -> None:
    """The plan began yesterday, so the check-in asks about yesterday's exercises."""
    async with db.transaction() as repo:
        user = await repo.get_user(chat.platform, chat.user_id)
        assert user is not None
        profile = Profile.model_validate(user.profile)
        profile.plan_started_on = chat.coach.clock().date() - timedelta(days=1)
        user.profile = profile.model_dump(mode="json")
        await repo.save_user(user)


# Steps are option values (pressed as buttons) or "/word args" commands, so the same script
# reaches the same question whatever the button labels say on a platform.
SETUP = ("/start", *ONBOARDING_VALUES[:3])
NO_FLAGS = ONBOARDING_VALUES[3:7]
ONBOARD = ("/start", *ONBOARDING_VALUES)
CHECKIN = (*ONBOARD, "/checkin")
TRIAGED = (*SETUP, *NO_FLAGS, "outside", "yes")
EMERGENCY = (*SETUP, "yes", "yes")  # saddle numbness: the plan pauses until cleared


@dataclass(frozen=True)
class Stop:
    name: str
    script: tuple[Step, ...] = ()
    answer: str | None = None  # an option value that must still work afterwards
    tags: frozenset[str] = frozenset()
    group: bool = False
    qid: str | None = None  # the question the script must have reached

    def __str__(self) -> str:
        return self.name


def _stop(name: str, script: tuple[Step, ...], answer: str | None, qid: str | None, *tags: str):
    return Stop(name, script, answer, frozenset(tags), qid=qid)


STOPS: tuple[Stop, ...] = (
    _stop("new", (), None, None),
    _stop("idle", ONBOARD, None, None),
    _stop("consent", ("/start",), "yes", "consent"),
    _stop("who", ("/start", "yes"), "adult", "who"),
    _stop("minor_walk", ("/start", "yes", "minor"), "normal", "minor_walk"),
    _stop("timezone", ("/start", "yes", "adult"), "Europe/Berlin", "tz"),
    _stop("screen_group", SETUP, "no", "s/g:nerves"),
    _stop("screen_item", (*SETUP, "yes"), "no", "s/i:R1"),
    _stop("screen_clarify", (*SETUP, "yes", "unsure"), "no", "s/c:R1"),
    _stop("screen_follow_up", (*SETUP, "yes", "no", "no", "yes"), "unsure", "s/f:R3"),
    _stop("location", (*SETUP, *NO_FLAGS), "outside", "loc"),
    _stop("triage", (*SETUP, *NO_FLAGS, "outside"), "yes", "T2"),
    _stop("running", TRIAGED, "easy", "running"),
    _stop("r21", (*TRIAGED, "easy"), "no", "r21"),
    _stop("start_pain", (*TRIAGED, "easy", "no"), "2", "pain", PAIN),
    _stop("reminder", ONBOARD[:-1], "07:30", "remind", CLOCK),
    _stop("redo", (*ONBOARD, "/start"), "keep", "redo"),
    _stop("checkin_pain", CHECKIN, "2", "pain", PAIN),
    _stop("checkin_ran", (*CHECKIN, "2"), "no", "ran", MINUTES),
    _stop("checkin_run_pain", (*CHECKIN, "2", "20"), "3", "run_pain", PAIN),
    _stop("checkin_after_run", (*CHECKIN, "2", "20", "3"), "fine", "after_run"),
    _stop(
        "checkin_exercise_pain",
        (*ONBOARD, _a_day_into_the_plan, "/checkin", "2", "no"),
        "2",
        "exercise_pain",
        PAIN,
    ),
    _stop(
        "checkin_holds",
        (*ONBOARD, _a_day_into_the_plan, "/checkin", "2", "no", "2"),
        "fine",
        "holds",
    ),
    _stop("checkin_screen", (*CHECKIN, "2", "no"), "no", "s/m"),
    _stop(
        "checkin_gate",
        (*ONBOARD, _near_the_phase_gate, "/checkin", "2", "no", "0", "no"),
        "no",
        "gate_rr3",
    ),
    _stop("settings_menu", (*ONBOARD, "/settings"), "done", "menu"),
    _stop("settings_time", (*ONBOARD, "/settings", "time"), "07:30", "time", CLOCK),
    _stop("settings_timezone", (*ONBOARD, "/settings", "tz"), "Europe/London", "tz"),
    _stop("settings_country", (*ONBOARD, "/settings", "country"), "DE", "country"),
    _stop("delete_confirm", (*ONBOARD, "/delete"), "no", "confirm"),
    _stop("clearance_seen", (*EMERGENCY, "/start"), "yes", "seen_emergency"),
    _stop("clearance_cleared", (*EMERGENCY, "/start", "yes"), "yes", "cleared"),
    Stop("group_idle", group=True),
    Stop("group_timezone", ("/warmup add sat 08:00",), "Europe/Berlin", group=True, qid="tz"),
)
STOP_BY_NAME = {stop.name: stop for stop in STOPS}
FULL_CORPUS_STOPS = ("timezone", "checkin_pain")  # the whole corpus on Telegram and Slack too

# Answers that are complete in themselves, with no question repeated after them: the
# export file (its caption says what it is; the question is still open).
NO_REASK = frozenset({"export_junk"})


USER_TABLES = [
    table
    for table in Base.metadata.sorted_tables
    if any(fk.column.table.name == "users" for fk in table.foreign_keys)
]


async def _row_counts(repo: Repository, user_id: int) -> dict[str, int]:
    """Rows per table that belong to the user, in one query."""
    counts = [
        select(func.count()).select_from(t).where(t.c.user_id == user_id).scalar_subquery()
        for t in USER_TABLES
    ]
    row = (await repo.session.execute(select(*counts))).one()
    return {t.name: int(n) for t, n in zip(USER_TABLES, row, strict=True)}


async def run_script(chat: Chat, db: Database, script: tuple[Step, ...]) -> None:
    for step in script:
        if callable(step):
            await step(chat, db)
        elif step.startswith("/"):
            await chat.send(step[1:])
        else:
            await choose(chat, step)


async def choose(chat: Chat, value: str) -> None:
    for button in chat.buttons:
        turn, _, option = button.payload.partition(":")
        if turn.isdigit() and option == value:
            await chat.tap(button.payload)
            return
    raise AssertionError(f"no option {value!r}; buttons are {[b.payload for b in chat.buttons]}")


# --- stored state --------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Everything a bad input must leave alone."""

    conversation: dict[str, Any]
    profile: dict[str, Any] | None = None
    columns: tuple[Any, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    warmups: tuple[tuple[Any, ...], ...] = ()

    @property
    def conv(self) -> Conversation:
        return Conversation.model_validate(self.conversation)

    @property
    def question_payloads(self) -> list[str]:
        conv = self.conv
        return [f"{conv.turn}:{value}" for value, _ in conv.options] if conv.waiting else []


USER_COLUMNS = ("timezone", "reminder_time", "paused", "next_checkin_at", "next_nudge_at")


@dataclass
class Where:
    """Whose state a stop is about: a person's, or a group's."""

    db: Database
    platform: str
    user_id: str  # platform user id (private stops)
    chat_id: str  # platform chat id (group stops)
    group: bool

    async def load(self) -> State | None:
        async with self.db.transaction(readonly=True) as repo:
            if self.group:
                chat = await repo.get_team_chat(self.platform, self.chat_id, lock=False)
                if chat is None:
                    return None
                warmups = await repo.list_warmups(chat.id)
                return State(
                    conversation=dict(chat.conversation or {}),
                    columns=(chat.timezone,),
                    warmups=tuple(
                        (w.days, w.run_time, w.lead_minutes, w.timezone, w.created_by)
                        for w in warmups
                    ),
                )
            user = await repo.get_user(self.platform, self.user_id, lock=False)
            if user is None:
                return None
            return State(
                conversation=dict(user.conversation or {}),
                profile=dict(user.profile or {}),
                columns=tuple(getattr(user, name) for name in USER_COLUMNS),
                counts=await _row_counts(repo, user.id),
            )

    async def restore(self, state: State | None) -> None:
        async with self.db.transaction() as repo:
            if self.group:
                assert state is not None
                chat = await repo.get_team_chat(self.platform, self.chat_id)
                assert chat is not None
                chat.conversation = state.conversation
                chat.timezone = state.columns[0]
                await repo.save_team_chat(chat)
                return
            user = await repo.get_user(self.platform, self.user_id)
            if state is None:
                if user is not None:
                    await repo.delete_user(user.id)
                return
            assert user is not None
            user.profile = state.profile or {}
            user.conversation = state.conversation
            for name, value in zip(USER_COLUMNS, state.columns, strict=True):
                setattr(user, name, value)
            await repo.save_user(user)


# --- what a person sees --------------------------------------------------------------------


@dataclass
class Seen:
    texts: list[str] = field(default_factory=list)  # messages, ephemerals, tap pop-ups
    keyboards: list[list[str]] = field(default_factory=list)  # payloads, per message

    def asks(self, payloads: list[str]) -> bool:
        return any(set(payloads) <= set(keyboard) for keyboard in self.keyboards)

    @property
    def all_text(self) -> str:
        return "\n".join(self.texts)


class Actor(Protocol):
    """One person on one platform."""

    async def text(self, text: str, bad: Bad | None = None) -> Seen: ...
    async def command(self, word: str, args: str) -> Seen: ...
    async def press(self, payload: str) -> Seen: ...


def seen_outbound(replies: list[Outbound]) -> Seen:
    seen = Seen()
    for reply in replies:
        if reply.edit_ref is not None:
            continue
        seen.texts.append(reply.text)
        if reply.buttons:
            seen.keyboards.append([b.payload for b in reply.flat_buttons])
    return seen


@dataclass
class ConsoleActor:
    """Typed lines through the console adapter; button payloads straight to the service
    (a console can only press buttons it was shown, but the service must not care)."""

    chat: Chat  # for payloads (the same person, chat and flags as the console)
    console: ConsoleChat

    async def text(self, text: str, bad: Bad | None = None) -> Seen:
        if self.chat.chat_kind == ChatKind.GROUP:
            return seen_outbound(
                await self.chat.deliver(self.chat.inbound(InboundKind.TEXT, text=text))
            )
        return await self._typed(text)

    async def command(self, word: str, args: str) -> Seen:
        if self.chat.chat_kind == ChatKind.GROUP:
            inbound = self.chat.inbound(InboundKind.COMMAND, command=word, text=args)
            return seen_outbound(await self.chat.deliver(inbound))
        return await self._typed(f"{word} {args}")

    async def _typed(self, line: str) -> Seen:
        seen = seen_outbound(await self.console.type_line(line))
        await self.console.coach.flush()  # what was shown is recorded as sent
        return seen

    async def press(self, payload: str) -> Seen:
        return seen_outbound(await self.chat.tap(payload))


# --- Telegram -------------------------------------------------------------------------------


class StrictTelegram(FakeTelegram):
    """The fake Bot API, noting every request it refused."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[tuple[str, str]] = []

    async def _dispatch(self, request: web.Request) -> web.Response:
        response = await super()._dispatch(request)
        if response.status != 200:
            self.refused.append((self.method_of(request), (response.text or "")[:300]))
        return response


def seen_telegram(calls: list[Any]) -> Seen:
    seen = Seen()
    for call in calls:
        if call.method in ("sendMessage", "sendPhoto", "sendDocument"):
            seen.texts.append(call.text)
            payloads = [b["callback_data"] for b in call.buttons if "callback_data" in b]
            if payloads:
                seen.keyboards.append(payloads)
        elif call.method == "answerCallbackQuery" and call.params.get("text"):
            seen.texts.append(str(call.params["text"]))
    return seen


@dataclass
class TelegramActor:
    person: Person
    fake: StrictTelegram
    anchor: Sent  # the message whose (forged) buttons are pressed

    async def text(self, text: str, bad: Bad | None = None) -> Seen:
        return seen_telegram(await self.person.send(text))

    async def command(self, word: str, args: str) -> Seen:
        return seen_telegram(await self.person.send(f"/{word} {args}"))

    async def press(self, payload: str) -> Seen:
        return seen_telegram(await self.person.press(self.anchor, payload))


def telegram_anchor(fake: FakeTelegram, chat_id: int) -> Sent:
    sent = Sent(
        chat_id,
        next(fake._message_ids),
        "An earlier question",
        {"inline_keyboard": [[{"text": "old", "callback_data": "1:old"}]]},
    )
    fake.messages[(chat_id, sent.message_id)] = sent
    return sent


# --- Slack ----------------------------------------------------------------------------------

SLACK_RUNNER = "U1RUNNER"
SLACK_MEMBER = "U3MEMBER"
SLACK_ADMIN = "U6ADMINNOTZ"  # a workspace admin with no timezone: the channel gets asked
SLACK_CHANNEL = "C0RUNCLUB"
MESSAGE_METHODS = ("chat.postMessage", "chat.postEphemeral", "respond")


@dataclass
class StrictSlack(FakeSlack):
    """The fake Web API, noting every call it answered with ok: false."""

    refused: list[tuple[str, str]] = field(default_factory=list)

    async def _api(self, request: web.Request) -> web.Response:
        response = await super()._api(request)
        body = json.loads(response.text or "{}")
        if not body.get("ok"):
            self.refused.append((request.match_info["method"], str(body)[:300]))
        return response

    async def _respond(self, request: web.Request) -> web.Response:
        response = await super()._respond(request)
        if response.status != 200:
            self.refused.append(("respond", response.text or ""))
        return response


def seen_slack(calls: list[Any], user: str) -> Seen:
    seen = Seen()
    for call in calls:
        if call.method in MESSAGE_METHODS:
            if call.method == "chat.postEphemeral" and call.get("user") != user:
                continue
            seen.texts.append(call.text)
            values = [b["value"] for b in call.buttons if "value" in b]
            if values:
                seen.keyboards.append(values)
        elif call.method == "files.completeUploadExternal":
            seen.texts.append(str(call.get("initial_comment") or "file"))
    return seen


_slack_ids = itertools.count(1)


@dataclass
class SlackActor:
    slack: Slack
    user: str
    channel: str  # "D<user>" for the app's DM, or a channel

    @property
    def fake(self) -> FakeSlack:
        return self.slack.fake

    async def _seen(self, send: Awaitable[httpx.Response]) -> Seen:
        mark = len(self.fake.calls)
        await send
        return seen_slack(self.slack.since(mark), self.user)

    async def text(self, text: str, bad: Bad | None = None) -> Seen:
        wire = text if bad is not None and bad.slack_raw else slack_escape(text)
        if self.channel.startswith("D"):
            return await self._seen(self.slack.dm(wire, user=self.user))
        # Slack only sends an app the channel messages that are its slash command.
        return await self._seen(self.slack.slash(wire, user=self.user, channel=self.channel))

    async def command(self, word: str, args: str) -> Seen:
        wire = slack_escape(f"{word} {args}")
        return await self._seen(self.slack.slash(wire, user=self.user, channel=self.channel))

    async def press(self, payload: str) -> Seen:
        return await self._seen(self._press(payload))

    async def _press(self, value: str) -> httpx.Response:
        n = next(_slack_ids)
        ts = "1700000000.000001"
        payload = {
            "type": "block_actions",
            "user": {"id": self.user, "username": self.user.lower(), "team_id": TEAM},
            "api_app_id": APP_ID,
            "token": "legacy",
            "team": {"id": TEAM, "domain": "runners"},
            "trigger_id": f"trigger.bad.{n}",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": self.channel,
                "is_ephemeral": False,
            },
            "channel": {"id": self.channel},
            "message": {"ts": ts, "text": "An earlier question"},
            "response_url": self.fake.respond_url(f"bad{n}"),
            "actions": [
                {
                    "type": "button",
                    "action_id": "hip_1",
                    "block_id": "b",
                    "value": value,
                    "text": {"type": "plain_text", "text": "x"},
                    "action_ts": f"{time.time():.6f}{n}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.slack.settle(
            await self.slack.post(body, "application/x-www-form-urlencoded")
        )


# --- the check, the same on every platform ---------------------------------------------------


@dataclass
class Scene:
    """A stop reached on one platform: who acts there and where the state lives."""

    stop: Stop
    where: Where
    actors: dict[str, Actor]  # "runner" (private) or "member" and "admin" (groups)
    today: str
    exercise: str


async def reach(
    stop: Stop,
    coach: Coach,
    db: Database,
    *,
    platform: str,
    user_id: str,
    chat_id: str,
    admin_id: str,
    user_tz: str | None = None,
) -> tuple[Where, Chat]:
    """Bring the conversation to `stop` through the service, as the platform's person."""
    if stop.group:
        chat = Chat(
            coach,
            user_id=admin_id,
            platform=platform,
            chat_id=chat_id,
            chat_kind=ChatKind.GROUP,
            is_admin=True,
        )
        # The bot was added to the group; then the stop's own script.
        await chat.deliver(chat.inbound(InboundKind.JOINED))
    else:
        chat = Chat(coach, user_id=user_id, platform=platform, chat_id=chat_id, user_tz=user_tz)
    await run_script(chat, db, stop.script)
    where = Where(db, platform, user_id, chat_id, stop.group)
    state = await where.load()
    if stop.qid is not None:
        assert state is not None and state.conv.qid == stop.qid, (stop, state)
    else:
        assert state is None or not state.conv.waiting, (stop, state)
    return where, chat


def scene_details(state: State | None, coach: Coach) -> tuple[str, str]:
    """Today's date (yyyymmdd) and an exercise of today's session, for payload templates."""
    profile = Profile.model_validate((state.profile if state else None) or {})
    today = local_date(coach.clock(), profile.timezone or "UTC")
    exercise = next(iter(coach.content.exercises))
    if profile.onboarded:
        session = build_session(coach.content, profile, today, (), ())
        if session.items:
            exercise = session.items[0].exercise.id
    return today.strftime("%Y%m%d"), exercise


def is_answer(bad: Bad, stop: Stop) -> bool:
    return bool(bad.valid_at & stop.tags)


def may_move(bad: Bad, stop: Stop) -> bool:
    """May this input change the stored state at this stop, by design?"""
    return (bad.moves and not stop.group) or is_answer(bad, stop)


async def send(actor: Actor, bad: Bad, state: State | None, scene: Scene) -> Seen:
    if bad.kind == "text":
        return await actor.text(bad.value, bad)
    if bad.kind == "command":
        return await actor.command(*bad.command)
    conv = state.conv if state is not None else Conversation()
    value = conv.options[0][0] if conv.waiting and conv.options else "yes"
    return await actor.press(bad.payload(conv.turn, value, scene.today, scene.exercise))


def _quietly_blank(bad: Bad, scene: Scene) -> bool:
    # A blank line typed into the console is not sent anywhere; nothing to answer.
    return (
        scene.where.platform == "console"
        and not scene.stop.group
        and bad.kind == "text"
        and not bad.value.strip()
    )


async def check_input(scene: Scene, bad: Bad, before: State | None) -> State | None:
    """Send `bad` by every actor of the scene; returns the state to compare the next with."""
    stop, where = scene.stop, scene.where
    for role, actor in scene.actors.items():
        label = f"{where.platform}/{stop.name}/{role}/{bad.name}"
        seen = await send(actor, bad, before, scene)
        after = await where.load()
        moved = may_move(bad, stop)
        # A clear answer.
        if _quietly_blank(bad, scene):
            assert seen.texts == [] and after == before, label
            continue
        if not stop.group:
            assert seen.texts and all(t.strip() for t in seen.texts), label
            reask = before is not None and before.conv.waiting and not moved
            if reask and bad.name not in NO_REASK:
                assert seen.asks(before.question_payloads), (label, seen.all_text[:500])
        else:
            _check_group_answer(scene, role, bad, before, seen, label)
        # Nothing lost, nothing changed.
        if moved:
            # A real answer or a new conversation, by design: put the stop back. Rows it
            # added (a check-in, a plan change) stay, so the baseline is read again.
            await where.restore(before)
            if before is not None:
                again = await where.load()
                assert again is not None
                assert (again.conversation, again.profile) == (before.conversation, before.profile)
                before = again
            continue
        if before is None:
            # A first message from someone new: stored, but not the start of anything.
            assert after is not None and not after.conv.waiting, label
            assert not Profile.model_validate(after.profile or {}).onboarded, label
            await where.restore(None)
            continue
        assert after == before, label
    return before


def _check_group_answer(
    scene: Scene, role: str, bad: Bad, before: State | None, seen: Seen, label: str
) -> None:
    assert before is not None
    waiting = before.conv.waiting
    if bad.kind == "command":
        assert seen.texts, label  # commands always get an answer, also in a group
    elif bad.kind == "button":
        if role == "member" and waiting:
            assert "only the chat's admins" in seen.all_text, label
        elif not waiting:
            assert "expired" in seen.all_text, label
        else:
            assert seen.asks(before.question_payloads), label
    elif role == "admin" and waiting:
        # The admin's answer to the open question was not readable: ask again.
        assert seen.asks(before.question_payloads), (label, seen.all_text[:300])
    # Anything else in a group is chatter: silence is the documented answer (Slack's slash
    # command still answers privately, since a command should always get a reply).


async def run_scene(
    scene: Scene, corpus: tuple[Bad, ...], answer: Callable[[str], Awaitable[Seen]]
) -> None:
    state = await scene.where.load()
    for bad in corpus:
        state = await check_input(scene, bad, state)
    if scene.stop.answer is None:
        return
    assert state is not None
    payload = f"{state.conv.turn}:{scene.stop.answer}"
    assert payload in state.question_payloads, (scene.stop, state.question_payloads)
    if "member" in scene.actors:
        # Another person's button in a group: a member taps the admin's question.
        seen = await scene.actors["member"].press(payload)
        assert "only the chat's admins" in seen.all_text
        assert await scene.where.load() == state
    # After all that, the question's own button still works.
    seen = await answer(payload)
    assert "expired" not in seen.all_text
    after = await scene.where.load()
    assert after is not None and after.conversation != state.conversation


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        f"{r.name} {r.levelname} {r.getMessage()[:200]}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or "failed" in r.getMessage()
    ]
    assert bad == []


# --- console ---------------------------------------------------------------------------------


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    return caplog


@pytest.mark.parametrize("stop", STOPS, ids=str)
async def test_the_whole_corpus_at_every_console_stop(
    stop: Stop, coach: Coach, db: Database, errors: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    user, club, admin, member = "runner-1", "club-1", "captain", "member"
    where, chat = await reach(
        stop,
        coach,
        db,
        platform="console",
        user_id=user,
        chat_id=club if stop.group else user,
        admin_id=admin,
    )
    state = await where.load()
    today, exercise = scene_details(state, coach)
    if stop.group:
        actors: dict[str, Actor] = {}
        for role, person, is_admin in (("member", member, False), ("admin", admin, True)):
            who = Chat(
                coach,
                user_id=person,
                platform="console",
                chat_id=club,
                chat_kind=ChatKind.GROUP,
                is_admin=is_admin,
            )
            actors[role] = ConsoleActor(who, ConsoleChat(coach, user_id=person))
    else:
        console = ConsoleChat(coach, user_id=user, files_dir=tmp_path, out=io.StringIO())
        actors = {"runner": ConsoleActor(chat, console)}
    scene = Scene(stop, where, actors, today, exercise)
    runner = actors.get("admin") or actors["runner"]
    await run_scene(scene, CORPUS, runner.press)
    no_errors_logged(errors)


# --- Telegram --------------------------------------------------------------------------------

TG_RUNNER, TG_ADMIN, TG_MEMBER = 5001, 7001, 7002
TG_GROUP = {"id": -1001234, "type": "supergroup", "title": "Riverside Runners"}


def corpus_for(stop: Stop) -> tuple[Bad, ...]:
    return CORPUS if stop.name in FULL_CORPUS_STOPS else SAMPLE


@pytest.fixture
async def telegram() -> AsyncIterator[StrictTelegram]:
    server = StrictTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("stop", STOPS, ids=str)
async def test_bad_input_at_every_telegram_stop(
    stop: Stop,
    telegram: StrictTelegram,
    coach: Coach,
    db: Database,
    clock: Clock,
    errors: pytest.LogCaptureFixture,
) -> None:
    fake = telegram
    fake.members[(TG_GROUP["id"], TG_ADMIN)] = "creator"
    fake.members[(TG_GROUP["id"], TG_MEMBER)] = "member"
    chat_id = TG_GROUP["id"] if stop.group else TG_RUNNER
    where, _ = await reach(
        stop,
        coach,
        db,
        platform="telegram",
        user_id=str(TG_RUNNER),
        chat_id=str(chat_id),
        admin_id=str(TG_ADMIN),
    )
    today, exercise = scene_details(await where.load(), coach)
    async with polling_bot(fake, db, clock) as bot:
        anchor = telegram_anchor(fake, chat_id)
        if stop.group:
            actors: dict[str, Actor] = {
                "member": TelegramActor(Person(fake, bot, TG_MEMBER, TG_GROUP), fake, anchor),
                "admin": TelegramActor(Person(fake, bot, TG_ADMIN, TG_GROUP), fake, anchor),
            }
        else:
            person = Person(fake, bot, TG_RUNNER, private_chat(TG_RUNNER))
            actors = {"runner": TelegramActor(person, fake, anchor)}
        scene = Scene(stop, where, actors, today, exercise)
        answerer = actors.get("admin") or actors["runner"]
        await run_scene(scene, corpus_for(stop), answerer.press)
    assert fake.refused == []
    assert fake.answered == fake.callback_ids  # every tap got its answerCallbackQuery
    no_errors_logged(errors)


# --- Slack -----------------------------------------------------------------------------------


@pytest.fixture
async def slack(db: Database, clock: Clock, coach: Coach) -> AsyncIterator[Slack]:
    fake = StrictSlack(
        users={
            SLACK_RUNNER: {"tz": "Europe/Berlin", "is_admin": False},
            SLACK_MEMBER: {"tz": "Europe/London", "is_admin": False},
            SLACK_ADMIN: {"is_admin": True},
        },
    )
    await fake.start()
    settings = Settings(
        database_url=db.url,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
    )
    adapter = SlackAdapter(settings, coach)
    transport = httpx.ASGITransport(app=build_app(db, [adapter]))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hipcoach.test") as http:
            yield Slack(http, fake, adapter, db, clock)
    finally:
        await adapter.stop()
        await fake.stop()


@pytest.mark.parametrize("stop", STOPS, ids=str)
async def test_bad_input_at_every_slack_stop(
    stop: Stop, slack: Slack, coach: Coach, db: Database, errors: pytest.LogCaptureFixture
) -> None:
    channel = SLACK_CHANNEL if stop.group else f"D{SLACK_RUNNER}"
    where, _ = await reach(
        stop,
        coach,
        db,
        platform="slack",
        # Stored Slack ids carry their workspace (bot/adapters/slack/workspace.py).
        user_id=f"{TEAM}:{SLACK_RUNNER}",
        chat_id=f"{TEAM}:{channel}",
        admin_id=f"{TEAM}:{SLACK_ADMIN}",
        user_tz="Europe/Berlin",
    )
    today, exercise = scene_details(await where.load(), coach)
    if stop.group:
        actors: dict[str, Actor] = {
            "member": SlackActor(slack, SLACK_MEMBER, SLACK_CHANNEL),
            "admin": SlackActor(slack, SLACK_ADMIN, SLACK_CHANNEL),
        }
    else:
        actors = {"runner": SlackActor(slack, SLACK_RUNNER, channel)}
    scene = Scene(stop, where, actors, today, exercise)
    answerer = actors.get("admin") or actors["runner"]
    await run_scene(scene, corpus_for(stop), answerer.press)
    assert isinstance(slack.fake, StrictSlack)
    assert slack.fake.refused == []
    no_errors_logged(errors)
