"""issue 12: an index for unify's vote count

Revision ID: 0009_contact_votes_index
Revises: 0008_contact_linked_via
Create Date: 2026-12-07 12:05:00

A partial index on the host part of ``contact.email_normalized`` and ``customer_id``, over the
contacts the last linking placed through an account (``unify._stored_votes`` groups exactly
those by host and customer in every relinking run). SQLite walks the index in group order
instead of sorting 650,000 rows in a temporary B-tree (1.6 → 0.6 s on ``large``). The host
expression is the one the query uses (``tables.EMAIL_HOST``), written out here so that this
migration keeps creating the same index whatever later code says; the models do not declare
it (one expression per dialect), and ``env.py`` keeps autogenerate from dropping it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_contact_votes_index"
down_revision: str | None = "0008_contact_linked_via"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HOST = {
    "sqlite": "substr(email_normalized, "
    "length(rtrim(email_normalized, replace(email_normalized, '@', ''))) + 1)",
    "postgresql": "(substring(email_normalized from '[^@]*$'))",
}
_WHERE = {
    "sqlite": "deleted IS 0",
    "postgresql": "deleted IS false",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(
        f"CREATE INDEX IF NOT EXISTS ix_contact_votes ON contact ({_HOST[dialect]}, customer_id) "
        f"WHERE {_WHERE[dialect]} AND linked_via IS NULL AND customer_id IS NOT NULL "
        "AND email_normalized IS NOT NULL AND email_normalized != ''"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_contact_votes")
