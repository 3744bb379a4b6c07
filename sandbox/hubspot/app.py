"""HubSpot CRM v3/v4 emulator: routes, authentication, scopes, rate limits and faults.

The unmodified ``hubspot-api-client`` 12.0.0 talks to this emulator (``Client.create(host=…)``),
including with ``client_side_validation=True``, which turns the SDK's generated models into a
strict checker of required response fields. The route handlers live in modules by role
(``objects``, ``search``, ``associations``, ``properties``, ``owners``, ``pipelines`` (with the
custom object schemas), ``oauth``); this module
wires them up and runs every request through the same pipeline HubSpot applies:

1. ``POST /oauth/v1/token`` is public; everything else needs ``Authorization: Bearer`` with a
   token of crm ``hubspot`` in the sandbox state (missing, unknown or expired → 401);
2. the token's rate limits (burst window, search per second, daily quota) → 429;
3. the route's scopes → 403 ``MISSING_SCOPES``;
4. the handler; a ``HubSpotError`` anywhere becomes HubSpot's error envelope.

Every response carries ``Date`` (on the sandbox clock) and the ``X-HubSpot-RateLimit-*`` headers.
"""

from __future__ import annotations

import email.utils
import json
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.config import get_config
from sandbox.http import EmulatorApp, Request, Response
from sandbox.hubspot import (
    associations,
    oauth,
    objects,
    owners,
    pipelines,
    properties,
    search,
)
from sandbox.hubspot.common import HubSpotError, error_response, object_type
from sandbox.hubspot.limits import (
    OWNERS_SCOPE,
    SCHEMAS_SCOPE,
    RateLimiter,
    authenticate,
    expired_token_response,
    missing_scopes,
    object_scopes,
    rate_limit_response,
    schema_scopes,
)
from sandbox.state import HS, SandboxState

Scopes = Callable[[dict[str, str]], Sequence[Sequence[str]]]
Handler = Callable[[Request], Response]

_O = "/crm/v3/objects/{ot}"
_P = "/crm/v3/properties/{ot}"
_V4 = "/crm/v4/objects/{ot}/{id}/associations"
_V4B = "/crm/v4/associations/{from}/{to}/batch"


def _objects(access: str, key: str = "ot") -> Scopes:
    return lambda p: [object_scopes(object_type(p[key]), access)]


def _schemas(access: str) -> Scopes:
    return lambda p: [schema_scopes(object_type(p["ot"]), access)]


def _pair(access: str, a: str, b: str) -> Scopes:
    return lambda p: [
        object_scopes(object_type(p[a]), access),
        object_scopes(object_type(p[b]), access),
    ]


def _owners(_: dict[str, str]) -> Sequence[Sequence[str]]:
    return [(OWNERS_SCOPE,)]


def _custom_schemas(_: dict[str, str]) -> Sequence[Sequence[str]]:
    return [(SCHEMAS_SCOPE,)]


