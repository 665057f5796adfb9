"""`start`: consent, age gate, timezone, safety screen, triage and the starting plan.

Also the clearance flow that lifts an escalation latch (clinical rules G2, W8).
"""

from __future__ import annotations

from bot.engine import screening
from bot.engine.context import Ctx
from bot.engine.flows.common import (
    SCREEN_PREFIX,
    ask_pain,
    ask_screen,
    escalate,
    region_words,
    screen_step,
    send_today,
)
from bot.engine.localtime import COMMON_TIMEZONES, parse_clock, valid_timezone, zone_for_city
from bot.engine.regions import country_for_timezone, country_name
from bot.engine.turn import AcknowledgeEscalations, ClearEscalations, DeleteUser, RecordPlanChange
from content.schema import Level

START = "start"
CLEARANCE = "clearance"
REMINDER_CHOICES = ("07:00", "07:30", "08:00", "12:30", "18:00", "20:00")


# --- start ---------------------------------------------------------------------------------


def begin_start(ctx: Ctx, args: str = "") -> None:
    if ctx.profile.plan_paused:
        begin_clearance(ctx)
        return
    ctx.conv.data = {}
    if ctx.profile.onboarded:
        ctx.ask(
            START,
            "redo",
            ctx.t("start_again"),
            [("redo", ctx.t("opt_redo_setup")), ("keep", ctx.t("opt_keep_plan"))],
        )
        return
    ask_consent(ctx)


def ask_consent(ctx: Ctx) -> None:
    ctx.ask(
        START,
        "consent",
        ctx.t("consent_question"),
        [("yes", ctx.t("opt_agree")), ("no", ctx.t("opt_no_thanks"))],
        preface=ctx.t("intro"),
    )


def ask_timezone(ctx: Ctx, flow: str, qid: str = "tz") -> None:
    zones = list(COMMON_TIMEZONES)
    hint = ctx.turn.inbound.user_tz or ctx.profile.timezone
    known = valid_timezone(hint) if hint else None
    if known:
        zones = [z for z in zones if z != known]
        options = [(known, ctx.t("opt_use_zone", zone=known))] + [(z, z) for z in zones]
    else:
        options = [(z, z) for z in zones]
    ctx.ask(flow, qid, ctx.t("timezone_question"), options, columns=2, free="timezone")


def ask_reminder(ctx: Ctx, flow: str, qid: str = "remind") -> None:
    options = [(t, t) for t in REMINDER_CHOICES] + [("off", ctx.t("opt_no_reminders"))]
    ctx.ask(flow, qid, ctx.t("reminder_question", zone=ctx.tz), options, columns=3, free="clock")


def set_timezone(ctx: Ctx, zone: str) -> str:
    """Store the zone and the country it implies; returns a confirmation line."""
    ctx.profile.timezone = zone
    country = country_for_timezone(zone)
    if country:
        ctx.profile.country = country
    if ctx.profile.country and ctx.profile.country in ctx.content.regions.countries:
        region = ctx.content.region(ctx.profile.country)
        return ctx.t(
            "timezone_set_country", zone=zone, country=ctx.profile.country, number=region.emergency
        )
    return ctx.t("timezone_set", zone=zone)


def set_reminder(ctx: Ctx, value: str) -> str:
    if value == "off":
        ctx.profile.reminder_time = None
        return ctx.t("reminder_off")
    clock = parse_clock(value)
    assert clock is not None
    ctx.profile.reminder_time = clock.strftime("%H:%M")
    return ctx.t("reminder_set", time=ctx.profile.reminder_time, zone=ctx.tz)


