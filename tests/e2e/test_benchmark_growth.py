"""The end-to-end benchmark's growth report across earlier runs (``sync_e2e.py --growth``).

Why tested: the README's growth curve is printed from two JSON files written an hour or more
apart; a wrong exponent would call linear memory growth sub-linear.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "sync_e2e_under_test", ROOT / "benchmarks" / "sync_e2e.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _payload(profile: str, commit: str, job: float, rss: float, steps: dict[str, float]) -> dict:
    phase = {
        "phase": "first",
        "job_seconds": job,
        "floor_seconds": job / 3,
        "records_extracted": 1000,
        "peak_rss_mb": rss,
        "steps": [{"step": k, "peak_rss_mb": v} for k, v in steps.items()],
    }
    result = {"profile": profile, "phases": [phase]}
    return {"commit": commit, "executor": "multiprocess", "machine": "m", "results": [result]}


def _row(text: str, *cells: str) -> list[str]:
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if parts[: len(cells)] == list(cells):
            return parts
    raise AssertionError(f"no row {cells} in:\n{text}")


def test_growth_exponents_tell_linear_from_sub_linear(tmp_path: Path) -> None:
    mod = _module()
    large = _payload("large", "aaa", 1000.0, 800.0, {"customer_kpis": 800.0, "unify": 500.0})
    double = _payload("2x", "bbb", 2000.0, 1131.0, {"customer_kpis": 1131.0, "unify": 1000.0})
    # given in either order: the smaller profile is the base
    text = mod.growth_report([double, large])
    assert text.splitlines()[0] == "# Growth large → 2x"
    job = _row(text, "first", "job s")
    assert job[2:4] == ["1,000", "2,000"] and float(job[4]) == pytest.approx(1.0, abs=0.005)
    rss = _row(text, "first", "peak RSS MB")
    expected = math.log(1131 / 800) / math.log(2)  # 0.50: sub-linear
    assert float(rss[4]) == pytest.approx(expected, abs=0.005)
    assert float(_row(text, "unify")[3]) == pytest.approx(1.0, abs=0.005)
    steps = [line.split("|")[1].strip() for line in text.splitlines() if re.match(r"\| \w", line)]
    # the step table is ordered by the largest profile's peak, largest first
    assert steps.index("customer_kpis") < steps.index("unify")
    assert "`large` (`aaa, multiprocess`)" in text


def test_growth_needs_two_profiles_and_reads_the_files_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mod = _module()
    one = _payload("large", "aaa", 1000.0, 800.0, {})
    with pytest.raises(SystemExit, match="at least two profiles"):
        mod.growth_report([one, _payload("large", "ccc", 900.0, 700.0, {})])
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(one))
    b.write_text(json.dumps(_payload("4x", "ddd", 4000.0, 3200.0, {})))
    assert mod.main(["--growth", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert float(_row(out, "first", "peak RSS MB")[4]) == pytest.approx(1.0, abs=0.005)
