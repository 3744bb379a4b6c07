"""The hub store: the only code that writes the hub database.

Why one gatekeeper: every write is an idempotent upsert keyed by (source, source id), every
cursor is saved right after the page it covers, and erased people stay erased. Keeping all of that
behind one class means no asset, CLI command or test can bypass it by accident.

Dialect-aware: SQLite (the zero-set-up default, WAL mode) and PostgreSQL (production) both take
``INSERT … ON CONFLICT DO UPDATE``; we build it with each dialect's own ``insert`` construct. An
upsert never moves a row back in time: a re-read older than what is stored (an overlap window, a
bulk extract racing an incremental one) does not overwrite the newer row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from connectors.records import AnyRecord, OwnerAssignmentRecord
from unified_model import tables as t
from unified_model.erasure import scrub_contacts

# re-exported: the rest of the hub takes its clock and pseudonyms from the store
from unified_model.stamps import email_hash as email_hash
from unified_model.stamps import utcnow as utcnow

#: record attribute -> table column, where the names differ
_RENAMES: dict[str, str] = {
    "account_ids": "account_source_ids",
    "contact_ids": "contact_source_ids",
    "deal_ids": "deal_source_ids",
    "account_id": "account_source_id",
    "contact_id": "contact_source_id",
    "deal_id": "deal_source_id",
}
#: record attributes that are not stored as columns
_SKIP = {"object_type"}

#: account columns that are not business content (see ``SourceAccount.content_hash``)
_NOT_CONTENT = {
    "hub_fields",
    "modified_at",
    "deleted",
    "customer_id",
    "source",
    "source_id",
    "owner_assigned_to",
    "owner_assigned_at",
}

#: Placeholders for NOT NULL columns in the tombstone of a record the hub never stored; they are
#: inserted only, never written over a stored row's value.
_TOMBSTONE_FILLERS: dict[str, dict[str, Any]] = {"deal_stage": {"deal_source_id": ""}}

#: rows per INSERT statement (SQLite's bound-parameter limit is 32766 on current builds)
_BATCH = 500

#: Longest text kept in an indexed column (characters). PostgreSQL refuses a btree index entry
#: above ~2,700 bytes; 512 characters stay below it even at 4 bytes a character, and no real
#: domain, e-mail address or CRM id comes near it.
INDEXED_TEXT_MAX = 512

#: Characters no database column may hold: NUL (PostgreSQL refuses it in text and JSON) and lone
#: UTF-16 surrogates (not encodable as UTF-8 by either driver).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

log = logging.getLogger(__name__)


def create_hub_engine(url: str) -> Engine:
    """An engine for the hub database; SQLite files get WAL and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


def _plain_rows(
    dialect: sa.Dialect, columns: Sequence[sa.ColumnElement[Any]]
) -> Callable[[list[Any]], list[Any]] | None:
    """SQLite: a function turning the driver's rows of ``columns`` into tuples of the values
    SQLAlchemy would give (each column's own result processor, where it has one). None on other
    dialects: there the caller keeps SQLAlchemy's rows (positional like tuples)."""
    if dialect.name != "sqlite":
        return None
    procs = [c.type._cached_result_processor(dialect, None) for c in columns]
    if not any(procs):
        return lambda part: part  # the driver's own tuples are the values
    pairs = list(enumerate(procs))

    def convert(part: list[Any]) -> list[Any]:
        return [tuple(p(r[i]) if p else r[i] for i, p in pairs) for r in part]

    return convert


