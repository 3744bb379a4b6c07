"""The properties API (``/crm/v3/properties/{objectType}``) and the property definitions behind it.

Why it matters to the hub: the hub provisions its own writeback properties (a property group plus
a handful of properties on companies) through this API, and the objects API validates every write
against the same definitions: an unknown property is ``PROPERTY_DOESNT_EXIST``, a bad number is
``INVALID_INTEGER``, an unknown option ``INVALID_OPTION``. So definitions come from one place:
``sandbox.catalog.HS_OBJECTS`` (what a portal ships with, plus the typical custom fields) merged
with the properties and groups created at run time (``state.add_schema``). A run-time definition
with the same name as a catalogue one overrides it (used for updates and archiving of custom
catalogue properties), so the catalogue itself never changes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.catalog import HsProperty, hs_properties
from sandbox.http import Request, Response
from sandbox.hubspot.common import HubSpotError, json_body, now_iso, object_type, parse_bool
from sandbox.state import HS, SandboxState

#: When the emulated portal was created: the ``createdAt`` of every built-in definition.
PORTAL_CREATED = "2019-08-06T02:41:08.012Z"

VALID_TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
VALID_FIELD_TYPES = (
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")

_GROUP_LABELS = {
    "companyinformation": "Company information",
    "contactinformation": "Contact information",
    "dealinformation": "Deal information",
    "ticketinformation": "Ticket information",
    "emailinformation": "Email information",
    "salesforceinformation": "Salesforce information",
}


def _catalog_definition(prop: HsProperty, order: int) -> dict[str, Any]:
    """A catalogue property rendered as ``ModelProperty`` (all required keys present)."""
    definition: dict[str, Any] = {
        "name": prop.name,
        "label": prop.label or prop.name,
        "type": prop.type,
        "fieldType": prop.field_type,
        "description": prop.description,
        "groupName": prop.group,
        "options": [
            {"label": _option_label(v), "value": v, "displayOrder": i, "hidden": False}
            for i, v in enumerate(prop.options)
        ],
        "displayOrder": order,
        "calculated": False,
        "externalOptions": prop.name == "hubspot_owner_id",
        "hasUniqueValue": prop.unique,
        "hidden": False,
        "formField": not prop.read_only,
        "createdAt": PORTAL_CREATED,
        "updatedAt": PORTAL_CREATED,
        "archived": False,
        "modificationMetadata": {
            "archivable": not prop.hubspot_defined,
            "readOnlyDefinition": prop.hubspot_defined,
            "readOnlyValue": prop.read_only,
        },
        "dataSensitivity": "non_sensitive",
    }
    if prop.hubspot_defined:
        definition["hubspotDefined"] = True
    return definition


def _option_label(value: str) -> str:
    return value.replace("_", " ").title() if value.isupper() else value


def _catalog_groups(ot: str) -> list[dict[str, Any]]:
    seen: list[str] = []
    for prop in hs_properties(ot):
        if prop.group not in seen:
            seen.append(prop.group)
    return [
        {
            "name": g,
            "label": _GROUP_LABELS.get(g, g),
            "displayOrder": i,
            "archived": False,
        }
        for i, g in enumerate(seen)
    ]


def all_definitions(state: SandboxState, ot: str) -> dict[str, dict[str, Any]]:
    """Every property definition of an object type, archived ones included, by name."""
    defs = {p.name: _catalog_definition(p, i) for i, p in enumerate(hs_properties(ot))}
    for extra in state.schema(HS, ot, "property"):
        defs[extra["name"]] = extra
    return defs


def definitions(state: SandboxState, ot: str) -> dict[str, dict[str, Any]]:
    """The live (non-archived) property definitions of an object type, by name."""
    return {n: d for n, d in all_definitions(state, ot).items() if not d.get("archived")}


def groups(state: SandboxState, ot: str) -> dict[str, dict[str, Any]]:
    out = {g["name"]: g for g in _catalog_groups(ot)}
    for extra in state.schema(HS, ot, "group"):
        out[extra["name"]] = extra
    return out


def _owner_options(state: SandboxState) -> list[dict[str, Any]]:
    """``hubspot_owner_id`` lists the portal's owners as its options, as in a real portal."""
    rows = state.execute(
        "SELECT id, data FROM records WHERE crm=? AND object='owners' AND deleted=0 "
        "ORDER BY CAST(id AS INTEGER)",
        (HS,),
    )
    options = []
    for i, row in enumerate(rows):
        data = json.loads(row["data"])
        label = f"{data.get('firstName') or ''} {data.get('lastName') or ''}".strip()
        options.append(
            {"label": label or row["id"], "value": row["id"], "displayOrder": i, "hidden": False}
        )
    return options


