"""Alembic environment: migrate the hub database given by the caller or CRMHUB_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import unified_model.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


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
        )
        context.run_migrations()


run()