def execute_many(
    conn: sa.Connection,
    stmt: Any,
    rows: Sequence[dict[str, Any]],
    *,
    shared: dict[str, Any] | None = None,
) -> None:
    """Run ``stmt`` once per row (an executemany), the values every row shares given once.

    Why: SQLAlchemy runs each column type's bind processor for every row and parameter; for the
    writeback ledger (2.1 million rows on a first writeback of ``large``, each with the same
    confirmation time and run) that was half of the statement's cost. On SQLite the statement
    is compiled once, ``shared`` values are processed once, the others through their column
    type's processor where it has one, and the driver gets plain tuples. Other dialects take
    SQLAlchemy's path (psycopg batches the rows into multi-row statements there).
    """
    if not rows:
        return
    shared = shared or {}
    if conn.dialect.name != "sqlite":
        conn.execute(stmt, [{**row, **shared} for row in rows])
        return
    keys = [*rows[0], *shared]
    compiled = stmt.compile(dialect=conn.dialect, column_keys=keys)
    order = compiled.positiontup
    if order is None:  # not a positional paramstyle: leave it to SQLAlchemy
        conn.execute(stmt, [{**row, **shared} for row in rows])
        return
    processors = {
        name: compiled.binds[name].type._cached_bind_processor(conn.dialect) for name in order
    }
    given = set(rows[0])
    # values every row shares, processed once: ``shared``, and those the statement holds
    # itself (``x == 5``)
    fixed = {}
    for name in order:
        if name not in given:
            value = shared[name] if name in shared else compiled.binds[name].effective_value
            fixed[name] = processors[name](value) if processors[name] else value
    getters: list[Any] = []
    for name in order:
        if name in fixed:
            getters.append(lambda row, v=fixed[name]: v)
        elif processors[name] is not None:
            getters.append(lambda row, n=name, p=processors[name]: p(row[n]))
        else:
            getters.append(operator.itemgetter(name))
    conn.exec_driver_sql(compiled.string, [tuple(get(row) for get in getters) for row in rows])


def safe_text(value: str, limit: int | None = None) -> tuple[str, bool]:
    """``value`` as every supported database can store it, and whether it had to change.

    NUL is dropped and a lone surrogate becomes U+FFFD (the replacement character), the same on
    SQLite and PostgreSQL so that both dialects hold the same value; ``limit`` cuts over-long
    text for indexed columns.
    """
    clean = _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)
    if limit is not None and len(clean) > limit:
        clean = clean[:limit]
    return clean, clean != value


def _safe_value(value: Any, limit: int | None) -> tuple[Any, bool]:
    """A column value (text, list or JSON object) made storable; True when something changed."""
    if isinstance(value, str):
        return safe_text(value, limit)
    if isinstance(value, list):
        changed = False
        out = []
        for item in value:
            clean, c = _safe_value(item, limit)
            out.append(clean)
            changed |= c
        return out, changed
    if isinstance(value, dict):
        changed = False
        obj: dict[str, Any] = {}
        for k, v in value.items():
            ck, c1 = _safe_value(k, None) if isinstance(k, str) else (k, False)
            cv, c2 = _safe_value(v, None)
            obj[ck] = cv
            changed |= c1 or c2
        return obj, changed
    return value, False


_INDEXED: dict[str, frozenset[str]] = {}


def _is_text(type_: Any) -> bool:
    impl = getattr(type_, "impl", type_)  # SQLModel's AutoString decorates sa.String
    return isinstance(impl, sa.String) or isinstance(type_, sa.String)


def _indexed_text_columns(table: sa.Table) -> frozenset[str]:
    """Names of the text columns of ``table`` that an index or the primary key covers."""
    if table.name not in _INDEXED:
        names = {c.name for c in table.primary_key.columns}
        for index in table.indexes:
            names.update(c.name for c in index.columns)
        names.update(c.name for c in table.columns if c.index or c.unique)
        _INDEXED[table.name] = frozenset(n for n in names if _is_text(table.c[n].type))
    return _INDEXED[table.name]


def sanitize_row(table: sa.Table, row: dict[str, Any], what: str) -> bool:
    """Make every value of ``row`` storable in place; log once per record what changed."""
    indexed = _indexed_text_columns(table)
    changed_cols = []
    for name, value in row.items():
        if value is None or isinstance(value, bool | int | float | dt.datetime | dt.date):
            continue
        clean, changed = _safe_value(value, INDEXED_TEXT_MAX if name in indexed else None)
        if changed:
            row[name] = clean
            changed_cols.append(name)
    if changed_cols:
        log.warning(
            "%s: %s held text the database cannot store (NUL, a broken character or an over-long "
            "indexed value); stored normalised",
            what,
            ", ".join(sorted(changed_cols)),
        )
    return bool(changed_cols)


#: columns that say when or how, not what: a change there alone is not a change of the row
_BOOKKEEPING_COLUMNS = frozenset(
    {
        "modified_at",
        "content_modified_at",
        "content_hash",
        "hub_fields",
        "changed_at",
        "hub_fields_at",
    }
)


def _tracks_changes(table: sa.Table) -> bool:
    """Source tables keep the hub time of their last content change (``changed_at``)."""
    return "changed_at" in table.c and "modified_at" in table.c


