"""Associations: the v4 API and the v3-style ``associations=`` expansion on list/get.

Why both: the hub reads company↔contact/deal/ticket/email links in bulk through
``POST /crm/v4/associations/{from}/{to}/batch/read`` (1,000 ids per call, the cheap way), while
the v3 ``associations=`` parameter is what the objects API offers and what older code uses.

Storage: ``SandboxState.associate`` rows, one per direction and type id. A link created through
the API is stored in both directions with the paired type ids from ``HS_ASSOCIATION_TYPES``
(``contact→company`` 279 pairs with ``company→contact`` 280; the "Primary" labels 1 and 2 pair
likewise), because that is how HubSpot answers a read from either side. Links to archived
records are hidden on read (HubSpot drops them from association reads while a record is in the
recycle bin) but kept, so a restore brings them back.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sandbox.catalog import HS_ASSOCIATION_TYPES
from sandbox.http import Request, Response
from sandbox.hubspot.common import (
    SINGULAR,
    HubSpotError,
    batch_inputs,
    decode_cursor,
    encode_cursor,
    int_arg,
    json_body,
    next_page,
    now_iso,
    object_type,
    standard_error,
    type_id,
)
from sandbox.state import HS, SandboxState

CATEGORIES = ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED")
#: Per source id, how many associated ids one v4 page holds (HubSpot's default page size).
V4_PAGE = 500
#: The most ids a v4 batch read accepts.
V4_BATCH_READ_MAX = 1000
#: The most inputs the other v4 batch calls accept.
V4_BATCH_WRITE_MAX = 2000


def pair_types(from_ot: str, to_ot: str) -> tuple[int, int | None]:
    """(unlabelled type id, "Primary" type id or None) of a pair; 400 if they cannot associate."""
    types = HS_ASSOCIATION_TYPES.get((from_ot, to_ot))
    if types is None:
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"{from_ot} cannot be associated with {to_ot}",
        )
    return types


def reverse_type(from_ot: str, to_ot: str, tid: int) -> int:
    """The type id of the same link seen from the other side (same id for custom labels)."""
    unl, primary = pair_types(from_ot, to_ot)
    r_unl, r_primary = pair_types(to_ot, from_ot)
    if tid == unl:
        return r_unl
    if primary is not None and tid == primary and r_primary is not None:
        return r_primary
    return tid


def label_of(from_ot: str, to_ot: str, tid: int, stored: str | None) -> str | None:
    """The label HubSpot reports: ``Primary`` for the primary type, None when unlabelled."""
    if stored:
        return stored
    _, primary = HS_ASSOCIATION_TYPES.get((from_ot, to_ot), (0, None))
    return "Primary" if primary is not None and tid == primary else None


def _check_spec(from_ot: str, to_ot: str, spec: Any) -> tuple[int, str]:
    if not isinstance(spec, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid association spec")
    category = spec.get("associationCategory")
    tid = spec.get("associationTypeId")
    if category not in CATEGORIES or not isinstance(tid, int) or isinstance(tid, bool):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            "associationCategory must be one of HUBSPOT_DEFINED, USER_DEFINED, "
            "INTEGRATOR_DEFINED and associationTypeId an integer",
        )
    unl, primary = pair_types(from_ot, to_ot)
    if category == "HUBSPOT_DEFINED" and tid not in (unl, primary):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"{tid} is not a valid association type id between {from_ot} and {to_ot}",
        )
    return tid, category


def _live(state: SandboxState, ot: str, rid: str) -> bool:
    rows = state.execute(
        "SELECT 1 FROM records WHERE crm=? AND object=? AND id=? AND deleted=0", (HS, ot, rid)
    )
    return bool(rows)


def _require_live(state: SandboxState, ot: str, rid: str) -> None:
    if not _live(state, ot, rid):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"{SINGULAR[ot].upper()}={rid} is not valid",
            context={"id": [rid]},
        )


def add_link(
    state: SandboxState,
    from_ot: str,
    from_id: str,
    to_ot: str,
    to_id: str,
    tid: int,
    category: str = "HUBSPOT_DEFINED",
) -> None:
    """Store one association in both directions (plus the unlabelled one, as HubSpot does)."""
    unl, _ = pair_types(from_ot, to_ot)
    for t, cat in {(tid, category), (unl, "HUBSPOT_DEFINED")}:
        state.associate(from_ot, from_id, to_ot, to_id, t, cat)
        state.associate(to_ot, to_id, from_ot, from_id, reverse_type(from_ot, to_ot, t), cat)


def remove_pair(state: SandboxState, from_ot: str, from_id: str, to_ot: str, to_id: str) -> None:
    state.remove_associations(from_ot, from_id, to_ot, to_id)


def find_object_type(state: SandboxState, rid: str) -> str | None:
    """The type of a live record by id (HubSpot ids are unique across a portal's objects)."""
    rows = state.execute(
        "SELECT object FROM records WHERE crm=? AND id=? AND deleted=0 AND object != 'owners'",
        (HS, rid),
    )
    return str(rows[0]["object"]) if rows else None


def linked(
    state: SandboxState,
    from_ot: str,
    from_ids: list[str],
    to_ot: str,
    *,
    after: int | None = None,
    limit: int | None = None,
) -> dict[str, list[tuple[str, list[dict[str, Any]]]]]:
    """Associations of several records to one type: ``{from_id: [(to_id, [types])]}``.

    Only links whose target is live count. ``after``/``limit`` page per source id on the
    numeric target id (used for a single source id only).
    """
    if not from_ids:
        return {}
    marks = ",".join("?" * len(from_ids))
    sql = (
        "SELECT a.from_id, a.to_id, a.type_id, a.category, a.label FROM assoc a "
        "JOIN records r ON r.crm=? AND r.object=a.to_object AND r.id=a.to_id AND r.deleted=0 "
        f"WHERE a.from_object=? AND a.to_object=? AND a.from_id IN ({marks})"
    )
    params: list[Any] = [HS, from_ot, to_ot, *from_ids]
    if after is not None:
        sql += " AND CAST(a.to_id AS INTEGER) > ?"
        params.append(after)
    sql += " ORDER BY a.from_id, CAST(a.to_id AS INTEGER), a.type_id"
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for row in state.execute(sql, params):
        targets = grouped[row["from_id"]]
        if row["to_id"] not in targets:
            if limit is not None and len(targets) >= limit + 1:
                continue
            targets[row["to_id"]] = []
        targets[row["to_id"]].append(
            {
                "category": row["category"],
                "typeId": row["type_id"],
                "label": label_of(from_ot, to_ot, row["type_id"], row["label"]),
            }
        )
    return {fid: list(targets.items()) for fid, targets in grouped.items()}


def v3_associations(
    state: SandboxState, ot: str, ids: list[str], to_ots: list[str]
) -> dict[str, dict[str, Any]]:
    """The v3 ``associations`` block per record id: ``{companies: {results: [{id, type}]}}``.

    Type names follow the v3 API: ``contact_to_company`` for the primary (or only) type,
    ``contact_to_company_unlabeled`` for the unlabelled one where a primary type exists.
    """
    out: dict[str, dict[str, Any]] = {rid: {} for rid in ids}
    for to_ot in to_ots:
        if (ot, to_ot) not in HS_ASSOCIATION_TYPES:
            continue
        unl, primary = HS_ASSOCIATION_TYPES[(ot, to_ot)]
        base = f"{SINGULAR[ot]}_to_{SINGULAR[to_ot]}"
        for fid, targets in linked(state, ot, ids, to_ot).items():
            results = []
            for to_id, types in targets:
                for t in types:
                    if t["typeId"] == unl:
                        name = f"{base}_unlabeled" if primary is not None else base
                    elif t["typeId"] == primary:
                        name = base
                    else:
                        name = (t["label"] or str(t["typeId"])).lower().replace(" ", "_")
                    results.append({"id": to_id, "type": name})
            if results:
                out[fid][to_ot] = {"results": results}
    return out


def _multi(to_id: str, types: list[dict[str, Any]]) -> dict[str, Any]:
    """``MultiAssociatedObjectWithLabel``: ``toObjectId`` is a JSON number, as in HubSpot."""
    return {"toObjectId": int(to_id), "associationTypes": types}


def _default_result(from_ot: str, from_id: str, to_ot: str, to_id: str) -> list[dict[str, Any]]:
    unl, _ = pair_types(from_ot, to_ot)
    return [
        {
            "from": {"id": from_id},
            "to": {"id": to_id},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": unl},
        },
        {
            "from": {"id": to_id},
            "to": {"id": from_id},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": reverse_type(from_ot, to_ot, unl),
            },
        },
    ]


