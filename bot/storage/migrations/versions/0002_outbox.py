"""Scheduler: the outbox, nudge bookkeeping and unreachable team chats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

- `outbox`: messages the bot starts itself (check-in prompts, nudges, team warm-up cards),
  written by the tick in the same transaction that advances the schedule, and drained by
  the dispatcher. `idempotency_key` is unique, so the same reminder is stored once.
- `users.next_nudge_at`: when the one gentle nudge after an unanswered prompt is due.
- `team_chats.unreachable`: the platform said the chat is gone; no more warm-up cards.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("team_chat_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_outbox_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["team_chat_id"],
            ["team_chats.id"],
            name="fk_outbox_team_chat_id_team_chats",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    )
    op.create_index("ix_outbox_status_not_before", "outbox", ["status", "not_before"])
    op.create_index("ix_outbox_user_id", "outbox", ["user_id"])
    op.create_index("ix_outbox_team_chat_id", "outbox", ["team_chat_id"])

    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("next_nudge_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_users_next_nudge_at", ["next_nudge_at"])
    with op.batch_alter_table("team_chats") as batch:
        batch.add_column(
            sa.Column("unreachable", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("team_chats") as batch:
        batch.drop_column("unreachable")
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_next_nudge_at")
        batch.drop_column("next_nudge_at")
    op.drop_table("outbox")
