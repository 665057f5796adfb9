"""Safety properties over every flow, on the pure engine (Hypothesis).

- After an escalating answer nothing but escalation, clearance and plain information goes
  out until a clinician clears the runner: no questions of the check-in or setup, no
  exercise session, no load decision (clinical rules section 0, G2).
- A later, milder flag never lowers the level (G2: the worst wins).
- The full red-flag screen comes back every 7 days of check-ins (G4).

Like tests/test_fuzz.py: fast, and derandomized under CI=true.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.engine.events import InboundKind, Topic
from bot.engine.turn import ClearEscalations, DeleteUser, RecordScreening
from content.schema import Level
from tests.test_fuzz import FUZZ, MemoryRunner, action, onboarded_runner, run_actions

# While the plan is latched, only these kinds of content may be sent.
WHILE_LATCHED = {Topic.ESCALATION, Topic.CLEARANCE, Topic.INFO}
# Answers that flag something somewhere in the flows (yes to a group or item, the worst
# follow-ups), pressed whenever the current question offers one; "adult" so that setup
# reaches the screen (a child is never coached, and nothing about them is kept: G1).
FLAGGING = ("yes", "unsure", "cannot", "limp", "both_legs", "no_weight", "adult")


class RecordingRunner(MemoryRunner):
    """Keeps every reply since `step_replies` was last emptied (one action of the fuzz
    strategy may be one or no inbound)."""

    step_replies: list  # type: ignore[type-arg]

    def step(self, kind: InboundKind, **kw: object) -> list:  # type: ignore[type-arg]
        replies = super().step(kind, **kw)
        self.step_replies = [*getattr(self, "step_replies", []), *replies]
        return replies

    @classmethod
    def from_runner(cls, runner: MemoryRunner) -> RecordingRunner:
        new = cls()
        new.__dict__.update(runner.__dict__)
        new.step_replies = []
        return new


def flag_or_random(runner: MemoryRunner, pick: int) -> None:
    """Press an answer that raises a flag if the question has one, else a random one."""
    payloads = runner.last_payloads
    if not payloads:
        return
    flagging = [p for p in payloads if p.partition(":")[2] in FLAGGING]
    choice = flagging[pick % len(flagging)] if flagging else payloads[pick % len(payloads)]
    runner.step(InboundKind.BUTTON, payload=choice, message_ref="1")


flag = st.tuples(st.just("flag"), st.integers(min_value=0, max_value=30), st.none())
# Mostly answers (often flagging ones), with the fuzz corpus's commands, text, stale and
# forged buttons and day changes mixed in.
steps = st.lists(st.one_of(flag, flag, flag, action), min_size=10, max_size=40)
LATCHED_RUNS: list[bool] = []  # how many examples reached a latch (see the last test)


def play(runner: RecordingRunner, actions: list) -> None:  # type: ignore[type-arg]
    ever = False
    for item in actions:
        latched = runner.profile.escalation
        runner.step_replies = []
        if item[0] == "flag":
            flag_or_random(runner, item[1])
        else:
            run_actions(runner, [item])
        # Cleared by a clinician, or everything deleted at the runner's request (a new setup
        # starts with the full screen again).
        cleared = any(isinstance(e, ClearEscalations | DeleteUser) for e in runner.last_effects)
        now = runner.profile.escalation
        ever = ever or now is not None
        if latched is not None and not cleared:
            replies = runner.step_replies
            topics = {r.topic for r in replies}
            assert topics <= WHILE_LATCHED, (item, topics, [r.text[:80] for r in replies])
            assert now is not None and Level(now).rank >= Level(latched).rank, (latched, now)
    LATCHED_RUNS.append(ever)


@FUZZ
@given(steps)
def test_after_an_escalation_only_escalation_and_clearance_content_goes_out(
    actions: list,  # type: ignore[type-arg]
) -> None:
    runner = RecordingRunner.from_runner(onboarded_runner())
    runner.step(InboundKind.COMMAND, command="checkin")
    play(runner, actions)


@FUZZ
@given(steps)
def test_a_new_user_who_flags_during_setup_gets_nothing_else_until_cleared(
    actions: list,  # type: ignore[type-arg]
) -> None:
    runner = RecordingRunner()
    runner.step(InboundKind.COMMAND, command="start")
    play(runner, actions)


def test_the_properties_above_did_reach_latched_plans() -> None:
    """Not a vacuous pass: a good share of the generated conversations escalated."""
    if not LATCHED_RUNS:
        return  # run on its own: nothing to count
    assert sum(LATCHED_RUNS) >= len(LATCHED_RUNS) // 10, (sum(LATCHED_RUNS), len(LATCHED_RUNS))


# --- G4: the full screen every 7 days -------------------------------------------------------------

gaps = st.lists(st.integers(min_value=1, max_value=4), min_size=3, max_size=12)
mild_pain = st.integers(min_value=0, max_value=5)


@FUZZ
@given(gaps, st.data())
def test_the_full_screen_comes_back_every_7_days(days: list[int], data: st.DataObject) -> None:
    runner = RecordingRunner.from_runner(onboarded_runner())
    last_full = runner.now.date()  # setup asked the full screen
    for gap in days:
        runner.now += timedelta(days=gap)
        runner.step(InboundKind.COMMAND, command="checkin")
        kinds = []
        for _ in range(40):
            conv = runner.conversation
            if not conv.waiting:
                break
            values = [v for v, _ in conv.options]
            if conv.qid and conv.qid.startswith("s/"):
                value = "no"  # no red flags: this property is about the cadence
            elif all(v.isdigit() for v in values[:11]) and "0" in values:
                value = str(data.draw(mild_pain))
            else:
                safe = [v for v in values if v not in ("limp", "yes")] or values
                value = data.draw(st.sampled_from(safe))
            runner.step(InboundKind.BUTTON, payload=f"{conv.turn}:{value}", message_ref="1")
            kinds += [e.kind for e in runner.last_effects if isinstance(e, RecordScreening)]
        assert not runner.conversation.waiting
        today = runner.now.date()
        if today - last_full >= timedelta(days=7):
            assert "full" in kinds, (today, last_full, kinds)
        else:
            assert "full" not in kinds, (today, last_full, kinds)
        if "full" in kinds:
            last_full = today