def _labels_between(
    state: SandboxState, from_ot: str, from_id: str, to_ot: str, to_id: str
) -> dict[str, Any]:
    """``LabelsBetweenObjectPair`` after a create: the labels now on the pair."""
    labels: list[str] = []
    for target, types in linked(state, from_ot, [from_id], to_ot).get(from_id, []):
        if target == to_id:
            labels = [t["label"] for t in types if t["label"]]
    return {
        "fromObjectTypeId": type_id(from_ot),
        "fromObjectId": int(from_id),
        "toObjectTypeId": type_id(to_ot),
        "toObjectId": int(to_id),
        "labels": labels,
    }


def _batch(
    results: list[Any],
    errors: list[dict[str, Any]],
    started: str,
    state: SandboxState,
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


# ---- v4 single-record handlers ---------------------------------------------------------------


def get_page(state: SandboxState, request: Request, base_url: str) -> Response:
    """``GET /crm/v4/objects/{ot}/{id}/associations/{to}``: paged, ``paging`` only if more."""
    ot = object_type(request.params["ot"])
    to_ot = object_type(request.params["to"])
    rid = request.params["id"]
    limit = int_arg(request, "limit", V4_PAGE, V4_PAGE)
    after = decode_cursor(request.arg("after"))
    targets = linked(state, ot, [rid], to_ot, after=after, limit=limit).get(rid, [])
    body: dict[str, Any] = {"results": [_multi(t, types) for t, types in targets[:limit]]}
    if len(targets) > limit:
        body["paging"] = next_page(base_url, request, encode_cursor(targets[limit - 1][0]))
    return Response(200, body)


def create(state: SandboxState, request: Request) -> Response:
    """``PUT …/associations/{to}/{toId}`` with a list of specs: sets the pair's labels (201)."""
    ot = object_type(request.params["ot"])
    to_ot = object_type(request.params["to"])
    rid, to_id = request.params["id"], request.params["toId"]
    specs = request.json()
    if not isinstance(specs, list) or not specs:
        raise HubSpotError(
            400, "VALIDATION_ERROR", "Expected a non-empty list of association specs"
        )
    checked = [_check_spec(ot, to_ot, s) for s in specs]
    with state.transaction():
        _require_live(state, ot, rid)
        _require_live(state, to_ot, to_id)
        remove_pair(state, ot, rid, to_ot, to_id)
        for tid, category in checked:
            add_link(state, ot, rid, to_ot, to_id, tid, category)
    return Response(201, _labels_between(state, ot, rid, to_ot, to_id))


def create_default(state: SandboxState, request: Request) -> Response:
    """``PUT …/associations/default/{to}/{toId}``: the unlabelled link (200, both directions)."""
    ot = object_type(request.params["ot"])
    to_ot = object_type(request.params["to"])
    rid, to_id = request.params["id"], request.params["toId"]
    started = now_iso(state)
    unl, _ = pair_types(ot, to_ot)
    with state.transaction():
        _require_live(state, ot, rid)
        _require_live(state, to_ot, to_id)
        add_link(state, ot, rid, to_ot, to_id, unl)
    return _batch(_default_result(ot, rid, to_ot, to_id), [], started, state, 200)


def archive(state: SandboxState, request: Request) -> Response:
    """``DELETE …/associations/{to}/{toId}``: removes every type between the pair (204)."""
    ot = object_type(request.params["ot"])
    to_ot = object_type(request.params["to"])
    pair_types(ot, to_ot)
    remove_pair(state, ot, request.params["id"], to_ot, request.params["toId"])
    return Response(204)


# ---- v4 batch handlers ---------------------------------------------------------------------


def _from_to_ids(item: dict[str, Any]) -> tuple[str, Any]:
    frm = item.get("from")
    if not isinstance(frm, dict) or frm.get("id") in (None, ""):
        raise HubSpotError(400, "VALIDATION_ERROR", "Each input needs from.id")
    return str(frm["id"]), item.get("to")


def batch_read(
    state: SandboxState, request: Request, forced: dict[str, str] | None = None
) -> Response:
    """``POST /crm/v4/associations/{from}/{to}/batch/read``: ≤1,000 ids, 200 or 207.

    An id with no (live) associations yields a 207 error item
    (``crm.associations.NO_ASSOCIATIONS_FOUND``), as HubSpot reports it.
    """
    ot = object_type(request.params["from"])
    to_ot = object_type(request.params["to"])
    pair_types(ot, to_ot)
    started = now_iso(state)
    inputs = batch_inputs(json_body(request), V4_BATCH_READ_MAX)
    ids: list[str] = []
    afters: dict[str, int | None] = {}
    for item in inputs:
        if item.get("id") in (None, ""):
            raise HubSpotError(400, "VALIDATION_ERROR", "Each input needs an id")
        rid = str(item["id"])
        if rid not in afters:
            ids.append(rid)
        afters[rid] = decode_cursor(item.get("after"))
    forced = forced or {}
    plain = [i for i in ids if afters[i] is None and i not in forced]
    found = linked(state, ot, plain, to_ot)
    for rid in ids:
        if afters[rid] is not None and rid not in forced:
            found.update(linked(state, ot, [rid], to_ot, after=afters[rid]))
    results, errors = [], []
    for rid in ids:
        if rid in forced:
            errors.append(
                standard_error(
                    forced[rid], f"Could not read associations of {rid}", {"fromObjectId": [rid]}
                )
            )
            continue
        targets = found.get(rid, [])
        if not targets:
            errors.append(
                standard_error(
                    "OBJECT_NOT_FOUND",
                    f"No {SINGULAR[to_ot]} is associated with {SINGULAR[ot]} {rid}.",
                    {"fromObjectId": [rid]},
                    sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                )
            )
            continue
        result: dict[str, Any] = {
            "from": {"id": rid},
            "to": [_multi(t, types) for t, types in targets[:V4_PAGE]],
        }
        if len(targets) > V4_PAGE:
            result["paging"] = {"next": {"after": encode_cursor(targets[V4_PAGE - 1][0])}}
        results.append(result)
    return _batch(results, errors, started, state, 200)


def batch_create(state: SandboxState, request: Request) -> Response:
    """``…/batch/create``: labelled links; 201, or 207 with an error per invalid input."""
    ot = object_type(request.params["from"])
    to_ot = object_type(request.params["to"])
    pair_types(ot, to_ot)
    started = now_iso(state)
    inputs = batch_inputs(json_body(request), V4_BATCH_WRITE_MAX)
    results, errors = [], []
    with state.transaction():
        for item in inputs:
            rid, to = _from_to_ids(item)
            to_id = str(to.get("id")) if isinstance(to, dict) else ""
            try:
                specs = item.get("types")
                if not isinstance(specs, list) or not specs:
                    raise HubSpotError(400, "VALIDATION_ERROR", "Each input needs types")
                checked = [_check_spec(ot, to_ot, s) for s in specs]
                _require_live(state, ot, rid)
                _require_live(state, to_ot, to_id)
            except HubSpotError as exc:
                errors.append(
                    standard_error(exc.category, exc.message, {"fromId": [rid], "toId": [to_id]})
                )
                continue
            for tid, category in checked:
                add_link(state, ot, rid, to_ot, to_id, tid, category)
            results.append(_labels_between(state, ot, rid, to_ot, to_id))
    return _batch(results, errors, started, state, 201)


def batch_create_default(state: SandboxState, request: Request) -> Response:
    """``…/batch/associate/default``: unlabelled links, 200 (invalid pairs become errors)."""
    ot = object_type(request.params["from"])
    to_ot = object_type(request.params["to"])
    unl, _ = pair_types(ot, to_ot)
    started = now_iso(state)
    inputs = batch_inputs(json_body(request), V4_BATCH_WRITE_MAX)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with state.transaction():
        for item in inputs:
            rid, to = _from_to_ids(item)
            to_id = str(to.get("id")) if isinstance(to, dict) else ""
            if not (_live(state, ot, rid) and _live(state, to_ot, to_id)):
                errors.append(
                    standard_error(
                        "VALIDATION_ERROR",
                        f"{SINGULAR[ot].upper()}={rid} or {SINGULAR[to_ot].upper()}={to_id} "
                        "is not valid",
                        {"fromId": [rid], "toId": [to_id]},
                    )
                )
                continue
            add_link(state, ot, rid, to_ot, to_id, unl)
            results.extend(_default_result(ot, rid, to_ot, to_id))
    # The client maps only 200 for this call; errors ride along in the 200 body.
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now_iso(state),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return Response(200, body)


def batch_archive(state: SandboxState, request: Request) -> Response:
    """``…/batch/archive``: ``{inputs:[{from:{id}, to:[{id}]}]}`` removes every type (204)."""
    ot = object_type(request.params["from"])
    to_ot = object_type(request.params["to"])
    pair_types(ot, to_ot)
    inputs = batch_inputs(json_body(request), V4_BATCH_WRITE_MAX)
    with state.transaction():
        for item in inputs:
            rid, to = _from_to_ids(item)
            for target in to if isinstance(to, list) else []:
                if isinstance(target, dict) and target.get("id") not in (None, ""):
                    remove_pair(state, ot, rid, to_ot, str(target["id"]))
    return Response(204)


def batch_archive_labels(state: SandboxState, request: Request) -> Response:
    """``…/batch/labels/archive``: removes the given types only (both directions), 204."""
    ot = object_type(request.params["from"])
    to_ot = object_type(request.params["to"])
    pair_types(ot, to_ot)
    inputs = batch_inputs(json_body(request), V4_BATCH_WRITE_MAX)
    with state.transaction():
        for item in inputs:
            rid, to = _from_to_ids(item)
            to_id = str(to.get("id")) if isinstance(to, dict) else ""
            for spec in item.get("types") or []:
                tid, _ = _check_spec(ot, to_ot, spec)
                rtid = reverse_type(ot, to_ot, tid)
                state.execute(
                    "DELETE FROM assoc WHERE from_object=? AND from_id=? AND to_object=? "
                    "AND to_id=? AND type_id=?",
                    (ot, rid, to_ot, to_id, tid),
                )
                state.execute(
                    "DELETE FROM assoc WHERE from_object=? AND from_id=? AND to_object=? "
                    "AND to_id=? AND type_id=?",
                    (to_ot, to_id, ot, rid, rtid),
                )
    return Response(204)
