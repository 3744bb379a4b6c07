"""issue 15: tickets the hub saw closed and then open again; a mapped NPS score

Revision ID: 0005_reopens_and_nps
Revises: 0004_incremental_changes
Create Date: 2026-12-05 22:00:00

Adds ``reopened_count`` (how often the hub saw a ticket closed on one read and open on a later
one; 0 for existing rows, whose past is unknown) and ``reopened_at`` (the CRM's modification
time of the record the hub last saw reopened) to ``ticket``: the "answers precisely" KPI. Adds
``nps_score`` (a satisfaction survey score read where the mapping names a CRM field) to
``source_account`` and ``customer``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import unified_model.tables

revision: str = "0005_reopens_and_nps"
down_revision: str | None = "0004_incremental_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reopened_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("reopened_at", unified_model.tables.UtcDateTime(), nullable=True)
        )


    for table in ("source_account", "customer"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("nps_score", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ("source_account", "customer"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("nps_score")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("reopened_at")
        batch_op.drop_column("reopened_count")
