"""Shared pieces of the HubSpot emulator: object-type names, error bodies, value rendering.

Why a module of its own: every route family (objects, search, associations, properties, owners)
must speak the same error envelope and render records identically, because the generated models
of ``hubspot-api-client`` (with ``client_side_validation=True``) reject anything that lacks a
required key. Keeping the envelope in one place means a 404 from the objects API and one from the
associations API cannot drift apart.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sandbox.catalog import HS_OBJECTS, hs_lastmodified_property
from sandbox.http import Request, Response
from sandbox.state import HS, fmt_ts, parse_ts

#: CRM object types the emulator serves (the v3 path segment HubSpot uses).
OBJECT_TYPES: tuple[str, ...] = tuple(HS_OBJECTS)

#: Singular names as HubSpot uses them in v3 association type names (``contact_to_company``).
SINGULAR: dict[str, str] = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "tickets": "ticket",
    "emails": "email",
    "calls": "call",
    "meetings": "meeting",
    "notes": "note",
    "tasks": "task",
    "products": "product",
    "line_items": "line_item",
    "quotes": "quote",
}

#: Every spelling of an object type a real portal accepts in a path: plural, singular, type id.
_ALIASES: dict[str, str] = {}
for _ot, _meta in HS_OBJECTS.items():
    _ALIASES[_ot] = _ot
    _ALIASES[SINGULAR[_ot]] = _ot
    _ALIASES[str(_meta["type_id"])] = _ot

#: Properties every record carries in responses whatever was requested (derived from row columns).
SYSTEM_PROPERTIES: tuple[str, ...] = ("hs_object_id", "createdate")

#: What a list/get/search returns when the caller names no properties (as recorded from the real
#: API: a handful of identifying properties, never the whole record).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("name", "domain"),
    "contacts": ("email", "firstname", "lastname"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate"),
    "tickets": (
        "subject",
        "content",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_category",
        "hs_ticket_priority",
    ),
    "emails": ("hs_timestamp",),
    "calls": ("hs_timestamp",),
    "meetings": ("hs_timestamp",),
    "notes": ("hs_timestamp",),
    "tasks": ("hs_timestamp",),
    "products": ("name", "description", "price"),
    "line_items": ("name", "quantity", "price", "amount"),
    "quotes": ("hs_title", "hs_expiration_date"),
}

#: The portal id shown in record URLs (cosmetic; the client ignores ``url``).
PORTAL_ID = 24_680_135


class HubSpotError(Exception):
    """Raised inside a handler to answer with HubSpot's error envelope and stop processing."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.sub_category = sub_category
        self.extra = extra or {}

    def response(self) -> Response:
        return error_response(
            self.status,
            self.category,
            self.message,
            errors=self.errors,
            context=self.context,
            sub_category=self.sub_category,
            extra=self.extra,
        )


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(
    category: str,
    message: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    context: dict[str, list[str]] | None = None,
    sub_category: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """HubSpot's top-level error (model ``Error``: message, category, correlationId required)."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
    }
    if sub_category:
        body["subCategory"] = sub_category
    if errors is not None:
        body["errors"] = errors
    if context is not None:
        body["context"] = context
    body.update(extra or {})
    return body


def error_response(status: int, category: str, message: str, **kw: Any) -> Response:
    return Response(status, error_body(category, message, **kw))


def standard_error(
    category: str,
    message: str,
    context: dict[str, list[str]],
    *,
    sub_category: str | None = None,
) -> dict[str, Any]:
    """One item of a 207's ``errors`` (model ``StandardError``: every key below is required)."""
    item: dict[str, Any] = {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "links": {},
        "errors": [],
    }
    if sub_category:
        item["subCategory"] = sub_category
    return item


def object_type(raw: str) -> str:
    """Normalise a path's object type (``companies``, ``company``, ``0-2``) or raise 400."""
    ot = _ALIASES.get(raw.lower())
    if ot is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
    return ot


def singular_upper(ot: str) -> str:
    """``COMPANY``: the word HubSpot uses in batch error messages."""
    return str(HS_OBJECTS[ot]["singular"])


def type_id(ot: str) -> str:
    return str(HS_OBJECTS[ot]["type_id"])


def parse_bool(raw: str | None, default: bool = False) -> bool:
    """The client sends Python-cased booleans (``True``); browsers and curl send ``true``."""
    if raw is None or raw == "":
        return default
    return raw.strip().lower() == "true"


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 the way HubSpot rejects unparseable input."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise HubSpotError(
            400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {exc.__class__.__name__}"
        ) from exc
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


