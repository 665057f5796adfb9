"""The weekly outcome check (clinical rules section 6) and the summary for a physio.

The check is offered at the end of the daily check-in, once a week (O4), as a message with
Start / Not this week buttons rather than a waiting question, so it never holds up the
check-in and is skipped with one tap. It asks the global rating of change (O3), then the
activity scores (O2): the first time, the runner picks up to 3 activities (buttons for
common ones, or their own words) and scores each 0-10; later weeks re-score the same
ones. Each answer is stored as it comes (RecordOutcome). At the end the coach says what
changed, using section 6's thresholds for the words (bot/engine/outcomes.py) and never a
diagnosis.

`summary` (a command, a button with every SOON or URGENT escalation, settings and the
Slack App Home) asks the service for the one-page PDF; it is only ever sent to the
runner's private chat.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bot.engine import outcomes as om
from bot.engine.context import Ctx
from bot.engine.events import Button, Topic
from bot.engine.parse import pain_score
from bot.engine.payload import PhysioSummary, WeeklyCheck, encode
from bot.engine.turn import RecordOutcome, SendPhysioSummary
from content.schema import Level

OUTCOMES = "outcomes"
SKIP = "skip"
ENOUGH = "enough"
OWN_PREFIX = "="  # the value of an activity typed in the runner's own words
ACTIVITY_MAX = 40  # characters kept of an activity typed in own words
SCORE_COLUMNS = 6
# Escalations that get the summary button: SOON-type referrals and same-day (URGENT)
# escalations. An EMERGENCY shows the emergency message only (section 0).
SUMMARY_LEVELS = (Level.SOON, Level.SOON_72H, Level.URGENT)
# Setup answers kept for the summary: where it hurts, the triage questions, running, R21.
SETUP_FACTS = ("loc", "running", "r21")


# --- the offer --------------------------------------------------------------------------------


def offer_weekly(ctx: Ctx, *, escalated_today: bool = False) -> None:
    """At the end of a check-in: offer this week's check when it is due (O4)."""
    profile = ctx.profile
    if ctx.content.outcomes is None:
        return
    if not om.weekly_check_due(profile, ctx.today, escalated_today):
        return
    profile.outcomes_on = ctx.today
    key = "outcomes_offer" if profile.psfs_activities else "outcomes_offer_first"
    ctx.say(
        ctx.t(key),
        buttons=[
            [
                Button(ctx.t("opt_outcomes_start"), encode(WeeklyCheck(True))),
                Button(ctx.t("opt_outcomes_skip"), encode(WeeklyCheck(False))),
            ]
        ],
    )


def pressed(ctx: Ctx, start: bool) -> None:
    """Start / Not this week."""
    if not start:
        if ctx.conv.flow == OUTCOMES:
            ctx.finish()
        ctx.say(ctx.t("outcomes_skipped"))
        return
    if ctx.profile.plan_paused or not ctx.profile.onboarded:
        ctx.say(ctx.t("weekly_paused") if ctx.profile.plan_paused else ctx.t("setup_first_short"))
        return
    begin(ctx)


def begin(ctx: Ctx) -> None:
    ctx.conv.data = {"scores": {}, "picked": [], "i": 0, "date": ctx.today.isoformat()}
    _ask_groc(ctx)


# --- questions ------------------------------------------------------------------------------


def _skip_rest(ctx: Ctx) -> tuple[str, str]:
    return SKIP, ctx.t("opt_outcomes_skip_rest")


def _ask_groc(ctx: Ctx) -> None:
    assert ctx.content.outcomes is not None
    options = [(str(p.value), p.label) for p in ctx.content.outcomes.groc]
    ctx.ask(
        OUTCOMES, "groc", ctx.t("outcomes_groc_question"), [*options, _skip_rest(ctx)], columns=1
    )


def _ask_pick(ctx: Ctx) -> None:
    assert ctx.content.outcomes is not None
    picked: list[str] = ctx.conv.data["picked"]
    options = [(a.id, a.label) for a in ctx.content.outcomes.activities if a.label not in picked]
    if picked:
        options.append((ENOUGH, ctx.t("opt_outcomes_enough")))
        text = ctx.t("outcomes_pick_more", n=len(picked))
    else:
        text = ctx.t("outcomes_pick_question")
    ctx.ask(OUTCOMES, "pick", text, [*options, _skip_rest(ctx)], columns=1, free="activity")


def _ask_rate(ctx: Ctx, activity: str) -> None:
    options = [(str(n), str(n)) for n in range(om.PSFS_MIN, om.PSFS_MAX + 1)]
    ctx.conv.data["rating"] = activity
    ctx.ask(
        OUTCOMES,
        "rate",
        ctx.t("outcomes_rate_question", activity=activity),
        [*options, _skip_rest(ctx)],
        columns=SCORE_COLUMNS,
        free="score",
    )


def parse_activity(text: str) -> str | None:
    """An activity in the runner's own words (typed at the pick question)."""
    words = " ".join(text.split()).strip(" .,!")
    if not words or not re.search(r"[^\W\d_]", words):
        return None
    return OWN_PREFIX + words[:ACTIVITY_MAX]


def parse_score(text: str) -> str | None:
    score = pain_score(text)  # the same 0-10 reading as the pain questions
    return None if score is None else str(score)


# --- answers ----------------------------------------------------------------------------------


