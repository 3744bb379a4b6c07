"""The owners API (``GET /crm/v3/owners/``, note the trailing slash the client sends).

Why the hub needs it: ``hubspot_owner_id`` on companies and deals is an owner id, and the hub
resolves it to a person (email) to match sellers and account managers across both CRMs.
Owners are stored as records of object ``owners`` with ``data`` = ``{email, firstName,
lastName, userId}``; ``createdAt``/``updatedAt`` come from the row.
"""

from __future__ import annotations

from typing import Any

from sandbox.http import Request, Response
from sandbox.hubspot.common import (
    HubSpotError,
    decode_cursor,
    encode_cursor,
    int_arg,
    next_page,
    parse_bool,
    row_dict,
)
from sandbox.state import HS, SandboxState

PAGE_MAX = 500


def render_owner(row: dict[str, Any]) -> dict[str, Any]:
    """``PublicOwner``: ``id``, ``type``, ``createdAt``, ``updatedAt``, ``archived`` required."""
    data = row["data"]
    user_id = data.get("userId")
    owner: dict[str, Any] = {
        "id": row["id"],
        "email": data.get("email"),
        "type": "PERSON",
        "firstName": data.get("firstName") or "",
        "lastName": data.get("lastName") or "",
        "userId": int(user_id) if user_id not in (None, "") else None,
        "createdAt": row["created"],
        "updatedAt": row["modified"],
        "archived": bool(row["deleted"]),
        "teams": data.get("teams") or [],
    }
    if owner["userId"] is not None:
        owner["userIdIncludingInactive"] = owner["userId"]
    return owner


def list_owners(state: SandboxState, request: Request, base_url: str) -> Response:
    limit = int_arg(request, "limit", 100, PAGE_MAX)
    after = decode_cursor(request.arg("after"))
    archived = parse_bool(request.arg("archived"))
    sql = "SELECT * FROM records WHERE crm=? AND object='owners' AND deleted=?"
    params: list[Any] = [HS, 1 if archived else 0]
    email = request.arg("email")
    if email:
        sql += " AND LOWER(json_extract(data, '$.email')) = LOWER(?)"
        params.append(email)
    if after is not None:
        sql += " AND CAST(id AS INTEGER) > ?"
        params.append(after)
    sql += " ORDER BY CAST(id AS INTEGER) LIMIT ?"
    params.append(limit + 1)
    rows = [row_dict(r) for r in state.execute(sql, params)]
    body: dict[str, Any] = {"results": [render_owner(r) for r in rows[:limit]]}
    if len(rows) > limit:
        body["paging"] = next_page(base_url, request, encode_cursor(rows[limit - 1]["id"]))
    return Response(200, body)


def get_owner(state: SandboxState, request: Request) -> Response:
    owner_id = request.params["id"]
    archived = parse_bool(request.arg("archived"))
    if request.arg("idProperty", "id") == "userId":
        rows = state.execute(
            "SELECT * FROM records WHERE crm=? AND object='owners' AND deleted=? "
            "AND CAST(json_extract(data, '$.userId') AS TEXT) = ?",
            (HS, 1 if archived else 0, owner_id),
        )
    else:
        rows = state.execute(
            "SELECT * FROM records WHERE crm=? AND object='owners' AND deleted=? AND id=?",
            (HS, 1 if archived else 0, owner_id),
        )
    if not rows:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found")
    return Response(200, render_owner(row_dict(rows[0])))