def batch_inputs(body: dict[str, Any], maximum: int) -> list[dict[str, Any]]:
    """``inputs`` of a batch call, enforcing HubSpot's per-call maximum (400 beyond it)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: 'inputs' is required")
    if len(inputs) > maximum:
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Batch input limit exceeded: {len(inputs)} inputs given, at most {maximum} allowed.",
            context={"maxInputs": [str(maximum)]},
        )
    if not all(isinstance(i, dict) for i in inputs):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs must be objects")
    return inputs


def value_to_string(value: Any) -> str | None:
    """HubSpot stores and returns every property value as a string (``"false"``, ``"5000"``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def render_object(
    ot: str,
    row: dict[str, Any],
    names: list[str] | None,
    *,
    extra_keys: bool = True,
) -> dict[str, Any]:
    """One record as ``SimplePublicObject``: id, properties, createdAt, updatedAt, archived.

    ``names``: the properties to include (requested ones come back ``null`` when unset, as the
    real API does); ``None`` means the object's default properties. The system properties
    (``hs_object_id``, ``createdate``, the last-modified property) always come from the row.
    """
    lastmod = hs_lastmodified_property(ot)
    data: dict[str, Any] = row["data"]
    wanted = list(DEFAULT_PROPERTIES[ot]) if names is None else list(names)
    props: dict[str, str | None] = {}
    for name in wanted:
        props[name] = value_to_string(data.get(name))
    props["createdate"] = row["created"]
    props[lastmod] = row["modified"]
    props["hs_object_id"] = row["id"]
    obj: dict[str, Any] = {
        "id": row["id"],
        "properties": dict(sorted(props.items())),
        "createdAt": row["created"],
        "updatedAt": row["modified"],
        "archived": bool(row["deleted"]),
    }
    if row["deleted"]:
        obj["archivedAt"] = row.get("deleted_at") or row["modified"]
    if extra_keys:
        obj["url"] = (
            f"https://app.hubspot.com/contacts/{PORTAL_ID}/record/{type_id(ot)}/{row['id']}"
        )
    return obj


#: Properties whose versions the sandbox keeps, per object type: the ones the hub reads the
#: history of. A real portal keeps every property's versions; the sandbox keeps these only,
#: from the moment it knows them (generator seed, API writes, the mutator). For any other
#: property it answers what it knows: the current value as the one version, dated at the
#: record's last modification (a real portal never answers an empty list for a set property).
TRACKED_HISTORY: dict[str, tuple[str, ...]] = {"companies": ("hubspot_owner_id",)}
#: ``sourceType`` of a version written through the API (a private app's or OAuth app's write).
API_SOURCE = "API"


def record_history(
    state: Any,
    ot: str,
    rid: str,
    changes: dict[str, Any],
    when: Any,
    source_type: str = API_SOURCE,
    *,
    current: dict[str, Any] | None = None,
) -> None:
    """Append a version for each tracked property ``changes`` sets to a new value.

    ``current``: the record's values before the write (None: a create, where only values that
    are set make a version). Setting a property to the value it has makes no version.
    """
    tracked = TRACKED_HISTORY.get(ot, ())
    versions: dict[str, str | None] = {}
    for name in tracked:
        if name not in changes:
            continue
        new = value_to_string(changes[name]) or None
        if current is None:
            if new is not None:
                versions[name] = new
        elif (value_to_string(current.get(name)) or None) != new:
            versions[name] = new
    if versions:
        state.add_history(ot, rid, versions, when, source_type)


def attach_history(
    state: Any, ot: str, objs: list[dict[str, Any]], names: list[str] | None
) -> None:
    """``propertiesWithHistory`` of rendered records: every version of each requested property,
    newest first, as ``{value, timestamp, sourceType[, sourceId]}`` (a cleared value is ``""``)."""
    if not names or not objs:
        return
    tracked = set(TRACKED_HISTORY.get(ot, ()))
    known = state.history(ot, [o["id"] for o in objs], [n for n in names if n in tracked])
    for obj in objs:
        versions = known.get(obj["id"], {})
        history: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            if name in tracked:
                history[name] = versions.get(name, [])
                continue
            value = (obj.get("properties") or {}).get(name)
            history[name] = (
                []
                if value is None
                else [{"value": value, "timestamp": obj.get("updatedAt"), "sourceType": "API"}]
            )
        obj["propertiesWithHistory"] = history


def load_row(state: Any, ot: str, rid: str, *, archived: bool = False) -> dict[str, Any] | None:
    """A live (or, with ``archived``, an archived) record, as ``SandboxState.get`` returns it."""
    row = state.get(HS, ot, rid, include_deleted=True)
    if row is None or bool(row["deleted"]) != archived:
        return None
    return row


def now_iso(state: Any) -> str:
    """Sandbox-clock instant in HubSpot's ``…123Z`` form (``startedAt``/``completedAt``)."""
    return fmt_ts(state.now())


def to_datetime_string(raw: str) -> str | None:
    """Normalise a datetime written or filtered as epoch milliseconds or ISO to stored form."""
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return fmt_ts(dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC))
    try:
        return fmt_ts(parse_ts(text))
    except ValueError:
        return None


