"""The database tables, as SQLAlchemy 2 declarative models.

The schema itself is owned by the Alembic migrations in `migrations/versions`; these models
must match them (a test compares the two). No relationships are declared on purpose: the
repository queries what it needs, and deletes rely on ON DELETE CASCADE in the database
rather than on the ORM loading children first.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.storage.types import JSONType, UTCDateTime, utcnow

__all__ = [
    "UNMAPPED_TABLES",
    "Base",
    "Checkin",
    "Escalation",
    "ExerciseLog",
    "OutboxMessage",
    "OutcomeAnswer",
    "PlanChange",
    "ProcessedEvent",
    "Screening",
    "TeamChat",
    "User",
    "WarmupSchedule",
    "WeeklySummary",
]

# Tables the migrations create for a library's own store, which reads and writes them
# itself (slack_sdk's SQLAlchemy installation and OAuth state stores): not mapped here, and
# compared with that library's table definitions instead (tests/test_slack_oauth.py).
UNMAPPED_TABLES: frozenset[str] = frozenset(
    {"slack_installations", "slack_bots", "slack_oauth_states"}
)

# Deterministic constraint names: SQLite batch migrations can only alter or drop a
# constraint that has a name, and both dialects then agree on what it is called.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Server-side default for JSON object columns, so rows inserted outside the ORM (or columns
# added by a later migration) still get an empty object; '{}' casts to both JSON and JSONB.
EMPTY_JSON_OBJECT = text("'{}'")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _user_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


class User(Base):
    """One runner on one platform, with the engine's profile and conversation state."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    platform_user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    chat_id: Mapped[str] = mapped_column(String(64), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reminder_time: Mapped[str | None] = mapped_column(String(5), nullable=True)
    paused: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    unreachable: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    next_checkin_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True, index=True
    )
    # The one gentle nudge after an unanswered prompt (scheduler bookkeeping).
    next_nudge_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    profile: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=EMPTY_JSON_OBJECT
    )
    conversation: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=EMPTY_JSON_OBJECT
    )
    # Bumped by every UPDATE; an UPDATE from a session holding an older version matches no
    # row and raises StaleDataError, so two turns for one user can never silently interleave.
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<User id={self.id} {self.platform}:{self.platform_user_id}>"


