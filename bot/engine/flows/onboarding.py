"""`start`: the ends of the setup flow (content/data/flows/start.yaml).

The questions, their order and where each answer leads are in the spec; this module says
what happens at each end: consent declined, not coached (G1), plan kept, or set up.
"""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.engine.events import Button, Topic
from bot.engine.flows import interpreter
from bot.engine.flows.common import send_today
from bot.engine.flows.conditions import has_history
from bot.engine.flows.interpreter import on_fact, outcome
from bot.engine.flows.outcomes import setup_answers
from bot.engine.payload import BeenSeen, encode
from bot.engine.rules.triage import label_key
from bot.engine.turn import DeleteUser, RecordPlanChange

START = "start"


def begin_start(ctx: Ctx, args: str = "") -> None:
    if ctx.profile.onboarded and not ctx.profile.plan_paused:
        interpreter.begin(ctx, START, at="redo")
        return
    interpreter.begin(ctx, START)


def resume_setup(ctx: Ctx, preface: str) -> None:
    """After a clearance that came half-way through setup: carry on from where it hurts."""
    interpreter.begin(ctx, START, at="loc", preface=preface)


@on_fact(START, "consent")
def _consent(ctx: Ctx, value: Any) -> None:
    if value == "yes":
        ctx.profile.consented_at = ctx.now


@outcome(START, "declined")
def _declined(ctx: Ctx, facts: dict[str, Any]) -> None:
    ctx.finish()
    if has_history(ctx):
        # Redoing setup never deletes history; only `delete`, with its own confirm, does.
        ctx.say(ctx.t("consent_declined_kept"))
        return
    ctx.effect(DeleteUser())
    ctx.say(ctx.t("consent_declined"))


@outcome(START, "kept")
def _kept(ctx: Ctx, facts: dict[str, Any]) -> None:
    ctx.finish()
    ctx.say(ctx.t("start_kept"))


@outcome(START, "not_coached")
def _not_coached(ctx: Ctx, facts: dict[str, Any]) -> None:
    """G1: nobody under 18 is coached, and nothing about a child is kept."""
    ctx.finish()
    if has_history(ctx):
        # Confirmed during a redo (start.yaml, minor_confirm): the coaching stops, the
        # history stays until the person deletes it.
        ctx.profile.onboarded = False
        ctx.profile.adult = False
        ctx.profile.paused = True
        ctx.say(ctx.t("not_coached_kept"))
        return
    ctx.effect(DeleteUser())
    key = "not_coached_after_escalation" if facts.get("escalated") else "not_coached"
    ctx.say(ctx.t(key))


def where_it_hurts(ctx: Ctx) -> str:
    """TL6: the place the runner chose, in words (not the presentation the answers
    pointed to: "front" with unclear answers gets a mixed plan, but hurts at the front)."""
    chosen = ctx.profile.pain_location
    for location in ctx.content.triage.locations:
        if location.id == chosen:
            return location.phrase
    return ctx.t(label_key(ctx.profile.presentation or "mixed"))


@outcome(START, "onboarded")
def _onboarded(ctx: Ctx, facts: dict[str, Any]) -> None:
    profile = ctx.profile
    referrals = interpreter.pending_referrals(ctx)
    reminder_line = ctx.conv.data.get("reminder_line", "")
    was = (profile.phase, profile.level)
    profile.onboarded = True
    profile.adult = True
    profile.running = facts.get("running")
    profile.phase, profile.level = 1, 1
    profile.phase_started_on = profile.level_started_on = ctx.today
    if not profile.plan_held:
        profile.plan_started_on = ctx.today
        ctx.effect(RecordPlanChange(was[0], was[1], 1, 1, "start", "triage"))
    profile.setup_answers = setup_answers(ctx)  # for the summary for a physio
    ctx.finish()
    label = where_it_hurts(ctx)
    flags = ctx.t("top_red_flags")
    if not referrals:
        ctx.say(
            "\n\n".join(
                [
                    reminder_line,
                    ctx.t("plan_start", presentation=label, flags=flags),
                    ctx.t("commands_hint"),
                ]
            ),
            topic=Topic.SETUP,
        )
        send_today(ctx)
        return
    # W3: with a referral, the last message leads with what to do and by when.
    ctx.say("\n\n".join([reminder_line, ctx.t("commands_hint")]), topic=Topic.SETUP)
    referral = interpreter.referral_text(ctx, referrals)
    assert referral is not None
    if profile.plan_held:
        ctx.say(
            f"{referral}\n\n{ctx.t('plan_waits')}",
            buttons=[[Button(ctx.t("opt_been_seen"), encode(BeenSeen()))]],
            topic=Topic.REFERRAL,
        )
        return
    send_today(ctx)
    ctx.say(
        f"{referral}\n\n{ctx.t('plan_start_referred', presentation=label, flags=flags)}",
        topic=Topic.REFERRAL,
    )
