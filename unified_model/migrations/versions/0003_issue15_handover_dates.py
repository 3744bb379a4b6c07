"""issue 15: handover state remembers when each status began and how each date is known

Revision ID: 0003_issue15_handover_dates
Revises: 0002
Create Date: 2026-12-05 18:30:00

Adds ``status_since``, ``mature_since``, ``first_seen_at`` and ``date_basis`` to
``handover_state``. Existing rows keep working: a missing ``status_since`` reads as "before the
hub knew", and the next evaluation fills ``first_seen_at`` from ``evaluated_at``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import unified_model.tables

revision: str = "0003_issue15_handover_dates"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handover_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status_since", unified_model.tables.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("mature_since", unified_model.tables.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("first_seen_at", unified_model.tables.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("date_basis", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("handover_state", schema=None) as batch_op:
        batch_op.drop_column("date_basis")
        batch_op.drop_column("first_seen_at")
        batch_op.drop_column("mature_since")
        batch_op.drop_column("status_since")