def _changed_case(table: sa.Table, stmt: Any, columns: list[str], target: str) -> Any:
    """``CASE WHEN <any of columns differs> THEN excluded.<target> ELSE <target> END``.

    JSON columns are compared as text (PostgreSQL's ``json`` has no equality); NULLs compare as
    values (``IS DISTINCT FROM``), on SQLite and PostgreSQL alike.
    """
    tests = []
    for name in columns:
        old: Any = table.c[name]
        new: Any = stmt.excluded[name]
        if isinstance(table.c[name].type, sa.JSON):
            old, new = sa.cast(old, sa.Text), sa.cast(new, sa.Text)
        tests.append(old.is_distinct_from(new))
    if not tests:
        return table.c[target]
    return sa.case((sa.or_(*tests), stmt.excluded[target]), else_=table.c[target])


def _to_row(kind: str, record: AnyRecord) -> dict[str, Any]:
    table = t.SOURCE_TABLES[kind]
    columns = set(table.__table__.columns.keys())  # type: ignore[attr-defined]
    row: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in _SKIP:
            continue
        name = _RENAMES.get(f.name, f.name)
        if name not in columns:
            continue
        value = getattr(record, f.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = {
                k: (v.isoformat() if isinstance(v, dt.datetime | dt.date) else v)
                for k, v in value.items()
            }
        row[name] = value
    sanitize_row(
        table.__table__,  # type: ignore[attr-defined]
        row,
        f"{record.source} {kind} {record.source_id}",
    )
    if kind == "contact":
        email = row.get("email")
        row["email_normalized"] = email.strip().casefold() if email else None
    if kind == "account":
        content = {k: v for k, v in row.items() if k not in _NOT_CONTENT}
        row["content_hash"] = hashlib.sha256(
            json.dumps(content, sort_keys=True, default=str).encode()
        ).hexdigest()[:32]
        row["content_modified_at"] = row.get("modified_at")
    return row


class HubStore:
    """Reads and writes the hub database. Create one per process; it is cheap."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_hub_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the current version (Alembic), keeping existing data."""
        from unified_model.migrations import upgrade

        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- upserts ---------------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def upsert_rows(
        self,
        model: type[SQLModel],
        rows: Sequence[dict[str, Any]],
        *,
        newer_only: bool = True,
        insert_only: frozenset[str] = frozenset(),
    ) -> int:
        """Insert or update rows keyed by the table's primary key; returns rows written.

        With ``newer_only`` an existing row is only updated when the incoming ``modified_at``
        is at least as recent as the stored one. ``insert_only`` columns are set on new rows
        but never update a stored row.
        """
        if not rows:
            return 0
        table: sa.Table = model.__table__  # type: ignore[attr-defined]
        keys = [c.name for c in table.primary_key.columns]
        written = 0
        tracked = _tracks_changes(table)
        now = utcnow()
        # Tombstones carry only identity: never blank out the stored fields with their defaults.
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for row in rows:
            if tracked and "changed_at" not in row:
                row = {**row, "changed_at": now}
                if "hub_fields_at" in table.c:
                    row["hub_fields_at"] = now
            groups.setdefault(frozenset(row), []).append(row)
        with self.engine.begin() as conn:
            for cols, group in groups.items():
                stmt = self._upsert_statement(table, keys, cols, newer_only, insert_only)
                for start in range(0, len(group), _BATCH):
                    chunk = group[start : start + _BATCH]
                    # One parameterised statement, many parameter sets: the driver's
                    # executemany (SQLite) or pipelined batches (psycopg). A multi-row VALUES
                    # clause had to be compiled anew for every chunk: 80 % of the upsert time.
                    conn.execute(stmt, chunk)
                    written += len(chunk)
        return written

    def _upsert_statement(
        self,
        table: sa.Table,
        keys: list[str],
        cols: frozenset[str],
        newer_only: bool,
        insert_only: frozenset[str],
    ) -> Any:
        """``INSERT … ON CONFLICT`` for rows with columns ``cols`` (no values: executemany)."""
        stmt = self._insert(table)
        update_cols: dict[str, Any] = {
            c: stmt.excluded[c] for c in sorted(cols) if c not in keys and c not in insert_only
        }
        if "content_modified_at" in update_cols:
            # keep the time the business content last changed
            update_cols["content_modified_at"] = sa.case(
                (
                    table.c.content_hash == stmt.excluded.content_hash,
                    table.c.content_modified_at,
                ),
                else_=stmt.excluded.content_modified_at,
            )
        if "changed_at" in update_cols and _tracks_changes(table):
            # the hub's change time moves only when a stored value really changes: a re-read of
            # the same record (search overlap, the echo of a writeback) leaves it alone
            update_cols["changed_at"] = _changed_case(
                table, stmt, [c for c in update_cols if c not in _BOOKKEEPING_COLUMNS], "changed_at"
            )
            if "hub_fields_at" in update_cols:
                update_cols["hub_fields_at"] = _changed_case(
                    table, stmt, ["hub_fields"] if "hub_fields" in cols else [], "hub_fields_at"
                )
        if "is_closed" in update_cols and "reopened_count" in table.c:
            # a ticket stored closed that arrives open was reopened: counted here, in the same
            # statement, because the CRMs' status history is not read (see Ticket.reopened_count)
            reopened = sa.and_(table.c.is_closed.is_(True), stmt.excluded.is_closed.is_(False))
            update_cols["reopened_count"] = table.c.reopened_count + sa.case((reopened, 1), else_=0)
            update_cols["reopened_at"] = sa.case(
                (reopened, stmt.excluded.modified_at), else_=table.c.reopened_at
            )
        where = None
        if newer_only and "modified_at" in cols:
            where = sa.or_(
                table.c.modified_at.is_(None),
                stmt.excluded.modified_at >= table.c.modified_at,
            )
        if update_cols:
            return stmt.on_conflict_do_update(index_elements=keys, set_=update_cols, where=where)
        return stmt.on_conflict_do_nothing(index_elements=keys)

    def mark_dirty(self, conn: Any, customer_ids: Iterable[str | None]) -> int:
        """Note customers whose inputs changed where their rows no longer show it (see
        ``tables.DirtyCustomer``): the next incremental handover/KPI run recomputes them."""
        ids = sorted({c for c in customer_ids if c})
        if not ids:
            return 0
        table = t.table_of(t.DirtyCustomer)
        insert = self._insert(table)
        stmt = insert.on_conflict_do_update(
            index_elements=["customer_id"], set_={"marked_at": insert.excluded.marked_at}
        )
        now = utcnow()
        for start in range(0, len(ids), 5000):
            conn.execute(
                stmt, [{"customer_id": c, "marked_at": now} for c in ids[start : start + 5000]]
            )
        return len(ids)

    def upsert_records(self, kind: str, records: Sequence[AnyRecord]) -> dict[str, int]:
        """Store a page of connector records of one kind; tombstones mark rows deleted.

        Returns counts: ``upserted``, ``tombstoned``, ``suppressed`` (erased people kept out).
        Owner assignments (the CRMs' owner history) among them update their accounts.
        """
        assignments = [r for r in records if isinstance(r, OwnerAssignmentRecord)]
        if assignments:
            records = [r for r in records if not isinstance(r, OwnerAssignmentRecord)]
            if not records:
                changed = self.apply_owner_assignments(assignments)
                return {"upserted": 0, "tombstoned": 0, "suppressed": 0, "owners_dated": changed}
        model = t.SOURCE_TABLES[kind]
        live: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        erased = self._erased_hashes() if kind in ("contact", "email") else set()
        suppressed = 0
        for record in records:
            if record.deleted:
                dead.append(
                    {
                        "source": record.source,
                        "source_id": record.source_id,
                        "deleted": True,
                        "modified_at": record.modified_at,
                    }
                )
                continue
            row = _to_row(kind, record)
            if erased and self._mentions_erased(kind, row, erased):
                suppressed += 1
                continue
            row["deleted"] = False
            live.append(row)
        self.upsert_rows(model, live)
        if dead:
            # a tombstone of a record we never saw still gets a row: the delete is a fact
            filler = _TOMBSTONE_FILLERS.get(kind, {})
            self.upsert_rows(model, [d | filler for d in dead], insert_only=frozenset(filler))
            if kind == "contact":
                self._scrub_deleted_contacts([d["source_id"] for d in dead], dead[0]["source"])
        counts = {"upserted": len(live), "tombstoned": len(dead), "suppressed": suppressed}
        if assignments:
            # after the page's own accounts: HubSpot sends a company and when it got its owner
            # in one page, and an assignment finds only accounts already stored
            counts["owners_dated"] = self.apply_owner_assignments(assignments)
        return counts

    def apply_owner_assignments(self, records: Sequence[OwnerAssignmentRecord]) -> int:
        """Note on each account when its current owner was assigned, per the CRM's history.

        Per account the latest entry wins (one run may read several changes of one account;
        a re-read of an older one never moves it back). An entry naming an owner the stored row
        does not have yet (the account's own read comes later) is kept: the handover uses it
        only while ``owner_assigned_to`` is the account's ``owner_id``. An entry without a date
        clears it (the history cannot date the current owner). Accounts not stored are skipped.
        Bumps ``changed_at`` only when a value changes, so the handover re-evaluates exactly
        those customers. Returns how many accounts changed.
        """
        latest: dict[tuple[str, str], OwnerAssignmentRecord] = {}
        for r in records:
            if r.deleted or not r.account_id or not r.owner_id:
                continue
            key = (r.source, r.account_id)
            have = latest.get(key)
            when = r.assigned_at or r.modified_at
            if have is None or when >= (have.assigned_at or have.modified_at):
                latest[key] = r
        if not latest:
            return 0
        table = t.table_of(t.SourceAccount)
        new_at = sa.bindparam("v_at", type_=t.UtcDateTime())
        new_to: sa.BindParameter[str] = sa.bindparam("v_to")
        stmt = (
            table.update()
            .where(
                table.c.source == sa.bindparam("k_source"),
                table.c.source_id == sa.bindparam("k_id"),
                sa.or_(
                    table.c.owner_assigned_to.is_distinct_from(new_to),
                    table.c.owner_assigned_at.is_distinct_from(new_at),
                ),
                # never back in time: an older entry read again leaves a newer one alone
                sa.or_(
                    table.c.owner_assigned_at.is_(None),
                    new_at.is_(None),
                    table.c.owner_assigned_at <= new_at,
                ),
            )
            .values(owner_assigned_to=new_to, owner_assigned_at=new_at, changed_at=utcnow())
        )
        params = [
            {"k_source": s, "k_id": a, "v_to": r.owner_id, "v_at": r.assigned_at}
            for (s, a), r in sorted(latest.items())
        ]
        changed = 0
        with self.engine.begin() as conn:
            for start in range(0, len(params), 5000):
                changed += conn.execute(stmt, params[start : start + 5000]).rowcount or 0
        return changed

    def mark_missing_deleted(self, kind: str, source: str, seen_ids: Iterable[str]) -> int:
        """After a full id pass: tombstone live rows whose id the CRM no longer has (hard deletes)."""
        model = t.SOURCE_TABLES[kind]
        table: sa.Table = model.__table__  # type: ignore[attr-defined]
        seen = set(seen_ids)
        with self.engine.begin() as conn:
            stored = conn.execute(
                sa.select(table.c.source_id).where(
                    table.c.source == source, table.c.deleted.is_(False)
                )
            ).scalars()
            missing = [sid for sid in stored if sid not in seen]
            for start in range(0, len(missing), _BATCH):
                conn.execute(
                    table.update()
                    .where(
                        table.c.source == source,
                        table.c.source_id.in_(missing[start : start + _BATCH]),
                    )
                    .values(deleted=True, modified_at=utcnow(), changed_at=utcnow())
                )
        if kind == "contact" and missing:
            self._scrub_deleted_contacts(missing, source)
        return len(missing)

    def bulk_set(
        self,
        model: type[SQLModel],
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        *,
        dated: bool = True,
    ) -> int:
        """Set ``columns`` on existing rows identified by their primary key (executemany).

        ``dated``: the rows' ``changed_at`` moves too (the phases after unify look for it);
        False for the hub's own bookkeeping, which changes nothing they read."""
        if not rows:
            return 0
        table: sa.Table = model.__table__  # type: ignore[attr-defined]
        keys = [c.name for c in table.primary_key.columns]
        values: dict[str, Any] = {c: sa.bindparam(f"v_{c}") for c in columns}
        if dated and _tracks_changes(table) and "changed_at" not in values:
            values["changed_at"] = utcnow()  # a re-link or folded history is a change too
        stmt = (
            table.update()
            .where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in keys])
            .values(values)
        )
        params = [
            {**{f"k_{k}": r[k] for k in keys}, **{f"v_{c}": r.get(c) for c in columns}}
            for r in rows
        ]
        with self.engine.begin() as conn:
            for start in range(0, len(params), 5000):
                conn.execute(stmt, params[start : start + 5000])
        return len(rows)

    # ---- erasure ---------------------------------------------------------------------------
    def _erased_hashes(self) -> set[str]:
        with self.session() as s:
            return set(s.exec(select(t.ErasedIdentity.email_hash)).all())

    @staticmethod
    def _mentions_erased(kind: str, row: dict[str, Any], erased: set[str]) -> bool:
        if kind == "contact":
            return bool(row.get("email")) and email_hash(row["email"]) in erased
        addresses = [row.get("from_address"), *(row.get("to_addresses") or [])]
        return any(a and email_hash(a) in erased for a in addresses)

    def _scrub_deleted_contacts(self, source_ids: Sequence[str], source: str) -> None:
        """A person deleted in a CRM loses their personal data here too (same as an erasure)."""
        scrub_contacts(self, source, source_ids)

    # ---- cursors ---------------------------------------------------------------------------
    def get_cursor(self, source: str, object_type: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(t.SyncCursor, (source, object_type))
            return dict(row.cursor) if row and row.cursor else None

    def save_cursor(self, source: str, object_type: str, cursor: dict[str, Any]) -> None:
        self.upsert_rows(
            t.SyncCursor,
            [
                {
                    "source": source,
                    "object_type": object_type,
                    "cursor": cursor,
                    "updated_at": utcnow(),
                }
            ],
            newer_only=False,
        )

    def reset_cursor(self, source: str, object_type: str) -> None:
        with self.session() as s:
            row = s.get(t.SyncCursor, (source, object_type))
            if row:
                s.delete(row)
                s.commit()

    # ---- sync runs -------------------------------------------------------------------------
    def start_run(self, run_id: str) -> None:
        self.upsert_rows(
            t.SyncRun,
            [{"id": run_id, "started_at": utcnow(), "status": "running", "summary": {}}],
            newer_only=False,
        )

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self.session() as s:
            run = s.get(t.SyncRun, run_id) or t.SyncRun(id=run_id, started_at=utcnow())
            run.finished_at = utcnow()
            run.status = status
            run.summary = {**(run.summary or {}), **summary}
            s.add(run)
            s.commit()

    # ---- reads -----------------------------------------------------------------------------
    def live(self, model: type[SQLModel], **filters: Any) -> list[Any]:
        """All non-deleted rows of a source table (optionally filtered by column equality)."""
        with self.session() as s:
            stmt = select(model).where(model.deleted.is_(False))  # type: ignore[attr-defined]
            for col, value in filters.items():
                stmt = stmt.where(getattr(model, col) == value)
            return list(s.exec(stmt).all())

    def iter_pages(
        self,
        table: sa.Table,
        columns: Sequence[sa.ColumnElement[Any]],
        *,
        where: sa.ColumnElement[bool] | None = None,
        size: int = 5000,
        plain: bool = False,
    ) -> Iterator[list[Any]]:
        """``columns`` of a table's rows in primary-key order, one short query per page.

        Why keyset pages rather than one streamed result: the caller writes between pages (unify
        updates the contacts it reads), and a query per page holds no read transaction open
        across those writes, on SQLite and PostgreSQL alike. Memory is one page. ``columns``
        must include the primary key columns.

        ``plain``: the rows as tuples of the same values (positions only, no ``_mapping``). On
        SQLite they come from the driver with each column's result processor applied, without
        SQLAlchemy's per-row machinery: unify reads every live contact this way (780,000 on
        ``large``), where building the rows was half of linking the contacts.
        """
        keys = list(table.primary_key.columns)
        names = [c.key for c in columns]
        try:
            positions = [names.index(k.key) for k in keys]
        except ValueError:
            raise ValueError(f"iter_pages over {table.name}: select its primary key too") from None
        convert = _plain_rows(self.engine.dialect, columns) if plain else None
        after: tuple[Any, ...] | None = None
        while True:
            stmt = sa.select(*columns).order_by(*keys).limit(size)
            if where is not None:
                stmt = stmt.where(where)
            if after is not None:
                stmt = stmt.where(sa.tuple_(*keys) > sa.tuple_(*after))
            with self.engine.connect() as conn:
                result = conn.execute(stmt)
                if convert is not None:
                    rows = convert(list(result.cursor.fetchall()))
                else:
                    rows = list(result.all())
            if rows:
                yield rows
            if len(rows) < size:
                return
            after = tuple(rows[-1][i] for i in positions)

    def all(self, model: type[SQLModel]) -> list[Any]:
        with self.session() as s:
            return list(s.exec(select(model)).all())

    def count(self, model: type[SQLModel], *, live_only: bool = True) -> int:
        with self.session() as s:
            stmt = select(sa.func.count()).select_from(model)
            if live_only and hasattr(model, "deleted"):
                stmt = stmt.where(model.deleted.is_(False))  # type: ignore[attr-defined]
            return int(s.exec(stmt).one())
