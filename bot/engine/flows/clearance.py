"""The ends of the clearance flow (after an escalation, G2, W8) and of the review flow
(after a referral: SOON, SOON-72H, and the plans that wait for a clinician, R18/R19)."""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.engine.events import Topic
from bot.engine.flows import interpreter
from bot.engine.flows.common import send_today
from bot.engine.flows.interpreter import outcome, region_words
from bot.engine.flows.onboarding import resume_setup
from bot.engine.rules.screen import may_resume
from bot.engine.turn import AcknowledgeEscalations, ClearEscalations, RecordPlanChange
from content.schema import Level

CLEARANCE = "clearance"
REVIEW = "review"
REFERRAL_LEVELS = (Level.SOON.value, Level.SOON_72H.value)


def begin_clearance(ctx: Ctx, args: str = "") -> None:
    interpreter.begin(ctx, CLEARANCE)


def begin_review(ctx: Ctx, args: str = "") -> None:
    interpreter.begin(ctx, REVIEW)


@outcome(CLEARANCE, "not_yet")
def _not_yet(ctx: Ctx, facts: dict[str, Any]) -> None:
    ctx.effect(AcknowledgeEscalations())
    ctx.finish()
    number, route = region_words(ctx)
    ctx.say(ctx.t("clearance_not_yet", route=route, emergency=number), topic=Topic.CLEARANCE)


@outcome(CLEARANCE, "waiting")
def _waiting(ctx: Ctx, facts: dict[str, Any]) -> None:
    ctx.effect(AcknowledgeEscalations())
    ctx.finish()
    ctx.say(ctx.t("clearance_wait"), topic=Topic.CLEARANCE)


@outcome(CLEARANCE, "cleared")
def _cleared(ctx: Ctx, facts: dict[str, Any]) -> None:
    """The clinician cleared exercise and the re-screen was clear (G2): restart gently."""
    assert may_resume(facts.get("cleared") == "yes", Level.SELF)
    profile = ctx.profile
    referrals = interpreter.pending_referrals(ctx)
    ctx.effect(AcknowledgeEscalations())
    ctx.effect(ClearEscalations())
    profile.escalation = None
    profile.escalated_on = None
    profile.run_cleared_on = ctx.today  # RR1: the clinician said exercise and running are OK
    referral = interpreter.referral_text(ctx, referrals)
    if not profile.onboarded:
        resume_setup(ctx, ctx.t("clearance_resume_setup"))
        return
    was = (profile.phase, profile.level)
    profile.phase, profile.level = 1, 1
    profile.phase_started_on = profile.level_started_on = ctx.today
    if not profile.plan_held:
        profile.plan_started_on = ctx.today
    ctx.effect(RecordPlanChange(was[0], was[1], 1, 1, "cleared", "clinician_cleared"))
    ctx.finish()
    if referral:
        ctx.say(referral, topic=Topic.REFERRAL)
    if profile.plan_held:
        ctx.say(ctx.t("plan_held"), topic=Topic.CLEARANCE)
        return
    send_today(ctx, preface=ctx.t("clearance_done"))


@outcome(REVIEW, "not_yet")
def _review_not_yet(ctx: Ctx, facts: dict[str, Any]) -> None:
    ctx.finish()
    ctx.say(ctx.t("review_not_yet"), topic=Topic.CLEARANCE)


@outcome(REVIEW, "still_waiting")
def _review_waiting(ctx: Ctx, facts: dict[str, Any]) -> None:
    ctx.finish()
    ctx.say(ctx.t("review_still_waiting"), topic=Topic.CLEARANCE)


def review_done(ctx: Ctx) -> None:
    """The runner saw the clinician the referral asked for and may carry on."""
    profile = ctx.profile
    ctx.effect(ClearEscalations(levels=REFERRAL_LEVELS))
    profile.review = None
    profile.review_reason = None
    profile.review_since = None


@outcome(REVIEW, "reviewed")
def _reviewed(ctx: Ctx, facts: dict[str, Any]) -> None:
    profile = ctx.profile
    referrals = interpreter.pending_referrals(ctx)
    ctx.finish()
    if referrals:
        # The screen just now found something new to have looked at: that comes first.
        text = interpreter.referral_text(ctx, referrals)
        assert text is not None
        ctx.say(text, topic=Topic.REFERRAL)
        return
    held = profile.plan_held
    review_done(ctx)
    if not held:
        ctx.say(ctx.t("review_done"), topic=Topic.INFO)
        return
    profile.plan_hold = None
    profile.plan_started_on = ctx.today
    profile.phase_started_on = profile.level_started_on = ctx.today
    ctx.effect(RecordPlanChange(profile.phase, profile.level, 1, 1, "start", "clinician_approved"))
    profile.phase, profile.level = 1, 1
    send_today(ctx, preface=ctx.t("review_plan_starts"))
