"""Persistent state of the sandbox CRMs: records, associations, schema additions, clock, ledger.

Why SQLite: the sandbox must keep its data across restarts (``crmhub sandbox serve``, repeated
``crmhub sync`` runs) and must serve the ``large`` profile (100,000 customers, over a million
activities) without holding everything in memory as JSON. One SQLite file holds both CRMs; each
emulator reads and writes only its own ``crm`` rows. All access goes through one connection
guarded by a lock: the emulators are threaded HTTP servers and SQLite is fast enough for the
request rates the real APIs allow.

Timestamps are stored as sortable UTC strings ``YYYY-MM-DDTHH:MM:SS.mmmZ``; each emulator renders
them in its CRM's format.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

SF = "salesforce"
HS = "hubspot"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    crm TEXT NOT NULL,
    object TEXT NOT NULL,
    id TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    deleted_at TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (crm, object, id)
);
CREATE INDEX IF NOT EXISTS records_modified ON records (crm, object, modified, id);
CREATE TABLE IF NOT EXISTS assoc (
    from_object TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_object TEXT NOT NULL,
    to_id TEXT NOT NULL,
    type_id INTEGER NOT NULL,
    category TEXT NOT NULL DEFAULT 'HUBSPOT_DEFINED',
    label TEXT,
    PRIMARY KEY (from_object, from_id, to_object, to_id, type_id)
);
CREATE TABLE IF NOT EXISTS schema_extra (
    crm TEXT NOT NULL,
    object TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (crm, object, kind, name)
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    crm TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '',
    expires_at TEXT
);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    crm TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prop_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    object TEXT NOT NULL,
    id TEXT NOT NULL,
    property TEXT NOT NULL,
    value TEXT NOT NULL,
    ts TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_id TEXT
);
CREATE INDEX IF NOT EXISTS prop_history_record ON prop_history (object, id, property, ts);
CREATE TABLE IF NOT EXISTS truth (
    customer_key TEXT PRIMARY KEY,
    sf_account_id TEXT,
    hs_company_id TEXT
);
"""


