"""Dagster on PostgreSQL: with the README's ``storage: postgres`` section in dagster.yaml (the
``dagster-postgres`` run, event-log and schedule storage) in a brand-new database, and the hub's
own database on PostgreSQL too, the sync job runs against the sandbox and its run, events and
checks land in PostgreSQL, where a second instance opened on the same file reads them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from assets.definitions import build_definitions
from crmhub import settings
from sandbox.runner import Sandbox
from tests.conftest import PG_URL, _pg_admin_engine
from unified_model import tables as t
from unified_model.store import HubStore

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def dagster_pg_db(postgres_store: HubStore) -> Iterator[str]:
    """A fresh PostgreSQL database for Dagster's storage (postgres_store checks reachability)."""
    name = f"crmhub_dagster_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_sync_runs_on_a_postgres_backed_instance(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_store: HubStore,
    dagster_pg_db: str,
) -> None:
    url = sa.engine.make_url(PG_URL)
    home = tmp_path / "dagster"
    home.mkdir()
    # what the README's deployment guide tells an operator to add to $DAGSTER_HOME/dagster.yaml
    config = yaml.safe_load((Path(settings.PROJECT_ROOT) / "dagster.yaml").read_text())
    config["storage"] = {
        "postgres": {
            "postgres_db": {
                "hostname": url.host or "127.0.0.1",
                "port": url.port or 5432,
                "username": url.username or "postgres",
                "db_name": dagster_pg_db,
                # SQLAlchemy 2.1 maps postgresql:// to psycopg 3, whose server-side binding
                # breaks dagster-postgres's NOTIFY; its own driver is psycopg2
                "scheme": "postgresql+psycopg2",
                **({"password": url.password} if url.password else {}),
            }
        }
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))

    for key in list(os.environ):
        if key.startswith("CRMHUB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMHUB_DATABASE_URL", postgres_store.url)
    with Sandbox(tmp_path / "home" / "sandbox") as sb:
        sb.seed("tiny", seed=11)
        sb.write_discovery()
        defs = build_definitions()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            result = defs.resolve_job_def("sync_job").execute_in_process(
                instance=instance, raise_on_error=False
            )
            assert result.success, [e.step_key for e in result.all_events if e.is_step_failure]

    assert postgres_store.count(t.Customer) > 0  # the hub's tables are in PostgreSQL too
    engine = sa.create_engine(
        url.set(drivername="postgresql+psycopg", database=dagster_pg_db), poolclass=sa.NullPool
    )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM runs")).scalars().all() == ["SUCCESS"]
        checks = conn.execute(
            sa.text("SELECT count(*) FROM event_logs WHERE dagster_event_type = :t"),
            {"t": "ASSET_CHECK_EVALUATION"},
        ).scalar()
        assert checks and checks > 20
    engine.dispose()
    with dg.DagsterInstance.from_config(str(home)) as again:
        [run] = again.get_runs()
        assert run.run_id == result.run_id and run.status == dg.DagsterRunStatus.SUCCESS
