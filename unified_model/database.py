"""Open the hub database once, check it once, and say in one line what is wrong with it.

Why: the store used to migrate inside every asset, so an unreachable server, a read-only file or a
database from a newer crmhub failed every step of a run, each with Dagster's stack log (14 times,
1,000+ lines). Now the process that starts a run calls :func:`prepare` before any step and before
any CRM call: it connects, refuses a schema it does not know, migrates an older one, checks that
every table and column the code needs is there and that the database takes writes. Every failure
is a :class:`HubDatabaseError` whose message names the database (password masked) and the fix.
Steps then only re-check the revision (one query), once per process.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from unified_model.store import HubStore


class HubDatabaseError(RuntimeError):
    """The hub database cannot be used; the message is one line with the cause and the fix."""

    exit_code = 2


def redact_url(url: str) -> str:
    """A database URL with its password masked (``postgresql://hub:***@db/hub``)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


_PREPARED: set[str] = set()
_GUARD = threading.Lock()


def _explain(exc: BaseException, where: str) -> str:
    """One line for a driver error: what happened, and what to do."""
    text = " ".join(str(getattr(exc, "orig", exc) or exc).split())
    low = text.lower()
    if "readonly" in low or "read-only" in low or "read only" in low:
        return (
            f"the hub database {where} is read-only; give the user running crmhub write access "
            "to the file and its folder, or point CRMHUB_DATABASE_URL at a writable database"
        )
    if "database is locked" in low:
        return (
            f"the hub database {where} is locked by another process; wait for it to finish "
            "(another crmhub command or a tool holding a write transaction) and try again"
        )
    if "unable to open database" in low:
        return (
            f"cannot open the hub database {where}; check that its folder exists and is "
            "writable (CRMHUB_HOME / CRMHUB_DATABASE_URL)"
        )
    if "does not exist" in low and "database" in low:
        return (
            f"the hub database {where} does not exist on the server; create it "
            "(createdb) or fix the database name in CRMHUB_DATABASE_URL"
        )
    if "password authentication failed" in low or "authentication failed" in low:
        return (
            f"the database server refused the user of {where}; fix the user or password in "
            "CRMHUB_DATABASE_URL"
        )
    if (
        "connection refused" in low
        or "could not connect" in low
        or "connection failed" in low
        or "could not translate host" in low
        or "name or service not known" in low
        or "timeout" in low
    ):
        return (
            f"cannot reach the hub database {where}; start the database server or fix the host "
            "and port in CRMHUB_DATABASE_URL"
        )
    first = text.split(" [SQL", 1)[0][:200]
    return f"the hub database {where} failed: {first}; check CRMHUB_DATABASE_URL"


def _known_revisions() -> tuple[set[str], set[str]]:
    from alembic.script import ScriptDirectory

    from unified_model.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return {r.revision for r in script.walk_revisions()}, set(script.get_heads())


def _current_revisions(conn: sa.Connection) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    return set(MigrationContext.configure(conn).get_current_heads())


def _missing_schema(conn: sa.Connection) -> list[str]:
    """Tables or columns the code needs that the database lacks (``table`` / ``table.column``)."""
    from sqlmodel import SQLModel

    import unified_model.tables  # noqa: F401  (registers the tables)

    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    missing: list[str] = []
    for name, table in sorted(SQLModel.metadata.tables.items()):
        if name not in present:
            missing.append(name)
            continue
        columns = {c["name"] for c in inspector.get_columns(name)}
        missing.extend(f"{name}.{c.name}" for c in table.columns if c.name not in columns)
    return missing


def _check_writable(conn: sa.Connection) -> None:
    """A real write, rolled back: SQLite opens a read-only file without complaint until then."""
    if conn.in_transaction():
        conn.rollback()
    with conn.begin() as trans:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
        trans.rollback()


def prepare(store: HubStore, *, migrate: bool = True) -> None:
    """Connect, refuse unknown schemas, migrate older ones, check the schema and writability.

    Done once per process and database: later calls return at once. Raises
    :class:`HubDatabaseError` with one line naming the database and the fix.
    """
    with _GUARD:
        if store.url in _PREPARED:
            return
        with _one_process_at_a_time(store):
            _prepare(store, migrate=migrate)
        _PREPARED.add(store.url)


@contextlib.contextmanager
def _one_process_at_a_time(store: HubStore) -> Iterator[None]:
    """Only one process prepares (migrates) a hub database at a time.

    Why on top of the writer lock: the step processes of one multi-process run all pass the
    writer lock (it is their run's), and on a fresh database two of them would create the schema
    at once (``table alembic_version already exists``).
    """
    if store.dialect == "postgresql":
        try:
            conn = store.engine.connect()
        except sa_exc.SQLAlchemyError as exc:
            raise HubDatabaseError(_explain(exc, redact_url(store.url))) from exc
        with conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(hashtext('crmhub-prepare'))"))
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext('crmhub-prepare'))"))
        return
    path = store.engine.url.database
    if store.dialect != "sqlite" or not path or path == ":memory:":
        yield
        return
    from filelock import FileLock

    guard = FileLock(f"{path}.prepare.lock")
    try:
        guard.acquire()
    except OSError:  # a folder we cannot write to: the check below says so in one line
        yield
        return
    try:
        yield
    finally:
        guard.release()