def _render(state: SandboxState, definition: dict[str, Any]) -> dict[str, Any]:
    if definition["name"] == "hubspot_owner_id":
        return {**definition, "options": _owner_options(state)}
    return definition


def _store(state: SandboxState, ot: str, definition: dict[str, Any]) -> None:
    """Write (or overwrite) a run-time definition."""
    state.remove_schema(HS, ot, "property", definition["name"])
    state.add_schema(HS, ot, "property", definition["name"], definition)


def _options(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "options must be a list")
    out = []
    for i, opt in enumerate(raw):
        if not isinstance(opt, dict) or "value" not in opt or "label" not in opt:
            raise HubSpotError(400, "VALIDATION_ERROR", "each option needs a label and a value")
        out.append(
            {
                "label": str(opt["label"]),
                "value": str(opt["value"]),
                "displayOrder": int(opt.get("displayOrder", i)),
                "hidden": bool(opt.get("hidden", False)),
                **({"description": opt["description"]} if opt.get("description") else {}),
            }
        )
    return out


# ---- handlers ------------------------------------------------------------------------------


def list_properties(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    archived = parse_bool(request.arg("archived"))
    results = [
        _render(state, d)
        for d in all_definitions(state, ot).values()
        if bool(d.get("archived")) == archived
    ]
    return Response(200, {"results": results})


def get_property(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    name = request.params["name"]
    archived = parse_bool(request.arg("archived"))
    definition = all_definitions(state, ot).get(name)
    if definition is None or bool(definition.get("archived")) != archived:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
    return Response(200, _render(state, definition))


def create_property(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    body = json_body(request)
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Missing required fields: {', '.join(missing)}",
            context={"missingFields": missing},
        )
    name = str(body["name"])
    if not _NAME_RE.match(name):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Property name '{name}' is invalid: use lower-case letters, digits and underscores.",
        )
    if body["type"] not in VALID_TYPES or body["fieldType"] not in VALID_FIELD_TYPES:
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid type or fieldType")
    with state.transaction():
        if name in all_definitions(state, ot):
            raise HubSpotError(409, "CONFLICT", f"Property named '{name}' already exists.")
        if body["groupName"] not in groups(state, ot):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Property group '{body['groupName']}' does not exist.",
                context={"groupName": [str(body["groupName"])]},
            )
        now = now_iso(state)
        definition: dict[str, Any] = {
            "name": name,
            "label": str(body["label"]),
            "type": body["type"],
            "fieldType": body["fieldType"],
            "description": str(body.get("description") or ""),
            "groupName": body["groupName"],
            "options": _options(body.get("options")),
            "displayOrder": int(body.get("displayOrder", -1)),
            "calculated": False,
            "externalOptions": bool(body.get("externalOptions", False)),
            "hasUniqueValue": bool(body.get("hasUniqueValue", False)),
            "hidden": bool(body.get("hidden", False)),
            "formField": bool(body.get("formField", False)),
            "createdAt": now,
            "updatedAt": now,
            "createdUserId": "1",
            "updatedUserId": "1",
            "archived": False,
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": False,
                "readOnlyValue": False,
            },
            "dataSensitivity": "non_sensitive",
        }
        _store(state, ot, definition)
    return Response(201, definition)


