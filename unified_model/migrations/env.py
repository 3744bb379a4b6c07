"""Alembic environment: migrate the hub database given by the caller or CRMHUB_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import unified_model.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata

#: indexes only a migration creates (an expression per dialect, see 0009): autogenerate must
#: not propose dropping them
MIGRATION_ONLY_INDEXES = frozenset({"ix_contact_votes"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (type_ == "index" and reflected and name in MIGRATION_ONLY_INDEXES)


def run() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:
        from unified_model.store import create_hub_engine

        engine = create_hub_engine(
            os.environ.get("CRMHUB_DATABASE_URL", "sqlite:///.crmhub/hub.db")
        )
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        context.run_migrations()


run()