def fmt_ts(value: dt.datetime) -> str:
    """Canonical stored form of an instant: UTC, millisecond precision, ``Z``."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_ts(value: str) -> dt.datetime:
    """Parse the canonical stored form (or any ISO 8601 instant) into an aware datetime."""
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    if len(v) >= 5 and v[-5] in "+-" and v[-3] != ":":  # +0000 -> +00:00
        v = v[:-2] + ":" + v[-2:]
    parsed = dt.datetime.fromisoformat(v)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


class SandboxState:
    """The sandbox database. Thread-safe; every public method takes the lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._in_tx = 0

    # ---- plumbing -------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run raw SQL (used by the emulators' query translators) and return all rows."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._conn.executemany(sql, rows)

    class _Tx:
        def __init__(self, state: SandboxState) -> None:
            self.state = state

        def __enter__(self) -> SandboxState:
            self.state._lock.acquire()
            if self.state._in_tx == 0:
                self.state._conn.execute("BEGIN IMMEDIATE")
            self.state._in_tx += 1
            return self.state

        def __exit__(self, exc_type: Any, *_: Any) -> None:
            try:
                self.state._in_tx -= 1
                if self.state._in_tx == 0:
                    self.state._conn.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.state._lock.release()

    def transaction(self) -> _Tx:
        """Group writes atomically (e.g. an ``allOrNone`` collection, a generator batch)."""
        return SandboxState._Tx(self)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ---- clock ----------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The sandbox's clock: real UTC time plus an offset that tests advance instead of sleeping."""
        offset = float(self.get_meta("clock_offset", "0"))
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)

    def advance_clock(self, seconds: float) -> dt.datetime:
        with self._lock:
            offset = float(self.get_meta("clock_offset", "0")) + seconds
            self.set_meta("clock_offset", repr(offset))
            return self.now()

    def set_clock(self, instant: dt.datetime) -> None:
        """Pin the sandbox clock so that ``now()`` is ``instant`` at this moment."""
        offset = (instant - dt.datetime.now(dt.UTC)).total_seconds()
        self.set_meta("clock_offset", repr(offset))

    # ---- meta -----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None:
            if default is None:
                raise KeyError(key)
            return default
        return str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def get_json(self, key: str, default: Any) -> Any:
        raw = self.get_meta(key, "")
        return json.loads(raw) if raw else default

    def set_json(self, key: str, value: Any) -> None:
        self.set_meta(key, json.dumps(value))

    def next_counter(self, name: str, start: int = 1, step: int = 1) -> int:
        """Allocate the next value of a named counter (ids, case numbers)."""
        with self._lock:
            current = int(self.get_meta(f"counter:{name}", str(start - step)))
            value = current + step
            self.set_meta(f"counter:{name}", str(value))
            return value

    # ---- records --------------------------------------------------------------------------
    def insert(
        self,
        crm: str,
        obj: str,
        rid: str,
        data: dict[str, Any],
        *,
        created: dt.datetime | None = None,
        modified: dt.datetime | None = None,
        deleted: bool = False,
    ) -> None:
        now = self.now()
        c = fmt_ts(created or now)
        m = fmt_ts(modified or created or now)
        with self._lock:
            self._conn.execute(
                "INSERT INTO records(crm, object, id, created, modified, deleted, deleted_at, data)"
                " VALUES(?,?,?,?,?,?,?,?)",
                (
                    crm,
                    obj,
                    rid,
                    c,
                    m,
                    1 if deleted else 0,
                    m if deleted else None,
                    json.dumps(data, separators=(",", ":")),
                ),
            )

    def insert_many(self, rows: Iterable[tuple[str, str, str, str, str, int, str]]) -> None:
        """Bulk insert for the generator: (crm, object, id, created, modified, deleted, json)."""
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO records(crm, object, id, created, modified, deleted,"
                " deleted_at, data) VALUES(?,?,?,?,?,?,CASE WHEN ?6 THEN ?5 END,?)",
                rows,
            )

    def get(
        self, crm: str, obj: str, rid: str, *, include_deleted: bool = False
    ) -> dict[str, Any] | None:
        """A record as ``{"id", "created", "modified", "deleted", "deleted_at", "data"}``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM records WHERE crm=? AND object=? AND id=?", (crm, obj, rid)
            ).fetchone()
        if row is None or (row["deleted"] and not include_deleted):
            return None
        return _row(row)

    def update(
        self,
        crm: str,
        obj: str,
        rid: str,
        changes: dict[str, Any],
        *,
        modified: dt.datetime | None = None,
    ) -> dict[str, Any] | None:
        """Merge ``changes`` into a live record and bump its modification time."""
        with self._lock:
            current = self.get(crm, obj, rid)
            if current is None:
                return None
            data = current["data"]
            data.update(changes)
            m = fmt_ts(modified or self.now())
            self._conn.execute(
                "UPDATE records SET data=?, modified=? WHERE crm=? AND object=? AND id=?",
                (json.dumps(data, separators=(",", ":")), m, crm, obj, rid),
            )
            current["modified"] = m
            return current

    def soft_delete(self, crm: str, obj: str, rid: str) -> bool:
        """Move a record to the recycle bin / archive (still visible to queryAll, archived=true)."""
        with self._lock:
            now = fmt_ts(self.now())
            cur = self._conn.execute(
                "UPDATE records SET deleted=1, deleted_at=?, modified=? "
                "WHERE crm=? AND object=? AND id=? AND deleted=0",
                (now, now, crm, obj, rid),
            )
            return cur.rowcount > 0

    def hard_delete(self, crm: str, obj: str, rid: str) -> bool:
        """Remove a record for good (emptied recycle bin, GDPR delete): leaves no tombstone."""
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM records WHERE crm=? AND object=? AND id=?", (crm, obj, rid)
            )
            self._conn.execute(
                "DELETE FROM assoc WHERE (from_object=? AND from_id=?) OR (to_object=? AND to_id=?)",
                (obj, rid, obj, rid),
            )
            return cur.rowcount > 0

    def scan(
        self,
        crm: str,
        obj: str,
        *,
        where: str = "",
        params: Sequence[Any] = (),
        order: str = "modified, id",
        batch: int = 2000,
        include_deleted: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Stream records in pages (keyset on rowid) so large profiles never load at once."""
        clauses = ["crm=?", "object=?"]
        if not include_deleted:
            clauses.append("deleted=0")
        if where:
            clauses.append(f"({where})")
        sql = f"SELECT * FROM records WHERE {' AND '.join(clauses)} ORDER BY {order}"
        offset = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"{sql} LIMIT ? OFFSET ?", (crm, obj, *params, batch, offset)
                ).fetchall()
            yield from (_row(r) for r in rows)
            if len(rows) < batch:
                return
            offset += batch

    def count(self, crm: str, obj: str, *, include_deleted: bool = False) -> int:
        with self._lock:
            sql = "SELECT COUNT(*) FROM records WHERE crm=? AND object=?"
            if not include_deleted:
                sql += " AND deleted=0"
            return int(self._conn.execute(sql, (crm, obj)).fetchone()[0])

    # ---- HubSpot associations -------------------------------------------------------------
    def associate(
        self,
        from_obj: str,
        from_id: str,
        to_obj: str,
        to_id: str,
        type_id: int,
        category: str = "HUBSPOT_DEFINED",
        label: str | None = None,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO assoc VALUES(?,?,?,?,?,?,?)",
                (from_obj, from_id, to_obj, to_id, type_id, category, label),
            )

    def associations(self, from_obj: str, from_id: str, to_obj: str) -> list[dict[str, Any]]:
        """Associations of one record to one object type: ``[{to_id, type_id, category, label}]``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT to_id, type_id, category, label FROM assoc WHERE from_object=? AND "
                "from_id=? AND to_object=? ORDER BY CAST(to_id AS INTEGER), type_id",
                (from_obj, from_id, to_obj),
            ).fetchall()
        return [dict(r) for r in rows]

    def remove_associations(self, from_obj: str, from_id: str, to_obj: str, to_id: str) -> None:
        with self._lock:
            self._conn.execute(
                "DELETE FROM assoc WHERE (from_object=? AND from_id=? AND to_object=? AND to_id=?)"
                " OR (from_object=? AND from_id=? AND to_object=? AND to_id=?)",
                (from_obj, from_id, to_obj, to_id, to_obj, to_id, from_obj, from_id),
            )

    # ---- schema additions (custom fields / properties created through the API) ----------
    def add_schema(
        self, crm: str, obj: str, kind: str, name: str, definition: dict[str, Any]
    ) -> bool:
        """Record a field/property/group created at run time; False if it already existed."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO schema_extra VALUES(?,?,?,?,?)",
                (crm, obj, kind, name, json.dumps(definition)),
            )
            return cur.rowcount > 0

    def schema(self, crm: str, obj: str, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT definition FROM schema_extra WHERE crm=? AND object=? AND kind=? "
                "ORDER BY rowid",
                (crm, obj, kind),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def remove_schema(self, crm: str, obj: str, kind: str, name: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM schema_extra WHERE crm=? AND object=? AND kind=? AND name=?",
                (crm, obj, kind, name),
            )
            return cur.rowcount > 0

    # ---- tokens ---------------------------------------------------------------------------
    def add_token(
        self,
        token: str,
        crm: str,
        scopes: Iterable[str] = (),
        expires_at: dt.datetime | None = None,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO tokens VALUES(?,?,?,?)",
                (token, crm, " ".join(sorted(scopes)), fmt_ts(expires_at) if expires_at else None),
            )

    def token(self, token: str) -> dict[str, Any] | None:
        """``{"crm", "scopes": set, "expires_at": datetime|None}`` or None if unknown."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM tokens WHERE token=?", (token,)).fetchone()
        if row is None:
            return None
        return {
            "crm": row["crm"],
            "scopes": set(filter(None, row["scopes"].split(" "))),
            "expires_at": parse_ts(row["expires_at"]) if row["expires_at"] else None,
        }

    def expire_tokens(self, crm: str) -> None:
        """Make every token of a CRM expire now (fault injection: expired session)."""
        with self._lock:
            self._conn.execute(
                "UPDATE tokens SET expires_at=? WHERE crm=?", (fmt_ts(self.now()), crm)
            )

    # ---- request ledger -------------------------------------------------------------------
    def log_request(
        self, crm: str, method: str, path: str, status: int, note: str | None = None
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO ledger(ts, crm, method, path, status, note) VALUES(?,?,?,?,?,?)",
                (fmt_ts(self.now()), crm, method, path, status, note),
            )

    def ledger(self, since: int = 0, crm: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            sql = "SELECT * FROM ledger WHERE seq > ?"
            params: list[Any] = [since]
            if crm:
                sql += " AND crm = ?"
                params.append(crm)
            rows = self._conn.execute(sql + " ORDER BY seq", params).fetchall()
        return [dict(r) for r in rows]

    def ledger_head(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT MAX(seq) FROM ledger").fetchone()
        return int(row[0] or 0)

    # ---- HubSpot property history -------------------------------------------------------
    def add_history(
        self,
        obj: str,
        rid: str,
        values: dict[str, str | None],
        when: dt.datetime | str,
        source_type: str,
        source_id: str | None = None,
    ) -> None:
        """Append one version per property (``None`` is stored as ``""``, a cleared value)."""
        ts = when if isinstance(when, str) else fmt_ts(when)
        with self._lock:
            self._conn.executemany(
                "INSERT INTO prop_history(object, id, property, value, ts, source_type, "
                "source_id) VALUES(?,?,?,?,?,?,?)",
                [
                    (obj, rid, name, "" if v is None else str(v), ts, source_type, source_id)
                    for name, v in values.items()
                ],
            )

    def add_history_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Bulk form for the generator: (object, id, property, value, ts, source_type, source_id)."""
        with self._lock:
            self._conn.executemany(
                "INSERT INTO prop_history(object, id, property, value, ts, source_type, "
                "source_id) VALUES(?,?,?,?,?,?,?)",
                rows,
            )

    def history(
        self, obj: str, ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """``{id: {property: [version, …]}}``, newest first (ties: the later write first)."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        if not ids or not properties:
            return out
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, property, value, ts, source_type, source_id FROM prop_history "
                f"WHERE object=? AND id IN ({','.join('?' * len(ids))}) "
                f"AND property IN ({','.join('?' * len(properties))}) "
                "ORDER BY ts DESC, seq DESC",
                (obj, *ids, *properties),
            ).fetchall()
        for r in rows:
            version: dict[str, Any] = {
                "value": r["value"],
                "timestamp": r["ts"],
                "sourceType": r["source_type"],
            }
            if r["source_id"]:
                version["sourceId"] = r["source_id"]
            out.setdefault(r["id"], {}).setdefault(r["property"], []).append(version)
        return out

    # ---- ground truth of the generator ----------------------------------------------------
    def add_truth(self, rows: Iterable[tuple[str, str | None, str | None]]) -> None:
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO truth VALUES(?,?,?)", rows)

    def truth(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM truth ORDER BY customer_key").fetchall()
        return [dict(r) for r in rows]

    # ---- whole-state operations -----------------------------------------------------------
    def reset(self) -> None:
        """Empty both CRMs (records, associations, schema additions, ledger; tokens stay)."""
        with self._lock:
            for table in ("records", "assoc", "schema_extra", "ledger", "truth", "prop_history"):
                self._conn.execute(f"DELETE FROM {table}")
            self._conn.execute("DELETE FROM meta WHERE key NOT LIKE 'config:%'")


def _row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created": row["created"],
        "modified": row["modified"],
        "deleted": bool(row["deleted"]),
        "deleted_at": row["deleted_at"],
        "data": json.loads(row["data"]),
    }
