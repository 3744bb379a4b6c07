"""write-ahead intents: one audit row per record write, pending until settled

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import unified_model.tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("write_audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("settled_at", unified_model.tables.UtcDateTime(), nullable=True)
        )
        batch_op.alter_column("field_key", existing_type=sa.String(), nullable=True)
        batch_op.create_index(batch_op.f("ix_write_audit_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_write_audit_outcome"), ["outcome"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("write_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_write_audit_outcome"))
        batch_op.drop_index(batch_op.f("ix_write_audit_batch_id"))
        batch_op.alter_column("field_key", existing_type=sa.String(), nullable=False)
        batch_op.drop_column("settled_at")
        batch_op.drop_column("changes")
        batch_op.drop_column("batch_id")