class Checkin(Base):
    """One daily check-in; a second one on the same local date edits the first."""

    __tablename__ = "checkins"
    __table_args__ = (UniqueConstraint("user_id", "local_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _user_fk()
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    # Morning pain or stiffness, 0-10 (the P_morning of the clinical rules).
    pain_now: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ran: Mapped[str | None] = mapped_column(String(16), nullable=True)  # yes | no
    run_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Worst pain during the run, 0-10 (P_during for running).
    pain_during: Mapped[int | None] = mapped_column(Integer, nullable=True)
    swelling: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # after the run
    run_sharp: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # sharp, or a limp
    # "Compared with your usual morning": asked before migration 0003, kept for those rows.
    morning: Mapped[str | None] = mapped_column(String(16), nullable=True)
    exercises: Mapped[str | None] = mapped_column(String(16), nullable=True)  # done | none
    # Worst pain during or just after the exercises, 0-10 (P_during for exercise).
    exercise_pain: Mapped[int | None] = mapped_column(Integer, nullable=True)
    isometric_worse: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # P11
    answers: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=EMPTY_JSON_OBJECT
    )
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The plan position the check-in was answered in, so history survives later plan changes.
    phase: Mapped[int] = mapped_column(Integer, nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )


class ExerciseLog(Base):
    """An exercise marked done (or skipped) on a local date; logging again replaces it."""

    __tablename__ = "exercise_logs"
    __table_args__ = (UniqueConstraint("user_id", "local_date", "exercise_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _user_fk()
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    exercise_id: Mapped[str] = mapped_column(String(40), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Escalation(Base):
    """A safety-screen red flag that sent the runner to a clinician."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    trigger: Mapped[str] = mapped_column(String(120), nullable=False)
    flow: Mapped[str] = mapped_column(String(16), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Screening(Base):
    """One run of a safety screen (start, full, mini or clearance) and its outcome."""

    __tablename__ = "screenings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    answers: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=EMPTY_JSON_OBJECT
    )
    level: Mapped[str] = mapped_column(String(16), nullable=False)


class PlanChange(Base):
    """A move between plan phases/levels, with the decision that caused it."""

    __tablename__ = "plan_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    from_phase: Mapped[int] = mapped_column(Integer, nullable=False)
    from_level: Mapped[int] = mapped_column(Integer, nullable=False)
    to_phase: Mapped[int] = mapped_column(Integer, nullable=False)
    to_level: Mapped[int] = mapped_column(Integer, nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(String(64), nullable=False)


class ProcessedEvent(Base):
    """A platform event id already handled. Deliberately holds nothing about a person."""

    __tablename__ = "processed_events"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, index=True
    )


class TeamChat(Base):
    """A group chat or channel the bot posts team warm-ups to."""

    __tablename__ = "team_chats"
    __table_args__ = (UniqueConstraint("platform", "chat_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    chat_id: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    conversation: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=EMPTY_JSON_OBJECT
    )
    # The platform said the chat is gone (bot removed, channel archived): no more cards.
    unreachable: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )


class WarmupSchedule(Base):
    """A recurring team run ("tue,thu" at "18:00") and when its next warm-up card is due."""

    __tablename__ = "warmup_schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_chat_id: Mapped[int] = mapped_column(
        ForeignKey("team_chats.id", ondelete="CASCADE"), nullable=False, index=True
    )
    days: Mapped[str] = mapped_column(String(40), nullable=False)
    run_time: Mapped[str] = mapped_column(String(5), nullable=False)
    lead_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    # The platform user id of whoever set it up; nulled when that person deletes their data.
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    next_warmup_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True, index=True
    )


class OutboxMessage(Base):
    """A message waiting for (or done with) delivery.

    The scheduler's tick writes reminders in the same transaction that advances the schedule;
    a turn writes its replies in the transaction that stores the answer. The turn's own
    process sends its replies at once when it can; the dispatcher sends everything else.
    `idempotency_key` (e.g. "checkin:<user>:<local date>", "reply:<platform>:<event>:<n>") is
    unique, so one message is stored once however often the tick runs or an event arrives.
    `payload` is the neutral `Outbound` (text, buttons, flags, an attachment or an edit).
    `last_error` holds an error class name only. Replies are deleted once delivered (or
    given up): their text is no longer needed, and it may be personal.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbox_status_not_before", "status", "not_before"),
        # A chat's messages go out in order: the dispatcher asks whether an older one waits.
        Index("ix_outbox_platform_chat_id_status", "platform", "chat_id", "status"),
        # Replies go first: the dispatcher finds the few waiting ones without a scan.
        Index("ix_outbox_status_kind_not_before", "status", "kind", "not_before"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    chat_id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    team_chat_id: Mapped[int | None] = mapped_column(
        ForeignKey("team_chats.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # checkin | nudge | warmup | reply (a reply to what someone did)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    # pending | sending | sent | failed
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    # Not sent before this instant (a retry-after or a backoff moves it on).
    not_before: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # While 'sending': who holds the row (a random token per claim) and until when. A mark
    # must name the token, so a sender whose lease ran out cannot overwrite the next one's.
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutcomeAnswer(Base):
    """One answer of the weekly outcome check (clinical rules section 6): the global rating
    of change ("groc", -3..3, no item) or one activity's score ("psfs", 0-10, `item`)."""

    __tablename__ = "outcome_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    measure: Mapped[str] = mapped_column(String(8), nullable=False)
    item: Mapped[str | None] = mapped_column(String(80), nullable=True)
    score: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class WeeklySummary(Base):
    """When a runner's next Sunday summary is due (None: not wanted, or not set up)."""

    __tablename__ = "weekly_summaries"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
