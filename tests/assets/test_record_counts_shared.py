"""Salesforce extraction steps that start together make the run's ``limits/recordCount`` call
once: the first takes the hub mutex and fetches, the others wait for it and take its answer.

Why: under the multiprocess executor (a Salesforce pool of 2, Celery workers) every step builds
its own connector; before the mutex, two steps starting their first syncs together each made the
call. The sandbox answers the call slowly (a latency fault), so the steps do overlap; threads
stand in for the step processes (each connector has its own HTTP session, and the hub mutex is an
OS file lock or a PostgreSQL advisory lock, which threads contend for like processes).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assets.extract import RUN_COUNTS, _use_run_counts
from connectors.salesforce import SalesforceConnector
from sandbox.http import FaultRule
from sandbox.runner import Sandbox
from sandbox.state import SF
from tests.connectors.salesforce_support import drain, fresh, insert, make_connector, sandbox
from unified_model.store import HubStore
from unified_model.writer_lock import hub_mutex

RECORD_COUNT = "/limits/recordCount"


@pytest.fixture(scope="module")
def shared_sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from sandbox(tmp_path_factory.mktemp("sf-counts"))


@pytest.fixture
def sb(shared_sb: Sandbox) -> Sandbox:
    return fresh(shared_sb)


def _count_calls(sb: Sandbox, head: int) -> int:
    return sum(1 for r in sb.state.ledger(since=head, crm=SF) if RECORD_COUNT in r["path"])


def _read_together(connectors: list[SalesforceConnector], kinds: list[str]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(connectors))

    def run(connector: SalesforceConnector, kind: str) -> None:
        try:
            start.wait()
            drain(connector, kind, None)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(c, k)) for c, k in zip(connectors, kinds, strict=True)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return errors


def test_steps_starting_together_make_the_record_count_call_once(
    sb: Sandbox, store: HubStore
) -> None:
    start = sb.state.now() - dt.timedelta(hours=1)
    for i in range(4):
        insert(sb.state, "Account", {"Name": f"Account {i}"}, start + dt.timedelta(seconds=i))
    # each call takes 0.5 s: three unguarded steps would all be waiting on their own call
    sb.servers[SF].faults.add(FaultRule(kind="latency", path=RECORD_COUNT, params={"seconds": 0.5}))
    kinds = ["account", "contact", "account"]
    connectors = [make_connector(sb.info) for _ in kinds]
    head = sb.state.ledger_head()
    for c in connectors:
        assert not _use_run_counts(store, c, "salesforce", "run-1")  # nothing kept yet
    assert _read_together(connectors, kinds) == []
    assert _count_calls(sb, head) == 1
    counts = [c.record_counts() for c in connectors]
    assert counts[0] and counts[0].get("Account") == 4
    assert counts[1:] == counts[:1] * 2  # the others took the first one's answer
    kept = store.get_cursor("salesforce", RUN_COUNTS)
    assert kept == {"run_id": "run-1", "counts": counts[0]}

    # a later step of the same run uses the kept counts at once; the next run asks again
    later = make_connector(sb.info)
    assert _use_run_counts(store, later, "salesforce", "run-1")
    head = sb.state.ledger_head()
    drain(later, "account", None)
    assert _count_calls(sb, head) == 0
    next_run = [make_connector(sb.info) for _ in range(2)]
    for c in next_run:
        assert not _use_run_counts(store, c, "salesforce", "run-2")
    assert _read_together(next_run, ["account", "contact"]) == []
    assert _count_calls(sb, head) == 1


def test_hub_mutex_excludes_other_holders_and_gives_up_after_its_timeout(
    store: HubStore, tmp_path: Path
) -> None:
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with hub_mutex(store, "probe") as got:
            assert got
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    with hub_mutex(store, "probe", timeout=0.3) as got:
        assert not got  # held elsewhere: the caller goes on unguarded
    with hub_mutex(store, "another-name", timeout=0.3) as got:
        assert got  # names are independent
    leave.set()
    holder.join(10)
    with hub_mutex(store, "probe", timeout=0.3) as got:
        assert got  # released with the block
