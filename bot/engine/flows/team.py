"""Group and channel features: joining, `warmup` schedules and the warm-up card.

Nothing here touches a runner's personal data: a group only ever sees the routine.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from bot.engine.context import Ctx
from bot.engine.events import Topic
from bot.engine.flows.preferences import find_timezone
from bot.engine.localtime import COMMON_TIMEZONES, next_occurrence, parse_clock
from bot.engine.payload import small_int
from bot.engine.turn import AddWarmup, RemoveWarmup, SetTeamTimezone
from content.loader import Content

WARMUP = "warmup"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SCHEDULES = 10
MAX_SCHEDULE_DIGITS = 3  # "warmup remove 2": bounded before int()


def render_warmup_card(content: Content, routine_id: str = "team_warmup") -> str:
    routine = content.warmups[routine_id]
    lines = [
        content.message("warmup_card_title", name=routine.name, minutes=routine.minutes),
        routine.intro,
        "",
    ]
    lines.append(content.message("warmup_card_drills"))
    for item in routine.drills:
        lines.append(f"• {content.exercises[item.exercise].name} — {item.amount}")
    lines += ["", content.message("warmup_card_activation")]
    for item in routine.activation:
        lines.append(f"• {content.exercises[item.exercise].name} — {item.amount}")
    lines += ["", content.message("warmup_card_footer")]
    return "\n".join(lines)


def parse_days(text: str) -> frozenset[int] | None:
    """ "tue,thu", "Tue Thu", "mon-fri", "daily", "weekdays" -> weekday numbers (Mon=0)."""
    text = text.strip().lower()
    if text in ("daily", "everyday", "every day", "all"):
        return frozenset(range(7))
    if text == "weekdays":
        return frozenset(range(5))
    if text == "weekends":
        return frozenset({5, 6})
    days: set[int] = set()
    for part in re.split(r"[,\s/+]+", text):
        if not part:
            continue
        if "-" in part:
            start, _, end = part.partition("-")
            a, b = _day_index(start), _day_index(end)
            if a is None or b is None:
                return None
            i = a
            while True:
                days.add(i)
                if i == b:
                    break
                i = (i + 1) % 7
            continue
        index = _day_index(part)
        if index is None:
            return None
        days.add(index)
    return frozenset(days) or None


def _day_index(word: str) -> int | None:
    word = word.strip()[:3]
    return DAY_NAMES.index(word) if word in DAY_NAMES else None


def days_text(days: frozenset[int] | str) -> str:
    parsed = (parse_days(days) or frozenset()) if isinstance(days, str) else days
    return ", ".join(DAY_NAMES[d].capitalize() for d in sorted(parsed))


def post_clock(
    days: frozenset[int], run_time: time, lead_minutes: int
) -> tuple[time, frozenset[int]]:
    """When to post: the run time minus the lead, moving to the day before past midnight."""
    run = datetime(2000, 1, 3, run_time.hour, run_time.minute)  # a Monday
    post = run - timedelta(minutes=lead_minutes)
    shift = (post.date() - run.date()).days
    return post.time(), frozenset((d + shift) % 7 for d in days)


def parse_add(args: str) -> tuple[frozenset[int], time, int, str | None] | None:
    """ "tue,thu 18:00 before 15 tz Europe/Berlin" -> (days, time, lead, zone)."""
    match = re.fullmatch(
        r"\s*(?P<days>.+?)\s+(?P<time>\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm)?)"
        r"(?:\s+before\s+(?P<lead>\d{1,3}))?(?:\s+tz\s+(?P<tz>\S+))?\s*",
        args.lower(),
    )
    if not match:
        return None
    days = parse_days(match["days"])
    clock = parse_clock(match["time"])
    lead = int(match["lead"]) if match["lead"] else 15
    if days is None or clock is None or not 0 <= lead <= 180:
        return None
    zone = None
    if match["tz"]:
        zone = find_timezone(match["tz"])
        if zone is None:
            return None
    return days, clock, lead, zone


def joined(ctx: Ctx) -> None:
    ctx.say(ctx.t("group_intro"), private=False)


def warmup(ctx: Ctx, args: str = "") -> None:
    if not ctx.in_group:
        if ctx.profile.plan_paused:
            # No exercise content while a clinician's check is pending (section 0).
            ctx.say(ctx.t("plan_paused_short"), topic=Topic.CLEARANCE)
            return
        card = render_warmup_card(ctx.content)
        ctx.say(f"{card}\n\n{ctx.t('warmup_private_hint')}", topic=Topic.SESSION)
        return
    words = args.strip().split(maxsplit=1)
    verb = words[0].lower() if words else "list"
    rest = words[1] if len(words) > 1 else ""
    if verb in ("list", "ls"):
        _list(ctx)
        return
    if verb in ("card", "preview", "show"):
        ctx.say(render_warmup_card(ctx.content), private=False, topic=Topic.SESSION)
        return
    if verb not in ("add", "remove", "rm", "delete", "tz", "timezone"):
        ctx.say(ctx.t("warmup_usage"), private=False)
        return
    if ctx.turn.inbound.is_admin is not True:
        ctx.say(ctx.t("warmup_admin_only"), private=False)
        return
    if verb == "add":
        _add(ctx, rest)
    elif verb in ("tz", "timezone"):
        zone = find_timezone(rest)
        if zone is None:
            ctx.say(ctx.t("warmup_bad_zone"), private=False)
            return
        if ctx.conv.waiting and ctx.conv.flow == WARMUP:
            # The answer to the open "which timezone?" question, sent as the command its
            # text suggests (a group with privacy mode never hands the bot plain text).
            answer_warmup(ctx, "tz", zone)
            return
        ctx.effect(SetTeamTimezone(zone))
        ctx.say(ctx.t("warmup_zone_set", zone=zone), private=False)
    else:
        _remove(ctx, rest)


def _list(ctx: Ctx) -> None:
    if not ctx.turn.warmups:
        ctx.say(ctx.t("warmup_none") + "\n\n" + ctx.t("warmup_usage"), private=False)
        return
    lines = [ctx.t("warmup_list_header")]
    for n, w in enumerate(ctx.turn.warmups, start=1):
        lines.append(
            ctx.t(
                "warmup_list_item",
                n=n,
                days=days_text(w.days),
                time=w.run_time,
                lead=w.lead_minutes,
                zone=w.timezone,
            )
        )
    ctx.say("\n".join(lines), private=False)


def _add(ctx: Ctx, args: str) -> None:
    parsed = parse_add(args)
    if parsed is None:
        ctx.say(ctx.t("warmup_bad_add"), private=False)
        return
    if len(ctx.turn.warmups) >= MAX_SCHEDULES:
        ctx.say(ctx.t("warmup_too_many", max=MAX_SCHEDULES), private=False)
        return
    zone = parsed[3] or ctx.turn.team_timezone or ctx.turn.inbound.user_tz
    if zone is None:
        # The chat's timezone decides when cards go out: ask once, keep the schedule waiting.
        ctx.conv.data = {"pending_add": args}
        ctx.ask(
            WARMUP,
            "tz",
            ctx.t("warmup_zone_question"),
            [(z, z) for z in COMMON_TIMEZONES],
            columns=2,
            free="timezone",
            private=False,
        )
        return
    if ctx.turn.team_timezone is None:
        ctx.effect(SetTeamTimezone(zone))
    _add_with_zone(ctx, args, zone)


def _remove(ctx: Ctx, args: str) -> None:
    text = args.strip().lstrip("#")
    number = small_int(text, MAX_SCHEDULE_DIGITS)
    if number is None or not 1 <= number <= len(ctx.turn.warmups):
        ctx.say(ctx.t("warmup_bad_remove", count=len(ctx.turn.warmups)), private=False)
        return
    schedule = ctx.turn.warmups[number - 1]
    ctx.effect(RemoveWarmup(schedule_id=schedule.id))
    ctx.say(
        ctx.t("warmup_removed", n=text, days=days_text(schedule.days), time=schedule.run_time),
        private=False,
    )


def answer_warmup(ctx: Ctx, qid: str, value: str) -> None:
    if qid != "tz":
        raise ValueError(f"warmup has no question {qid!r}")
    pending = ctx.conv.data.get("pending_add", "")
    ctx.finish()
    ctx.effect(SetTeamTimezone(value))
    if not pending:
        ctx.say(ctx.t("warmup_zone_set", zone=value), private=False)
        return
    _add_with_zone(ctx, pending, value)


def _add_with_zone(ctx: Ctx, args: str, zone: str) -> None:
    parsed = parse_add(args)
    assert parsed is not None
    days, clock, lead, _ = parsed
    day_words = ",".join(DAY_NAMES[d] for d in sorted(days))
    ctx.effect(
        AddWarmup(
            days=day_words, run_time=clock.strftime("%H:%M"), lead_minutes=lead, timezone=zone
        )
    )
    ctx.say(
        ctx.t(
            "warmup_added", days=days_text(days), time=clock.strftime("%H:%M"), lead=lead, zone=zone
        ),
        private=False,
    )


def next_warmup_post(
    days: str, run_time: str, lead_minutes: int, timezone: str, after: datetime
) -> datetime:
    """The next moment a schedule's card goes out, in UTC."""
    parsed_days = parse_days(days) or frozenset(range(7))
    clock = parse_clock(run_time)
    assert clock is not None
    post_time, post_days = post_clock(parsed_days, clock, lead_minutes)
    return next_occurrence(post_time, timezone, after, days=post_days)
