"""The hub pointed at a freshly seeded sandbox, shared by the end-to-end tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmhub import settings
from sandbox.runner import Sandbox


@contextlib.contextmanager
def sandbox_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str, seed: int
) -> Iterator[dict[str, Any]]:
    """A seeded sandbox, the hub pointed at it through the CRMHUB_* variables (no others left
    from the caller's environment), a fresh hub database: ``{"sandbox", "db_url"}``."""
    for key in list(os.environ):
        if key.startswith("CRMHUB_"):
            monkeypatch.delenv(key)
    with Sandbox(tmp_path / "sandbox") as sb:
        sb.seed(profile, seed=seed)
        for key, value in settings.sandbox_environment(sb.info).items():
            monkeypatch.setenv(key, value)
        db_url = f"sqlite:///{tmp_path / 'hub.db'}"
        monkeypatch.setenv("CRMHUB_DATABASE_URL", db_url)
        monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
        yield {"sandbox": sb, "db_url": db_url}
