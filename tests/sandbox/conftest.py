"""Fixtures of the emulator contract tests: a fresh sandbox per test, and a real client for it.

Why per test: every contract test starts from the generator's known state on ephemeral ports,
so tests never see each other's writes, faults or clock changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.runner import Sandbox
from sandbox.salesforce import testing as sf_testing


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def sf(sb: Sandbox) -> Any:
    """The unmodified simple-salesforce client, logged in to the sandbox's Salesforce."""
    return sf_testing.sandbox_client(sb.info)