def answer_start(ctx: Ctx, qid: str, value: str) -> None:
    data = ctx.conv.data
    if qid == "redo":
        if value == "keep":
            ctx.finish()
            ctx.say(ctx.t("start_kept"))
            return
        ask_consent(ctx)
        return
    if qid == "consent":
        if value == "no":
            ctx.finish()
            ctx.effect(DeleteUser())
            ctx.say(ctx.t("consent_declined"))
            return
        ctx.profile.consented_at = ctx.now
        ctx.ask(
            START,
            "age",
            ctx.t("age_question"),
            [("adult", ctx.t("opt_adult")), ("minor", ctx.t("opt_minor"))],
        )
        return
    if qid == "age":
        if value == "minor":
            ctx.finish()
            ctx.effect(DeleteUser())
            ctx.say(ctx.t("under_18"))
            return
        ctx.profile.adult = True
        ask_timezone(ctx, START)
        return
    if qid == "tz":
        line = set_timezone(ctx, value)
        screening.start_full(data, kind="start")
        ask_screen(ctx, START, preface=f"{line}\n\n{ctx.t('screen_intro')}")
        return
    if qid.startswith(SCREEN_PREFIX):
        screen_step(ctx, START, qid, value, lambda result: _after_screen(ctx, result))
        return
    if qid == "loc":
        _after_location(ctx, value)
        return
    if qid.startswith("T"):
        _after_triage_question(ctx, qid, value)
        return
    if qid == "running":
        ctx.profile.running = value
        ask_pain(ctx, START, "pain", ctx.t("pain_now_question"))
        return
    if qid == "pain":
        pain = int(value)
        data["pain"] = pain
        if pain >= 7:
            # P9: pain this high goes back to the red-flag table (R16) before any plan.
            screening.start_items(data, ["R16"], kind="severe")
            data["severe_check"] = True
            ask_screen(ctx, START, preface=ctx.t("pain_high_check"))
            return
        ask_reminder(ctx, START)
        return
    if qid == "remind":
        line = set_reminder(ctx, value)
        _finish_start(ctx, line)
        return
    raise ValueError(f"start flow has no question {qid!r}")


def _after_screen(ctx: Ctx, result: screening.ScreenOutcome) -> None:
    data = ctx.conv.data
    if result.level.escalates:
        escalate(ctx, result, START)
        return
    if not result.clear:
        escalate(ctx, result, START)
    if data.pop("severe_check", False):
        ask_reminder(ctx, START)
        return
    _ask_location(ctx)


def _ask_location(ctx: Ctx, preface: str | None = None) -> None:
    triage = ctx.content.triage
    options = [(loc.id, loc.label) for loc in triage.locations]
    ctx.ask(START, "loc", triage.location_question, options, columns=1, preface=preface)


def _after_location(ctx: Ctx, value: str) -> None:
    triage = ctx.content.triage
    location = next(loc for loc in triage.locations if loc.id == value)
    data = ctx.conv.data
    data["loc"] = value
    if location.presentation in ("front", "outside"):
        data["pending"] = list(getattr(triage, location.presentation))
        data["side"] = location.presentation
        data["hits"] = []
        _ask_next_triage(ctx)
        return
    # Both sides, or a place outside this coach's scope: the strictest plan plus a physio.
    ctx.profile.presentation = location.presentation
    reason_key = "review_mixed" if location.presentation == "mixed" else "review_out_of_scope"
    _recommend_review(ctx, ctx.t(reason_key))
    _ask_running(ctx)


def _ask_next_triage(ctx: Ctx) -> None:
    data = ctx.conv.data
    while data["pending"]:
        qid = data["pending"][0]
        question = ctx.content.triage_question(qid)
        # A second question pointing the same way adds nothing once one said yes.
        if question.points_to == data["side"] and data["side"] in data["hits"]:
            data["pending"].pop(0)
            continue
        ctx.ask(START, qid, question.question, [("yes", ctx.t("opt_yes")), ("no", ctx.t("opt_no"))])
        return
    side = data["side"]
    if side in data["hits"]:
        ctx.profile.presentation = side
    else:
        ctx.profile.presentation = "mixed"  # TL4: unclear -> both sets of restrictions
        _recommend_review(ctx, ctx.t("review_unclear"))
    if "soon" in data["hits"]:
        _recommend_review(ctx, ctx.t("review_pinch"))
    _ask_running(ctx)


def _after_triage_question(ctx: Ctx, qid: str, value: str) -> None:
    data = ctx.conv.data
    question = ctx.content.triage_question(qid)
    data["pending"].pop(0)
    if value == "yes":
        data["hits"].append(question.points_to)
    _ask_next_triage(ctx)


def _recommend_review(ctx: Ctx, reason: str) -> None:
    if ctx.profile.review is None:
        ctx.profile.review = Level.SOON
        ctx.profile.review_reason = reason
    ctx.say(ctx.t("escalate_soon", reason=reason))


def _ask_running(ctx: Ctx) -> None:
    options = [
        ("none", ctx.t("opt_run_none")),
        ("easy", ctx.t("opt_run_easy")),
        ("normal", ctx.t("opt_run_normal")),
        ("building", ctx.t("opt_run_building")),
    ]
    ctx.ask(START, "running", ctx.t("running_question"), options, columns=1)


