"""The layers of DESIGN.md hold: connectors import no Dagster, SQL or business code; the unified
model does no HTTP and knows no Dagster; nothing but the CLI, tests and benchmarks imports the
sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, set[str]] = {
    "connectors": {
        "dagster",
        "sqlmodel",
        "sqlalchemy",
        "unified_model",
        "assets",
        "sandbox",
        "crmhub",
    },
    "unified_model": {
        "dagster",
        "requests",
        "urllib3",
        "simple_salesforce",
        "hubspot",
        "assets",
        "sandbox",
        "crmhub",
    },
    # the graph never imports the CLI package: settings and the mapping file live below it
    "assets": {"sandbox", "crmhub"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    offenders = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic's env.py legitimately wires the store
        bad = _imports(path) & FORBIDDEN[layer]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_the_check_can_see_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import dagster\nfrom unified_model.store import HubStore\n")
    assert _imports(bad) & FORBIDDEN["connectors"] == {"dagster", "unified_model"}
