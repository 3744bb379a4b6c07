"""Tooling API, the part the hub uses to provision its own writeback fields.

Why: the hub creates fields such as ``Account.Hub_Status__c`` at run time and checks which exist
before writing. ``POST V/tooling/sobjects/CustomField`` with ``{FullName, Metadata}`` creates one
(201; ``DUPLICATE_DEVELOPER_NAME`` if it exists, including the org's shipped custom fields);
``GET V/tooling/query/?q=`` answers SOQL over ``CustomField`` (``Id``, ``DeveloperName``,
``TableEnumOrId``, ``FullName``…), evaluated in Python since it is tiny;
``GET``/``DELETE V/tooling/sobjects/CustomField/{id}`` read or remove one. A created field shows
up in describe, SOQL, writes and Bulk at once (subject to the emulated field-level security, see
:mod:`sandbox.salesforce.describe`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.formats import sf_datetime, sf_new_id
from sandbox.http import Request, Response
from sandbox.salesforce.describe import (
    FieldDef,
    canonical_object,
    load_schema,
    object_names,
)
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.rest import body_json
from sandbox.salesforce.soql import BoolOp, Compare, InList, Like, Not, error_at, parse
from sandbox.salesforce.store import ensure_index
from sandbox.state import SF, SandboxState

#: Metadata API field types -> describe types.
_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Html": "textarea",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "Checkbox": "boolean",
    "Date": "date",
    "DateTime": "datetime",
    "Picklist": "picklist",
    "MultiselectPicklist": "multipicklist",
    "Url": "url",
    "Email": "email",
    "Phone": "phone",
}
_DEV_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c$")
_TOOLING_FIELDS = (
    "Id",
    "DeveloperName",
    "TableEnumOrId",
    "FullName",
    "NamespacePrefix",
    "Description",
    "Length",
    "ManageableState",
    "CreatedDate",
    "LastModifiedDate",
)


def _error(status: int, code: str, message: str, fields: list[str] | None = None) -> ApiError:
    return ApiError(status, code, message, fields if fields is not None else [])


def definition_from_metadata(name: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Translate Tooling ``Metadata`` into the stored field definition (raises ApiError)."""
    mtype = meta.get("type")
    if mtype not in _TYPES:
        raise _error(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            f"Unsupported or missing field type: {mtype!r}",
            ["Metadata"],
        )
    if not meta.get("label"):
        raise _error(
            400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [label]", ["label"]
        )
    dtype = _TYPES[mtype]
    d: dict[str, Any] = {
        "name": name,
        "type": dtype,
        "label": str(meta["label"]),
        "description": meta.get("description") or meta.get("inlineHelpText"),
        "external_id": bool(meta.get("externalId")),
        "unique": bool(meta.get("unique")),
        "required": bool(meta.get("required")),
    }
    if dtype in ("string", "url", "email", "phone"):
        d["length"] = int(meta.get("length") or (255 if dtype != "string" else 0))
        if dtype == "string" and not (1 <= d["length"] <= 255):
            raise _error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Length: Text fields need a length between 1 and 255",
                ["length"],
            )
    elif dtype == "textarea":
        d["length"] = int(meta.get("length") or (255 if mtype == "TextArea" else 32768))
    elif dtype in ("double", "currency", "percent"):
        precision = int(meta.get("precision") or 18)
        scale = int(meta.get("scale") or 0)
        if precision > 18 or scale > precision:
            raise _error(400, "FIELD_INTEGRITY_EXCEPTION", "Invalid precision/scale", ["precision"])
        d["precision"], d["scale"] = precision, scale
    elif dtype == "boolean":
        d["default"] = str(meta.get("defaultValue", "false")).lower() == "true"
    if dtype in ("picklist", "multipicklist"):
        vs = meta.get("valueSet") or {}
        values = ((vs.get("valueSetDefinition") or {}).get("value")) or []
        d["picklist"] = [str(v.get("fullName") or v.get("label")) for v in values]
        d["restricted"] = bool(vs.get("restricted"))
        d["length"] = 255 if dtype == "picklist" else 4099
    return d


