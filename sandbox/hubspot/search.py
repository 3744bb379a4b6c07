"""The CRM search API (``POST /crm/v3/objects/{objectType}/search``), translated to SQLite.

Why a translator rather than filtering in Python: the ``large`` profile holds 100,000 companies
and about a million emails, and the hub's incremental sync searches them by
``hs_lastmodifieddate`` windows sorted by ``hs_object_id``. Those two properties map onto the
``modified`` and ``id`` columns (numeric comparison through ``CAST(id AS INTEGER)``), so such a
query is an index range scan; other properties are read with ``json_extract`` from the record's
JSON.

HubSpot's search semantics that the hub must survive, and that this module therefore enforces:

- filter groups are OR-ed, filters inside a group AND-ed; at most 5 groups, 10 filters per group
  and 25 filters in all (400 beyond);
- one sort at most; ``limit`` at most 200; ``after`` is a numeric *offset* string and
  ``after + limit`` may not exceed 10,000 (400 "…10000…"): paging deep into a large result is
  impossible, the caller must narrow the window instead;
- only the default properties come back unless ``properties`` names others;
- the index lags: a record written less than ``search_lag_seconds`` (sandbox clock) ago is not
  visible yet. The emulator keeps no old versions, so an *updated* record is invisible during
  the lag too, rather than showing its previous state as HubSpot may; both break a sync that
  moves its cursor up to "now", which is the point.

Token matching (``CONTAINS_TOKEN``) is approximated by a case-insensitive substring match, or a
whole-value pattern match when the value contains ``*`` wildcards.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from sandbox.catalog import hs_lastmodified_property
from sandbox.http import Request, Response
from sandbox.hubspot.common import (
    HubSpotError,
    json_body,
    object_type,
    render_object,
    row_dict,
    to_date_string,
    to_datetime_string,
)
from sandbox.hubspot.properties import definitions
from sandbox.state import HS, SandboxState, fmt_ts

MAX_LIMIT = 200
MAX_RESULTS = 10_000
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
)
#: Properties the free-text ``query`` looks in (HubSpot searches a fixed set per object).
QUERY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("name", "domain", "website", "phone"),
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "deals": ("dealname",),
    "tickets": ("subject", "content"),
    "emails": ("hs_email_subject",),
}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _bad(message: str, **context: list[str]) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, context=context or None)


class _Property:
    """How one property is read and compared in SQL: expression plus value kind."""

    def __init__(self, ot: str, name: str, defs: dict[str, dict[str, Any]]) -> None:
        self.name = name
        if name == "hs_object_id":
            self.sql, self.kind = "CAST(id AS INTEGER)", "id"
        elif name == "createdate":
            self.sql, self.kind = "created", "datetime"
        elif name == hs_lastmodified_property(ot):
            self.sql, self.kind = "modified", "datetime"
        else:
            definition = defs.get(name)
            if definition is None or not _SAFE_NAME.match(name):
                raise _bad(f"Property {name} does not exist on {ot}", propertyName=[name])
            raw = f"json_extract(data, '$.\"{name}\"')"
            kind = definition["type"]
            if kind == "number":
                self.sql, self.kind = f"CAST(NULLIF({raw}, '') AS REAL)", "number"
            elif kind in ("datetime", "date", "bool"):
                self.sql, self.kind = f"NULLIF({raw}, '')", kind
            else:
                self.sql, self.kind = f"LOWER(NULLIF({raw}, ''))", "string"

    def value(self, raw: Any) -> Any:
        """A filter value converted to what the SQL expression compares against."""
        if raw is None:
            raise _bad(f"A value is required for a filter on {self.name}")
        text = str(raw)
        try:
            if self.kind == "id":
                return int(text)
            if self.kind == "number":
                return float(text)
        except ValueError as exc:
            raise _bad(f"{text} is not a valid number for {self.name}") from exc
        if self.kind == "datetime":
            converted = to_datetime_string(text)
        elif self.kind == "date":
            converted = to_date_string(text)
        else:
            converted = text.lower()
        if converted is None:
            raise _bad(f"{text} is not a valid date for {self.name}")
        return converted


def _filter_sql(prop: _Property, flt: dict[str, Any]) -> tuple[str, list[Any]]:
    op = flt.get("operator")
    e = prop.sql
    if op == "HAS_PROPERTY":
        return f"({e} IS NOT NULL)", []
    if op == "NOT_HAS_PROPERTY":
        return f"({e} IS NULL)", []
    if op in ("IN", "NOT_IN"):
        values = flt.get("values")
        if not isinstance(values, list) or not values:
            raise _bad(f"{op} on {prop.name} needs a non-empty values list")
        converted = [prop.value(v) for v in values]
        marks = ",".join("?" * len(converted))
        if op == "IN":
            return f"({e} IN ({marks}))", converted
        return f"({e} IS NULL OR {e} NOT IN ({marks}))", converted
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(flt.get("value") or "").lower()
        escaped = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = escaped.replace("*", "%") if "*" in token else f"%{escaped}%"
        text = f"LOWER(CAST({e} AS TEXT))"
        if op == "CONTAINS_TOKEN":
            return f"({text} LIKE ? ESCAPE '\\')", [pattern]
        return f"({e} IS NULL OR {text} NOT LIKE ? ESCAPE '\\')", [pattern]
    if op == "BETWEEN":
        low, high = prop.value(flt.get("value")), prop.value(flt.get("highValue"))
        return f"({e} BETWEEN ? AND ?)", [low, high]
    value = prop.value(flt.get("value"))
    if op == "NEQ":
        return f"({e} IS NULL OR {e} != ?)", [value]
    sym = {"EQ": "=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}[str(op)]
    return f"({e} {sym} ?)", [value]


def _where(
    ot: str, body: dict[str, Any], defs: dict[str, dict[str, Any]]
) -> tuple[list[str], list[Any]]:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise _bad("filterGroups must be a list")
    if len(groups) > MAX_GROUPS:
        raise _bad(f"Too many filter groups: {len(groups)} given, at most {MAX_GROUPS} allowed.")
    total = 0
    group_sql: list[str] = []
    params: list[Any] = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise _bad("Each filter group needs a filters list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise _bad(
                f"Too many filters in a group: {len(filters)} given, at most "
                f"{MAX_FILTERS_PER_GROUP} allowed."
            )
        total += len(filters)
        parts = []
        for flt in filters:
            if not isinstance(flt, dict) or flt.get("operator") not in OPERATORS:
                raise _bad(f"Invalid filter operator: {flt!r:.80}")
            if not flt.get("propertyName"):
                raise _bad("Each filter needs a propertyName")
            sql, values = _filter_sql(_Property(ot, str(flt["propertyName"]), defs), flt)
            parts.append(sql)
            params.extend(values)
        if parts:
            group_sql.append("(" + " AND ".join(parts) + ")")
    if total > MAX_FILTERS:
        raise _bad(f"Too many filters: {total} given, at most {MAX_FILTERS} allowed in total.")
    clauses = ["(" + " OR ".join(group_sql) + ")"] if group_sql else []
    query = body.get("query")
    if query:
        needle = f"%{str(query).lower()}%"
        fields = [f"LOWER(json_extract(data, '$.\"{p}\"')) LIKE ?" for p in QUERY_PROPERTIES[ot]]
        clauses.append("(" + " OR ".join([*fields, "id = ?"]) + ")")
        params.extend([needle] * len(QUERY_PROPERTIES[ot]) + [str(query)])
    return clauses, params


def _order(ot: str, body: dict[str, Any], defs: dict[str, dict[str, Any]]) -> str:
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise _bad("sorts must be a list")
    if len(sorts) > 1:
        raise _bad("Only one sort is allowed.")
    if not sorts:
        return "CAST(id AS INTEGER) ASC"
    sort = sorts[0]
    if isinstance(sort, str):
        descending = sort.startswith("-")
        name = sort.lstrip("-")
    elif isinstance(sort, dict) and sort.get("propertyName"):
        name = str(sort["propertyName"])
        direction = str(sort.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise _bad(f"Invalid sort direction {direction}")
        descending = direction == "DESCENDING"
    else:
        raise _bad("Invalid sort")
    prop = _Property(ot, name, defs)
    direction_sql = "DESC" if descending else "ASC"
    if prop.kind == "id":
        return f"CAST(id AS INTEGER) {direction_sql}"
    return f"{prop.sql} {direction_sql}, CAST(id AS INTEGER) {direction_sql}"


def _int(body: dict[str, Any], key: str, default: int) -> int:
    raw = body.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(str(raw))
    except ValueError as exc:
        raise _bad(f"{key} must be an integer, got {str(raw)[:40]}") from exc


#: (state, object type) -> (live records, monotonic time counted). The count only chooses a
#: query plan (the results are the same either way), so a count up to a minute old will do; it
#: read the whole id index on every search page (780,000 contacts on `large`).
_LIVE_COUNTS: dict[tuple[int, str], tuple[int, float]] = {}
_LIVE_COUNT_SECONDS = 60.0


def _live_count(state: SandboxState, ot: str) -> int:
    key = (id(state), ot)
    cached = _LIVE_COUNTS.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[1] < _LIVE_COUNT_SECONDS:
        return cached[0]
    live = int(
        state.execute(
            "SELECT COUNT(*) FROM records INDEXED BY records_hs_id "
            "WHERE crm=? AND object=? AND deleted=0",
            (HS, ot),
        )[0][0]
    )
    _LIVE_COUNTS[key] = (live, now)
    return live


def _id_order_hint(
    state: SandboxState, ot: str, order: str, clauses: list[str], total: int, needed: int
) -> str:
    """Pick the plan for id-sorted searches that SQLite (without statistics) gets wrong.

    With a broad ``hs_lastmodifieddate`` window sorted by ``hs_object_id`` SQLite walks the
    modified index and sorts every match (seconds on a million emails). Walking the numeric-id
    index instead and filtering as it goes reads about ``needed * live / total`` rows; take it
    whenever that is fewer than the ``total`` rows the sort would read.
    """
    if not clauses or not total or not order.startswith("CAST(id AS INTEGER)"):
        return ""
    live = _live_count(state, ot)
    return "INDEXED BY records_hs_id" if needed * live < total * total else ""


def search(state: SandboxState, request: Request, lag_seconds: float) -> Response:
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    body = json_body(request)
    limit = _int(body, "limit", 10)
    after = _int(body, "after", 0)
    if limit < 0 or limit > MAX_LIMIT:
        raise _bad(f"limit must be between 0 and {MAX_LIMIT}, got {limit}", limit=[str(limit)])
    if after < 0:
        raise _bad("after must not be negative")
    if after + limit > MAX_RESULTS:
        raise _bad(
            f"There was a problem with the request. Search results are limited to the first "
            f"{MAX_RESULTS} records: after ({after}) + limit ({limit}) exceeds {MAX_RESULTS}.",
            after=[str(after)],
        )
    clauses, params = _where(ot, body, defs)
    order = _order(ot, body, defs)
    names = body.get("properties")
    wanted = [n for n in dict.fromkeys(str(x) for x in names) if n in defs] if names else None
    base = ["crm=?", "object=?", "deleted=0"]
    base_params: list[Any] = [HS, ot]
    if lag_seconds > 0:
        base.append("modified <= ?")
        base_params.append(fmt_ts(state.now() - dt.timedelta(seconds=lag_seconds)))
    where = " AND ".join(base + clauses)
    all_params = base_params + params
    total = int(state.execute(f"SELECT COUNT(*) FROM records WHERE {where}", all_params)[0][0])
    hint = _id_order_hint(state, ot, order, clauses, total, after + limit)
    rows = state.execute(
        f"SELECT * FROM records {hint} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*all_params, limit, after],
    )
    results = [render_object(ot, row_dict(r), wanted) for r in rows]
    payload: dict[str, Any] = {"total": total, "results": results}
    if rows and after + len(rows) < total:
        payload["paging"] = {"next": {"after": str(after + len(rows))}}
    return Response(200, payload)
