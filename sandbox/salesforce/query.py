"""Compile parsed SOQL into SQLite over the ``records`` table, and run it page by page.

Why push everything down: the ``large`` profile holds 100,000 Accounts and over a million
activities; scanning JSON in Python per query would make the sandbox, not the hub, the
bottleneck of every benchmark. So WHERE, ORDER BY and LIMIT become SQL over the row columns
(``id``, ``created``, ``modified``, ``deleted``: indexed, used for ``Id``, ``CreatedDate``,
``SystemModstamp``/``LastModifiedDate``, ``IsDeleted``) and ``json_extract(data, '$.Field')``
for everything else; parent paths (``Account.Owner.Name``) become LEFT JOINs on the primary key.

Paging uses a keyset, not OFFSET: the sort keys are extended with ``Id`` so that they are unique,
and each page continues after the last row's keys. A cursor therefore never holds a result in
memory, costs the same on page 1 and page 50, and never skips a row when records change between
pages (a row that moves behind the cursor may come again, which the real API also allows).

Semantics kept from SOQL: string comparisons and LIKE are case-insensitive; ``!=`` and ``NOT IN``
match nulls; ``NOT`` uses two-valued logic; date functions (``LAST_N_DAYS:n``…) are day ranges
on the sandbox clock in UTC (the sandbox org's time zone); 15-character ids compare equal to
their 18-character form.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.formats import sf_datetime, sf_id15_to_18
from sandbox.salesforce.describe import (
    ID_TYPES,
    NUMBER_TYPES,
    STRING_TYPES,
    FieldDef,
    ObjectSchema,
    load_schema,
)
from sandbox.salesforce.errors import ApiError, invalid_type
from sandbox.salesforce.soql import (
    BoolOp,
    Compare,
    Includes,
    InList,
    Like,
    Literal,
    Not,
    Path,
    Query,
    error_at,
    parse,
)
from sandbox.salesforce.store import indexed_fields
from sandbox.salesforce.values import field_value, java_double
from sandbox.state import SF, SandboxState, fmt_ts

#: Real REST SOQL refuses OFFSET above this (``NUMBER_OUTSIDE_VALID_RANGE``).
MAX_OFFSET = 2000


@dataclass
class Join:
    alias: str
    parent_alias: str
    ref: FieldDef  # the reference field on the parent alias's object
    targets: tuple[str, ...]


@dataclass
class Resolved:
    """A field path resolved against the schema: which table alias, which field."""

    path: Path
    rels: tuple[str, ...]  # canonical relationship names from the base object
    field: FieldDef
    alias: str

    @property
    def name(self) -> str:
        return ".".join((*self.rels, self.field.name))


@dataclass
class SortKey:
    sql: str
    desc: bool
    nulls_first: bool
    collate: str  # "" or " COLLATE NOCASE"
    nullable: bool


def _day_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _add_months(d: dt.datetime, months: int) -> dt.datetime:
    m = d.month - 1 + months
    return d.replace(year=d.year + m // 12, month=m % 12 + 1, day=1)


def date_function_range(
    name: str, n: int | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The half-open UTC interval ``[start, end)`` a SOQL date function stands for."""
    today = _day_start(now)
    day = dt.timedelta(days=1)
    week_start = today - dt.timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday
    month_start = today.replace(day=1)
    year_start = today.replace(month=1, day=1)
    k = n or 0
    table: dict[str, tuple[dt.datetime, dt.datetime]] = {
        "YESTERDAY": (today - day, today),
        "TODAY": (today, today + day),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "LAST_MONTH": (_add_months(month_start, -1), month_start),
        "THIS_MONTH": (month_start, _add_months(month_start, 1)),
        "NEXT_MONTH": (_add_months(month_start, 1), _add_months(month_start, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "THIS_YEAR": (year_start, year_start.replace(year=year_start.year + 1)),
        "LAST_YEAR": (year_start.replace(year=year_start.year - 1), year_start),
        "NEXT_YEAR": (
            year_start.replace(year=year_start.year + 1),
            year_start.replace(year=year_start.year + 2),
        ),
        "LAST_N_DAYS": (today - k * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (k + 1) * day),
        "N_DAYS_AGO": (today - k * day, today - (k - 1) * day),
        "LAST_N_WEEKS": (week_start - 7 * k * day, week_start),
        "NEXT_N_WEEKS": (week_start + 7 * day, week_start + 7 * (k + 1) * day),
        "LAST_N_MONTHS": (_add_months(month_start, -k), month_start),
        "NEXT_N_MONTHS": (_add_months(month_start, 1), _add_months(month_start, k + 1)),
    }
    return table[name]


def _literal_datetime(text: str) -> dt.datetime:
    v = text
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    elif v[-5] in "+-" and v[-3] != ":":
        v = v[:-2] + ":" + v[-2:]
    return dt.datetime.fromisoformat(v).astimezone(dt.UTC)


@dataclass
class Plan:
    """A compiled query: SQL pieces, how to render rows, and how to page with a keyset."""

    state: SandboxState
    query: Query
    schema: ObjectSchema
    include_deleted: bool
    now: dt.datetime
    columns: list[Resolved] = field(default_factory=list)
    joins: dict[tuple[str, ...], Join] = field(default_factory=dict)
    where_sql: str = ""
    params: list[Any] = field(default_factory=list)
    keys: list[SortKey] = field(default_factory=list)
    _schemas: dict[str, ObjectSchema] = field(default_factory=dict)

    # ---- resolution -----------------------------------------------------------------------
    def _schema_of(self, obj: str) -> ObjectSchema:
        if obj not in self._schemas:
            s = load_schema(self.state, obj)
            assert s is not None
            self._schemas[obj] = s
        return self._schemas[obj]

    def _bad_field(self, path: Path, message: str) -> ApiError:
        return error_at(self.query.text, path.pos, message, "INVALID_FIELD")

    def resolve(self, path: Path) -> Resolved:
        parts = list(path.parts)
        # "Account.Name" written against Account itself is allowed in SOQL.
        if (
            len(parts) > 1
            and parts[0].lower() == self.schema.name.lower()
            and self.schema.relationship(parts[0]) is None
        ):
            parts = parts[1:]
        objects: tuple[str, ...] = (self.schema.name,)
        alias = "b"
        rels: list[str] = []
        for rel in parts[:-1]:
            ref = None
            for obj in objects:
                ref = self._schema_of(obj).relationship(rel)
                if ref is not None:
                    break
            if ref is None:
                raise self._bad_field(
                    path,
                    f"Didn't understand relationship '{rel}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                )
            assert ref.relationship_name is not None
            rels.append(ref.relationship_name)
            key = tuple(rels)
            if key not in self.joins:
                self.joins[key] = Join(f"j{len(self.joins)}", alias, ref, ref.reference_to)
            alias = self.joins[key].alias
            objects = ref.reference_to
        name = parts[-1]
        found: FieldDef | None = None
        for obj in objects:
            found = self._schema_of(obj).field(name)
            if found is not None:
                break
        if found is None:
            entity = objects[0] if len(objects) == 1 else "Name"
            raise self._bad_field(
                path,
                f"No such column '{name}' on entity '{entity}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        return Resolved(path, tuple(rels), found, alias)

    # ---- SQL expressions ------------------------------------------------------------------
    @staticmethod
    def expr(r: Resolved) -> str:
        f = r.field
        if f.column:
            return f"{r.alias}.{f.column}"
        e = f"json_extract({r.alias}.data, '$.{f.name}')"
        return f"IFNULL({e}, 0)" if f.type == "boolean" else e

    @staticmethod
    def nullable(r: Resolved) -> bool:
        return not (r.field.column and not r.rels)

    def _param(self, r: Resolved, lit: Literal, op: str) -> Any:
        """The SQL parameter for one literal compared with field ``r`` (type-checked)."""
        f = r.field
        t = f.type
        name = r.name

        def wrong(expected: str) -> ApiError:
            return error_at(
                self.query.text,
                lit.pos,
                f"value of filter criterion for field '{name}' must be of type {expected} "
                "and should not be enclosed in quotes"
                if lit.kind == "string"
                else f"value of filter criterion for field '{name}' must be of type {expected}",
                "INVALID_FIELD",
            )

        if t in STRING_TYPES or t in ID_TYPES:
            if lit.kind != "string":
                raise error_at(
                    self.query.text,
                    lit.pos,
                    f"value of filter criterion for field '{name}' must be of type string "
                    "and should be enclosed in quotes",
                    "INVALID_FIELD",
                )
            v = lit.value
            if t in ID_TYPES and len(v) == 15 and v.isalnum():
                v = sf_id15_to_18(v)
            return v
        if t in NUMBER_TYPES:
            if lit.kind != "number":
                raise wrong("number" if t != "int" else "int")
            return lit.value
        if t == "boolean":
            if lit.kind != "bool":
                raise wrong("boolean")
            return 1 if lit.value else 0
        if t == "date":
            if lit.kind != "date":
                raise wrong("date")
            return lit.value
        if t == "datetime":
            if lit.kind != "datetime":
                raise wrong("dateTime")
            instant = _literal_datetime(lit.value)
            return fmt_ts(instant) if f.column else sf_datetime(instant)
        raise self._bad_field(r.path, f"field '{name}' can not be filtered in a query call")

    def _bound(self, r: Resolved, when: dt.datetime) -> str:
        if r.field.type == "date":
            return when.date().isoformat()
        return fmt_ts(when) if r.field.column else sf_datetime(when)

    def _cond(self, node: Any, params: list[Any]) -> str:
        if isinstance(node, BoolOp):
            joiner = f" {node.op} "
            return "(" + joiner.join(self._cond(i, params) for i in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT COALESCE({self._cond(node.item, params)}, 0))"
        r = self.resolve(node.path)
        f = r.field
        if f.is_compound or (f.type == "textarea" and f.length > 255):
            raise self._bad_field(
                node.path, f"field '{r.name}' can not be filtered in a query call"
            )
        e = self.expr(r)
        text = f.type in STRING_TYPES
        coll = " COLLATE NOCASE" if text else ""
        if isinstance(node, Compare):
            lit, op = node.value, node.op
            if lit.kind == "null":
                if op == "=":
                    return f"({e} IS NULL)"
                if op == "!=":
                    return f"({e} IS NOT NULL)"
                raise error_at(self.query.text, lit.pos, "invalid operator for null")
            if lit.kind == "datefn":
                if f.type not in ("date", "datetime"):
                    raise error_at(
                        self.query.text,
                        lit.pos,
                        f"value of filter criterion for field '{r.name}' must be of type "
                        f"{f.type} and should not be a date function",
                        "INVALID_FIELD",
                    )
                start, end = date_function_range(lit.value, lit.n, self.now)
                s, en = self._bound(r, start), self._bound(r, end)
                if op == "=":
                    params.extend([s, en])
                    return f"({e} >= ? AND {e} < ?)"
                if op == "!=":
                    params.extend([s, en])
                    return f"({e} IS NULL OR {e} < ? OR {e} >= ?)"
                bound, sql_op = {
                    "<": (s, "<"),
                    "<=": (en, "<"),
                    ">": (en, ">="),
                    ">=": (s, ">="),
                }[op]
                params.append(bound)
                return f"({e} {sql_op} ?)"
            value = self._param(r, lit, op)
            params.append(value)
            if op == "!=":
                return f"({e} IS NULL OR {e} != ?{coll})"
            return f"({e} {op} ?{coll})"
        if isinstance(node, InList):
            values = [self._param(r, lit, "=") for lit in node.values if lit.kind != "null"]
            has_null = any(lit.kind == "null" for lit in node.values)
            marks = ", ".join("?" for _ in values)
            params.extend(values)
            if node.negate:
                inner = f"{e}{coll} NOT IN ({marks})" if values else "1"
                return (
                    f"({e} IS NULL OR {inner})"
                    if not has_null
                    else (f"({e} IS NOT NULL AND {inner})")
                )
            inner = f"{e}{coll} IN ({marks})" if values else "0"
            return f"({inner} OR {e} IS NULL)" if has_null else f"({inner})"
        if isinstance(node, Like):
            if not (text or f.type in ID_TYPES):
                raise error_at(
                    self.query.text,
                    node.pattern.pos,
                    f"invalid operator on field '{r.name}' of type {f.type}: LIKE",
                    "INVALID_FIELD",
                )
            params.append(node.pattern.raw)
            return f"({e} LIKE ? ESCAPE '\\')"
        if isinstance(node, Includes):
            if f.type != "multipicklist":
                raise error_at(
                    self.query.text,
                    node.path.pos,
                    "includes or excludes operator only valid on multipicklist field",
                    "INVALID_FIELD",
                )
            alts = []
            for lit in node.values:
                if lit.kind != "string":
                    raise error_at(self.query.text, lit.pos, "expecting a string literal")
                parts = []
                for item in (p.strip() for p in lit.value.split(";") if p.strip()):
                    esc = item.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    params.append(f"%;{esc};%")
                    parts.append(f"(';' || {e} || ';') LIKE ? ESCAPE '\\'")
                alts.append("(" + " AND ".join(parts or ["1"]) + ")")
            body = "(" + " OR ".join(alts) + ")"
            return (
                f"({e} IS NULL OR NOT {body})" if node.excludes else f"({e} IS NOT NULL AND {body})"
            )
        raise AssertionError(node)  # pragma: no cover

    # ---- SQL assembly ---------------------------------------------------------------------
    def _from(self) -> str:
        parts = ["records b"]
        for join in self.joins.values():
            targets = ", ".join(f"'{t}'" for t in join.targets)
            parts.append(
                f"LEFT JOIN records {join.alias} ON {join.alias}.crm = '{SF}' AND "
                f"{join.alias}.object IN ({targets}) AND {join.alias}.id = "
                f"json_extract({join.parent_alias}.data, '$.{join.ref.name}') AND "
                f"{join.alias}.deleted = 0"
            )
        return " ".join(parts)

    def _base_where(self) -> tuple[str, list[Any]]:
        sql = f"b.crm = '{SF}' AND b.object = '{self.schema.name}'"
        params: list[Any] = []
        if not self.include_deleted:
            sql += " AND b.deleted = 0"
        else:
            # The recycle bin is emptied after ``recycle_bin_days``: older tombstones are gone.
            from sandbox.config import get_config

            days = float(get_config(self.state, SF).get("recycle_bin_days", 15))
            sql += " AND (b.deleted = 0 OR IFNULL(b.deleted_at, b.modified) >= ?)"
            params.append(fmt_ts(self.now - dt.timedelta(days=days)))
        if self.where_sql:
            sql += f" AND {self.where_sql}"
            params.extend(self.params)
        return sql, params

    def _keyset(self, after: list[Any] | None) -> tuple[str, list[Any]]:
        if not after:
            return "", []
        keys = self.keys
        if all(not k.nullable and not k.collate for k in keys) and len({k.desc for k in keys}) == 1:
            cols = ", ".join(k.sql for k in keys)
            marks = ", ".join("?" for _ in keys)
            return f"(({cols}) {'<' if keys[0].desc else '>'} ({marks}))", list(after)
        ors: list[str] = []
        params: list[Any] = []
        for i, k in enumerate(keys):
            ands: list[str] = []
            p: list[Any] = []
            for j in range(i):
                kj = keys[j]
                if after[j] is None:
                    ands.append(f"{kj.sql} IS NULL")
                else:
                    ands.append(f"{kj.sql} = ?{kj.collate}")
                    p.append(after[j])
            v = after[i]
            gt = "<" if k.desc else ">"
            if v is None:
                if not k.nulls_first:
                    continue  # nothing sorts after a null placed last
                ands.append(f"{k.sql} IS NOT NULL")
            elif k.nulls_first:
                ands.append(f"{k.sql} {gt} ?{k.collate}")
                p.append(v)
            else:
                ands.append(f"({k.sql} {gt} ?{k.collate} OR {k.sql} IS NULL)")
                p.append(v)
            ors.append("(" + " AND ".join(ands) + ")")
            params.extend(p)
        return "(" + (" OR ".join(ors) or "0") + ")", params

    def _selective(self) -> bool:
        """Whether a top-level condition can use an expression index (ext id, parent ref).

        Then SQLite must not walk an index in ORDER BY order instead (its default without
        statistics), which would scan the whole object to find a handful of rows.
        """
        where = self.query.where
        conjuncts = where.items if isinstance(where, BoolOp) and where.op == "AND" else [where]
        indexed = indexed_fields(self.state, self.schema.name)
        for node in conjuncts:
            if (isinstance(node, Compare) and node.op == "=") or (
                isinstance(node, InList) and not node.negate
            ):
                r = self.resolve(node.path)
                if not r.rels and r.field.name in indexed:
                    return True
        return False

    def _order_sql(self) -> str:
        items = []
        plus = "+" if self.query.where is not None and self._selective() else ""
        for k in self.keys:
            s = f"{plus}{k.sql}{k.collate} {'DESC' if k.desc else 'ASC'}"
            default_first = not k.desc
            if k.nullable and k.nulls_first != default_first:
                s += " NULLS FIRST" if k.nulls_first else " NULLS LAST"
            items.append(s)
        return ", ".join(items)

    def _needed(self) -> dict[str, list[str]]:
        """Per table alias, the ``data`` keys the selected columns read."""
        needed: dict[str, list[str]] = {"b": []}
        for join in self.joins.values():
            needed[join.alias] = []
        for col in self.columns:
            alias = self.joins[col.rels].alias if col.rels else "b"
            f = col.field
            if f.column:
                continue
            names = [f.name]
            if f.is_compound:
                prefix = f.name[: -len("Address")]
                names += [
                    f"{prefix}{part}"
                    for part in (
                        "City",
                        "Country",
                        "CountryCode",
                        "GeocodeAccuracy",
                        "Latitude",
                        "Longitude",
                        "PostalCode",
                        "State",
                        "StateCode",
                        "Street",
                    )
                ]
            for name in names:
                if name not in needed[alias]:
                    needed[alias].append(name)
        return needed

    @staticmethod
    def _data_sql(alias: str, names: list[str]) -> str:
        """Only the needed values, as one small JSON array (multi-path ``json_extract``).

        Parsing the whole stored record per row would dominate large extracts; with two or more
        paths SQLite returns a JSON array, so booleans and nulls keep their JSON types.
        """
        if not names:
            return "'[]'"
        paths = [f"'$.{n}'" for n in names]
        if len(paths) == 1:
            paths.append(paths[0])
        return f"json_extract({alias}.data, {', '.join(paths)})"

    def select_sql(
        self, after: list[Any] | None, limit: int, offset: int = 0
    ) -> tuple[str, list[Any]]:
        needed = self._needed()
        cols = ["b.id", "b.created", "b.modified", "b.deleted", self._data_sql("b", needed["b"])]
        for join in self.joins.values():
            a = join.alias
            data = self._data_sql(a, needed[a])
            cols += [f"{a}.object", f"{a}.id", f"{a}.created", f"{a}.modified", data]
        cols += [f"{k.sql} AS k{i}" for i, k in enumerate(self.keys)]
        where, params = self._base_where()
        ks, kp = self._keyset(after)
        if ks:
            where += f" AND {ks}"
            params = params + kp
        sql = (
            f"SELECT {', '.join(cols)} FROM {self._from()} WHERE {where} "
            f"ORDER BY {self._order_sql()} LIMIT ? OFFSET ?"
        )
        return sql, [*params, limit, offset]

    def count(self) -> int:
        """Rows the query matches, after its OFFSET and LIMIT (``totalSize``)."""
        where, params = self._base_where()
        limit = self.query.limit if self.query.limit is not None else -1
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {self._from()} WHERE {where} LIMIT ? OFFSET ?)"
        rows = self.state.execute(sql, [*params, limit, self.query.offset or 0])
        return int(rows[0][0])

    def fetch(
        self, after: list[Any] | None, limit: int, offset: int = 0
    ) -> tuple[list[dict[str, Any]], list[Any] | None]:
        """One page: rendered-ready row contexts and the keyset of its last row."""
        sql, params = self.select_sql(after, limit, offset)
        rows = self.state.execute(sql, params)
        needed = self._needed()
        base_keys = needed["b"]
        join_keys = [(join.alias, needed[join.alias]) for join in self.joins.values()]
        out = []
        last: list[Any] | None = None
        nj = len(self.joins)
        loads = json.loads
        for row in rows:
            ctx: dict[str, Any] = {
                "b": {
                    "object": self.schema.name,
                    "id": row[0],
                    "created": row[1],
                    "modified": row[2],
                    "deleted": row[3],
                    "data": dict(zip(base_keys, loads(row[4]), strict=False)),
                }
            }
            base = 5
            for i, (alias, keys) in enumerate(join_keys):
                o = base + i * 5
                if row[o + 1] is None:
                    ctx[alias] = None
                else:
                    ctx[alias] = {
                        "object": row[o],
                        "id": row[o + 1],
                        "created": row[o + 2],
                        "modified": row[o + 3],
                        "deleted": 0,
                        "data": dict(zip(keys, loads(row[o + 4]), strict=False)),
                    }
            out.append(ctx)
            last = [row[base + nj * 5 + i] for i in range(len(self.keys))]
        return out, last

    # ---- rendering --------------------------------------------------------------------------
    def render(self, ctx: dict[str, Any], ver: str) -> dict[str, Any]:
        """A query row in REST JSON: ``attributes`` first, parents nested, nulls present."""
        b = ctx["b"]
        rec: dict[str, Any] = {"attributes": _attributes(b["object"], b["id"], ver)}
        for col in self.columns:
            target = rec
            alias = "b"
            broken = False
            for depth, rel in enumerate(col.rels):
                alias = self.joins[col.rels[: depth + 1]].alias
                parent = ctx.get(alias)
                if parent is None:
                    if rel not in target:
                        target[rel] = None
                    broken = True
                    break
                nested = target.get(rel)
                if nested is None:
                    nested = {"attributes": _attributes(parent["object"], parent["id"], ver)}
                    target[rel] = nested
                target = nested
            if broken:
                continue
            target[col.field.name] = field_value(col.field, ctx[alias])
        return rec

    def _csv_converter(self, col: Resolved) -> Callable[[Any], str]:
        """Turn the SQL scalar of one column into its Bulk CSV cell."""
        f = col.field
        t = f.type
        missing_parent = "" if col.rels else "false"
        if t == "boolean":
            return lambda v: missing_parent if v is None else ("true" if v else "false")
        if t in ("double", "currency", "percent"):
            return lambda v: "" if v is None else java_double(float(v))
        if t == "int":
            return lambda v: "" if v is None else str(int(v))
        if t == "datetime" and not f.column:
            return lambda v: "" if v is None else str(v).replace("+0000", "Z")
        return lambda v: "" if v is None else str(v)

    def csv_fetch(
        self, after: list[Any] | None, limit: int
    ) -> tuple[list[list[str]], list[Any] | None]:
        """One page of Bulk CSV rows straight from SQL scalars (no per-row record dicts).

        The bulk path of a large extract: every selected column is one SQL expression (row
        column or single-path ``json_extract``) and a per-column converter makes the cell.
        """
        exprs = []
        for col in self.columns:
            alias = self.joins[col.rels].alias if col.rels else "b"
            f = col.field
            if f.column:
                exprs.append(f"{alias}.{f.column}")
            else:
                exprs.append(f"json_extract({alias}.data, '$.{f.name}')")
        exprs += [f"{k.sql} AS k{i}" for i, k in enumerate(self.keys)]
        where, params = self._base_where()
        ks, kp = self._keyset(after)
        if ks:
            where += f" AND {ks}"
            params = params + kp
        sql = (
            f"SELECT {', '.join(exprs)} FROM {self._from()} WHERE {where} "
            f"ORDER BY {self._order_sql()} LIMIT ?"
        )
        rows = self.state.execute(sql, [*params, limit])
        convert = [self._csv_converter(c) for c in self.columns]
        n = len(convert)
        out = [[fn(v) for fn, v in zip(convert, row, strict=False)] for row in rows]
        last = list(rows[-1][n:]) if rows else None
        return out, last

    def csv_header(self) -> list[str]:
        return [c.name for c in self.columns]


def _attributes(obj: str, rid: str, ver: str) -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/{ver}/sobjects/{obj}/{rid}"}


_ANALYZED: dict[str, int] = {}


def refresh_statistics(state: SandboxState) -> None:
    """Keep SQLite's planner statistics roughly current (sampled ``ANALYZE``, ~1 ms).

    Without statistics SQLite walks an index in ORDER BY order rather than use a selective
    expression index (an external-id lookup then scans the whole object). The generator loads
    data after the emulator starts, so statistics are refreshed whenever the table has grown by
    half since the last run; ``MAX(rowid)`` makes the check O(1).
    """
    key = str(state.path)
    top = int(state.execute("SELECT IFNULL(MAX(rowid), 0) FROM records")[0][0])
    last = _ANALYZED.get(key)
    if last is not None and top <= last * 1.5 + 1000:
        return
    state.execute("PRAGMA analysis_limit = 1000")
    state.execute("ANALYZE records")
    _ANALYZED[key] = top


def compile_query(
    state: SandboxState, text: str, *, include_deleted: bool = False, bulk: bool = False
) -> Plan:
    """Parse and resolve ``text``; raises :class:`ApiError` as a real org would."""
    q = parse(text)
    refresh_statistics(state)
    schema = load_schema(state, q.object)
    if schema is None:
        raise error_at(q.text, q.object_pos, str(invalid_type(q.object).message), "INVALID_TYPE")
    plan = Plan(state, q, schema, include_deleted, state.now())
    if bulk:
        if q.count:
            raise ApiError(400, "API_ERROR", "Aggregate queries are not supported in Bulk API 2.0")
        if q.offset is not None:
            raise ApiError(400, "API_ERROR", "OFFSET is not supported in Bulk API 2.0 queries")
        if q.fields_fn:
            raise ApiError(400, "API_ERROR", "FIELDS() is not supported in Bulk API 2.0 queries")
    if q.offset is not None and q.offset > MAX_OFFSET:
        raise ApiError(
            400,
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"Maximum SOQL offset allowed is {MAX_OFFSET}",
        )
    seen: set[str] = set()
    paths: list[Path] = list(q.fields)
    for fn, pos in q.fields_fn:
        if fn in ("ALL", "CUSTOM") and (q.limit is None or q.limit > 200):
            raise error_at(
                q.text,
                pos,
                "The SOQL FIELDS function must have a LIMIT of at most 200",
            )
        for f in schema.fields:
            if fn == "ALL" or (fn == "CUSTOM") == f.custom:
                paths.append(Path((f.name,), pos))
    for p in paths:
        r = plan.resolve(p)
        if bulk and r.field.is_compound:
            raise ApiError(
                400,
                "API_ERROR",
                f"Selecting compound data not supported in Bulk Query: {r.name}",
            )
        key = r.name.lower()
        if key in seen:
            if q.fields_fn:
                continue
            raise error_at(q.text, p.pos, f"duplicate field selected: {p.text}", "INVALID_FIELD")
        seen.add(key)
        plan.columns.append(r)
    if q.where is not None:
        params: list[Any] = []
        plan.where_sql = plan._cond(q.where, params)
        plan.params = params
    has_id = False
    for item in q.order:
        r = plan.resolve(item.path)
        if r.field.is_compound or r.field.type in ("textarea", "multipicklist"):
            raise plan._bad_field(item.path, f"field '{r.name}' can not be sorted in a query call")
        nulls_first = (not item.desc) if item.nulls is None else item.nulls == "FIRST"
        coll = " COLLATE NOCASE" if r.field.type in STRING_TYPES else ""
        plan.keys.append(SortKey(plan.expr(r), item.desc, nulls_first, coll, plan.nullable(r)))
        if r.field.name == "Id" and not r.rels:
            has_id = True
            break  # Id is unique: later keys never matter
    if not has_id:
        plan.keys.append(SortKey("b.id", False, True, "", False))
    return plan