def to_date_string(raw: str) -> str | None:
    """Normalise a date (``2026-05-24``, epoch ms of midnight UTC, or an ISO instant)."""
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC).date().isoformat()
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


def encode_cursor(last_id: str) -> str:
    """An opaque ``after`` token for keyset paging on the numeric id.

    Why keyset and not an offset: a sync pages through tens of thousands of records while users
    keep creating and archiving them; an id cursor neither skips nor repeats a record whose
    neighbours changed, as HubSpot's own list cursor behaves.
    """
    raw = f"id:{int(last_id)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def next_page(base_url: str, request: Request, cursor: str) -> dict[str, Any]:
    """``paging.next`` of a list page: the new ``after`` and the full link to the next page.

    The link carries the request's own query (every parameter but ``after``, repeated ones kept
    in order) plus the new ``after``, as HubSpot's docs show it: a client that follows ``link``
    must get the same page size, properties and associations as the first page.
    """
    path, _, query = request.raw_path.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "after"]
    kept.append(("after", cursor))
    return {"next": {"after": cursor, "link": f"{base_url}{path}?{urlencode(kept)}"}}


def decode_cursor(token: str | None) -> int | None:
    """The last id a cursor points past; a 400 for a token this emulator did not issue."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("id:"):
            raise ValueError(raw)
        return int(raw[3:])
    except (ValueError, UnicodeDecodeError) as exc:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after cursor: {token[:40]}") from exc


def int_arg(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    """A numeric query parameter; HubSpot clamps ``limit`` above the maximum, 400 if garbage."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise HubSpotError(400, "VALIDATION_ERROR", f"{name} must be an integer") from exc
    if value < 1:
        raise HubSpotError(400, "VALIDATION_ERROR", f"{name} must be at least 1")
    return min(value, maximum) if maximum else value


def row_dict(row: Any) -> dict[str, Any]:
    """A ``records`` row fetched with ``state.execute`` in the shape ``SandboxState.get`` uses."""
    return {
        "id": row["id"],
        "created": row["created"],
        "modified": row["modified"],
        "deleted": bool(row["deleted"]),
        "deleted_at": row["deleted_at"],
        "data": json.loads(row["data"]),
    }
