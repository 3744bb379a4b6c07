"""issue 12: a batch's pending audit rows through one (batch_id, outcome) index

Revision ID: 0007_audit_batch_index
Revises: 0006_owner_history
Create Date: 2026-12-07 06:00:00

Settling a batch reads its pending rows by ``batch_id`` and ``outcome``. With an index on each
column SQLite chose the ``outcome`` one and walked every pending row of every batch: while the
Salesforce writeback's Bulk job holds 75,000 pending rows (a first writeback of ``large``), each
of HubSpot's 1,258 batches scanned them (14 s of its writeback). The composite index replaces
the ``batch_id`` one (its prefix).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_audit_batch_index"
down_revision: str | None = "0006_owner_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("write_audit", schema=None) as batch_op:
        batch_op.create_index("ix_write_audit_batch_outcome", ["batch_id", "outcome"], unique=False)
        batch_op.drop_index("ix_write_audit_batch_id")


def downgrade() -> None:
    with op.batch_alter_table("write_audit", schema=None) as batch_op:
        batch_op.create_index("ix_write_audit_batch_id", ["batch_id"], unique=False)
        batch_op.drop_index("ix_write_audit_batch_outcome")
