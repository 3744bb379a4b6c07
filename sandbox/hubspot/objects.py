"""The CRM objects API: list, get, create, update, archive and the batch calls.

Why it is strict: the hub's connector must cope with what HubSpot really does, so this emulator
does the same things, not friendlier ones. Create answers 201 (anything else makes the SDK return
None silently); a write naming an unknown property fails with ``PROPERTY_DOESNT_EXIST``; a second
contact with the same email is a 409; a batch create without ``objectWriteTraceId`` fails whole;
a batch read or update with unknown ids answers 207 and lists them under ``errors``; archiving a
missing id still answers 204. Paging through a list uses an opaque keyset cursor on the numeric
id, so records created or archived mid-sync never shift a page.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from sandbox.catalog import HS_DEAL_STAGES
from sandbox.formats import hs_new_id
from sandbox.http import Request, Response
from sandbox.hubspot import associations as assoc
from sandbox.hubspot.common import (
    HubSpotError,
    attach_history,
    batch_inputs,
    decode_cursor,
    encode_cursor,
    int_arg,
    json_body,
    load_row,
    next_page,
    now_iso,
    object_type,
    parse_bool,
    record_history,
    render_object,
    row_dict,
    singular_upper,
    standard_error,
    to_date_string,
    to_datetime_string,
    value_to_string,
)
from sandbox.hubspot.properties import definitions
from sandbox.state import HS, SandboxState

LIST_MAX = 100
#: Page size of a list that asks for ``propertiesWithHistory``: "usage of this parameter will
#: reduce the maximum number of objects that can be read by a single request" (the v3 objects
#: API reference); HubSpot caps such pages at 50. Batch read keeps its 100 inputs.
LIST_HISTORY_MAX = 50
BATCH_MAX = 100
#: Inline associations per association type and record in a v3 object read (list or get):
#: "if your request returns more than 100 associations, you will need to use the value of the
#: after field returned in the response to get the next set" (HubSpot developer changelog,
#: "Announcing a change to how v3 CRM APIs return association data", Oct 2020, in force since
#: 2021-01-18; https://developers.hubspot.com/changelog/announcing-a-change-to-how-v3-crm-apis-
#: return-association-data). Counted in ``{id, type}`` items, as the ``results`` list holds them.
INLINE_ASSOCIATIONS_MAX = 100
_DAY_MS = 86_400_000


# ---- property validation -------------------------------------------------------------------


def _owner_ids(state: SandboxState) -> set[str]:
    rows = state.execute(
        "SELECT id FROM records WHERE crm=? AND object='owners' AND deleted=0", (HS,)
    )
    return {r["id"] for r in rows}


def _invalid(code: str, name: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "context": {"propertyName": [name]}}


def normalize_properties(
    state: SandboxState, ot: str, raw: Any, defs: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """Validate a write's ``properties`` and return them in stored form (400 on any error).

    Stored form: every value a string; ``""`` clears; datetimes ``…123Z``; dates ``YYYY-MM-DD``
    (epoch milliseconds must be midnight UTC, as HubSpot insists); booleans lower-case.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "properties must be an object")
    out: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    owners: set[str] | None = None
    for name, value in raw.items():
        definition = defs.get(name)
        if definition is None:
            problems.append(
                _invalid("PROPERTY_DOESNT_EXIST", name, f'Property "{name}" does not exist')
            )
            continue
        if definition["modificationMetadata"].get("readOnlyValue"):
            problems.append(_invalid("READ_ONLY_VALUE", name, f'"{name}" is a read only property'))
            continue
        text = value_to_string(value)
        if text is None or text == "":
            out[name] = ""
            continue
        kind = definition["type"]
        options = {o["value"] for o in definition.get("options") or []}
        if kind == "number":
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                problems.append(
                    _invalid("INVALID_INTEGER", name, f"{text} was not a valid number.")
                )
                continue
            out[name] = text.strip()
        elif kind == "bool":
            if text.lower() not in ("true", "false"):
                problems.append(
                    _invalid("INVALID_OPTION", name, f"{text} was not one of the allowed options")
                )
                continue
            out[name] = text.lower()
        elif kind == "date":
            stripped = text.strip()
            date = to_date_string(stripped)
            if date is None or (stripped.isdigit() and int(stripped) % _DAY_MS != 0):
                problems.append(
                    _invalid(
                        "INVALID_DATE",
                        name,
                        f"{text} is not a valid date: use YYYY-MM-DD or epoch milliseconds "
                        "at midnight UTC",
                    )
                )
                continue
            out[name] = date
        elif kind == "datetime":
            instant = to_datetime_string(text)
            if instant is None:
                problems.append(
                    _invalid("INVALID_DATETIME", name, f"{text} is not a valid datetime")
                )
                continue
            out[name] = instant
        elif kind == "enumeration":
            if name == "hubspot_owner_id":
                owners = _owner_ids(state) if owners is None else owners
                if text not in owners:
                    problems.append(
                        _invalid("INVALID_OWNER_ID", name, f"{text} is not a valid owner id")
                    )
                    continue
            elif definition["fieldType"] == "checkbox":
                bad = [v for v in text.split(";") if v and v not in options]
                if bad:
                    problems.append(
                        _invalid(
                            "INVALID_OPTION", name, f"{bad[0]} was not one of the allowed options"
                        )
                    )
                    continue
            elif options and text not in options:
                problems.append(
                    _invalid("INVALID_OPTION", name, f"{text} was not one of the allowed options")
                )
                continue
            out[name] = text
        else:
            out[name] = text.strip().lower() if (ot, name) == ("contacts", "email") else text
    if problems:
        summary = "; ".join(p["message"] for p in problems)
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Property values were not valid: {summary}",
            errors=problems,
        )
    return out


