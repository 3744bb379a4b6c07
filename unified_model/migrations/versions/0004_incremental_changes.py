"""issue 12: change times for the incremental phases after extraction

Revision ID: 0004_incremental_changes
Revises: 0003_issue15_handover_dates
Create Date: 2026-12-05 21:30:00

Adds ``changed_at`` (hub time the row's content last changed, indexed) to every source table and
to ``handover_state`` and ``customer_metrics``, ``hub_fields_at`` to ``source_account``, and the
``dirty_customer`` table. Existing rows get NULL: the first run after the upgrade has no
watermark and recomputes everything, as a first run does.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import unified_model.tables

revision: str = "0004_incremental_changes"
down_revision: str | None = "0003_issue15_handover_dates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: tables that get an indexed ``changed_at``
CHANGED = (
    "owner",
    "source_account",
    "contact",
    "deal",
    "email",
    "ticket",
    "deal_stage_event",
    "activity",
    "handover_state",
    "customer_metrics",
)


def upgrade() -> None:
    for table in CHANGED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("changed_at", unified_model.tables.UtcDateTime(), nullable=True)
            )
            if table == "source_account":
                batch_op.add_column(
                    sa.Column("hub_fields_at", unified_model.tables.UtcDateTime(), nullable=True)
                )
            batch_op.create_index(f"ix_{table}_changed_at", ["changed_at"], unique=False)
    op.create_table(
        "dirty_customer",
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("marked_at", unified_model.tables.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )


def downgrade() -> None:
    op.drop_table("dirty_customer")
    for table in CHANGED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_changed_at")
            if table == "source_account":
                batch_op.drop_column("hub_fields_at")
            batch_op.drop_column("changed_at")