def _finish_start(ctx: Ctx, reminder_line: str) -> None:
    profile = ctx.profile
    was = (profile.phase, profile.level)
    profile.onboarded = True
    profile.phase, profile.level = 1, 1
    profile.phase_started_on = profile.level_started_on = ctx.today
    ctx.effect(RecordPlanChange(was[0], was[1], 1, 1, "start", "triage"))
    ctx.finish()
    label = ctx.t(f"presentation_{profile.presentation}")
    flags = ctx.t("top_red_flags")
    ctx.say(
        "\n\n".join(
            [
                reminder_line,
                ctx.t("plan_start", presentation=label, flags=flags),
                ctx.t("commands_hint"),
            ]
        )
    )
    send_today(ctx)


# --- clearance (after an escalation) ---------------------------------------------------------


def begin_clearance(ctx: Ctx, args: str = "") -> None:
    ctx.conv.data = {}
    level = ctx.profile.escalation
    key = "clearance_question_emergency" if level == Level.EMERGENCY else "clearance_question"
    ctx.ask(
        CLEARANCE,
        "seen",
        ctx.t(key),
        [("yes", ctx.t("opt_seen_yes")), ("no", ctx.t("opt_seen_not_yet"))],
        columns=1,
    )


def answer_clearance(ctx: Ctx, qid: str, value: str) -> None:
    if qid == "seen":
        ctx.effect(AcknowledgeEscalations())
        if value == "no":
            ctx.finish()
            number, route = region_words(ctx)
            ctx.say(ctx.t("clearance_not_yet", route=route, emergency=number))
            return
        ctx.ask(
            CLEARANCE,
            "cleared",
            ctx.t("clearance_cleared_question"),
            [
                ("yes", ctx.t("opt_cleared_yes")),
                ("no", ctx.t("opt_cleared_no")),
                ("unsure", ctx.t("opt_unsure")),
            ],
            columns=1,
        )
        return
    if qid == "cleared":
        if value != "yes":
            ctx.finish()
            ctx.say(ctx.t("clearance_wait"))
            return
        # G2: re-ask the red-flag screen before resuming.
        screening.start_full(ctx.conv.data, kind="clearance")
        ask_screen(ctx, CLEARANCE, preface=ctx.t("clearance_rescreen"))
        return
    if qid.startswith(SCREEN_PREFIX):
        screen_step(ctx, CLEARANCE, qid, value, lambda result: _after_clearance_screen(ctx, result))
        return
    raise ValueError(f"clearance flow has no question {qid!r}")


def _after_clearance_screen(ctx: Ctx, result: screening.ScreenOutcome) -> None:
    if result.level.escalates:
        escalate(ctx, result, CLEARANCE)
        return
    profile = ctx.profile
    profile.escalation = None
    profile.escalated_on = None
    ctx.effect(ClearEscalations())
    if not result.clear:
        escalate(ctx, result, CLEARANCE)
    if not profile.onboarded:
        # The latch fired during setup: carry on with triage where the screen left off.
        ctx.conv.data = {}
        _ask_location(ctx, preface=ctx.t("clearance_resume_setup"))
        return
    was = (profile.phase, profile.level)
    profile.phase, profile.level = 1, 1
    profile.phase_started_on = profile.level_started_on = ctx.today
    ctx.effect(RecordPlanChange(was[0], was[1], 1, 1, "cleared", "clinician_cleared"))
    ctx.finish()
    send_today(ctx, preface=ctx.t("clearance_done"))


def parse_free(ctx: Ctx, kind: str, text: str) -> str | None:
    """Turn typed text into an answer value for questions that accept it."""
    if kind == "clock":
        clock = parse_clock(text)
        return clock.strftime("%H:%M") if clock else None
    if kind == "timezone":
        return find_timezone(text)
    if kind == "country":
        code = text.strip().upper()
        return code if len(code) == 2 and country_name(code) else None
    return None


def find_timezone(text: str) -> str | None:
    """An IANA name, or a city that names one ("Berlin" -> Europe/Berlin)."""
    zone = valid_timezone(text)
    if zone:
        return zone
    city = text.strip().replace(" ", "_").lower()
    if not city or len(city) > 64:
        return None
    return zone_for_city(city)