def update_property(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    name = request.params["name"]
    body = json_body(request)
    with state.transaction():
        definition = definitions(state, ot).get(name)
        if definition is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        if definition["modificationMetadata"]["readOnlyDefinition"]:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Property {name} is read-only and cannot be modified."
            )
        updated = dict(definition)
        for key in ("label", "description", "hidden", "displayOrder", "formField"):
            if key in body and body[key] is not None:
                updated[key] = body[key]
        if body.get("type") is not None:
            if body["type"] not in VALID_TYPES:
                raise HubSpotError(400, "VALIDATION_ERROR", "Invalid type")
            updated["type"] = body["type"]
        if body.get("fieldType") is not None:
            if body["fieldType"] not in VALID_FIELD_TYPES:
                raise HubSpotError(400, "VALIDATION_ERROR", "Invalid fieldType")
            updated["fieldType"] = body["fieldType"]
        if body.get("groupName") is not None:
            if body["groupName"] not in groups(state, ot):
                raise HubSpotError(
                    400, "VALIDATION_ERROR", f"Property group '{body['groupName']}' does not exist."
                )
            updated["groupName"] = body["groupName"]
        if body.get("options") is not None:
            updated["options"] = _options(body["options"])
        updated["updatedAt"] = now_iso(state)
        _store(state, ot, updated)
    return Response(200, _render(state, updated))


def archive_property(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    name = request.params["name"]
    with state.transaction():
        definition = definitions(state, ot).get(name)
        if definition is None:
            return Response(204)
        if not definition["modificationMetadata"]["archivable"]:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Property {name} is HubSpot-defined and not archivable."
            )
        now = now_iso(state)
        _store(state, ot, {**definition, "archived": True, "archivedAt": now, "updatedAt": now})
    return Response(204)


def list_groups(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    return Response(
        200, {"results": [g for g in groups(state, ot).values() if not g.get("archived")]}
    )


def get_group(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    group = groups(state, ot).get(request.params["name"])
    if group is None or group.get("archived"):
        raise HubSpotError(
            404, "OBJECT_NOT_FOUND", f"Unable to find property group {request.params['name']}"
        )
    return Response(200, group)


def create_group(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    body = json_body(request)
    name, label = body.get("name"), body.get("label")
    if not name or not label:
        raise HubSpotError(400, "VALIDATION_ERROR", "A property group needs a name and a label.")
    if not _NAME_RE.match(str(name)):
        raise HubSpotError(400, "VALIDATION_ERROR", f"Property group name '{name}' is invalid.")
    group = {
        "name": str(name),
        "label": str(label),
        "displayOrder": int(body.get("displayOrder", -1)),
        "archived": False,
    }
    with state.transaction():
        if name in groups(state, ot):
            raise HubSpotError(409, "CONFLICT", f"Property group '{name}' already exists.")
        state.add_schema(HS, ot, "group", str(name), group)
    return Response(201, group)


def update_group(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    name = request.params["name"]
    body = json_body(request)
    with state.transaction():
        group = groups(state, ot).get(name)
        if group is None or group.get("archived"):
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
        group = {**group}
        for key in ("label", "displayOrder"):
            if body.get(key) is not None:
                group[key] = body[key]
        state.remove_schema(HS, ot, "group", name)
        state.add_schema(HS, ot, "group", name, group)
    return Response(200, group)


def archive_group(state: SandboxState, request: Request) -> Response:
    ot = object_type(request.params["ot"])
    name = request.params["name"]
    with state.transaction():
        group = groups(state, ot).get(name)
        if group is not None and not group.get("archived"):
            state.remove_schema(HS, ot, "group", name)
            state.add_schema(HS, ot, "group", name, {**group, "archived": True})
    return Response(204)
