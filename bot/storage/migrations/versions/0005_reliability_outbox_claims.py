"""Outbox claims with a token and a lease of their own; replies in the outbox.

Revision ID: 0005_reliability_outbox_claims
Revises: 0004_engine_checkin_fields
Create Date: 2026-12-02

- `outbox.claim_token`: who holds a 'sending' row. Marks name it, so a sender whose lease
  ran out cannot overwrite the mark of the sender that took the row over.
- `outbox.lease_until`: until when the claim holds (`not_before` keeps meaning "not before").
- `ix_outbox_platform_chat_id_status`: a chat's messages go out in order; the dispatcher asks
  whether an older one of the same chat is still waiting.
- Rows 'sending' at upgrade time keep their lease (it was stored in `not_before`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_reliability_outbox_claims"
down_revision: str | Sequence[str] | None = "0004_engine_checkin_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_platform_chat_id_status", ["platform", "chat_id", "status"])
    op.execute("UPDATE outbox SET lease_until = not_before WHERE status = 'sending'")


def downgrade() -> None:
    op.execute("UPDATE outbox SET not_before = lease_until WHERE status = 'sending'")
    op.execute("DELETE FROM outbox WHERE kind = 'reply'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_platform_chat_id_status")
        batch.drop_column("lease_until")
        batch.drop_column("claim_token")
