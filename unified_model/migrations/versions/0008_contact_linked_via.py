"""issue 12: how unify's last contact linking placed each contact

Revision ID: 0008_contact_linked_via
Revises: 0007_audit_batch_index
Create Date: 2026-12-07 09:30:00

Adds ``contact.linked_via`` (NULL: through one of its accounts; "domain": by its work domain;
"none": no customer). Empty for existing rows: unify's next run links every contact, writes it
for the contacts not placed through an account, and relinks only the contacts that may have
moved from then on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_contact_linked_via"
down_revision: str | None = "0007_audit_batch_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("linked_via", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_column("linked_via")
