"""Control endpoints of the sandbox: reset, seed, mutate, faults, clock, ledger, config.

Test and benchmark use only. They live under ``/__sandbox/`` on each emulator's port, a prefix
no real Salesforce or HubSpot path uses, so they can never be mistaken for API calls and are not
written to the request ledger.

Endpoints (JSON bodies):

- ``POST /__sandbox/reset``: empty both CRMs.
- ``POST /__sandbox/seed`` ``{"profile": "tiny", "seed": 42}``: reset, then generate a data set.
- ``POST /__sandbox/mutate`` ``{"seed": 1, "share": 0.01, "objects": [...]}``: simulate users
  editing, creating and deleting records (see ``sandbox.mutate``).
- ``POST /__sandbox/reassign`` ``{"crm", "object", "id", "owner_id"}``: a user gives one record a
  new owner, with the owner history the CRM writes (``sandbox.mutate.reassign_owner``).
- ``GET|POST|DELETE /__sandbox/faults``: list, add (``FaultRule`` fields), clear this CRM's faults.
- ``GET /__sandbox/clock``, ``POST /__sandbox/clock`` ``{"advance": seconds}`` or ``{"set": iso}``.
- ``GET /__sandbox/ledger?since=SEQ&crm=salesforce``; ``GET /__sandbox/ledger/head``.
- ``GET|POST /__sandbox/config/{crm}``: read or merge emulator settings (rate limits, lag…).
- ``POST /__sandbox/tokens`` ``{"crm", "token", "scopes": [...], "ttl_seconds"?}``: add a token.
- ``GET /__sandbox/truth``: the generator's true cross-CRM customer pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

# re-exported: the tests take the settings from here too
from sandbox.config import DEFAULT_CONFIG as DEFAULT_CONFIG
from sandbox.config import get_config as get_config
from sandbox.config import set_config as set_config
from sandbox.http import FaultRule, Request, Response
from sandbox.state import SandboxState, fmt_ts, parse_ts

if TYPE_CHECKING:
    from sandbox.http import EmulatorServer


def make_control(
    state: SandboxState, servers: Callable[[], dict[str, EmulatorServer]]
) -> Callable[[Request], Response]:
    """Build the control handler; ``servers()`` maps crm name -> running server."""

    def this_server(request: Request) -> EmulatorServer | None:
        host_port = request.headers.get("host", "")
        port = int(host_port.rsplit(":", 1)[1]) if ":" in host_port else 0
        for srv in servers().values():
            if srv.port == port:
                return srv
        return None

    def handle(request: Request) -> Response:
        path = request.path[len("/__sandbox") :]
        body = request.json() if request.body else {}
        if path == "/reset" and request.method == "POST":
            state.reset()
            return Response(200, {"ok": True})
        if path == "/seed" and request.method == "POST":
            from sandbox.generator import generate

            stats = generate(
                state, profile=body.get("profile", "tiny"), seed=int(body.get("seed", 42))
            )
            return Response(200, {"ok": True, "stats": stats})
        if path == "/mutate" and request.method == "POST":
            from sandbox.mutate import mutate

            return Response(200, {"ok": True, "changes": mutate(state, **body)})
        if path == "/reassign" and request.method == "POST":
            from sandbox.mutate import reassign_owner

            reassign_owner(
                state, body["crm"], body["object"], str(body["id"]), str(body["owner_id"])
            )
            return Response(200, {"ok": True})
        if path == "/faults":
            srv = this_server(request)
            if srv is None:
                return Response(400, {"message": "unknown server"})
            if request.method == "GET":
                return Response(200, {"faults": srv.faults.list()})
            if request.method == "DELETE":
                srv.faults.clear()
                return Response(200, {"ok": True})
            if request.method == "POST":
                allowed = {"kind", "method", "path", "nth", "rate", "times", "params", "seed"}
                unknown = set(body) - allowed
                if unknown:
                    return Response(400, {"message": f"unknown fault keys: {sorted(unknown)}"})
                srv.faults.add(FaultRule(**body))
                return Response(200, {"ok": True})
        if path == "/clock":
            if request.method == "POST":
                if "advance" in body:
                    state.advance_clock(float(body["advance"]))
                if "set" in body:
                    state.set_clock(parse_ts(body["set"]))
            return Response(200, {"now": fmt_ts(state.now())})
        if path == "/ledger" and request.method == "GET":
            since = int(request.arg("since", "0") or 0)
            return Response(200, {"requests": state.ledger(since, request.arg("crm"))})
        if path == "/ledger/head":
            return Response(200, {"head": state.ledger_head()})
        m = re.fullmatch(r"/config/(salesforce|hubspot)", path)
        if m:
            if request.method == "POST":
                return Response(200, set_config(state, m.group(1), body))
            return Response(200, get_config(state, m.group(1)))
        if path == "/tokens" and request.method == "POST":
            from datetime import timedelta

            ttl = body.get("ttl_seconds")
            state.add_token(
                body["token"],
                body["crm"],
                body.get("scopes", []),
                state.now() + timedelta(seconds=float(ttl)) if ttl else None,
            )
            return Response(200, {"ok": True})
        if path == "/truth":
            return Response(200, {"pairs": state.truth()})
        return Response(404, {"message": f"unknown control endpoint {request.method} {path}"})

    return handle
