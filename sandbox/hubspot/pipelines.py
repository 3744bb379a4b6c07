"""Pipelines (``/crm/v3/pipelines/{objectType}``) and custom object schemas (``/crm/v3/schemas``).

Why: extractors written against HubSpot read the pipelines first to turn ``dealstage`` and
``hs_pipeline_stage`` ids into labels, probabilities and open/closed states, and list the
portal's custom object schemas to know which ``2-…`` object types exist. Both are read-only here:
the pipelines are the portal's defaults (the deal stages and ticket stages of
``sandbox.catalog``, the same values the objects API accepts), and the sandbox portal has no
custom objects, so the schema list is empty and a schema lookup is a 404, as on a real portal
without custom objects.
"""

from __future__ import annotations

from typing import Any

from sandbox.catalog import HS_DEAL_STAGES, HS_TICKET_STAGES
from sandbox.http import Request, Response
from sandbox.hubspot.common import HubSpotError, object_type
from sandbox.state import SandboxState

#: When the default pipelines "were created": before any generated record.
_CREATED = "2019-01-01T00:00:00.000Z"


def _stage(sid: str, label: str, order: int, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": sid,
        "label": label,
        "displayOrder": order,
        "metadata": metadata,
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }


def _pipelines(ot: str) -> list[dict[str, Any]]:
    """The pipelines of an object type (only deals and tickets have them)."""
    if ot == "deals":
        stages = [
            _stage(
                sid,
                label,
                i,
                {"isClosed": "true" if closed else "false", "probability": str(probability)},
            )
            for i, (sid, label, probability, closed, _won) in enumerate(HS_DEAL_STAGES)
        ]
        return [_pipeline("default", "Sales Pipeline", stages)]
    if ot == "tickets":
        stages = [
            _stage(sid, label, i, {"ticketState": "CLOSED" if closed else "OPEN"})
            for i, (sid, (label, closed)) in enumerate(HS_TICKET_STAGES.items())
        ]
        return [_pipeline("0", "Support Pipeline", stages)]
    return []


def _pipeline(pid: str, label: str, stages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": pid,
        "label": label,
        "displayOrder": 0,
        "stages": stages,
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "archived": False,
    }


def _object_with_pipelines(raw: str) -> str:
    ot = object_type(raw)
    if ot not in ("deals", "tickets"):
        raise HubSpotError(
            400, "VALIDATION_ERROR", f"Object type {raw} does not support pipelines."
        )
    return ot


def _find(ot: str, pid: str) -> dict[str, Any]:
    for pipeline in _pipelines(ot):
        if pipeline["id"] == pid:
            return pipeline
    raise HubSpotError(
        404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pid}", context={"id": [pid]}
    )


def list_pipelines(state: SandboxState, request: Request) -> Response:
    """``GET /crm/v3/pipelines/{objectType}``: every pipeline with its stages (no paging)."""
    return Response(200, {"results": _pipelines(_object_with_pipelines(request.params["ot"]))})


def get_pipeline(state: SandboxState, request: Request) -> Response:
    ot = _object_with_pipelines(request.params["ot"])
    return Response(200, _find(ot, request.params["pid"]))


def list_stages(state: SandboxState, request: Request) -> Response:
    ot = _object_with_pipelines(request.params["ot"])
    return Response(200, {"results": _find(ot, request.params["pid"])["stages"]})


def get_stage(state: SandboxState, request: Request) -> Response:
    ot = _object_with_pipelines(request.params["ot"])
    sid = request.params["sid"]
    for stage in _find(ot, request.params["pid"])["stages"]:
        if stage["id"] == sid:
            return Response(200, stage)
    raise HubSpotError(
        404, "OBJECT_NOT_FOUND", f"Unable to find stage {sid}", context={"id": [sid]}
    )


def list_schemas(state: SandboxState, request: Request) -> Response:
    """``GET /crm/v3/schemas``: the portal's custom object schemas (the sandbox has none)."""
    return Response(200, {"results": []})


def get_schema(state: SandboxState, request: Request) -> Response:
    raw = request.params["ot"]
    raise HubSpotError(
        404,
        "OBJECT_NOT_FOUND",
        f"Unable to find object schema for {raw}: the portal has no such custom object.",
        context={"objectType": [raw]},
    )