def _unique_names(defs: dict[str, dict[str, Any]]) -> list[str]:
    return [n for n, d in defs.items() if d.get("hasUniqueValue") and n != "hs_object_id"]


def find_by_unique(
    state: SandboxState, ot: str, prop: str, value: str, *, archived: bool = False
) -> dict[str, Any] | None:
    """The record whose unique property ``prop`` equals ``value`` (case-insensitive)."""
    if prop == "hs_object_id":
        return load_row(state, ot, value, archived=archived)
    rows = state.execute(
        "SELECT * FROM records WHERE crm=? AND object=? AND deleted=? "
        "AND LOWER(json_extract(data, ?)) = LOWER(?) ORDER BY CAST(id AS INTEGER) LIMIT 1",
        (HS, ot, 1 if archived else 0, f'$."{prop}"', value),
    )
    return row_dict(rows[0]) if rows else None


def _check_unique(
    state: SandboxState,
    ot: str,
    props: dict[str, str],
    defs: dict[str, dict[str, Any]],
    self_id: str | None,
) -> None:
    """409 CONFLICT when a unique property (contact email…) would collide with another record."""
    for name in _unique_names(defs):
        value = props.get(name)
        if not value:
            continue
        other = find_by_unique(state, ot, name, value)
        existing = other["id"] if other is not None else None
        if existing is not None and existing != self_id:
            message = (
                f"Contact already exists. Existing ID: {existing}"
                if (ot, name) == ("contacts", "email")
                else f"A {ot[:-1]} with {name}={value} already exists. Existing ID: {existing}"
            )
            raise HubSpotError(409, "CONFLICT", message, context={"id": [existing]})


def _derive(ot: str, current: dict[str, Any], changes: dict[str, str], now: str) -> None:
    """Calculated properties HubSpot maintains itself (deal stage flags and stage-entry dates,
    a line item's net amount, a task's completion time)."""
    if ot == "line_items" and {"quantity", "price", "discount"} & set(changes):
        merged = {**current, **changes}
        try:
            quantity = float(merged.get("quantity") or 0)
            net = float(merged.get("price") or 0) - float(merged.get("discount") or 0)
        except ValueError:
            return
        changes["amount"] = f"{quantity * net:.2f}"
        return
    if ot == "tasks" and changes.get("hs_task_status") == "COMPLETED":
        if current.get("hs_task_status") != "COMPLETED":
            changes["hs_task_completion_date"] = now
        return
    if ot != "deals" or "dealstage" not in changes:
        return
    stage = changes["dealstage"]
    for sid, _label, _prob, closed, won in HS_DEAL_STAGES:
        if sid == stage:
            changes["hs_is_closed"] = "true" if closed else "false"
            changes["hs_is_closed_won"] = "true" if won else "false"
            entered = f"hs_v2_date_entered_{sid}"
            if not current.get(entered) and current.get("dealstage") != stage:
                changes[entered] = now


