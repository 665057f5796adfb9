"""The named conditions a flow spec may use in `when:` (content/data/flows/*.yaml).

Each reads the answers so far (`facts`) and what the engine knows (profile, history,
today) and says yes or no; clinical ones call the rule that decides them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bot.engine.context import Ctx
from bot.engine.rules import pain_monitoring as pm
from bot.engine.rules import return_to_running as rtr
from bot.engine.rules.progression import STRENGTH_PHASE, plan_shape
from bot.engine.session import isometrics_in_session_of
from content.schema import Level

Condition = Callable[[Ctx, dict[str, Any]], bool]
CONDITIONS: dict[str, Condition] = {}


def condition(fn: Condition) -> Condition:
    CONDITIONS[fn.__name__] = fn
    return fn


@condition
def severe_pain_now(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """P9 on the pain score given at setup."""
    return pm.p9_severe(facts.get("pain_now"))


@condition
def severe_morning_pain(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """P9 on this morning's pain."""
    return pm.p9_severe(facts.get("pain_now"))


@condition
def severe_run_pain(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """P9 on the worst pain during the run."""
    return pm.p9_severe(facts.get("run_pain"))


@condition
def severe_exercise_pain(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """P9 on the worst pain during the exercises."""
    return pm.p9_severe(facts.get("exercise_pain"))


@condition
def has_plan_history(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """Setup is being redone over a plan with history: nothing is deleted by its answers."""
    return has_history(ctx)


def has_history(ctx: Ctx) -> bool:
    history = ctx.history
    return ctx.profile.onboarded or bool(history.checkins) or bool(history.exercise_logs)


def _checkin_day(ctx: Ctx) -> date:
    raw = ctx.conv.data.get("date")
    return date.fromisoformat(raw) if isinstance(raw, str) else ctx.today


def _yesterday_session_day(ctx: Ctx) -> date:
    return _checkin_day(ctx) - timedelta(days=1)


@condition
def exercises_were_planned(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """Yesterday had a session: the plan began before today and was not waiting or paused.

    Never asked on the plan's first day (nothing was planned the day before)."""
    profile = ctx.profile
    started = profile.plan_started_on or profile.phase_started_on
    if started is None or profile.plan_held:
        return False
    return started <= _yesterday_session_day(ctx)


@condition
def holds_to_ask(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """P11 is asked when yesterday's session had isometric holds and there was some pain
    during or just after the exercises (at 0/10 the holds cannot have raised it)."""
    pain = facts.get("exercise_pain")
    if not isinstance(pain, int) or pain == 0:
        return False
    return isometrics_in_session_of(ctx.content, ctx.profile, _yesterday_session_day(ctx))


@condition
def review_follow_up_due(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """A referral made on an earlier day is still open: ask about it on the weekly
    full-screen day (running waits for it, so the runner can report being seen)."""
    since = ctx.profile.review_since
    return (
        ctx.profile.review is not None
        and since is not None
        and since < _checkin_day(ctx)
        and ctx.conv.data.get("screen_kind") == "full"
    )


@condition
def phase_gate_due(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """RR2-RR4: top of phase 2, its weeks done, not asked in the last week."""
    profile = ctx.profile
    if profile.phase != STRENGTH_PHASE:
        return False
    shape = plan_shape(ctx.content, profile.presentation)
    at_top = profile.level >= shape.top(STRENGTH_PHASE)
    minimum = ctx.content.phases[STRENGTH_PHASE].min_days
    return rtr.gate_due(profile, _checkin_day(ctx), at_top, minimum)


@condition
def hop_check_due(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """RR5, the check-in after the strength checks passed."""
    return rtr.hop_check_due(ctx.profile, _checkin_day(ctx))


@condition
def escalated_urgent(ctx: Ctx, facts: dict[str, Any]) -> bool:
    """The latch is at URGENT (not EMERGENCY): the follow-up asks about a doctor's visit."""
    return ctx.profile.escalation != Level.EMERGENCY
