"""Every hub-database problem is one line that names the database (password masked) and the fix,
with exit code 2 (75 when another sync holds the hub), no traceback and no CRM call: an
unreachable server, a read-only file, a database from a newer crmhub, a stamped schema missing a
column, an unstamped schema that is incomplete, and a lock held by another sync. An unstamped but
complete schema is adopted (stamped), not left with an empty ``alembic_version``.

Commands run in this process through ``crmhub.cli.main``; each test has its own database file,
so the once-per-process schema check never hides a broken database behind an earlier success.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.crmhub.cli_support import Output, cli
from unified_model.database import forget_prepared, open_store
from unified_model.store import HubStore
from unified_model.writer_lock import hub_writer


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No CRM credentials, a fresh CRMHUB_HOME with no sandbox: any CRM call would start one."""
    for key in list(os.environ):
        if key.startswith("CRMHUB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    forget_prepared()
    yield tmp_path / "home"
    forget_prepared()


def _db(home: Path, monkeypatch: pytest.MonkeyPatch, name: str = "hub.db") -> str:
    url = f"sqlite:///{home / name}"
    monkeypatch.setenv("CRMHUB_DATABASE_URL", url)
    return url


def _migrated(url: str) -> HubStore:
    store = open_store(url)
    forget_prepared()  # the commands under test must check it again
    return store


def one_line(output: Output, code: int, *words: str) -> str:
    lines = [line for line in output.err.splitlines() if line.strip()]
    assert output.code == code, (output.code, output.out, output.err)
    assert len(lines) == 1, output.err
    assert lines[0].startswith("crmhub: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in output.out + output.err
    return lines[0]


def no_crm_call(home: Path) -> None:
    """Nothing started a sandbox (which the CLI does before its first CRM call)."""
    assert not (home / "sandbox").exists()


COMMANDS = (("sync", "--profile", "tiny"), ("customer", "show", "acme"), ("kpis",))


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_an_unreachable_database_server_is_one_line_with_the_password_masked(
    home: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CRMHUB_DATABASE_URL", "postgresql://crmhub:s3cr3t-pw@127.0.0.1:1/hub")
    line = one_line(
        cli(*argv),
        2,
        "cannot reach the hub database postgresql://crmhub:***@127.0.0.1:1/hub",
        "CRMHUB_DATABASE_URL",
    )
    assert "s3cr3t-pw" not in line
    no_crm_call(home)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_read_only_database_file_is_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    url = _db(home, monkeypatch)
    _migrated(url).dispose()
    path = home / "hub.db"
    # root ignores file modes: make the file immutable instead (the test's machine runs as root)
    protect = ["chattr", "+i", str(path)] if os.geteuid() == 0 else ["chmod", "444", str(path)]
    subprocess.run(protect, check=True)
    try:
        one_line(cli(*argv), 2, f"the hub database {url} is read-only", "write access")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            path.chmod(0o644)
    no_crm_call(home)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_database_written_by_a_newer_crmhub_is_refused_untouched(
    home: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    url = _db(home, monkeypatch)
    store = _migrated(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    one_line(cli(*argv), 2, "was written by a newer crmhub (revision 0999)", "upgrade crmhub")
    with store.engine.connect() as conn:  # left as it was
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0999"
    store.dispose()
    no_crm_call(home)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_stamped_schema_missing_a_column_is_caught_at_start(
    home: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    url = _db(home, monkeypatch)
    store = _migrated(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_write_audit_batch_outcome"))
        conn.execute(sa.text("ALTER TABLE write_audit DROP COLUMN batch_id"))
    store.dispose()
    one_line(
        cli(*argv),
        2,
        "is stamped at schema revision",
        "lacks column write_audit.batch_id",
        "restore it from a backup",
    )
    no_crm_call(home)


def test_an_unstamped_complete_schema_is_adopted_and_an_incomplete_one_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic.script import ScriptDirectory

    from unified_model.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    url = _db(home, monkeypatch)
    store = _migrated(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
    out = cli("customer", "show", "acme")
    assert out.code == 1 and "No customer matches" in out.out, out  # worked: nothing there yet
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
    store.dispose()

    forget_prepared()
    url = _db(home, monkeypatch, "other.db")
    store = _migrated(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(sa.text("DROP TABLE customer_metrics"))
    store.dispose()
    one_line(
        cli("customer", "show", "acme"),
        2,
        "holds tables but no crmhub schema revision",
        "lacks table customer_metrics",
    )


def test_a_sync_while_another_holds_the_hub_exits_75_naming_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _db(home, monkeypatch)
    store = _migrated(url)
    with hub_writer(store, "0123456789abcdef-other-run"):
        line = one_line(
            cli("sync", "--profile", "tiny"),
            75,
            "another sync has been running since",
            "(run 01234567…, pid ",
            "try again later",
        )
        assert f"pid {os.getpid()})" in line
        # looking a customer up needs no lock
        assert cli("customer", "show", "acme").code == 1
    store.dispose()
    no_crm_call(home)