# ---- request helpers -----------------------------------------------------------------------


def requested(request: Request, name: str, defs: dict[str, dict[str, Any]]) -> list[str] | None:
    """Property names asked for (repeated or comma-joined); unknown names are ignored, as in
    HubSpot. ``None`` when none were asked for, meaning "the default properties"."""
    names = request.arg_list(name)
    if not names:
        return None
    return [n for n in dict.fromkeys(names) if n in defs]


def _names_from_body(body: dict[str, Any], key: str, defs: dict[str, dict[str, Any]]) -> Any:
    names = body.get(key)
    if not names:
        return None
    return [n for n in dict.fromkeys(str(x) for x in names) if n in defs]


def _assoc_types(request: Request) -> list[str]:
    out = []
    for raw in request.arg_list("associations"):
        try:
            out.append(object_type(raw))
        except HubSpotError:
            continue
    return out


def _with_associations(
    state: SandboxState, ot: str, objs: list[dict[str, Any]], to_ots: list[str], base_url: str
) -> None:
    """Inline ``associations`` blocks, each cut at :data:`INLINE_ASSOCIATIONS_MAX` items.

    A cut block carries ``paging.next`` like HubSpot's: ``after`` is a keyset cursor on the last
    target id kept (the cut never splits one target's types), ``link`` the per-record page that
    continues it. HubSpot links its v3 per-record endpoint; the sandbox serves the v4 one, so the
    link points there (a client that follows it gets the rest, in v4's shape).
    """
    if not to_ots or not objs:
        return
    blocks = assoc.v3_associations(state, ot, [o["id"] for o in objs], to_ots)
    for obj in objs:
        block = blocks.get(obj["id"])
        if not block:
            continue
        for to_ot, entry in block.items():
            results = entry["results"]
            if len(results) <= INLINE_ASSOCIATIONS_MAX:
                continue
            kept = results[:INLINE_ASSOCIATIONS_MAX]
            last = kept[-1]["id"]
            if results[INLINE_ASSOCIATIONS_MAX]["id"] == last and kept[0]["id"] != last:
                # Never split one target's types: drop the target from this page.
                kept = [r for r in kept if r["id"] != last]
                last = kept[-1]["id"]
            after = encode_cursor(last)
            link = f"{base_url}/crm/v4/objects/{ot}/{obj['id']}/associations/{to_ot}?" + urlencode(
                {"after": after}
            )
            block[to_ot] = {"results": kept, "paging": {"next": {"after": after, "link": link}}}
        obj["associations"] = block


def _create_associations(state: SandboxState, ot: str, raw: Any) -> list[tuple[str, str, int, str]]:
    """Validate a create's ``associations`` list → ``[(to_ot, to_id, type_id, category)]``."""
    if not raw:
        return []
    if not isinstance(raw, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "associations must be a list")
    links = []
    for item in raw:
        to = item.get("to") if isinstance(item, dict) else None
        to_id = str(to.get("id")) if isinstance(to, dict) and to.get("id") else ""
        to_ot = assoc.find_object_type(state, to_id) if to_id else None
        if to_ot is None:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"One or more associations are invalid: object {to_id or '?'} does not exist",
                context={"toObjectId": [to_id]},
            )
        for spec in item.get("types") or []:
            tid, category = assoc._check_spec(ot, to_ot, spec)
            links.append((to_ot, to_id, tid, category))
    return links


# ---- single-record handlers ----------------------------------------------------------------


