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
