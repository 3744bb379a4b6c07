"""The generator's second pass (standard objects the hub does not read) adds records without
changing a single record or association the hub reads, is deterministic, and continues the id
counters so API creates never collide with it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import sandbox.extra_objects
from sandbox.catalog import HS_EXTRA_OBJECTS, SF_EXTRA_OBJECTS
from sandbox.formats import hs_new_id, sf_new_id
from sandbox.generator import generate
from sandbox.state import SandboxState

NOW = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
EXTRA = set(SF_EXTRA_OBJECTS) | set(HS_EXTRA_OBJECTS)


def _state(path: Path) -> SandboxState:
    state = SandboxState(path)
    state.set_clock(NOW)
    return state


def _hub_data(state: SandboxState) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    rows = [
        tuple(r)
        for r in state.execute("SELECT * FROM records ORDER BY crm, object, id")
        if r["object"] not in EXTRA
    ]
    links = [
        tuple(r)
        for r in state.execute("SELECT * FROM assoc ORDER BY 1, 2, 3, 4, 5")
        if r["from_object"] not in EXTRA and r["to_object"] not in EXTRA
    ]
    return rows, links


def test_the_second_pass_leaves_the_hubs_records_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _state(tmp_path / "full.db")
    counts = generate(full, "tiny", 42)
    assert all(counts.get(f"salesforce/{o}", 0) > 0 for o in SF_EXTRA_OBJECTS)
    assert all(counts.get(f"hubspot/{o}", 0) > 0 for o in HS_EXTRA_OBJECTS)
    monkeypatch.setattr(sandbox.extra_objects, "seed_extra_objects", lambda g: None)
    without = _state(tmp_path / "without.db")
    generate(without, "tiny", 42)
    assert not any(r["object"] in EXTRA for r in without.execute("SELECT object FROM records"))
    assert _hub_data(full) == _hub_data(without)


def test_the_second_pass_is_deterministic_and_ids_continue_after_it(tmp_path: Path) -> None:
    one, two = _state(tmp_path / "a.db"), _state(tmp_path / "b.db")
    generate(one, "tiny", 42)
    generate(two, "tiny", 42)
    query = "SELECT * FROM records ORDER BY crm, object, id"
    assert [tuple(r) for r in one.execute(query)] == [tuple(r) for r in two.execute(query)]
    ids = {r[0] for r in one.execute("SELECT id FROM records")}
    for prefix in ("00E", "01t", "01s", "01u", "00k", "00K", "701", "00v", "00U"):
        assert sf_new_id(one, prefix) not in ids
    assert hs_new_id(one) not in ids
