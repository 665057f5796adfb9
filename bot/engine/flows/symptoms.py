"""Free text about the hip, outside a question ("my hip hurts more today").

Never a diagnosis: the words only choose what to ask. Words that can point to a red flag
ask the safety questions at once (content/data/flows/symptoms.yaml, G4); other words about
pain or symptoms start the daily check-in, or ask its waiting question again (G5: its
mini-screen asks the red flags). The word lists are content/data/symptom_words.yaml; the
matching is `bot.engine.rules.screen`. Nothing is stored for someone who has not agreed
to it (no plan yet): they get the safety advice and the way into setup.
"""

from __future__ import annotations

from typing import Any

from bot.engine.context import Ctx
from bot.engine.events import Button, Topic
from bot.engine.flows import interpreter
from bot.engine.flows.checkin import CHECKIN, begin_checkin
from bot.engine.flows.interpreter import outcome, region_words
from bot.engine.payload import SetUp, encode
from bot.engine.rules.screen import reported_red_flags, talks_about_symptoms

SYMPTOMS = "symptoms"
# Flows whose waiting question a symptom sentence must not replace: setup (nothing is
# coached before it ends) and the flows that lead back from a referral or an escalation.
KEEP_WAITING = ("start", "clearance", "review")


def heard(ctx: Ctx, text: str) -> bool:
    """Answer free text that talks about symptoms; False when it does not."""
    if ctx.in_group:
        return False
    flags = reported_red_flags(text, ctx.content)
    if not flags and not talks_about_symptoms(text, ctx.content):
        return False
    profile, conv = ctx.profile, ctx.conv
    if profile.plan_paused:
        # G2: already sent to a clinician; say again how to get seen, and what is urgent.
        number, route = region_words(ctx)
        ctx.say(ctx.t("symptom_while_paused", emergency=number, route=route), topic=Topic.CLEARANCE)
        if conv.waiting:
            ctx.repeat_question()
        return True
    if not profile.onboarded:
        if conv.waiting and not flags:
            return False  # setup is under way: its own re-prompt
        set_up = [] if conv.waiting else [[Button(ctx.t("opt_set_up"), encode(SetUp()))]]
        if flags:
            number, _ = region_words(ctx)
            text = ctx.t("symptom_red_flag_new", emergency=number)
            if not conv.waiting:
                text += "\n\n" + ctx.t("symptom_set_up")
        else:
            text = ctx.t("symptom_new")
        ctx.say(text, buttons=set_up)
        if conv.waiting:
            ctx.repeat_question()
        return True
    if flags:
        interpreter.begin(ctx, SYMPTOMS, data={"ask_first": list(flags)})
        return True
    if conv.waiting and conv.flow in KEEP_WAITING:
        return False
    if conv.waiting and conv.flow == CHECKIN:
        ctx.repeat_question(preface=ctx.t("symptom_in_checkin"))
        return True
    begin_checkin(ctx, lead=ctx.t("symptom_checkin"))
    return True


@outcome(SYMPTOMS, "clear")
def _clear(ctx: Ctx, facts: dict[str, Any]) -> None:
    """A clear screen: the check-in follows when there has been none today, without asking
    the red flags again (its mini-screen knows the answers just given)."""
    known = dict(ctx.conv.data.get("screen", {}))
    referral = interpreter.referral_text(ctx, interpreter.pending_referrals(ctx))
    ctx.finish()
    if referral:
        ctx.say(referral, topic=Topic.REFERRAL)
    checked_in = any(c.local_date == ctx.today and c.decision for c in ctx.history.checkins)
    if checked_in or ctx.profile.plan_held:
        ctx.say(ctx.t("symptom_screen_clear"))
        return
    interpreter.begin(ctx, CHECKIN, preface=ctx.t("symptom_screen_clear"), data={"screen": known})