def list_objects(state: SandboxState, request: Request, base_url: str) -> Response:
    """``GET /crm/v3/objects/{ot}``: keyset pages on the numeric id; ``paging`` only if more."""
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    history = requested(request, "propertiesWithHistory", defs)
    limit = int_arg(request, "limit", 10, LIST_HISTORY_MAX if history else LIST_MAX)
    after = decode_cursor(request.arg("after"))
    archived = parse_bool(request.arg("archived"))
    sql = "SELECT * FROM records WHERE crm=? AND object=? AND deleted=?"
    params: list[Any] = [HS, ot, 1 if archived else 0]
    if after is not None:
        sql += " AND CAST(id AS INTEGER) > ?"
        params.append(after)
    sql += " ORDER BY CAST(id AS INTEGER) LIMIT ?"
    params.append(limit + 1)
    rows = [row_dict(r) for r in state.execute(sql, params)]
    names = requested(request, "properties", defs)
    results = [render_object(ot, r, names) for r in rows[:limit]]
    attach_history(state, ot, results, history)
    _with_associations(state, ot, results, _assoc_types(request), base_url)
    body: dict[str, Any] = {"results": results}
    if len(rows) > limit:
        body["paging"] = next_page(base_url, request, encode_cursor(rows[limit - 1]["id"]))
    return Response(200, body)


def _lookup(
    state: SandboxState,
    ot: str,
    rid: str,
    id_property: str | None,
    defs: dict[str, dict[str, Any]],
    *,
    archived: bool = False,
) -> dict[str, Any] | None:
    if not id_property or id_property == "hs_object_id":
        return load_row(state, ot, rid, archived=archived)
    definition = defs.get(id_property)
    if definition is None or not definition.get("hasUniqueValue"):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"{id_property} is not a unique identifier property of {ot}",
            context={"idProperty": [id_property]},
        )
    return find_by_unique(state, ot, id_property, rid, archived=archived)


def _not_found(ot: str, rid: str) -> HubSpotError:
    return HubSpotError(
        404,
        "OBJECT_NOT_FOUND",
        f"resource not found: {singular_upper(ot)} {rid} does not exist",
        context={"id": [rid]},
    )


def get_object(state: SandboxState, request: Request, base_url: str) -> Response:
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    rid = request.params["id"]
    row = _lookup(
        state,
        ot,
        rid,
        request.arg("idProperty"),
        defs,
        archived=parse_bool(request.arg("archived")),
    )
    if row is None:
        raise _not_found(ot, rid)
    obj = render_object(ot, row, requested(request, "properties", defs))
    attach_history(state, ot, [obj], requested(request, "propertiesWithHistory", defs))
    _with_associations(state, ot, [obj], _assoc_types(request), base_url)
    return Response(200, obj)


def _insert(
    state: SandboxState,
    ot: str,
    props: dict[str, str],
    links: list[tuple[str, str, int, str]],
) -> dict[str, Any]:
    rid = hs_new_id(state)
    now = now_iso(state)
    _derive(ot, {}, props, now)
    state.insert(HS, ot, rid, props)
    record_history(state, ot, rid, props, now)
    for to_ot, to_id, tid, category in links:
        assoc.add_link(state, ot, rid, to_ot, to_id, tid, category)
    row = state.get(HS, ot, rid)
    assert row is not None
    return row


def create_object(state: SandboxState, request: Request) -> Response:
    """``POST /crm/v3/objects/{ot}``: 201 with the written properties plus the defaults."""
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    body = json_body(request)
    with state.transaction():
        props = normalize_properties(state, ot, body.get("properties"), defs)
        _check_unique(state, ot, props, defs, None)
        links = _create_associations(state, ot, body.get("associations"))
        row = _insert(state, ot, props, links)
    return Response(201, render_object(ot, row, sorted(row["data"])))


def _apply_update(
    state: SandboxState, ot: str, row: dict[str, Any], props: dict[str, str]
) -> dict[str, Any]:
    now = now_iso(state)
    _derive(ot, row["data"], props, now)
    record_history(state, ot, row["id"], props, now, current=row["data"])
    updated = state.update(HS, ot, row["id"], props)
    assert updated is not None
    return updated


