"""The step processes of a multiprocess run start from a fork server that already imported what
every step imports (Dagster's storage, the CRM connectors and their SDKs): importing them again
in each of a run's 23 step processes was most of a settled run's CPU on two cores."""

from __future__ import annotations

import multiprocessing as mp
import sys

import pytest

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
