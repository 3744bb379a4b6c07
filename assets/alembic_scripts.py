"""Alembic's revision scripts executed once in the multiprocess fork server, not in every step.

Why: every step process of a multiprocess run opens the Dagster instance, and each of its SQLite
storages (runs, schedules, the run's event log and the event index) checks its schema
(``dagster._core.storage.sql.check_alembic_revision``). Each check has Alembic build a revision
map, which executes every one of Dagster's revision scripts (89 in Dagster 1.13) again; the
hub's own ``prepare`` walks the hub's scripts the same way. py-spy of a 1 % run on ``large``
(22 step processes on two cores): about 8 CPU-seconds in those checks, 5 of them executing the
same files over and over.

Imported by the fork server only (``assets.forkserver.FORKSERVER_PRELOAD``): it has Alembic keep
each revision script's module once loaded, and loads both script folders there, so every step
process forked from the server finds them loaded. Only revision scripts (files in a
``versions`` folder) are kept: an ``env.py`` runs the migrations when it executes and is always
executed afresh. A script is keyed by its path and modification time, so a file changed on disk
is read again. Nothing else about Alembic changes: the revision maps, the database's revision
and every comparison are built as before, from the same module objects.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic.util import pyfiles

#: (path, modification time in ns) -> the executed revision script
_LOADED: dict[tuple[str, int], ModuleType] = {}
_ORIGINAL = pyfiles.load_module_py


def _load_module_py(module_id: str, path: str | os.PathLike[str]) -> ModuleType:
    """``alembic.util.pyfiles.load_module_py``, a revision script's module kept once loaded."""
    where = Path(path)
    if where.parent.name != "versions" and where.parent.parent.name != "versions":
        return _ORIGINAL(module_id, path)  # env.py and anything else: as Alembic does
    try:
        key = (str(where), where.stat().st_mtime_ns)
    except OSError:
        return _ORIGINAL(module_id, path)
    module = _LOADED.get(key)
    if module is None:
        module = _LOADED[key] = _ORIGINAL(module_id, path)
    return module


def install() -> None:
    """Keep revision scripts once loaded in this process (and the processes it forks)."""
    pyfiles.load_module_py = _load_module_py  # type: ignore[assignment]


def installed() -> bool:
    return pyfiles.load_module_py is _load_module_py


def warm() -> int:
    """Load Dagster's and the hub's revision scripts now; returns how many are kept."""
    from alembic.script import ScriptDirectory

    from unified_model.migrations import alembic_config

    configs: list[Any] = [alembic_config()]
    try:
        from dagster._core.storage.runs.sqlite import sqlite_run_storage
        from dagster._core.storage.sql import get_alembic_config

        # every SQLite and PostgreSQL storage of Dagster shares this one script folder
        configs.append(get_alembic_config(sqlite_run_storage.__file__))
    except (ImportError, AttributeError):  # another Dagster layout: its checks load as before
        pass
    for config in configs:
        for _ in ScriptDirectory.from_config(config).walk_revisions():
            pass
    return len(_LOADED)


install()
warm()