def update_object(state: SandboxState, request: Request) -> Response:
    """``PATCH /crm/v3/objects/{ot}/{id}``: ``""`` clears; 200 with the touched properties."""
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    rid = request.params["id"]
    body = json_body(request)
    with state.transaction():
        props = normalize_properties(state, ot, body.get("properties"), defs)
        row = _lookup(state, ot, rid, request.arg("idProperty"), defs)
        if row is None:
            raise _not_found(ot, rid)
        _check_unique(state, ot, props, defs, row["id"])
        updated = _apply_update(state, ot, row, props)
    return Response(200, render_object(ot, updated, sorted(props)))


def archive_object(state: SandboxState, request: Request) -> Response:
    """``DELETE /crm/v3/objects/{ot}/{id}``: 204 whether or not the id exists."""
    ot = object_type(request.params["ot"])
    state.soft_delete(HS, ot, request.params["id"])
    return Response(204)


# ---- batch handlers ------------------------------------------------------------------------


def _batch_response(
    state: SandboxState,
    started: str,
    results: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    ok_status: int,
) -> Response:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now_iso(state),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return Response(207, body)
    return Response(ok_status, body)


def _forced_errors(forced: dict[str, str], verb: str, ot: str) -> list[dict[str, Any]]:
    """Errors for ids a ``partial`` fault made fail, grouped by category."""
    by_category: dict[str, list[str]] = {}
    for rid, category in forced.items():
        by_category.setdefault(category, []).append(rid)
    return [
        standard_error(
            category,
            f"Could not {verb} some {singular_upper(ot)} objects (sandbox fault).",
            {"ids": ids},
        )
        for category, ids in by_category.items()
    ]


def batch_read(
    state: SandboxState, request: Request, forced: dict[str, str] | None = None
) -> Response:
    """``POST …/batch/read``: 200, 207 with the missing ids, 404 when none is found."""
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    started = now_iso(state)
    body = json_body(request)
    inputs = batch_inputs(body, BATCH_MAX)
    archived = parse_bool(request.arg("archived"))
    id_property = body.get("idProperty")
    names = _names_from_body(body, "properties", defs)
    history = _names_from_body(body, "propertiesWithHistory", defs)
    forced = forced or {}
    results, missing = [], []
    for rid in dict.fromkeys(str(i.get("id", "")) for i in inputs):
        if rid in forced:
            continue
        row = _lookup(state, ot, rid, id_property, defs, archived=archived) if rid else None
        if row is None:
            missing.append(rid)
            continue
        results.append(render_object(ot, row, names))
    attach_history(state, ot, results, history)
    errors = _forced_errors({k: v for k, v in forced.items() if k}, "read", ot)
    if missing:
        errors.append(
            standard_error(
                "OBJECT_NOT_FOUND",
                f"Could not get some {singular_upper(ot)} objects, they may be deleted or not "
                "exist. Check that ids are valid.",
                {"ids": missing},
            )
        )
    if inputs and not results and missing and not forced:
        raise HubSpotError(
            404,
            "OBJECT_NOT_FOUND",
            f"Could not get some {singular_upper(ot)} objects, they may be deleted or not "
            "exist. Check that ids are valid.",
            context={"ids": missing},
        )
    return _batch_response(state, started, results, errors, 200)


def batch_create(state: SandboxState, request: Request) -> Response:
    """``POST …/batch/create``: 201; one bad input fails the whole call unless every bad input
    carries ``objectWriteTraceId``, in which case the good ones are written and the call is 207."""
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    started = now_iso(state)
    inputs = batch_inputs(json_body(request), BATCH_MAX)
    results, errors = [], []
    with state.transaction():
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            try:
                props = normalize_properties(state, ot, item.get("properties"), defs)
                _check_unique(state, ot, props, defs, None)
                links = _create_associations(state, ot, item.get("associations"))
            except HubSpotError as exc:
                if trace is None:
                    raise
                context = {"objectWriteTraceId": [str(trace)]}
                for problem in exc.errors or []:
                    for key, values in problem.get("context", {}).items():
                        context.setdefault(key, []).extend(values)
                errors.append(standard_error(exc.category, exc.message, context))
                continue
            row = _insert(state, ot, props, links)
            obj = render_object(ot, row, sorted(row["data"]))
            if trace is not None:
                obj["objectWriteTraceId"] = str(trace)
            results.append(obj)
    return _batch_response(state, started, results, errors, 201)


