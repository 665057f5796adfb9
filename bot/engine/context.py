"""The working context of one engine step: gathers replies and effects as a flow runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from bot.engine.events import Attachment, Button, ChatKind, Outbound, Topic
from bot.engine.localtime import local_date, to_local
from bot.engine.payload import GoBack, answer_payload, encode
from bot.engine.state import Conversation, Profile
from bot.engine.turn import Effect, History, Turn
from content.loader import Content

Options = Sequence[tuple[str, str]]


@dataclass
class Ctx:
    turn: Turn
    content: Content
    profile: Profile
    conv: Conversation
    replies: list[Outbound] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    # --- facts about this step ---------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.turn.now

    @property
    def chat_id(self) -> str:
        return self.turn.inbound.chat_id

    @property
    def in_group(self) -> bool:
        return self.turn.inbound.chat_kind == ChatKind.GROUP

    @property
    def history(self) -> History:
        return self.turn.history

    @property
    def tz(self) -> str:
        return self.profile.timezone or self.turn.inbound.user_tz or "UTC"

    @property
    def today(self) -> date:
        return local_date(self.now, self.tz)

    @property
    def local_now(self) -> datetime:
        return to_local(self.now, self.tz)

    # --- wording -----------------------------------------------------------------------

    def t(self, key: str, **kw: object) -> str:
        return self.content.message(key, **kw)

    # --- replies -----------------------------------------------------------------------

    def say(
        self,
        text: str,
        *,
        buttons: Sequence[Sequence[Button]] = (),
        attachment: Attachment | None = None,
        private: bool = True,
        open_private: bool = False,
        topic: str = Topic.INFO,
    ) -> None:
        self.replies.append(
            Outbound(
                chat_id=self.chat_id,
                text=text,
                buttons=tuple(tuple(row) for row in buttons),
                attachment=attachment,
                private=private and not self.in_group,
                ephemeral=self.in_group and private,
                open_private=open_private,
                topic=topic,
            )
        )

    def edit_answered(self, question: str, answer_label: str) -> None:
        """Show the chosen answer under the old question and drop its buttons. The edit
        keeps everything the message said (`Conversation.shown`): only the buttons go."""
        if self.conv.shown.endswith(question):
            question = self.conv.shown
        ref = self.turn.inbound.message_ref
        if ref is None:
            return
        self.replies.append(
            Outbound(
                chat_id=self.chat_id,
                text=f"{question}\n→ {answer_label}",
                edit_ref=ref,
                private=not self.in_group,
                topic=self.conv.topic,
            )
        )

    def edit(self, text: str, *, buttons: Sequence[Sequence[Button]] = (), topic: str) -> None:
        """Show `text` (and `buttons`) in place of the message whose button was pressed, e.g.
        today's card after an exercise is logged; a new message when there is none (a
        button on a home screen)."""
        ref = self.turn.inbound.message_ref
        if ref is None:
            self.say(text, buttons=buttons, topic=topic)
            return
        self.replies.append(
            Outbound(
                chat_id=self.chat_id,
                text=text,
                buttons=tuple(tuple(row) for row in buttons),
                edit_ref=ref,
                private=not self.in_group,
                topic=topic,
            )
        )

    def ask(
        self,
        flow: str,
        qid: str,
        text: str,
        options: Options,
        *,
        columns: int = 2,
        free: str | None = None,
        preface: str | None = None,
        private: bool = True,
        topic: str = Topic.INFO,
    ) -> None:
        """Send a question with buttons and remember it as the one waiting for an answer."""
        self.conv.flow = flow
        self.conv.qid = qid
        self.conv.turn += 1
        self.conv.text = text
        self.conv.options = [(v, label) for v, label in options]
        self.conv.columns = columns
        self.conv.free = free
        self.conv.topic = topic
        # A spec flow that allows Back keeps a trail of the questions answered so far.
        spec = self.content.flows.get(flow)
        self.conv.back = (
            spec is not None
            and spec.back
            and bool(self.conv.data.get("trail"))
            and not self.conv.data.get("no_back")
        )
        body = f"{preface}\n\n{text}" if preface else text
        self.conv.shown = body
        self.say(body, buttons=self.question_buttons(), private=private, topic=topic)

    def question_buttons(self) -> list[list[Button]]:
        buttons = [
            Button(label=label, payload=answer_payload(self.conv.turn, value))
            for value, label in self.conv.options
        ]
        cols = max(1, self.conv.columns)
        rows = [buttons[i : i + cols] for i in range(0, len(buttons), cols)]
        if self.conv.back:
            rows.append([Button(self.t("opt_back"), encode(GoBack(self.conv.turn)))])
        return rows

    def repeat_question(self, preface: str | None = None) -> None:
        """Ask the waiting question again, with fresh buttons of the same turn."""
        body = f"{preface}\n\n{self.conv.text}" if preface else self.conv.text
        self.say(body, buttons=self.question_buttons(), topic=self.conv.topic)

    def finish(self) -> None:
        """The flow is over: nothing is waiting for an answer."""
        self.conv.flow = None
        self.conv.qid = None
        self.conv.text = ""
        self.conv.options = []
        self.conv.free = None
        self.conv.shown = ""
        self.conv.topic = Topic.INFO
        self.conv.back = False
        self.conv.data = {}

    def effect(self, effect: Effect) -> None:
        self.effects.append(effect)
