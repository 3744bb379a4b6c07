"""One writer per hub database: the lock every sync holds while it writes.

Why: two syncs on one hub database both diff against the same ledger, so both send every change
to the CRMs, both write the audit and both record the same handover transitions. Dagster's run
queue is the first line of defence, but it does not see in-process runs (``crmhub sync``), a
second Dagster instance, or a second machine. This lock is the guarantee:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection held for
  the lock's lifetime. It dies with the connection, so a killed sync never leaves it behind. The
  holder describes itself in the connection's ``application_name``, which a waiting sync reads
  from ``pg_stat_activity`` to say who is running.
- SQLite: an OS file lock (``flock`` through the ``filelock`` library) on ``<database>.lock``,
  which the kernel releases when the process dies; the holder writes who it is into
  ``<database>.writer.json`` next to it.

The lock belongs to a *run*: the process that starts a run takes it (the CLI, or the first step
of a Dagster-launched run), and steps of the same run (in the same process, or in step
subprocesses of the multi-process executor) see that their run holds it and go on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

#: Exit code of a command refused because another sync holds the hub (EX_TEMPFAIL: try later).
EXIT_SYNC_RUNNING = 75

#: The advisory lock key of the hub writer (any fixed 64-bit number; "crmhub w" in ASCII).
_PG_KEY = 0x63726D6875622077 & 0x7FFFFFFFFFFFFFFF

_APP_PREFIX = "crmhub-writer"

#: Holder hosts not worth naming: this machine (by name or as a loopback client address).
_LOCAL_HOSTS = frozenset({"", socket.gethostname(), "localhost", "127.0.0.1", "::1"})


class SyncAlreadyRunning(RuntimeError):
    """Another sync holds the hub database; the message says since when, which run and pid."""

    exit_code = EXIT_SYNC_RUNNING

    def __init__(self, holder: Holder | None, waited: float) -> None:
        self.holder = holder
        if holder is None:
            who = "another sync is running on this hub database"
        else:
            since = holder.since_text()
            who = (
                f"another sync has been running since {since} "
                f"(run {holder.run_id[:8]}…, pid {holder.pid}"
                + (f" on {holder.host}" if holder.host not in _LOCAL_HOSTS else "")
                + ")"
            )
        wait = f" (waited {waited:.0f} s)" if waited >= 1 else ""
        super().__init__(
            f"{who}{wait}; try again later, or set CRMHUB_LOCK_WAIT_SECONDS to wait for it"
        )


@dataclass(frozen=True)
class Holder:
    """Who holds the hub: the run, the process and since when (UTC)."""

    run_id: str
    pid: int
    host: str
    since: dt.datetime

    def since_text(self) -> str:
        local = self.since.astimezone()
        today = dt.datetime.now().astimezone().date()
        return local.strftime("%H:%M" if local.date() == today else "%Y-%m-%d %H:%M")

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pid": self.pid,
            "host": self.host,
            "since": self.since.isoformat(),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Holder:
        return cls(
            run_id=str(raw["run_id"]),
            pid=int(raw["pid"]),
            host=str(raw.get("host", "")),
            since=dt.datetime.fromisoformat(raw["since"]),
        )

    def application_name(self) -> str:
        # PostgreSQL keeps 63 bytes of application_name: prefix, run id, pid, epoch seconds
        return f"{_APP_PREFIX} {self.run_id[:24]} {self.pid} {int(self.since.timestamp())}"

    @classmethod
    def from_application_name(cls, name: str, host: str) -> Holder | None:
        parts = name.split()
        if len(parts) != 4 or parts[0] != _APP_PREFIX:
            return None
        return cls(
            run_id=parts[1],
            pid=int(parts[2]),
            host=host,
            since=dt.datetime.fromtimestamp(int(parts[3]), dt.UTC),
        )


# Locks this process holds, by database: (holder, depth). Steps of one run re-enter.
_HELD: dict[str, tuple[Holder, int, Any]] = {}
_HELD_GUARD = threading.Lock()


def lock_wait_seconds() -> float:
    """How long a sync waits for another one to finish (``CRMHUB_LOCK_WAIT_SECONDS``, default 0)."""
    raw = os.environ.get("CRMHUB_LOCK_WAIT_SECONDS", "0")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 0.0


def _sqlite_path(url: str) -> Path | None:
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or path == ":memory:":
        return None
    return Path(path).resolve()


class _SqliteLock:
    def __init__(self, db: Path) -> None:
        from filelock import FileLock

        db.parent.mkdir(parents=True, exist_ok=True)
        self.info = db.with_name(db.name + ".writer.json")
        self.lock = FileLock(str(db.with_name(db.name + ".lock")), thread_local=False)

    def try_acquire(self, holder: Holder) -> bool:
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return False
        self.info.write_text(json.dumps(holder.to_json()))
        return True

    def current(self) -> Holder | None:
        try:
            return Holder.from_json(json.loads(self.info.read_text()))
        except (OSError, ValueError, KeyError):
            return None

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.info.unlink()
        self.lock.release(force=True)


class _PostgresLock:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.conn: sa.Connection | None = None

    def try_acquire(self, holder: Holder) -> bool:
        conn = self.engine.connect()
        try:
            conn.execute(
                sa.text("SELECT set_config('application_name', :n, false)"),
                {"n": holder.application_name()},
            )
            got = bool(
                conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_KEY}).scalar()
            )
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self.conn = conn
        return True

    def current(self) -> Holder | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT a.application_name, coalesce(host(a.client_addr), 'localhost') "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :hi AND l.objid = :lo"
                ),
                {"hi": (_PG_KEY >> 32) & 0xFFFFFFFF, "lo": _PG_KEY & 0xFFFFFFFF},
            ).first()
        if row is None:
            return None
        return Holder.from_application_name(str(row[0] or ""), str(row[1]))

    def release(self) -> None:
        if self.conn is None:
            return
        with contextlib.suppress(Exception):
            self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_KEY})
            self.conn.commit()
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn = None


def _backend(store: Any) -> _SqliteLock | _PostgresLock | None:
    if store.dialect == "postgresql":
        return _PostgresLock(store.engine)
    path = _sqlite_path(store.url)
    return _SqliteLock(path) if path is not None else None


def current_holder(store: Any) -> Holder | None:
    """Who holds the hub database now (None: nobody, or not knowable)."""
    backend = _backend(store)
    return backend.current() if backend is not None else None


@contextlib.contextmanager
def hub_writer(store: Any, run_id: str, *, wait: float | None = None) -> Iterator[Holder]:
    """Hold the hub database for ``run_id`` for the duration of the block.

    Re-entrant for the same run: a step of a run whose process (or parent process) already
    holds the lock goes on. Raises :class:`SyncAlreadyRunning` when another run holds it for
    longer than ``wait`` seconds (default: ``CRMHUB_LOCK_WAIT_SECONDS``, 0).
    """
    wait = lock_wait_seconds() if wait is None else wait
    key = store.url
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held[0].run_id == run_id:
            _HELD[key] = (held[0], held[1] + 1, held[2])
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield held[0]  # type: ignore[index]
        finally:
            _leave(key)
        return
    backend = _backend(store)
    me = Holder(run_id=run_id, pid=os.getpid(), host=socket.gethostname(), since=_now())
    if backend is None:  # an in-memory database cannot be shared: nothing to guard
        yield me
        return
    started = time.monotonic()
    while not _try(backend, me, store.url):
        holder = backend.current()
        for _ in range(20):  # the holder writes who it is just after it takes the lock
            if holder is not None:
                break
            time.sleep(0.05)
            holder = backend.current()
        if holder is not None and holder.run_id == run_id:
            # our own run holds it from another process (the CLI around a multi-process run)
            yield holder
            return
        waited = time.monotonic() - started
        if waited >= wait:
            raise SyncAlreadyRunning(holder, waited)
        time.sleep(min(1.0, max(0.05, wait - waited)))
    with _HELD_GUARD:
        _HELD[key] = (me, 1, backend)
    try:
        yield me
    finally:
        _leave(key)


def _try(backend: _SqliteLock | _PostgresLock, me: Holder, url: str) -> bool:
    """One attempt at the lock; a database that cannot be reached is one clear error."""
    try:
        return backend.try_acquire(me)
    except sa.exc.SQLAlchemyError as exc:
        from unified_model.database import explain_error

        raise explain_error(exc, url) from exc


def _leave(key: str) -> None:
    with _HELD_GUARD:
        holder, depth, backend = _HELD[key]
        if depth > 1:
            _HELD[key] = (holder, depth - 1, backend)
            return
        del _HELD[key]
    backend.release()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


#: In-memory databases: one lock per name in this process (nothing else can share them).
_MUTEXES: dict[str, threading.Lock] = {}
_MUTEXES_GUARD = threading.Lock()


def _mutex_key(name: str) -> int:
    """A 63-bit advisory lock key for ``name`` (stable across processes, unlike ``hash``)."""
    import hashlib

    digest = hashlib.blake2b(f"crmhub:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFFFFFFFFFF


@contextlib.contextmanager
def hub_mutex(store: Any, name: str, *, timeout: float = 60.0) -> Iterator[bool]:
    """A short critical section ``name`` shared by every process and machine on the hub database.

    Why: steps of one run execute in separate processes (and, with Celery, on separate
    machines); a few things must happen once per run however many steps start together, such
    as the Salesforce ``limits/recordCount`` call every first sync is sized by. The block runs
    while no other holder of ``name`` does. Yields True when held, False when ``timeout``
    seconds passed without it (the caller goes on unguarded: a mutex that only saves an API
    call must never stop a sync). PostgreSQL: an advisory lock on its own connection (gone with
    the process); SQLite: an OS file lock next to the database (``<database>.<name>.lock``);
    an in-memory database: a lock in this process.
    """
    deadline = time.monotonic() + timeout
    if store.dialect == "postgresql":
        key = _mutex_key(name)
        conn = store.engine.connect()
        try:
            got = False
            while True:
                got = bool(
                    conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                )
                conn.commit()
                if got or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(Exception):
                        conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
        finally:
            conn.close()
        return
    path = _sqlite_path(store.url)
    if path is None:
        with _MUTEXES_GUARD:
            lock = _MUTEXES.setdefault(f"{store.url}\0{name}", threading.Lock())
        got = lock.acquire(timeout=timeout)
        try:
            yield got
        finally:
            if got:
                lock.release()
        return
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    file_lock = FileLock(str(path.with_name(f"{path.name}.{name}.lock")), thread_local=False)
    try:
        file_lock.acquire(timeout=timeout)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        file_lock.release()