class HubSpotApp(EmulatorApp):
    """The emulated HubSpot portal; one instance per sandbox server."""

    crm = HS

    def __init__(self, state: SandboxState) -> None:
        super().__init__(state)
        self.limiter = RateLimiter()
        self._local = threading.local()
        # Keyset paging and id-sorted search compare ids numerically; this expression index
        # keeps those an index range scan on the large profile (a million emails).
        # Keyset paging and id-sorted search compare ids numerically, and search counts
        # ``total`` on every call. These two expression indexes cover the system columns both
        # ways round, so ``hs_object_id``/``hs_lastmodifieddate`` filters, sorts and counts stay
        # index-only on the large profile (a million emails).
        state.execute(
            "CREATE INDEX IF NOT EXISTS records_hs_id "
            "ON records (crm, object, deleted, CAST(id AS INTEGER), modified)"
        )
        state.execute(
            "CREATE INDEX IF NOT EXISTS records_hs_modified "
            "ON records (crm, object, deleted, modified, CAST(id AS INTEGER))"
        )
        self._routes()

    # ---- wiring ----------------------------------------------------------------------------
    def _add(self, method: str, pattern: str, handler: Handler, scopes: Scopes) -> None:
        def guarded(request: Request) -> Response:
            denied = missing_scopes(getattr(self._local, "scopes", set()), scopes(request.params))
            return denied if denied is not None else handler(request)

        self.router.add(method, pattern, guarded)

    def _forced(self) -> dict[str, str] | None:
        """Ids a ``partial`` fault makes fail in the batch call being served (this thread)."""
        return getattr(self._local, "forced", None)

    def _routes(self) -> None:
        st = self.state
        add = self._add
        # objects: fixed sub-paths before the ``{id}`` routes
        add("POST", f"{_O}/search", lambda r: search.search(st, r, self._lag()), _objects("read"))
        add(
            "POST",
            f"{_O}/batch/read",
            lambda r: objects.batch_read(st, r, self._forced()),
            _objects("read"),
        )
        add("POST", f"{_O}/batch/create", lambda r: objects.batch_create(st, r), _objects("write"))
        add(
            "POST",
            f"{_O}/batch/update",
            lambda r: objects.batch_update(st, r, self._forced()),
            _objects("write"),
        )
        add(
            "POST",
            f"{_O}/batch/upsert",
            lambda r: objects.batch_upsert(st, r, self._forced()),
            _objects("write"),
        )
        add(
            "POST", f"{_O}/batch/archive", lambda r: objects.batch_archive(st, r), _objects("write")
        )
        add("GET", _O, lambda r: objects.list_objects(st, r, self.base_url), _objects("read"))
        add("POST", _O, lambda r: objects.create_object(st, r), _objects("write"))
        add(
            "GET",
            f"{_O}/{{id}}",
            lambda r: objects.get_object(st, r, self.base_url),
            _objects("read"),
        )
        add("PATCH", f"{_O}/{{id}}", lambda r: objects.update_object(st, r), _objects("write"))
        add("DELETE", f"{_O}/{{id}}", lambda r: objects.archive_object(st, r), _objects("write"))
        # associations v4
        add(
            "PUT",
            f"{_V4}/default/{{to}}/{{toId}}",
            lambda r: associations.create_default(st, r),
            _pair("write", "ot", "to"),
        )
        add(
            "GET",
            f"{_V4}/{{to}}",
            lambda r: associations.get_page(st, r, self.base_url),
            _pair("read", "ot", "to"),
        )
        add(
            "PUT",
            f"{_V4}/{{to}}/{{toId}}",
            lambda r: associations.create(st, r),
            _pair("write", "ot", "to"),
        )
        add(
            "DELETE",
            f"{_V4}/{{to}}/{{toId}}",
            lambda r: associations.archive(st, r),
            _pair("write", "ot", "to"),
        )
        add(
            "POST",
            f"{_V4B}/read",
            lambda r: associations.batch_read(st, r, self._forced()),
            _pair("read", "from", "to"),
        )
        add(
            "POST",
            f"{_V4B}/create",
            lambda r: associations.batch_create(st, r),
            _pair("write", "from", "to"),
        )
        add(
            "POST",
            f"{_V4B}/associate/default",
            lambda r: associations.batch_create_default(st, r),
            _pair("write", "from", "to"),
        )
        add(
            "POST",
            f"{_V4B}/archive",
            lambda r: associations.batch_archive(st, r),
            _pair("write", "from", "to"),
        )
        add(
            "POST",
            f"{_V4B}/labels/archive",
            lambda r: associations.batch_archive_labels(st, r),
            _pair("write", "from", "to"),
        )
        # properties: groups before ``{name}``
        add("GET", f"{_P}/groups", lambda r: properties.list_groups(st, r), _schemas("read"))
        add("POST", f"{_P}/groups", lambda r: properties.create_group(st, r), _schemas("write"))
        add("GET", f"{_P}/groups/{{name}}", lambda r: properties.get_group(st, r), _schemas("read"))
        add(
            "PATCH",
            f"{_P}/groups/{{name}}",
            lambda r: properties.update_group(st, r),
            _schemas("write"),
        )
        add(
            "DELETE",
            f"{_P}/groups/{{name}}",
            lambda r: properties.archive_group(st, r),
            _schemas("write"),
        )
        add("GET", _P, lambda r: properties.list_properties(st, r), _schemas("read"))
        add("POST", _P, lambda r: properties.create_property(st, r), _schemas("write"))
        add("GET", f"{_P}/{{name}}", lambda r: properties.get_property(st, r), _schemas("read"))
        add(
            "PATCH",
            f"{_P}/{{name}}",
            lambda r: properties.update_property(st, r),
            _schemas("write"),
        )
        add(
            "DELETE",
            f"{_P}/{{name}}",
            lambda r: properties.archive_property(st, r),
            _schemas("write"),
        )
        # owners (the client asks for the trailing slash; accept both)
        for path in ("/crm/v3/owners/", "/crm/v3/owners"):
            add("GET", path, lambda r: owners.list_owners(st, r, self.base_url), _owners)
        add("GET", "/crm/v3/owners/{id}", lambda r: owners.get_owner(st, r), _owners)
        # pipelines (read-only: the portal's default deal and ticket pipelines)
        _PL = "/crm/v3/pipelines/{ot}"
        add("GET", _PL, lambda r: pipelines.list_pipelines(st, r), _objects("read"))
        add("GET", f"{_PL}/{{pid}}", lambda r: pipelines.get_pipeline(st, r), _objects("read"))
        add(
            "GET", f"{_PL}/{{pid}}/stages", lambda r: pipelines.list_stages(st, r), _objects("read")
        )
        add(
            "GET",
            f"{_PL}/{{pid}}/stages/{{sid}}",
            lambda r: pipelines.get_stage(st, r),
            _objects("read"),
        )
        # custom object schemas: the documented path and the one hubspot-api-client 12 calls
        for base in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):
            add("GET", base, lambda r: pipelines.list_schemas(st, r), _custom_schemas)
            add("GET", f"{base}/{{ot}}", lambda r: pipelines.get_schema(st, r), _custom_schemas)

    def _lag(self) -> float:
        return float(get_config(self.state, HS).get("search_lag_seconds") or 0.0)

    # ---- pipeline --------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            if request.path == "/oauth/v1/token":
                if request.method != "POST":
                    return Response(405, {"message": "Method not allowed"})
                return oauth.token(self.state, request)
            token = request.bearer()
            denied, scopes = authenticate(self.state, token)
            if denied is not None:
                return denied
            config = get_config(self.state, HS)
            is_search = request.method == "POST" and request.path.endswith("/search")
            limited = self.limiter.admit(token, config, self.state.now(), search=is_search)
            if limited is not None:
                return limited
            self._local.scopes = scopes
            try:
                response = self.router.route(request)
            finally:
                self._local.scopes = set()
            return response if response is not None else self.not_found(request)
        except HubSpotError as exc:
            return exc.response()
        except json.JSONDecodeError as exc:
            return error_response(
                400, "VALIDATION_ERROR", f"Invalid input JSON on line {exc.lineno}: {exc.msg}"
            )

    def not_found(self, request: Request) -> Response:
        return error_response(
            404, "OBJECT_NOT_FOUND", f"No route for {request.method} {request.path}"
        )

    def decorate(self, request: Request, response: Response) -> None:
        # ``Date`` on the sandbox clock (the framework then leaves out its real-time one):
        # clients take "now" from it, and record timestamps follow the same clock.
        now = self.state.now()
        response.headers.setdefault("Date", email.utils.format_datetime(now, usegmt=True))
        if request.path.startswith("/oauth/"):
            return
        config = get_config(self.state, HS)
        for name, value in self.limiter.headers(request.bearer(), config, now).items():
            response.headers.setdefault(name, value)

    def fault_response(
        self, kind: str, params: dict[str, Any], request: Request
    ) -> Response | None:
        """Render HubSpot-specific faults injected through ``/__sandbox/faults``.

        ``partial`` is special: the request is served for real, except that the ids in
        ``params["ids"]`` fail with ``params["category"]`` (default ``VALIDATION_ERROR``) in a
        207; it applies to batch read/update/upsert and to v4 association batch read.
        """
        config = get_config(self.state, HS)
        override = config.get("retry_after_seconds")
        if kind == "rate_limit":
            policy = str(params.get("policy", "TEN_SECONDLY_ROLLING"))
            if override is not None:
                return rate_limit_response(policy, max(0, math.ceil(float(override))))
            if policy == "DAILY":
                return rate_limit_response(policy, None)
            wait = config["burst_window_seconds"] if policy == "TEN_SECONDLY_ROLLING" else 1
            return rate_limit_response(policy, max(1, math.ceil(float(wait))))
        if kind == "server_error":
            status = int(params.get("status", 502))
            messages = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
            return error_response(
                status,
                "INTERNAL_ERROR",
                f"{messages.get(status, 'Internal error')}: the request could not be completed.",
            )
        if kind == "expired_token":
            return expired_token_response()
        if kind == "locked":
            return error_response(
                423,
                "LOCKED",
                "The resource is locked by a concurrent high-volume write; retry in 2 seconds.",
            )
        if kind == "partial":
            category = str(params.get("category", "VALIDATION_ERROR"))
            self._local.forced = {str(i): category for i in params.get("ids", [])}
            try:
                return self.handle(request)
            finally:
                self._local.forced = None
        return None
