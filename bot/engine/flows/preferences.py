"""The runner's timezone, country and reminder time: asked in setup and in settings."""

from __future__ import annotations

from bot.engine.context import Ctx
from bot.engine.localtime import COMMON_TIMEZONES, parse_clock, valid_timezone, zone_for_city
from bot.engine.regions import country_for_timezone, country_name

REMINDER_CHOICES = ("07:00", "07:30", "08:00", "12:30", "18:00", "20:00")
MAX_CITY = 64  # no city or zone name is longer; longer text is not one
COUNTRY_CODE_LENGTH = 2  # ISO 3166 alpha-2


def ask_timezone(
    ctx: Ctx, flow: str, qid: str = "tz", *, preface: str | None = None, topic: str = "info"
) -> None:
    zones = list(COMMON_TIMEZONES)
    hint = ctx.turn.inbound.user_tz or ctx.profile.timezone
    known = valid_timezone(hint) if hint else None
    if known:
        zones = [z for z in zones if z != known]
        options = [(known, ctx.t("opt_use_zone", zone=known))] + [(z, z) for z in zones]
    else:
        options = [(z, z) for z in zones]
    ctx.ask(
        flow,
        qid,
        ctx.t("timezone_question"),
        options,
        columns=2,
        free="timezone",
        preface=preface,
        topic=topic,
    )


def ask_reminder(
    ctx: Ctx, flow: str, qid: str = "remind", *, preface: str | None = None, topic: str = "info"
) -> None:
    options = [(t, t) for t in REMINDER_CHOICES] + [("off", ctx.t("opt_no_reminders"))]
    ctx.ask(
        flow,
        qid,
        ctx.t("reminder_question", zone=ctx.tz),
        options,
        columns=3,
        free="clock",
        preface=preface,
        topic=topic,
    )


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


def find_timezone(text: str) -> str | None:
    """An IANA name, or a city that names one ("Berlin" -> Europe/Berlin)."""
    zone = valid_timezone(text)
    if zone:
        return zone
    city = text.strip().replace(" ", "_").lower()
    if not city or len(city) > MAX_CITY:
        return None
    return zone_for_city(city)


def parse_clock_value(text: str) -> str | None:
    clock = parse_clock(text)
    return clock.strftime("%H:%M") if clock else None


def parse_country(text: str) -> str | None:
    code = text.strip().upper()
    return code if len(code) == COUNTRY_CODE_LENGTH and country_name(code) else None
