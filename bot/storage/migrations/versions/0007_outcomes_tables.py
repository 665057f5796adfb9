"""Outcome answers (clinical rules section 6) and the Sunday summary's schedule.

Revision ID: 0007_outcomes_tables
Revises: 0006_dispatch_outbox_reply_index
Create Date: 2026-12-02

- `outcome_answers`: one row per answer of the weekly check: the global rating of change
  ("groc", no item) or one activity's score ("psfs", the activity in `item`).
- `weekly_summaries`: when each runner's next Sunday summary is due (UTC, indexed), so the
  scheduler's tick asks the database what is due, as it does for check-ins.
Both are new tables: nothing existing changes. Plain SQLAlchemy types only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_outcomes_tables"
down_revision: str | Sequence[str] | None = "0006_dispatch_outbox_reply_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outcome_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(length=8), nullable=False),
        sa.Column("item", sa.String(length=80), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outcome_answers"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_outcome_answers_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_outcome_answers_user_id", "outcome_answers", ["user_id"])
    op.create_table(
        "weekly_summaries",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_weekly_summaries"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_weekly_summaries_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_weekly_summaries_next_at", "weekly_summaries", ["next_at"])


def downgrade() -> None:
    op.drop_index("ix_weekly_summaries_next_at", table_name="weekly_summaries")
    op.drop_table("weekly_summaries")
    op.drop_index("ix_outcome_answers_user_id", table_name="outcome_answers")
    op.drop_table("outcome_answers")
