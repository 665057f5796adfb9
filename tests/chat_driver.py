"""A scripted chat against the real Coach service and database, for conversation tests.

Reads like a script: `await chat.send("checkin")`, `await chat.press("No run")`, then
assertions on `chat.text`. Time is a `Clock` the test moves forward.

Scripted onboarding and check-in sequences live here and nowhere else, so a change to a
flow is one edit: `onboard()` / `checkin()` answer by question id (whatever order the flow
asks in), and `ONBOARDING_TAPS` / `CHECKIN_TAPS` / `ONBOARDING_VALUES` are the same
standard conversations as plain tap sequences for the platform end-to-end tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.engine.events import COMMANDS, Button, ChatKind, Inbound, InboundKind, Outbound
from bot.engine.state import Conversation, Profile
from bot.service import Coach

_event_ids = itertools.count(1)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 7, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Chat:
    coach: Coach
    user_id: str = "runner-1"
    platform: str = "console"
    chat_id: str | None = None
    chat_kind: ChatKind = ChatKind.PRIVATE
    is_admin: bool | None = None
    user_tz: str | None = None
    replies: list[Outbound] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    buttons_ref: str | None = None
    transcript: list[str] = field(default_factory=list)
    delivered: list[Outbound] = field(default_factory=list)  # what the sender was given
    _messages: int = 0

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def messages(self) -> list[str]:
        """The new messages of the last step (not the edits of answered questions)."""
        return [r.text for r in self.replies if r.edit_ref is None]

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.buttons]

    def inbound(self, kind: InboundKind, **kw: object) -> Inbound:
        return Inbound(
            platform=self.platform,
            event_id=f"e{next(_event_ids)}",
            user_id=self.user_id,
            chat_id=self.chat_id or self.user_id,
            kind=kind,
            chat_kind=self.chat_kind,
            is_admin=self.is_admin,
            user_tz=self.user_tz,
            **kw,  # type: ignore[arg-type]
        )

    async def deliver(self, inbound: Inbound) -> list[Outbound]:
        # The replies are "shown" as they are sent, as an adapter's sender would.
        self.replies = await self.coach.handle(inbound, send=self._shown)
        # As the loop would on its next round: what was sent is recorded, so a test reading
        # the database sees the turn settled.
        await self.coach.flush()
        for reply in self.replies:
            if reply.edit_ref is None:
                self._messages += 1
            if reply.buttons:
                self.buttons = reply.flat_buttons
                self.buttons_ref = str(self._messages)
            self.transcript.append(reply.text)
        return self.replies

    async def _shown(self, message: Outbound) -> None:
        self.delivered.append(message)

    async def send(self, text: str) -> list[Outbound]:
        word, _, args = text.strip().lstrip("/").partition(" ")
        if word in COMMANDS:
            return await self.deliver(self.inbound(InboundKind.COMMAND, command=word, text=args))
        return await self.deliver(self.inbound(InboundKind.TEXT, text=text))

    async def press(self, label: str) -> list[Outbound]:
        for button in self.buttons:
            if button.label == label:
                return await self.tap(button.payload)
        raise AssertionError(f"no button {label!r}; buttons are {self.labels}")

    async def tap(self, payload: str) -> list[Outbound]:
        return await self.deliver(
            self.inbound(InboundKind.BUTTON, payload=payload, message_ref=self.buttons_ref)
        )

    async def open_exercise(self, exercise_id: str) -> list[Outbound]:
        """Tap an exercise's number on today's card: its steps, cue, limits and log buttons."""
        for button in self.buttons:
            if button.payload.startswith("x:v:") and button.payload.endswith(f":{exercise_id}"):
                return await self.tap(button.payload)
        raise AssertionError(f"no card button for {exercise_id!r}; buttons are {self.labels}")

    async def log_exercise(self, exercise_id: str, code: str) -> list[Outbound]:
        """Log one exercise of today's card: open it, then Done (d), Too painful (p) or
        Skip (s)."""
        await self.open_exercise(exercise_id)
        for button in self.buttons:
            if button.payload.endswith(f":{exercise_id}:{code}"):
                return await self.tap(button.payload)
        raise AssertionError(f"no log button {code!r} for {exercise_id!r}")

    async def answer_all(self, *labels: str) -> None:
        for label in labels:
            await self.press(label)

    # --- stored state, for scripts that answer by question id --------------------------------

    async def stored(self) -> tuple[Profile, Conversation]:
        async with self.coach.db.transaction(readonly=True) as repo:
            user = await repo.get_user(self.platform, self.user_id, lock=False)
            if user is None:
                return Profile(), Conversation()
            return (
                Profile.model_validate(user.profile or {}),
                Conversation.model_validate(user.conversation or {}),
            )

    async def question(self) -> str | None:
        """The id of the question waiting for an answer ("pain", "s/m", ...), if any."""
        _, conv = await self.stored()
        return conv.qid if conv.waiting else None

    async def seed_checkin(self, day: date, **fields: Any) -> None:
        """A check-in row from an earlier day, as if the runner had answered it then."""
        async with self.coach.db.transaction() as repo:
            user = await repo.get_user(self.platform, self.user_id)
            assert user is not None, "no such user yet"
            profile = Profile.model_validate(user.profile or {})
            base = {"phase": profile.phase, "level": profile.level}
            await repo.upsert_checkin(user.id, day, **{**base, **fields})

    async def update_profile(self, **changes: Any) -> None:
        """Put the runner somewhere in the plan directly (phase, level, dates, ...)."""
        async with self.coach.db.transaction() as repo:
            user = await repo.get_user(self.platform, self.user_id)
            assert user is not None, "no such user yet"
            profile = Profile.model_validate(user.profile or {})
            user.profile = profile.model_copy(update=changes).model_dump(mode="json")
            await repo.save_user(user)


# --- the standard conversations ------------------------------------------------------------

ZONE = "Europe/Berlin"
OUTSIDE = "Side of the hip, on the bony bump"
FRONT = "Front of the hip or groin crease"
ADULT = "Me — I'm 18 or older"
NO_FLAGS = ("None of these",) * 4  # the four groups of the full safety screen
SCREEN_NONE = "None of these"
SCREEN_NO = "No"

# A runner with no red flags and outside-of-hip pain, answered by question id.
ONBOARDING: dict[str, str] = {
    "consent": "I agree",
    "who": ADULT,
    "tz": ZONE,
    "loc": OUTSIDE,
    "T2": "Yes",
    "T3": "Yes",
    "T5": "Yes",
    "T7": "Yes",
    "T6": "No",
    "running": "Easy runs only",
    "r21": "No",
    "pain": "2",
    "remind": "07:30",
}
# The same runner as one tap sequence (T2 "Yes" makes T3 unnecessary).
ONBOARDING_TAPS: tuple[str, ...] = (
    "I agree",
    ADULT,
    ZONE,
    *NO_FLAGS,
    OUTSIDE,
    "Yes",
    "Easy runs only",
    "No",
    "2",
    "07:30",
)
# ... and as option values (pressed as `<turn>:<value>` payloads), for the bad-input corpus.
ONBOARDING_VALUES: tuple[str, ...] = (
    "yes",
    "adult",
    ZONE,
    "no",
    "no",
    "no",
    "no",
    "outside",
    "yes",
    "easy",
    "no",
    "2",
    "07:30",
)
# A day-after-onboarding check-in with no run: morning pain, no run, yesterday's exercises
# at 2/10, the holds were fine, the daily mini-screen clear.
CHECKIN: dict[str, str] = {
    "pain": "2",
    "ran": "No run",
    "run_pain": "2",
    "after_run": "All fine",
    "exercise_pain": "2",
    "holds": "No, same or easier",
    "review_check": "Not yet",
    "gate_rr3": "Not yet",
    "gate_rr4": "Not yet",
    "gate_rr2": "Not yet",
    "gate_rr5": "Not tried yet",
}
CHECKIN_TAPS: tuple[str, ...] = ("2", "No run", "2", "No, same or easier", SCREEN_NONE)
# The plan's first day: nothing done yet to ask about, so pain, no run and the mini-screen.
FIRST_DAY_CHECKIN_TAPS: tuple[str, ...] = ("2", "No run", SCREEN_NONE)
# Check-in screen answers: a yes to night pain in the daily mini-screen, then yes to the
# full night-pain question (R11, same day).
NIGHT_PAIN: dict[str, str] = {"s/m": "Yes, one or more", "s/mi:night": "Yes", "s/i:R11": "Yes"}


def question_text(message_key: str) -> str:
    """The start of a question as the coach words it, to spot it among sent messages."""
    from content.loader import default_content

    return default_content().message(message_key)[:40]


def onboarding_taps(*, zone: str = ZONE) -> tuple[str, ...]:
    """The standard onboarding taps, with the timezone button as a platform labels it."""
    return tuple(zone if tap == ZONE else tap for tap in ONBOARDING_TAPS)


async def answer_flow(
    chat: Chat,
    answers: Mapping[str, str],
    *,
    required: tuple[str, ...] = (),
    screen: Mapping[str, str] | None = None,
    in_order: Mapping[str, tuple[str, ...]] | None = None,
    limit: int = 60,
) -> list[str]:
    """Answer whatever the flow asks, by question id, until nothing is waiting.

    Screen questions take `screen[qid]` or else the all-clear answer. `in_order` gives
    answers for questions whose ids start with a prefix, used up in the order asked
    ({"T": ("Yes", "No")} for the triage questions). A question with no answer fails the
    test, and so does any `required` question the flow never asked. Returns the question
    ids in the order they were asked.
    """
    asked: list[str] = []
    screen = dict(screen or {})
    queues = {prefix: list(values) for prefix, values in (in_order or {}).items()}
    for _ in range(limit):
        qid = await chat.question()
        if qid is None:
            break
        asked.append(qid)
        queue = next((q for p, q in queues.items() if qid.startswith(p) and q), None)
        if qid in screen:
            label = screen[qid]
        elif queue is not None:
            label = queue.pop(0)
        elif qid.startswith("s/"):
            label = SCREEN_NONE if SCREEN_NONE in chat.labels else SCREEN_NO
        elif qid in answers:
            label = answers[qid]
        else:
            raise AssertionError(f"no answer for question {qid!r}; buttons are {chat.labels}")
        if label in chat.labels:
            await chat.press(label)
        else:
            await chat.send(label)  # typed, the way a person would
    else:
        raise AssertionError(f"the flow kept asking: {asked[-10:]}")
    missing = [q for q in required if q not in asked]
    assert not missing, f"never asked {missing}; asked {asked}"
    left = {p: q for p, q in queues.items() if q}
    assert not left, f"answers left over: {left}; asked {asked}"
    return asked


async def onboard(
    chat: Chat,
    *,
    location: str = OUTSIDE,
    triage: tuple[str, ...] | None = None,
    running: str = "Easy runs only",
    pain: str = "2",
    zone: str = ZONE,
    reminder: str = "07:30",
    screen: Mapping[str, str] | None = None,
    **answers: str,
) -> list[str]:
    """A runner with no red flags (unless `screen` says otherwise) goes through setup.

    `triage` answers the where-it-hurts questions in the order asked; other keyword
    arguments answer a question by its id (`who=...`, `r21=...`) and must be asked.
    """
    script = {
        **ONBOARDING,
        "loc": location,
        "running": running,
        "pain": pain,
        "tz": zone,
        "remind": reminder,
        **answers,
    }
    await chat.send("start")
    return await answer_flow(
        chat,
        script,
        required=tuple(answers),
        screen=screen,
        in_order={"T": triage} if triage is not None else None,
    )


async def checkin(
    chat: Chat,
    *,
    screen: Mapping[str, str] | None = None,
    command: str = "checkin",
    **answers: str,
) -> list[str]:
    """One daily check-in. Keyword arguments answer by question id and must be asked
    (`pain="3"`, `ran="30 min"`, `run_pain="2"`, `after_run="Swollen or stiff"`,
    `exercise_pain="6"`, `holds="Yes, it rose"`); anything else asked gets the standard
    day's answer from CHECKIN."""
    await chat.send(command)
    return await answer_flow(chat, {**CHECKIN, **answers}, required=tuple(answers), screen=screen)


async def days_of_checkins(chat: Chat, clock: Clock, days: int, **answers: str) -> list[str]:
    """The same check-in on each of the next `days` days; returns the decisions shown."""
    headlines = []
    for _ in range(days):
        clock.advance(days=1)
        await checkin(chat, **answers)
        headlines.append(chat.text)
    return headlines


def local_day(clock: Clock, zone: str = ZONE) -> date:
    from bot.engine.localtime import local_date

    return local_date(clock.now, zone)
