"""Everything a summary shows, read from the database once, in the runner's local dates.

No platform ids end up here: the name is the one the runner goes by (their display name),
dates are local to their timezone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bot.charts import DayPoint
from bot.engine.localtime import local_date
from bot.engine.state import Profile
from bot.storage import reports
from bot.storage.records import AnyUser
from bot.storage.repository import Repository

REPORT_WEEKS = 6  # the pain trend and the period of the physio summary


@dataclass(frozen=True)
class Day:
    day: date
    morning: int | None = None
    run_pain: int | None = None
    exercise_pain: int | None = None
    ran: bool = False
    run_minutes: int | None = None
    checked_in: bool = False
    decision: str | None = None
    reason: str | None = None
    done: int = 0
    painful: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Flag:
    day: date
    level: str
    trigger: str


@dataclass(frozen=True)
class Change:
    day: date
    from_phase: int
    from_level: int
    to_phase: int
    to_level: int
    decision: str
    reason: str


@dataclass(frozen=True)
class Score:
    day: date
    measure: str  # groc | psfs
    item: str | None
    score: int


@dataclass(frozen=True)
class ReportData:
    name: str
    timezone: str
    today: date
    start: date
    profile: Profile
    days: tuple[Day, ...]  # start..today, every calendar day
    flags: tuple[Flag, ...] = ()
    red_flag_answers: tuple[tuple[date, str, str], ...] = ()  # (day, item, answer)
    changes: tuple[Change, ...] = ()
    scores: tuple[Score, ...] = field(default_factory=tuple)

    def days_between(self, start: date, end: date) -> list[Day]:
        return [d for d in self.days if start <= d.day <= end]

    def points(self, start: date, end: date) -> list[DayPoint]:
        return [
            DayPoint(d.day, d.morning, d.run_pain if d.ran else None, d.done)
            for d in self.days_between(start, end)
        ]


async def gather(
    repo: Repository, user: AnyUser, now: datetime, *, weeks: int = REPORT_WEEKS
) -> ReportData:
    profile = Profile.model_validate(user.profile or {})
    tz = profile.timezone or "UTC"
    today = local_date(now, tz)
    start = today - timedelta(days=weeks * 7 - 1)
    checkins = {c.local_date: c for c in await repo.checkins_between(user.id, start, today)}
    logs = await repo.exercise_logs_between(user.id, start, today)
    counts: dict[date, dict[str, int]] = {}
    for entry in logs:
        per = counts.setdefault(entry.local_date, {})
        per[entry.outcome] = per.get(entry.outcome, 0) + 1
    days = []
    for offset in range((today - start).days + 1):
        day = start + timedelta(days=offset)
        c = checkins.get(day)
        n = counts.get(day, {})
        days.append(
            Day(
                day=day,
                morning=c.pain_now if c else None,
                run_pain=c.pain_during if c else None,
                exercise_pain=c.exercise_pain if c else None,
                ran=bool(c and c.ran not in (None, "no")),
                run_minutes=c.run_minutes if c and c.ran not in (None, "no") else None,
                checked_in=bool(c and (c.decision or c.pain_now is not None)),
                decision=c.decision if c else None,
                reason=c.reason if c else None,
                done=n.get("done", 0),
                painful=n.get("painful", 0),
                skipped=n.get("skipped", 0),
            )
        )
    flags = tuple(
        Flag(local_date(e.created_at, tz), e.level, e.trigger)
        for e in await reports.escalations(repo, user.id)
    )
    answers: list[tuple[date, str, str]] = []
    for s in await reports.screenings(repo, user.id):
        for item, answer in (s.answers or {}).items():
            if str(answer) not in ("no", "none"):
                answers.append((local_date(s.created_at, tz), str(item), str(answer)))
    changes = tuple(
        Change(
            local_date(c.created_at, tz),
            c.from_phase,
            c.from_level,
            c.to_phase,
            c.to_level,
            c.decision,
            c.reason,
        )
        for c in await reports.plan_changes(repo, user.id)
    )
    scores = tuple(
        Score(a.local_date, a.measure, a.item, a.score)
        for a in await reports.outcome_answers(repo, user.id)
    )
    return ReportData(
        name=(user.display_name or "").strip() or "—",
        timezone=tz,
        today=today,
        start=start,
        profile=profile,
        days=tuple(days),
        flags=flags,
        red_flag_answers=tuple(answers),
        changes=changes,
        scores=scores,
    )
