"""An index for replies first: the dispatcher finds waiting replies without a scan.

Revision ID: 0006_dispatch_outbox_reply_index
Revises: 0005_reliability_outbox_claims
Create Date: 2026-12-02

- `ix_outbox_status_kind_not_before`: during a burst of thousands of queued reminders, the
  dispatcher claims the chats where a reply waits first (bot/storage/outbox.py); this index
  finds those few pending replies directly.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_dispatch_outbox_reply_index"
down_revision: str | Sequence[str] | None = "0005_reliability_outbox_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.create_index("ix_outbox_status_kind_not_before", ["status", "kind", "not_before"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_status_kind_not_before")
