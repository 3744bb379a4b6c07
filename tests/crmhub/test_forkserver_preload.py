"""The step processes of a multiprocess run start from a fork server that already imported what
every step imports (Dagster's storage, the CRM connectors and their SDKs): importing them again
in each of a run's 23 step processes was most of a settled run's CPU on two cores."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: modules a step imports that the fork server must have imported already
EXPECTED = (
    "assets.definitions",
    "simple_salesforce",
    "hubspot.crm.objects",
    "connectors.salesforce.connector",
    "connectors.hubspot.connector",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
)


def _loaded(names: tuple[str, ...]) -> dict[str, bool]:
    """Which of ``names`` this (forked) process holds before doing anything."""
    return {name: name in sys.modules for name in names}


@pytest.mark.usefixtures("fresh_forkserver")
def test_step_processes_start_with_the_connectors_imported() -> None:
    from crmhub.runtime import _fresh_forkserver

    _fresh_forkserver(None)  # what ``crmhub sync --executor multiprocess`` starts
    with mp.get_context("forkserver").Pool(1) as pool:
        loaded = pool.apply(_loaded, (EXPECTED,))
    assert loaded == dict.fromkeys(EXPECTED, True)


#: a script run in a fresh interpreter: import the code location as a process does, then
#: report whether a fork server runs and what a process forked from it holds
_PROBE = """
import json, multiprocessing as mp, sys

def loaded(names):
    return {{n: n in sys.modules for n in names}}

if __name__ == "__main__":
    import assets.definitions  # builds the definitions, as a run worker loading the code does
    from assets import forkserver

    out = {{"running": forkserver.running()}}
    if out["running"]:
        with mp.get_context("forkserver").Pool(1) as pool:
            out["loaded"] = pool.apply(loaded, ({expected!r},))
    print(json.dumps(out))
"""


def _probe(tmp_path: Path, *argv: str) -> dict[str, object]:
    script = tmp_path / "probe.py"
    script.write_text(_PROBE.format(expected=EXPECTED))
    env = {k: v for k, v in os.environ.items() if k != "CRMHUB_EXECUTOR"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(script), *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_run_worker_starts_the_fork_server_while_it_loads_the_code_location(
    tmp_path: Path,
) -> None:
    # what the daemon's run launcher starts: ``dagster api execute_run <args>``
    worker = _probe(tmp_path, "api", "execute_run", "{}")
    assert worker == {"running": True, "loaded": dict.fromkeys(EXPECTED, True)}
    # the webserver, the daemon, a step process: they load the same code and fork nothing
    assert _probe(tmp_path, "dev") == {"running": False}


def test_run_worker_is_told_apart_by_its_command() -> None:
    from assets.forkserver import is_run_worker

    assert is_run_worker(["/venv/bin/dagster", "api", "execute_run", "{}"])
    assert is_run_worker(["/venv/lib/dagster/__main__.py", "api", "resume_run", "{}"])
    assert not is_run_worker(["/venv/bin/dagster", "api", "grpc"])
    assert not is_run_worker(["/venv/bin/dagster-daemon", "run"])
    assert not is_run_worker(["-c"])


def _schema_checks(db: str) -> dict[str, object]:
    """The schema checks a step makes as it opens the instance and the hub database, and the
    revision scripts they had to execute (in a forked step process, or in this one as Alembic
    loads them by itself)."""
    import sqlalchemy as sa
    from alembic.util import pyfiles
    from dagster._core.storage.runs.sqlite import sqlite_run_storage
    from dagster._core.storage.sql import check_alembic_revision, get_alembic_config

    from unified_model.database import _known_revisions

    executed: list[str] = []
    # the loader that really executes a file: behind the fork server's cache, or Alembic's own
    scripts = sys.modules.get("assets.alembic_scripts")
    owner, name = (scripts, "_ORIGINAL") if scripts is not None else (pyfiles, "load_module_py")
    original = getattr(owner, name)

    def counting(module_id: str, path: str) -> object:
        executed.append(str(path))
        return original(module_id, path)

    setattr(owner, name, counting)
    try:
        engine = sa.create_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            config = get_alembic_config(sqlite_run_storage.__file__)
            revisions = check_alembic_revision(config, conn)
        engine.dispose()
        _known, heads = _known_revisions()
    finally:
        setattr(owner, name, original)
    return {"head": revisions[1], "hub_heads": sorted(heads), "executed": executed}


@pytest.mark.usefixtures("fresh_forkserver")
def test_step_processes_check_schemas_without_executing_revision_scripts(tmp_path: Path) -> None:
    """Each step checked four Dagster storages' schema revisions, executing every one of
    Dagster's 89 revision scripts each time; forked from the server, it executes none."""
    from crmhub.runtime import _fresh_forkserver

    _fresh_forkserver(None)
    with mp.get_context("forkserver").Pool(1) as pool:
        seen = pool.apply(_schema_checks, (str(tmp_path / "runs.db"),))
    # the same answers as Alembic's own loading gives in this process (no cache here)
    assert "assets.alembic_scripts" not in sys.modules
    plain = _schema_checks(str(tmp_path / "runs.db"))
    assert len(plain["executed"]) > 80  # type: ignore[arg-type]
    assert seen == {**plain, "executed": []}


def _kept_and_reread(folder: str) -> dict[str, object]:
    """In a forked step process: which loads the cache keeps, and that migrations still run."""
    import sqlalchemy as sa
    from alembic.util import pyfiles

    import assets.alembic_scripts as scripts
    from unified_model.migrations import upgrade

    tmp = Path(folder)
    versions = tmp / "versions"
    versions.mkdir()
    script = versions / "0001_x.py"
    script.write_text("revision = 'a'\n")
    first = pyfiles.load_python_file(versions, script.name)
    kept = pyfiles.load_python_file(versions, script.name) is first
    script.write_text("revision = 'b'  # edited\n")
    os.utime(script, ns=(script.stat().st_atime_ns, script.stat().st_mtime_ns + 10**9))
    edited = pyfiles.load_python_file(versions, script.name).revision
    tables = []
    for name in ("one.db", "two.db"):  # env.py migrates as it executes: both are migrated
        engine = sa.create_engine(f"sqlite:///{tmp / name}")
        upgrade(engine)
        tables.append("customer" in sa.inspect(engine).get_table_names())
        engine.dispose()
    return {"installed": scripts.installed(), "kept": kept, "edited": edited, "migrated": tables}


@pytest.mark.usefixtures("fresh_forkserver")
def test_only_revision_scripts_are_kept_and_a_changed_one_is_read_again(tmp_path: Path) -> None:
    from crmhub.runtime import _fresh_forkserver

    _fresh_forkserver(None)
    with mp.get_context("forkserver").Pool(1) as pool:
        seen = pool.apply(_kept_and_reread, (str(tmp_path),))
    assert seen == {"installed": True, "kept": True, "edited": "b", "migrated": [True, True]}
