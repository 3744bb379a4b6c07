"""issue 15: when each customer company got its current owner, per the CRMs' owner history

Revision ID: 0006_owner_history
Revises: 0005_reopens_and_nps
Create Date: 2026-12-06 10:00:00

Adds ``owner_assigned_to`` (the owner id a CRM history entry names) and ``owner_assigned_at``
(when that owner was assigned, per Salesforce ``AccountHistory`` or HubSpot's versions of
``hubspot_owner_id``) to ``source_account``. Empty for existing rows: the next sync reads the
history (Salesforce: a first read of AccountHistory; HubSpot: the companies read from then on).
The handover dates a customer first seen with an account manager by it; without it the date
stays unknown ("first seen on").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import unified_model.tables

revision: str = "0006_owner_history"
down_revision: str | None = "0005_reopens_and_nps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_assigned_to", sa.String(), nullable=True))
        batch_op.add_column(
            sa.Column("owner_assigned_at", unified_model.tables.UtcDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("source_account", schema=None) as batch_op:
        batch_op.drop_column("owner_assigned_at")
        batch_op.drop_column("owner_assigned_to")
