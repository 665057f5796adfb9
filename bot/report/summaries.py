"""The service's and the scheduler's side of the summaries: store an outcome answer, make
the physio PDF for a private chat (also when asked from a group), keep each runner's
Sunday-summary time, and build the Sunday message.

The privacy rule is here in one place: a summary is personal, so it is addressed to the
runner's own private chat (`users.chat_id`, which only a private turn sets) and marked
private; adapters refuse to post a private message or a file into a group or channel.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bot.engine.events import Attachment, Inbound, Outbound, Topic
from bot.engine.localtime import local_date
from bot.engine.state import Profile
from bot.engine.turn import RecordOutcome
from bot.report.data import gather
from bot.report.pdf import render_summary_pdf
from bot.report.weekly import next_summary_at, weekly_chart, weekly_text
from bot.storage import reports
from bot.storage.records import AnyUser
from bot.storage.repository import Repository
from content.loader import Content

log = logging.getLogger("hipcoach.report")

PDF_MIME = "application/pdf"


def pdf_filename(day: Any) -> str:
    return f"hipcoach-summary-{day:%Y-%m-%d}.pdf"


async def record_outcome(repo: Repository, user_id: int, answer: RecordOutcome) -> None:
    await reports.add_outcome(
        repo, user_id, answer.local_date, answer.measure, answer.item, answer.score
    )


async def physio_pdf(repo: Repository, content: Content, user: AnyUser, now: datetime) -> bytes:
    data = await gather(repo, user, now)
    return render_summary_pdf(content, data)


async def physio_summary_reply(
    repo: Repository, content: Content, user: AnyUser, caption: str, now: datetime
) -> Outbound:
    """The PDF as a file for the runner's private chat."""
    pdf = await physio_pdf(repo, content, user, now)
    day = local_date(now, Profile.model_validate(user.profile or {}).timezone or "UTC")
    log.info("physio summary made user=%s bytes=%d", user.id, len(pdf))
    return Outbound(
        chat_id=user.chat_id,
        text=caption,
        attachment=Attachment(pdf_filename(day), pdf, PDF_MIME),
        private=True,
    )


async def from_group(
    repo: Repository, content: Content, inbound: Inbound, caption: str, now: datetime
) -> list[Outbound]:
    """`summary` typed in a group or channel: the PDF goes to the person's private chat,
    and only a short note (for them alone where the platform can) goes to the group."""
    user = await repo.get_user(inbound.platform, inbound.user_id, lock=False)
    profile = Profile.model_validate(user.profile or {}) if user is not None else None
    if user is None or profile is None or not (profile.onboarded or profile.plan_paused):
        return [
            Outbound(
                chat_id=inbound.chat_id,
                text=content.message("physio_summary_set_up_first"),
                ephemeral=True,
                open_private=True,
            )
        ]
    reply = await physio_summary_reply(repo, content, user, caption, now)
    note = Outbound(
        chat_id=inbound.chat_id, text=content.message("physio_summary_sent_dm"), ephemeral=True
    )
    return [reply, note]


# --- the Sunday summary ---------------------------------------------------------------------


def weekly_key(profile: dict[str, Any]) -> tuple[Any, ...]:
    """The profile fields that decide whether and when a Sunday summary is due."""
    return (
        bool(profile.get("onboarded")),
        profile.get("timezone"),
        profile.get("weekly_summary", True),
    )


def wants_weekly(profile: Profile) -> bool:
    return profile.onboarded and bool(profile.timezone) and profile.weekly_summary


async def sync_weekly(repo: Repository, user: AnyUser, profile: Profile, now: datetime) -> None:
    """Set (or clear) the runner's next Sunday-summary time after their settings changed."""
    at = (
        next_summary_at(profile.timezone, now)
        if wants_weekly(profile) and profile.timezone
        else None
    )
    await reports.set_summary_due(repo, user.id, at)


async def ensure_weekly(repo: Repository, user: AnyUser, now: datetime) -> None:
    """A runner who set up before Sunday summaries existed gets a schedule row (called
    from the daily check-in tick; one primary-key read when the row is there)."""
    exists, _ = await reports.summary_due_at(repo, user.id)
    if not exists:
        await sync_weekly(repo, user, Profile.model_validate(user.profile or {}), now)


async def weekly_message(
    repo: Repository, content: Content, user: AnyUser, now: datetime
) -> Outbound | None:
    """This week's summary for the runner's private chat, or None for a week with nothing
    recorded (no check-in, no exercise logged): an empty summary is noise."""
    data = await gather(repo, user, now)
    week = data.days_between(data.today.fromordinal(data.today.toordinal() - 6), data.today)
    if not any(d.checked_in or d.done or d.painful or d.skipped for d in week):
        return None
    text = weekly_text(content, data, data.today)
    png = weekly_chart(content, data, data.today)
    return Outbound(
        chat_id=user.chat_id,
        text=text,
        attachment=Attachment("hipcoach-week.png", png, "image/png"),
        private=True,
        topic=Topic.INFO,
    )
