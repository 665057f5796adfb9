"""Initial schema: users and their history, dedup records, team chats and warm-ups.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Plain SQLAlchemy types only (no imports from the application), so this file keeps meaning
the same schema however the models evolve. `UTCDateTime` is a TIMESTAMP WITH TIME ZONE
underneath; the JSON columns are JSONB on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json_object(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        server_default=sa.text("'{}'"),
        nullable=False,
    )


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("platform_user_id", sa.String(length=64), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("reminder_time", sa.String(length=5), nullable=True),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("unreachable", sa.Boolean(), server_default=sa.false(), nullable=False),
        _timestamp("next_checkin_at", nullable=True),
        _json_object("profile"),
        _json_object("conversation"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint(
            "platform", "platform_user_id", name="uq_users_platform_platform_user_id"
        ),
    )
    op.create_index("ix_users_next_checkin_at", "users", ["next_checkin_at"])

    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("pain_now", sa.Integer(), nullable=True),
        sa.Column("ran", sa.String(length=16), nullable=True),
        sa.Column("pain_during", sa.Integer(), nullable=True),
        sa.Column("morning", sa.String(length=16), nullable=True),
        sa.Column("exercises", sa.String(length=16), nullable=True),
        _json_object("answers"),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _user_fk("checkins"),
        sa.PrimaryKeyConstraint("id", name="pk_checkins"),
        sa.UniqueConstraint("user_id", "local_date", name="uq_checkins_user_id_local_date"),
    )

    op.create_table(
        "exercise_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("exercise_id", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        _timestamp("created_at"),
        _user_fk("exercise_logs"),
        sa.PrimaryKeyConstraint("id", name="pk_exercise_logs"),
        sa.UniqueConstraint(
            "user_id",
            "local_date",
            "exercise_id",
            name="uq_exercise_logs_user_id_local_date_exercise_id",
        ),
    )

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=120), nullable=False),
        sa.Column("flow", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _timestamp("acknowledged_at", nullable=True),
        _timestamp("cleared_at", nullable=True),
        _user_fk("escalations"),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
    )
    op.create_index("ix_escalations_user_id", "escalations", ["user_id"])

    op.create_table(
        "screenings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _json_object("answers"),
        sa.Column("level", sa.String(length=16), nullable=False),
        _user_fk("screenings"),
        sa.PrimaryKeyConstraint("id", name="pk_screenings"),
    )
    op.create_index("ix_screenings_user_id", "screenings", ["user_id"])

    op.create_table(
        "plan_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.Column("from_phase", sa.Integer(), nullable=False),
        sa.Column("from_level", sa.Integer(), nullable=False),
        sa.Column("to_phase", sa.Integer(), nullable=False),
        sa.Column("to_level", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        _user_fk("plan_changes"),
        sa.PrimaryKeyConstraint("id", name="pk_plan_changes"),
    )
    op.create_index("ix_plan_changes_user_id", "plan_changes", ["user_id"])

    op.create_table(
        "processed_events",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("platform", "event_id", name="pk_processed_events"),
    )
    op.create_index("ix_processed_events_created_at", "processed_events", ["created_at"])

    op.create_table(
        "team_chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        _timestamp("created_at"),
        _json_object("conversation"),
        sa.PrimaryKeyConstraint("id", name="pk_team_chats"),
        sa.UniqueConstraint("platform", "chat_id", name="uq_team_chats_platform_chat_id"),
    )

    op.create_table(
        "warmup_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_chat_id", sa.Integer(), nullable=False),
        sa.Column("days", sa.String(length=40), nullable=False),
        sa.Column("run_time", sa.String(length=5), nullable=False),
        sa.Column("lead_minutes", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        _timestamp("created_at"),
        _timestamp("next_warmup_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["team_chat_id"],
            ["team_chats.id"],
            name="fk_warmup_schedules_team_chat_id_team_chats",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_warmup_schedules"),
    )
    op.create_index("ix_warmup_schedules_team_chat_id", "warmup_schedules", ["team_chat_id"])
    op.create_index("ix_warmup_schedules_next_warmup_at", "warmup_schedules", ["next_warmup_at"])


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "warmup_schedules",
        "team_chats",
        "processed_events",
        "plan_changes",
        "screenings",
        "escalations",
        "exercise_logs",
        "checkins",
        "users",
    ):
        op.drop_table(table)
