"""Scale-out on Dagster's Celery executor: a full sandbox sync (tiny profile, dry-run writeback so
the CRMs stay unchanged between the two runs) whose steps are executed by a separate
``dagster-celery`` worker process over the local Redis fills the hub's tables exactly as an
in-process run of the same job against the same sandbox does."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from assets.definitions import all_assets
from sandbox.runner import Sandbox
from unified_model.store import HubStore

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REDIS = os.environ.get("CRMHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379")
#: Bookkeeping of the run itself (cursors hold read times, audit rows hold run ids), not data.
SKIP_TABLES = {
    "alembic_version",
    "sync_cursor",
    "sync_run",
    "hub_writer",
    "write_intent",
    "dirty_customer",
}
#: Columns stamped with the hub's clock when a row is computed: differ between any two runs.
CLOCK_COLUMNS = {
    "matched_at",
    "evaluated_at",
    "computed_at",
    "updated_at",
    "decided_at",
    "changed_at",
    "hub_fields_at",
    "marked_at",
}
#: ... and per table where the same name is CRM data elsewhere (an account's created_at is).
TABLE_CLOCK_COLUMNS = {
    "customer": {"created_at"},
    "match_review": {"created_at"},
    "handover_state": {"first_seen_at", "mature_since"},  # judged as of the run's clock
    "handover_transition": {"at"},
}


def dry_run_job() -> dg.JobDefinition:
    """The code location's dry-run sync, built in whichever process loads it (test or worker)."""
    from assets.definitions import build_definitions

    return build_definitions().resolve_job_def("sync_dry_run_job")


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _tables(url: str) -> dict[str, list[dict[str, str]]]:
    """Every data table as sorted rows of column -> repr(value), clock columns left out."""
    store = HubStore(url)
    out: dict[str, list[dict[str, str]]] = {}
    meta = sa.MetaData()
    with warnings.catch_warnings():  # migration 0009's expression index: not reflected on SQLite
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index"
        )
        meta.reflect(store.engine)
    with store.engine.connect() as conn:
        for name, table in sorted(meta.tables.items()):
            if name in SKIP_TABLES or name.startswith("_"):
                continue
            skip = CLOCK_COLUMNS | TABLE_CLOCK_COLUMNS.get(name, set()) | {"id"}
            cols = [c for c in table.columns if c.name not in skip]
            rows = conn.execute(sa.select(*cols)).mappings().all()
            out[name] = sorted(({k: repr(v) for k, v in r.items()} for r in rows), key=repr)
    store.dispose()
    return out


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    if not _redis_answers():
        pytest.fail(f"Redis at {REDIS} does not answer (start it: redis-server --daemonize yes)")
    for key in list(os.environ):
        if key.startswith(("CRMHUB_", "DAGSTER_")):
            monkeypatch.delenv(key)
    broker = f"{REDIS}/{1 + uuid.uuid4().int % 15}"
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMHUB_EXECUTOR", "celery")
    monkeypatch.setenv("CRMHUB_CELERY_BROKER", broker)
    monkeypatch.setenv("CRMHUB_CELERY_BACKEND", broker)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with Sandbox(tmp_path / "home" / "sandbox") as sb:
        sb.seed("tiny", seed=5)
        sb.write_discovery()
        yield {"tmp": tmp_path, "broker": broker, "sandbox": sb}


def _start_worker(tmp: Path, broker: str) -> subprocess.Popen[str]:
    config = tmp / "celery.yaml"
    config.write_text(
        yaml.safe_dump({"execution": {"config": {"broker": broker, "backend": broker}}})
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.Popen(
        [
            str(BIN / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(config),
            "-q",
            "dagster",
            "--",
            "--concurrency=1",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(tmp / "worker.log", "w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_celery_worker_executes_the_sync_and_the_hub_equals_an_in_process_run(
    hub: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp: Path = hub["tmp"]
    celery_db = f"sqlite:///{tmp / 'celery.db'}"
    monkeypatch.setenv("CRMHUB_DATABASE_URL", celery_db)
    worker = _start_worker(tmp, hub["broker"])
    try:
        with dg.DagsterInstance.get() as instance:
            job = dry_run_job()
            assert job.executor_def.name == "celery"
            result = dg.execute_job(dg.reconstructable(dry_run_job), instance=instance)
            log = (tmp / "worker.log").read_text()
            assert result.success, log[-3000:]
            # every step ran in the worker's process, none in this one
            step_pids = {e.pid for e in result.all_events if e.event_type_value == "STEP_START"}
            steps = len(all_assets) + 1 + 1  # the unify checks (one step), freshness
            assert len([e for e in result.all_events if e.is_step_success]) == steps
            assert step_pids and os.getpid() not in step_pids and worker.pid not in step_pids
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)

    inproc_db = f"sqlite:///{tmp / 'inproc.db'}"
    monkeypatch.setenv("CRMHUB_DATABASE_URL", inproc_db)
    local = dry_run_job().execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert local.success

    celery_tables, local_tables = _tables(celery_db), _tables(inproc_db)
    assert celery_tables.keys() == local_tables.keys()
    assert sum(len(rows) for rows in local_tables.values()) > 500
    for name in local_tables:
        differing = {
            key
            for a, b in zip(celery_tables[name], local_tables[name], strict=False)
            for key in a
            if a[key] != b[key]
        }
        assert len(celery_tables[name]) == len(local_tables[name]), name
        assert not differing, f"{name}: columns {sorted(differing)} differ"
