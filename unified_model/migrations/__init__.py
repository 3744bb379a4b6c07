"""Schema migrations of the hub database (Alembic), applied automatically.

Why automatic: users upgrade crmhub by pulling a new version; the CLI and the assets call
:func:`upgrade` before touching the database, so an existing hub database keeps its data and gains
the new columns/tables without a manual step. New migrations are generated with
``uv run alembic -c unified_model/migrations/alembic.ini revision --autogenerate -m "..."``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` on the database behind ``engine``."""
    command.upgrade(alembic_config(engine), revision)