def batch_update(
    state: SandboxState, request: Request, forced: dict[str, str] | None = None
) -> Response:
    """``POST …/batch/update``: 200; unknown or archived ids → 207 ``OBJECT_NOT_FOUND``
    with ``context.ids``; an invalid property value fails the whole call with 400."""
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    started = now_iso(state)
    inputs = batch_inputs(json_body(request), BATCH_MAX)
    forced = forced or {}
    results, missing = [], []
    with state.transaction():
        prepared = []
        for item in inputs:
            rid = str(item.get("id", ""))
            props = normalize_properties(state, ot, item.get("properties"), defs)
            prepared.append((rid, item.get("idProperty"), props))
        for rid, id_property, props in prepared:
            if rid in forced:
                continue
            row = _lookup(state, ot, rid, id_property, defs) if rid else None
            if row is None:
                missing.append(rid)
                continue
            _check_unique(state, ot, props, defs, row["id"])
            updated = _apply_update(state, ot, row, props)
            results.append(render_object(ot, updated, sorted(props)))
    errors = _forced_errors(forced, "update", ot)
    if missing:
        errors.append(
            standard_error(
                "OBJECT_NOT_FOUND",
                f"Could not update some {singular_upper(ot)} objects, they may be deleted or "
                "not exist. Check that ids are valid.",
                {"ids": missing},
            )
        )
    return _batch_response(state, started, results, errors, 200)


def batch_upsert(
    state: SandboxState, request: Request, forced: dict[str, str] | None = None
) -> Response:
    """``POST …/batch/upsert``: by a unique property (``idProperty``); results carry ``new``."""
    ot = object_type(request.params["ot"])
    defs = definitions(state, ot)
    started = now_iso(state)
    inputs = batch_inputs(json_body(request), BATCH_MAX)
    forced = forced or {}
    results = []
    with state.transaction():
        for item in inputs:
            rid = str(item.get("id", ""))
            id_property = item.get("idProperty")
            if not rid or not id_property:
                raise HubSpotError(
                    400, "VALIDATION_ERROR", "Each upsert input needs an id and an idProperty"
                )
            definition = defs.get(id_property)
            if (
                definition is None
                or not definition.get("hasUniqueValue")
                or id_property == "hs_object_id"
            ):
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    f"{id_property} is not a unique value property of {ot}",
                    context={"idProperty": [str(id_property)]},
                )
            if rid in forced:
                continue
            props = normalize_properties(state, ot, item.get("properties"), defs)
            row = find_by_unique(state, ot, id_property, rid)
            if row is None:
                props[id_property] = rid.lower() if id_property == "email" else rid
                _check_unique(state, ot, props, defs, None)
                row = _insert(state, ot, props, [])
                is_new = True
            else:
                _check_unique(state, ot, props, defs, row["id"])
                row = _apply_update(state, ot, row, props)
                is_new = False
            obj = render_object(ot, row, sorted({*props, id_property}))
            obj["new"] = is_new
            results.append(obj)
    return _batch_response(state, started, results, _forced_errors(forced, "upsert", ot), 200)


def batch_archive(state: SandboxState, request: Request) -> Response:
    """``POST …/batch/archive``: 204, unknown ids are ignored."""
    ot = object_type(request.params["ot"])
    inputs = batch_inputs(json_body(request), BATCH_MAX)
    with state.transaction():
        for item in inputs:
            if item.get("id"):
                state.soft_delete(HS, ot, str(item["id"]))
    return Response(204)
