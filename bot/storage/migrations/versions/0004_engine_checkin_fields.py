"""Check-in facts the pain-monitoring model needs, as real columns.

Revision ID: 0004_engine_checkin_fields
Revises: 0003_slack_oauth_stores
Create Date: 2026-11-27

- `checkins.run_minutes`: how long the reported run was (RP3's single-run cap).
- `checkins.exercise_pain`: worst pain during or just after the exercises, 0-10 (P1, P7,
  P9: the P_during of an exercise day).
- `checkins.swelling`: swelling or stiffness after the run (P7).
- `checkins.run_sharp`: the run's pain turned sharp or caused a limp (P2).
- `checkins.isometric_worse`: the pain rose during or after the holds (P11).
`checkins.morning` (the old "compared with usual" answer) stays for the rows that have it;
the check-in no longer asks it (morning pain is compared with the baseline instead).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_engine_checkin_fields"
down_revision: str | Sequence[str] | None = "0003_slack_oauth_stores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("run_minutes", sa.Integer()),
    ("exercise_pain", sa.Integer()),
    ("swelling", sa.Boolean()),
    ("run_sharp", sa.Boolean()),
    ("isometric_worse", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