def _prepare(store: HubStore, *, migrate: bool) -> None:
    where = redact_url(store.url)
    known, heads = _known_revisions()
    try:
        with store.engine.connect() as conn:
            current = _current_revisions(conn)
            tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
            missing = _missing_schema(conn) if tables else []
    except sa_exc.SQLAlchemyError as exc:
        raise HubDatabaseError(_explain(exc, where)) from exc
    newer = current - known
    if newer:
        raise HubDatabaseError(
            f"the hub database {where} was written by a newer crmhub (revision "
            f"{', '.join(sorted(newer))}); upgrade crmhub (git pull && uv sync), or point "
            "CRMHUB_DATABASE_URL at another database"
        )
    if not current and tables:
        if missing:
            raise HubDatabaseError(
                f"the hub database {where} holds tables but no crmhub schema revision, and lacks "
                f"{_first(missing)}; point CRMHUB_DATABASE_URL at an empty database or restore "
                "this one from a backup"
            )
        # a complete schema that lost its stamp (restored without alembic_version): adopt it
        _stamp(store, where)
        current = set(heads)
    if current != heads:
        if not migrate:
            raise HubDatabaseError(
                f"the hub database {where} is at schema revision {', '.join(sorted(current)) or 'none'}"
                f", crmhub needs {', '.join(sorted(heads))}; run `crmhub sync` once to upgrade it"
            )
        try:
            store.migrate()
        except sa_exc.SQLAlchemyError as exc:
            raise HubDatabaseError(_explain(exc, where)) from exc
    try:
        with store.engine.connect() as conn:
            missing = _missing_schema(conn)
            if missing:
                revision = ", ".join(sorted(_current_revisions(conn)))
                raise HubDatabaseError(
                    f"the hub database {where} is stamped at schema revision {revision} but lacks "
                    f"{_first(missing)} (changed outside crmhub?); restore it from a backup or "
                    "point CRMHUB_DATABASE_URL at a new database"
                )
            _check_writable(conn)
    except sa_exc.SQLAlchemyError as exc:
        raise HubDatabaseError(_explain(exc, where)) from exc


def _stamp(store: HubStore, where: str) -> None:
    from alembic import command

    from unified_model.migrations import alembic_config

    try:
        command.stamp(alembic_config(store.engine), "head")
    except sa_exc.SQLAlchemyError as exc:
        raise HubDatabaseError(_explain(exc, where)) from exc


def _first(missing: list[str]) -> str:
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    kind = "column" if "." in missing[0] else "table"
    return f"{kind} {missing[0]}{more}"


def connect_store(url: str) -> HubStore:
    """A :class:`HubStore` on ``url``, not yet checked: a malformed URL is one clear line."""
    try:
        return HubStore(url)
    except (sa_exc.SQLAlchemyError, ValueError, ImportError, OSError) as exc:
        raise HubDatabaseError(
            f"CRMHUB_DATABASE_URL is not a usable database URL ({redact_url(url)}): "
            f"{type(exc).__name__}; use sqlite:///path/hub.db or postgresql://user@host:5432/db"
        ) from exc


def explain_error(exc: BaseException, url: str) -> HubDatabaseError:
    """A driver error met while using the hub database, as a one-line :class:`HubDatabaseError`."""
    return HubDatabaseError(_explain(exc, redact_url(url)))


def open_store(url: str, *, migrate: bool = True) -> HubStore:
    """A :class:`HubStore` on ``url``, prepared (see :func:`prepare`).

    A sync prepares *after* taking the writer lock instead (two first runs on a fresh database
    would otherwise both create its schema); this is for the look-up commands.
    """
    store = connect_store(url)
    try:
        prepare(store, migrate=migrate)
    except BaseException:
        store.dispose()
        raise
    return store


def forget_prepared() -> None:
    """Forget which databases were prepared (tests that break a database on purpose)."""
    with _GUARD:
        _PREPARED.clear()


__all__ = [
    "HubDatabaseError",
    "connect_store",
    "explain_error",
    "open_store",
    "prepare",
    "redact_url",
]
