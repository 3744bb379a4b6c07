"""REST resources: query/queryAll with cursors, sObject rows, describe, updated/deleted, limits
(and record counts).

Why cursors live in the state: ``nextRecordsUrl`` must keep working across a sandbox restart and
from any server thread, and a cursor over 100,000 Accounts must not hold 100,000 rows. A cursor
stores the SOQL text, the total, the page size and, per position already served, the keyset of
the last row served (see :mod:`sandbox.salesforce.query`); each page re-runs the query after
that keyset. Cursors expire after ``query_locator_ttl_seconds`` (default 900, as real locators
expire after 15 idle minutes) with 400 ``INVALID_QUERY_LOCATOR``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import urllib.parse
from typing import Any

from sandbox.config import get_config
from sandbox.formats import sf_datetime, sf_make_id
from sandbox.http import Request, Response
from sandbox.salesforce import limits
from sandbox.salesforce.describe import (
    ObjectSchema,
    describe_global,
    describe_object,
    load_schema,
    object_metadata,
)
from sandbox.salesforce.errors import (
    ApiError,
    RecordError,
    invalid_type,
    json_parser_error,
    not_found,
)
from sandbox.salesforce.query import compile_query
from sandbox.salesforce.store import Store, ensure_index
from sandbox.salesforce.values import field_value
from sandbox.state import SF, SandboxState, fmt_ts, parse_ts

API_VERSIONS = ("57.0", "58.0", "59.0", "60.0", "61.0", "62.0")


def body_json(request: Request) -> Any:
    """The JSON body, or 400 ``JSON_PARSER_ERROR`` like the real deserialiser."""
    if not request.body:
        return None
    try:
        return json.loads(request.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise json_parser_error(f"Unexpected character in JSON body: {exc}") from exc


def schema_or_404(state: SandboxState, name: str) -> ObjectSchema:
    schema = load_schema(state, name)
    if schema is None:
        raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
    return schema


def render_record(
    schema: ObjectSchema, row: dict[str, Any], ver: str, fields: list[str] | None = None
) -> dict[str, Any]:
    """A full sObject as ``GET V/sobjects/{obj}/{id}`` sends it: every field, nulls included."""
    out: dict[str, Any] = {
        "attributes": {
            "type": schema.name,
            "url": f"/services/data/{ver}/sobjects/{schema.name}/{row['id']}",
        }
    }
    chosen = schema.fields
    if fields:
        chosen = []
        for name in fields:
            f = schema.field(name)
            if f is None:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{name}' on entity '{schema.name}'."
                )
            chosen.append(f)
    for f in chosen:
        out[f.name] = field_value(f, row)
    return out


def _floor_minute(value: dt.datetime) -> dt.datetime:
    return value.replace(second=0, microsecond=0)


class RestApi:
    """Handlers of the core REST API; registered on the app's router."""

    def __init__(self, state: SandboxState, store: Store) -> None:
        self.state = state
        self.store = store

    # ---- discovery ----------------------------------------------------------------------------
    def versions(self, request: Request) -> Response:
        return Response(
            200,
            [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS],
        )

    def resources(self, request: Request) -> Response:
        ver = request.params["ver"]
        base = f"/services/data/{ver}"
        names = ("composite", "jobs", "limits", "query", "queryAll", "sobjects", "tooling")
        return Response(200, {n: f"{base}/{n}" for n in names})

    def limits(self, request: Request) -> Response:
        return Response(200, limits.limits_body(self.state))

    def record_count(self, request: Request) -> Response:
        body = limits.record_count_body(self.state, request.params["ver"], request.arg("sObjects"))
        return Response(200, body)

    # ---- query ----------------------------------------------------------------------------
    def _batch_size(self, request: Request) -> int:
        default = int(get_config(self.state, SF).get("default_batch_size", 2000))
        m = re.search(r"batchSize\s*=\s*(\d+)", request.headers.get("sforce-query-options", ""))
        size = int(m.group(1)) if m else default
        return max(200, min(2000, size))

    def query(self, request: Request) -> Response:
        include_deleted = request.path.rstrip("/").endswith("queryAll")
        text = request.arg("q")
        if text is None:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        plan = compile_query(self.state, text, include_deleted=include_deleted)
        total = plan.count()
        if plan.query.count:
            return Response(200, {"totalSize": total, "done": True, "records": []})
        batch = self._batch_size(request)
        ver = request.params["ver"]
        rows, last = plan.fetch(None, min(batch, total) or 1, plan.query.offset or 0)
        body: dict[str, Any] = {
            "totalSize": total,
            "done": True,
            "records": [plan.render(r, ver) for r in rows],
        }
        if len(rows) < total and len(rows) == batch and last is not None:
            locator = sf_make_id("01g", secrets.randbelow(62**10), pod="Dy")
            self._save_cursor(
                locator,
                {
                    "soql": text,
                    "all": include_deleted,
                    "total": total,
                    "batch": batch,
                    "pos": {str(len(rows)): last},
                },
            )
            endpoint = "queryAll" if include_deleted else "query"
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/{ver}/{endpoint}/{locator}-{len(rows)}"
        return Response(200, body)

    def query_more(self, request: Request) -> Response:
        ver = request.params["ver"]
        locator, _, pos_text = request.params["locator"].rpartition("-")
        cursor = self._load_cursor(locator)
        if cursor is None or pos_text not in cursor["pos"]:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        pos = int(pos_text)
        plan = compile_query(self.state, cursor["soql"], include_deleted=cursor["all"])
        total = int(cursor["total"])
        batch = int(cursor["batch"])
        want = min(batch, total - pos)
        rows, last = plan.fetch(cursor["pos"][pos_text], max(want, 1), 0)
        rows = rows[:want] if want > 0 else []
        served = pos + len(rows)
        body: dict[str, Any] = {
            "totalSize": total,
            "done": True,
            "records": [plan.render(r, ver) for r in rows],
        }
        if served < total and len(rows) == batch and last is not None:
            cursor["pos"][str(served)] = last
            self._save_cursor(locator, cursor)
            endpoint = "queryAll" if cursor["all"] else "query"
            body["done"] = False
            body["nextRecordsUrl"] = f"/services/data/{ver}/{endpoint}/{locator}-{served}"
        else:
            self._save_cursor(locator, cursor)  # keep it: a retried last page must still work
        return Response(200, body)

    def _save_cursor(self, locator: str, cursor: dict[str, Any]) -> None:
        now = self.state.now()
        cursor["touched"] = fmt_ts(now)
        ttl = float(get_config(self.state, SF).get("query_locator_ttl_seconds", 900))
        self.state.set_json(f"sf:cursor:{locator}", cursor)
        # forget cursors idle for longer than their lifetime
        self.state.execute(
            "DELETE FROM meta WHERE key LIKE 'sf:cursor:%' AND "
            "json_extract(value, '$.touched') < ?",
            (fmt_ts(now - dt.timedelta(seconds=ttl)),),
        )

    def _load_cursor(self, locator: str) -> dict[str, Any] | None:
        if not re.fullmatch(r"[A-Za-z0-9]{15,18}", locator):
            return None
        cursor = self.state.get_json(f"sf:cursor:{locator}", None)
        if cursor is None:
            return None
        ttl = float(get_config(self.state, SF).get("query_locator_ttl_seconds", 900))
        if parse_ts(cursor["touched"]) < self.state.now() - dt.timedelta(seconds=ttl):
            return None
        return dict(cursor)

    # ---- describe -------------------------------------------------------------------------
    def describe_global(self, request: Request) -> Response:
        return Response(200, describe_global(request.params["ver"]))

    def describe(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        return Response(200, describe_object(schema, request.params["ver"]))

    def metadata(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        return Response(200, object_metadata(schema, request.params["ver"]))

    # ---- rows -----------------------------------------------------------------------------
    def get(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        rid = request.params["id"]
        row = (
            self.store.get(schema.name, rid, include_deleted=True) if len(rid) in (15, 18) else None
        )
        if row is None:
            raise not_found()
        if row["deleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        fields = request.arg_list("fields") or None
        return Response(200, render_record(schema, row, request.params["ver"], fields))

    def create(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        body = body_json(request)
        if not isinstance(body, dict):
            raise json_parser_error("Expected a JSON object for the record")
        values = self.store.prepare(schema, body, insert=True)
        try:
            with self.state.transaction():
                rid = self.store.create(schema, values)
        except RecordError as exc:
            raise exc.as_api_error() from exc
        return Response(201, {"id": rid, "success": True, "errors": []})

    def update(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        body = body_json(request)
        if not isinstance(body, dict):
            raise json_parser_error("Expected a JSON object for the record")
        values = self.store.prepare(schema, body, insert=False)
        try:
            with self.state.transaction():
                self.store.update(schema, request.params["id"], values)
        except RecordError as exc:
            raise exc.as_api_error() from exc
        return Response(204)

    def delete(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        try:
            with self.state.transaction():
                self.store.delete(request.params["id"], obj=schema.name)
        except RecordError as exc:
            raise exc.as_api_error() from exc
        return Response(204)

    def _ext_target(self, request: Request) -> tuple[ObjectSchema, Any, str]:
        """(schema, external-id field, value) of ``V/sobjects/{obj}/{field}/{value}``.

        The value is taken from the raw path and decoded once, as a real server does: a ``+``
        from ``quote_plus`` stays a plus, ``%2F`` becomes a slash.
        """
        schema = schema_or_404(self.state, request.params["obj"])
        raw = urllib.parse.urlsplit(request.raw_path).path
        value = urllib.parse.unquote(raw.split("/", 7)[7]) if raw.count("/") >= 7 else ""
        name = request.params["field"]
        f = schema.field(name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
            )
        if f.external_id:
            ensure_index(self.state, schema.name, f.name)
        return schema, f, value

    def get_by_ext(self, request: Request) -> Response:
        schema, f, value = self._ext_target(request)
        ver = request.params["ver"]
        ids = self.store.find_by_field(schema, f, value)
        if not ids:
            raise not_found()
        if len(ids) > 1:
            return Response(300, [f"/services/data/{ver}/sobjects/{schema.name}/{i}" for i in ids])
        row = self.store.get(schema.name, ids[0])
        assert row is not None
        return Response(200, render_record(schema, row, ver))

    def upsert(self, request: Request) -> Response:
        schema, f, value = self._ext_target(request)
        ver = request.params["ver"]
        body = body_json(request) or {}
        if not isinstance(body, dict):
            raise json_parser_error("Expected a JSON object for the record")
        values = self.store.prepare(schema, body, insert=False)
        values.pop(f.name, None)
        try:
            with self.state.transaction():
                rid, created = self.store.upsert(schema, f, value, values)
        except RecordError as exc:
            if exc.status == 300:
                ids = self.store.find_by_field(schema, f, value)
                return Response(
                    300, [f"/services/data/{ver}/sobjects/{schema.name}/{i}" for i in ids]
                )
            raise exc.as_api_error() from exc
        body_out = {"id": rid, "success": True, "errors": [], "created": created}
        return Response(201 if created else 200, body_out)

    # ---- replication ------------------------------------------------------------------------
    def _window(self, request: Request) -> tuple[dt.datetime, dt.datetime]:
        start_s, end_s = request.arg("start"), request.arg("end")
        if not start_s or not end_s:
            raise ApiError(400, "MISSING_ARGUMENT", "Both start and end must be specified")
        try:
            start, end = parse_ts(start_s), parse_ts(end_s)
        except ValueError as exc:
            raise ApiError(400, "INVALID_REPLICATION_DATE", f"invalid date: {exc}") from exc
        now = self.state.now()
        if end < start:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "EndDate can not be before StartDate")
        if start < now - dt.timedelta(days=30):
            raise ApiError(
                400, "INVALID_REPLICATION_DATE", "startDate can not be more than 30 days ago"
            )
        return _floor_minute(start), _floor_minute(min(end, now))

    def updated(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        start, end = self._window(request)
        rows = self.state.execute(
            f"SELECT id FROM records WHERE crm = '{SF}' AND object = ? AND deleted = 0 AND "
            "modified >= ? AND modified < ? ORDER BY modified, id",
            (schema.name, fmt_ts(start), fmt_ts(end)),
        )
        return Response(200, {"ids": [r[0] for r in rows], "latestDateCovered": sf_datetime(end)})

    def deleted(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        start, end = self._window(request)
        days = float(get_config(self.state, SF).get("recycle_bin_days", 15))
        earliest = _floor_minute(self.state.now() - dt.timedelta(days=days))
        lower = max(start, earliest)
        rows = self.state.execute(
            f"SELECT id, IFNULL(deleted_at, modified) AS d FROM records WHERE crm = '{SF}' AND "
            "object = ? AND deleted = 1 AND IFNULL(deleted_at, modified) >= ? AND "
            "IFNULL(deleted_at, modified) < ? ORDER BY d, id",
            (schema.name, fmt_ts(lower), fmt_ts(end)),
        )
        return Response(
            200,
            {
                "deletedRecords": [
                    {"id": r[0], "deletedDate": sf_datetime(parse_ts(r[1]))} for r in rows
                ],
                "earliestDateAvailable": sf_datetime(earliest),
                "latestDateCovered": sf_datetime(end),
            },
        )


def unknown_object(name: str) -> ApiError:
    return invalid_type(name)