class Tooling:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def _all_fields(self) -> list[tuple[str, FieldDef, dict[str, Any] | None]]:
        """Every custom field of the org: (object, field, stored definition or None)."""
        out: list[tuple[str, FieldDef, dict[str, Any] | None]] = []
        for obj in object_names():
            stored = {d["name"]: d for d in self.state.schema(SF, obj, "field")}
            schema = load_schema(self.state, obj)
            assert schema is not None
            for f in schema.fields:
                if f.custom:
                    out.append((obj, f, stored.get(f.name)))
        return out

    def _row(self, obj: str, f: FieldDef, d: dict[str, Any] | None, ver: str) -> dict[str, Any]:
        return {
            "attributes": {
                "type": "CustomField",
                "url": f"/services/data/{ver}/tooling/sobjects/CustomField/{f.tooling_id}",
            },
            "Id": f.tooling_id,
            "DeveloperName": f.name[: -len("__c")],
            "TableEnumOrId": obj,
            "FullName": f"{obj}.{f.name}",
            "NamespacePrefix": None,
            "Description": f.description,
            "Length": f.length,
            "ManageableState": "unmanaged",
            "CreatedDate": (d or {}).get("created"),
            "LastModifiedDate": (d or {}).get("created"),
        }

    def create_field(self, request: Request) -> Response:
        if request.params["type"] != "CustomField":
            raise _error(404, "NOT_FOUND", "The sandbox Tooling API only supports CustomField", [])
        body = body_json(request)
        if not isinstance(body, dict):
            raise _error(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        full = str(body.get("FullName") or "")
        meta = body.get("Metadata")
        obj_name, _, name = full.partition(".")
        obj = canonical_object(obj_name)
        if obj is None:
            raise _error(400, "INVALID_TYPE", f"Cannot find object: {obj_name}", ["FullName"])
        if not _DEV_NAME.match(name) or "__" in name[:-3]:
            raise _error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"Invalid field name '{name}': custom field names end in __c and contain only "
                "letters, digits and single underscores",
                ["FullName"],
            )
        if not isinstance(meta, dict):
            raise _error(400, "REQUIRED_FIELD_MISSING", "Metadata is required", ["Metadata"])
        definition = definition_from_metadata(name, meta)
        schema = load_schema(self.state, obj)
        assert schema is not None
        if any(f.name.lower() == name.lower() for f in schema.fields) or any(
            d["name"].lower() == name.lower() for d in self.state.schema(SF, obj, "field")
        ):
            raise _error(
                400,
                "DUPLICATE_DEVELOPER_NAME",
                f"Duplicate developer name: {name[:-3]} already exists on {obj}",
                ["DeveloperName"],
            )
        fid = sf_new_id(self.state, "00N")
        definition["id"] = fid
        definition["created"] = sf_datetime(self.state.now())
        self.state.add_schema(SF, obj, "field", name, definition)
        if definition["external_id"] or definition["unique"]:
            ensure_index(self.state, obj, name)
        return Response(
            201, {"id": fid, "success": True, "errors": [], "warnings": [], "infos": []}
        )

    def _find(self, fid: str) -> tuple[str, FieldDef, dict[str, Any] | None]:
        for obj, f, d in self._all_fields():
            if f.tooling_id == fid or (len(fid) == 15 and (f.tooling_id or "")[:15] == fid):
                return obj, f, d
        raise _error(404, "NOT_FOUND", "The requested resource does not exist")

    def get_field(self, request: Request) -> Response:
        obj, f, d = self._find(request.params["id"])
        row = self._row(obj, f, d, request.params["ver"])
        row["Metadata"] = {
            "label": f.label,
            "type": next((k for k, v in _TYPES.items() if v == f.type), f.type),
            "length": f.length or None,
            "precision": f.precision or None,
            "scale": f.scale if f.precision else None,
            "externalId": f.external_id,
            "unique": f.unique,
            "required": not f.nillable,
            "description": f.description,
            "valueSet": {
                "restricted": f.restricted_picklist,
                "valueSetDefinition": {
                    "sorted": False,
                    "value": [{"fullName": v, "label": v, "default": False} for v in f.picklist],
                },
            }
            if f.picklist
            else None,
        }
        return Response(200, row)

    def delete_field(self, request: Request) -> Response:
        obj, f, d = self._find(request.params["id"])
        if d is None:
            raise _error(
                400,
                "DELETE_FAILED",
                "The sandbox only deletes fields created through the Tooling API",
            )
        self.state.remove_schema(SF, obj, "field", f.name)
        return Response(204)

    def query(self, request: Request) -> Response:
        text = request.arg("q")
        if not text:
            raise _error(400, "MALFORMED_QUERY", "A query string has to be specified")
        q = parse(text)
        if q.object.lower() != "customfield":
            raise error_at(
                text,
                q.object_pos,
                f"sObject type '{q.object}' is not supported by the sandbox Tooling API",
                "INVALID_TYPE",
            )
        names = {n.lower(): n for n in _TOOLING_FIELDS}
        selected: list[str] = []
        for p in q.fields:
            key = p.text.lower()
            if key not in names:
                raise error_at(
                    text,
                    p.pos,
                    f"No such column '{p.text}' on entity 'CustomField'",
                    "INVALID_FIELD",
                )
            selected.append(names[key])
        ver = request.params["ver"]
        rows = [self._row(o, f, d, ver) for o, f, d in self._all_fields()]
        if q.where is not None:
            rows = [r for r in rows if _matches(q.where, r, names, text)]
        for item in reversed(q.order):
            sort_key = names.get(item.path.text.lower())
            if sort_key is None:
                raise error_at(
                    text, item.path.pos, f"No such column '{item.path.text}'", "INVALID_FIELD"
                )
            rows.sort(key=_sorter(sort_key), reverse=item.desc)
        if q.offset:
            rows = rows[q.offset :]
        if q.limit is not None:
            rows = rows[: q.limit]
        if q.count:
            records: list[dict[str, Any]] = []
        else:
            records = [{"attributes": r["attributes"], **{k: r[k] for k in selected}} for r in rows]
        return Response(
            200,
            {
                "size": len(rows),
                "totalSize": len(rows),
                "done": True,
                "queryLocator": None,
                "entityTypeName": "CustomField",
                "records": records,
            },
        )


