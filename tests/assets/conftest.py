"""Every test here leaves the process environment as it found it.

Why: building the code location (``build_definitions``) points CRMs without credentials at a
running sandbox by setting ``CRMHUB_*`` variables, as it must in ``dg dev``; in a test process
those would outlive the test (and its sandbox) and reach the next one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    before = {k: v for k, v in os.environ.items() if k.startswith(("CRMHUB_", "DAGSTER_"))}
    yield
    for key in [k for k in os.environ if k.startswith(("CRMHUB_", "DAGSTER_"))]:
        if key not in before:
            del os.environ[key]
    os.environ.update(before)
