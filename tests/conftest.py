"""Shared fixtures: hub stores on SQLite (always) and PostgreSQL (when reachable; required in CI).

The PostgreSQL store is a fresh database per test on the server named by
``CRMHUB_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``). Locally an
unreachable server skips those tests; under ``CI=true`` it fails them, so CI can never go green
without having tested PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from unified_model.store import HubStore

PG_URL = os.environ.get("CRMHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin_engine() -> sa.Engine:
    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a brand-new, empty PostgreSQL database, dropped afterwards."""
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                f"PostgreSQL at {PG_URL} is unreachable under CI=true: {type(exc).__name__}"
            )
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable (set CRMHUB_TEST_POSTGRES_URL)")
    name = f"crmhub_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[HubStore]:
    """A migrated hub store in a brand-new PostgreSQL database, dropped afterwards."""
    store = HubStore(postgres_url)
    store.migrate()
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[HubStore]:
    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> HubStore:
    """The hub store on each supported database."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def fresh_forkserver() -> Iterator[None]:
    """No fork server from an earlier test before this one, none left after it.

    Why: step processes are forked from it and inherit *its* environment (CRMHUB_HOME, the
    sandbox's endpoints). A test that ran a multiprocess sync leaves it running, and the next
    test in the same worker would hand its steps the earlier test's sandbox. (Dagster's daemon
    launches each run in its own process, so production never shares one across runs.)
    """
    from crmhub.runtime import stop_forkserver

    stop_forkserver()
    yield
    stop_forkserver()