def _sorter(key: str) -> Callable[[dict[str, Any]], tuple[bool, str]]:
    return lambda r: (r[key] is None, str(r[key] or "").lower())


def _matches(node: Any, row: dict[str, Any], names: dict[str, str], text: str) -> bool:
    """Evaluate a tooling WHERE clause on one row (strings compare case-insensitively)."""
    if isinstance(node, BoolOp):
        results = (_matches(i, row, names, text) for i in node.items)
        return all(results) if node.op == "AND" else any(results)
    if isinstance(node, Not):
        return not _matches(node.item, row, names, text)
    key = names.get(node.path.text.lower())
    if key is None:
        raise error_at(text, node.path.pos, f"No such column '{node.path.text}'", "INVALID_FIELD")
    value = row[key]
    norm = str(value).lower() if value is not None else None
    if isinstance(node, Compare):
        lit = None if node.value.value is None else str(node.value.value).lower()
        if node.op == "=":
            return norm == lit
        if node.op == "!=":
            return norm != lit
        if norm is None or lit is None:
            return False
        return {"<": norm < lit, "<=": norm <= lit, ">": norm > lit, ">=": norm >= lit}[node.op]
    if isinstance(node, InList):
        options = {None if v.value is None else str(v.value).lower() for v in node.values}
        return (norm in options) != node.negate
    if isinstance(node, Like):
        pattern = re.escape(node.pattern.raw.lower())
        pattern = pattern.replace("%", ".*").replace("_", ".")
        return norm is not None and re.fullmatch(pattern, norm, re.S) is not None
    return False