def answer(ctx: Ctx, qid: str, value: str) -> None:
    data = ctx.conv.data
    if value == SKIP:
        _finish(ctx, partial=True)
        return
    if qid == "groc":
        score = int(value)
        data["groc"] = score
        _record(ctx, "groc", None, score)
        _next_activity(ctx)
        return
    if qid == "pick":
        if value == ENOUGH:
            _finish(ctx)
            return
        _ask_rate(ctx, _activity_label(ctx, value))
        return
    if qid == "rate":
        activity = str(data.get("rating", ""))
        score = int(value)
        data["scores"][activity] = score
        _record(ctx, "psfs", activity, score)
        if activity not in ctx.profile.psfs_activities:
            data["picked"] = [*data["picked"], activity]
            ctx.profile.psfs_activities = [*ctx.profile.psfs_activities, activity]
            ctx.profile.psfs_first = {**ctx.profile.psfs_first, activity: score}
            if len(ctx.profile.psfs_activities) >= om.MAX_ACTIVITIES:
                _finish(ctx)
            else:
                _ask_pick(ctx)
            return
        data["i"] = int(data.get("i", 0)) + 1
        _next_activity(ctx)
        return
    raise ValueError(f"the weekly check has no question {qid!r}")


def _activity_label(ctx: Ctx, value: str) -> str:
    if value.startswith(OWN_PREFIX):
        return value[len(OWN_PREFIX) :]
    assert ctx.content.outcomes is not None
    return next(a.label for a in ctx.content.outcomes.activities if a.id == value)


def _next_activity(ctx: Ctx) -> None:
    """Re-score the runner's activities in order; the first time, let them pick."""
    activities = ctx.profile.psfs_activities
    if not activities:
        _ask_pick(ctx)
        return
    i = int(ctx.conv.data.get("i", 0))
    if i < len(activities):
        _ask_rate(ctx, activities[i])
        return
    _finish(ctx)


def _record(ctx: Ctx, measure: str, item: str | None, score: int) -> None:
    ctx.effect(RecordOutcome(local_date=ctx.today, measure=measure, item=item, score=score))


def _finish(ctx: Ctx, *, partial: bool = False) -> None:
    data: dict[str, Any] = ctx.conv.data
    ctx.finish()
    lines = [ctx.t("outcomes_partial" if partial else "outcomes_done")]
    lines += interpretation(ctx, data.get("groc"), data.get("scores", {}), data.get("picked", []))
    ctx.say("\n\n".join(lines))


def interpretation(
    ctx: Ctx, groc: int | None, scores: dict[str, int], picked: list[str]
) -> list[str]:
    """What this week's answers mean, in section 6's terms (O1-O3), never a diagnosis."""
    lines: list[str] = []
    if groc is not None:
        lines.append(ctx.t(om.groc_words(groc)))
    first = ctx.profile.psfs_first
    rescored = {a: s for a, s in scores.items() if a not in picked}
    if picked and not rescored:
        lines.append(ctx.t("outcomes_baseline"))
    change = om.psfs_change(first, rescored)
    if change is not None:
        lines.append(ctx.t(om.psfs_words(change), change=om.points(abs(change.delta))))
        lines += [
            ctx.t("outcomes_psfs_item", activity=a, first=first[a], now=s)
            for a, s in rescored.items()
            if om.psfs_item_changed(first[a], s)
        ]
    pain = om.nprs_change(ctx.history.checkins, ctx.profile.baseline, ctx.today)
    said = om.nprs_words(pain) if pain is not None else None
    if said is not None:
        key, size = said
        lines.append(ctx.t(key, change=om.points(size)))
    if lines:
        lines.append(ctx.t("outcomes_not_a_diagnosis"))
    return lines


# --- the summary for a physio -------------------------------------------------------------------


def summary(ctx: Ctx, args: str = "") -> None:
    """`summary`: the one-page PDF, always to the private chat (the service builds it)."""
    if ctx.in_group:
        ctx.effect(SendPhysioSummary(caption=ctx.t("physio_summary_caption")))
        return
    if not ctx.profile.onboarded and not ctx.profile.plan_paused:
        ctx.say(ctx.t("physio_summary_nothing"))
        return
    ctx.say(ctx.t("physio_summary_intro"))
    ctx.effect(SendPhysioSummary(caption=ctx.t("physio_summary_caption")))


def offer_summary_with_escalations(ctx: Ctx) -> None:
    """Every SOON or URGENT escalation message carries a "Summary for my physio" button
    (not an EMERGENCY one: that message stands alone, section 0)."""
    if ctx.in_group or ctx.content.outcomes is None:
        return
    button = Button(ctx.t("opt_physio_summary"), encode(PhysioSummary()))
    for n, reply in enumerate(ctx.replies):
        wanted = reply.topic == Topic.REFERRAL or (
            reply.topic == Topic.ESCALATION and ctx.profile.escalation in SUMMARY_LEVELS
        )
        if wanted and reply.edit_ref is None:
            ctx.replies[n] = replace(reply, buttons=(*reply.buttons, (button,)))


def setup_answers(ctx: Ctx) -> dict[str, str]:
    """The setup answers about where it hurts, how it started and what provokes it, kept
    for the summary (the flow's data goes when it ends)."""
    triage_ids = {q.id for q in ctx.content.triage.questions}
    kept: dict[str, str] = {}
    for qid, value in ctx.conv.data.get("answers", []):
        if qid in triage_ids or qid in SETUP_FACTS:
            kept[str(qid)] = str(value)
    return kept
