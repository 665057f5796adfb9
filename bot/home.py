"""A read-only summary of one runner, for "home" screens (Slack's App Home tab).

Platform-neutral: it reads the stored user through the coach's database in a read-only
transaction and reuses the engine's own session, schedule and content, so a home screen
shows exactly what `today` and `settings` would say. Nothing here writes or sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.engine.dates import format_day
from bot.engine.flows.account import first_checkin_on, next_checkin_at
from bot.engine.localtime import format_local, local_date
from bot.engine.session import OUTCOMES, build_session, log_payload
from bot.engine.state import Profile
from bot.service import Coach, load_history

PAIN_DAYS = 7


@dataclass(frozen=True)
class HomeItem:
    """One exercise of today's session."""

    exercise_id: str
    name: str
    dosage: str  # e.g. "3 x 10 reps per side"
    # outcome code ("d" | "p" | "s") -> the button payload that logs it for today
    log_payloads: tuple[tuple[str, str], ...]
    logged: str | None = None  # today's outcome so far: "done" | "painful" | "skipped"


@dataclass(frozen=True)
class HomeSummary:
    onboarded: bool
    paused: bool = False  # reminders paused by the runner
    paused_until: str | None = None  # ... until this day, e.g. "Mon 12 Jan" (then by itself)
    # Paused by an escalation until a clinician clears them, or waiting for a clinician's
    # approval before it starts (R18, R19): no exercises either way.
    plan_paused: bool = False
    phase: int | None = None
    phase_name: str | None = None
    level: int | None = None
    run_advice: str | None = None
    items: tuple[HomeItem, ...] = ()
    # The last 7 local days, oldest first: (date, morning pain or None without a check-in).
    pain: tuple[tuple[date, int | None], ...] = ()
    next_checkin: str | None = None  # e.g. "Thu 07:30 (Europe/Berlin)"
    timezone: str = "UTC"
    today: date | None = None


async def home_summary(
    coach: Coach, platform: str, user_id: str, user_tz: str | None = None
) -> HomeSummary:
    """What a runner's home screen shows right now. `user_tz` is the platform's idea of the
    person's timezone, used only until they chose one."""
    now: datetime = coach.clock()
    async with coach.db.transaction(readonly=True) as repo:
        user = await repo.get_user(platform, user_id, lock=False)
        if user is None:
            return HomeSummary(onboarded=False, timezone=user_tz or "UTC")
        profile = Profile.model_validate(user.profile or {})
        tz = profile.timezone or user_tz or "UTC"
        today = local_date(now, tz)
        history = await load_history(repo, user.id, today)
        stored_next = user.next_checkin_at
    checkins, logs = history.checkins, history.exercise_logs
    pain_by_day = {c.local_date: c.pain_now for c in checkins}
    pain = tuple(
        (day, pain_by_day.get(day))
        for day in (today - timedelta(days=n) for n in range(PAIN_DAYS - 1, -1, -1))
    )
    paused = profile.reminders_paused(today)
    summary = HomeSummary(
        onboarded=profile.onboarded,
        paused=paused,
        paused_until=format_day(profile.paused_until) if paused and profile.paused_until else None,
        plan_paused=profile.plan_paused or profile.plan_held,
        pain=pain,
        next_checkin=_next_checkin(profile, stored_next, now, today),
        timezone=tz,
        today=today,
    )
    if not profile.onboarded and not profile.plan_paused:
        return summary
    phase = coach.content.phases.get(profile.phase)
    items: tuple[HomeItem, ...] = ()
    advice: str | None = None
    if not (profile.plan_paused or profile.plan_held):
        session = build_session(coach.content, profile, today, logs, checkins)
        advice = session.run
        logged_today = {e.exercise_id: e.outcome for e in logs if e.local_date == today}
        items = tuple(
            HomeItem(
                exercise_id=item.exercise.id,
                name=item.exercise.name,
                dosage=item.dosage.render(),
                log_payloads=tuple(
                    (code, log_payload(today, item.exercise.id, code)) for code in OUTCOMES
                ),
                logged=logged_today.get(item.exercise.id),
            )
            for item in session.items
        )
    return HomeSummary(
        onboarded=summary.onboarded,
        paused=summary.paused,
        paused_until=summary.paused_until,
        plan_paused=summary.plan_paused,
        phase=profile.phase,
        phase_name=phase.name if phase is not None else None,
        level=profile.level,
        run_advice=advice,
        items=items,
        pain=summary.pain,
        next_checkin=summary.next_checkin,
        timezone=summary.timezone,
        today=summary.today,
    )


def _next_checkin(
    profile: Profile, stored: datetime | None, now: datetime, today: date
) -> str | None:
    if not profile.reminder_time or not profile.timezone:
        return None
    if profile.reminders_paused(today):
        if profile.paused_until is None:
            return None
        resume = first_checkin_on(
            profile.reminder_time, profile.timezone, profile.paused_until, now
        )
        return format_local(resume, profile.timezone)
    # The stored time is what the scheduler will use (it moves with a snooze).
    at = stored if stored is not None and stored > now else None
    if at is None:
        at = next_checkin_at(profile.reminder_time, profile.timezone, now)
    return format_local(at, profile.timezone)
