"""sObject Collections: create/update/upsert/delete/retrieve up to 200 records per call.

Why the care with results: Collections answer HTTP 200 even when records fail; each result says
``success`` and carries ``errors[{statusCode, message, fields}]`` (no ``id`` on failures). With
``allOrNone: true`` one failure rolls everything back and every other record reports
``ALL_OR_NONE_OPERATION_ROLLED_BACK``. The hub's writeback records each row's outcome from these,
so they must be exact. The whole request runs in one SQLite transaction: atomic for
``allOrNone``, and one commit instead of 200 for speed.
"""

from __future__ import annotations

from typing import Any

from sandbox.http import Request, Response
from sandbox.salesforce.describe import FieldDef, ObjectSchema, load_schema
from sandbox.salesforce.errors import ApiError, RecordError, json_parser_error
from sandbox.salesforce.rest import body_json, render_record, schema_or_404
from sandbox.salesforce.store import Store, ensure_index
from sandbox.state import SandboxState

MAX_RECORDS = 200
MAX_RETRIEVE = 2000

_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}


class _Rollback(Exception):
    """Raised inside the transaction to undo an ``allOrNone`` request."""


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _fail(exc: RecordError) -> dict[str, Any]:
    return {"success": False, "errors": [exc.item()]}


class Collections:
    def __init__(self, state: SandboxState, store: Store) -> None:
        self.state = state
        self.store = store

    # ---- request parsing ----------------------------------------------------------------------
    def _records(self, request: Request) -> tuple[list[Any], bool]:
        body = body_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise json_parser_error("Expected a JSON object with a 'records' array")
        records = body["records"]
        if len(records) > MAX_RECORDS:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"Maximum number of records allowed is {MAX_RECORDS}",
            )
        if not records:
            raise ApiError(400, "INVALID_FIELD", "No records provided")
        return records, _truthy(body.get("allOrNone", False))

    @staticmethod
    def _type_of(record: Any) -> str | None:
        if not isinstance(record, dict):
            return None
        attrs = record.get("attributes")
        if isinstance(attrs, dict) and isinstance(attrs.get("type"), str):
            return attrs["type"]
        return None

    def _schema_for(self, record: Any, cache: dict[str, ObjectSchema]) -> ObjectSchema:
        name = self._type_of(record)
        if name is None:
            raise ApiError(
                400,
                "INVALID_TYPE",
                "Each record in the request must have an attributes.type property",
            )
        key = name.lower()
        if key not in cache:
            schema = load_schema(self.state, name)
            if schema is None:
                raise ApiError(
                    400,
                    "INVALID_TYPE",
                    f"sObject type '{name}' is not supported.",
                )
            cache[key] = schema
        return cache[key]

    def _run(self, items: list[Any], all_or_none: bool, work: Any) -> Response:
        """Apply ``work(index, item) -> result dict`` to each item in one transaction."""
        results: list[dict[str, Any]] = []
        try:
            with self.state.transaction():
                for i, item in enumerate(items):
                    try:
                        results.append(work(i, item))
                    except RecordError as exc:
                        results.append(_fail(exc))
                if all_or_none and any(not r["success"] for r in results):
                    raise _Rollback()
        except _Rollback:
            results = [
                r if not r["success"] else {"success": False, "errors": [dict(_ROLLED_BACK)]}
                for r in results
            ]
            # a rolled-back record keeps no id, like the real API
        return Response(200, results)

    # ---- handlers -----------------------------------------------------------------------------
    def create(self, request: Request) -> Response:
        records, all_or_none = self._records(request)
        cache: dict[str, ObjectSchema] = {}
        prepared = []
        for rec in records:
            schema = self._schema_for(rec, cache)
            prepared.append((schema, self.store.prepare(schema, rec, insert=True)))

        def work(i: int, item: tuple[ObjectSchema, dict[str, Any]]) -> dict[str, Any]:
            schema, values = item
            rid = self.store.create(schema, values, index=i)
            return {"id": rid, "success": True, "errors": []}

        return self._run(prepared, all_or_none, work)

    def update(self, request: Request) -> Response:
        records, all_or_none = self._records(request)
        cache: dict[str, ObjectSchema] = {}
        prepared = []
        for rec in records:
            schema = self._schema_for(rec, cache)
            rid = rec.get("id") or rec.get("Id")
            prepared.append((schema, rid, self.store.prepare(schema, rec, insert=False)))

        def work(i: int, item: tuple[ObjectSchema, Any, dict[str, Any]]) -> dict[str, Any]:
            schema, rid, values = item
            if not isinstance(rid, str) or not rid:
                raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            self.store.update(
                schema, rid, values, index=i, missing_code="INVALID_CROSS_REFERENCE_KEY"
            )
            rec = self.store.get(schema.name, rid)
            return {"id": rec["id"] if rec else rid, "success": True, "errors": []}

        return self._run(prepared, all_or_none, work)

    def upsert(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        name = request.params["field"]
        ext: FieldDef | None = schema.field(name)
        if ext is None or not (ext.external_id or ext.name == "Id"):
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Field name provided, {name} is not an External ID or indexed field for "
                f"{schema.name}",
            )
        if ext.external_id:
            ensure_index(self.state, schema.name, ext.name)
        records, all_or_none = self._records(request)
        prepared = []
        for rec in records:
            if not isinstance(rec, dict) or next(iter(rec), None) != "attributes":
                raise json_parser_error(
                    "The 'attributes' property must be the first property of each record"
                )
            t = self._type_of(rec)
            if t is None or t.lower() != schema.name.lower():
                raise ApiError(400, "INVALID_TYPE", f"Record type must be {schema.name}")
            key = next((v for k, v in rec.items() if k.lower() == ext.name.lower()), None)
            values = self.store.prepare(schema, rec, insert=False)
            values.pop(ext.name, None)
            prepared.append((key, values))

        def work(i: int, item: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
            key, values = item
            if key in (None, ""):
                raise RecordError("MISSING_ARGUMENT", f"{ext.name} not specified", [ext.name])
            rid, created = self.store.upsert(schema, ext, key, values, index=i)
            return {"id": rid, "success": True, "errors": [], "created": created}

        return self._run(prepared, all_or_none, work)

    def delete(self, request: Request) -> Response:
        ids = request.arg_list("ids")
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_RECORDS:
            raise ApiError(
                400, "EXCEEDED_ID_LIMIT", f"Maximum number of ids allowed is {MAX_RECORDS}"
            )
        all_or_none = _truthy(request.arg("allOrNone", "false"))

        def work(i: int, rid: str) -> dict[str, Any]:
            self.store.delete(rid, index=i, missing_code="INVALID_CROSS_REFERENCE_KEY")
            return {"id": rid, "success": True, "errors": []}

        return self._run(ids, all_or_none, work)

    def retrieve(self, request: Request) -> Response:
        schema = schema_or_404(self.state, request.params["obj"])
        if request.method == "POST":
            body = body_json(request) or {}
            if not isinstance(body, dict):
                raise json_parser_error("Expected a JSON object")
            ids = list(body.get("ids") or [])
            fields = list(body.get("fields") or [])
        else:
            ids = request.arg_list("ids")
            fields = request.arg_list("fields")
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_RETRIEVE:
            raise ApiError(
                400, "EXCEEDED_ID_LIMIT", f"Maximum number of ids allowed is {MAX_RETRIEVE}"
            )
        ver = request.params["ver"]
        out: list[dict[str, Any] | None] = []
        for rid in ids:
            row = self.store.get(schema.name, str(rid)) if len(str(rid)) in (15, 18) else None
            out.append(render_record(schema, row, ver, fields or None) if row else None)
        return Response(200, out)
