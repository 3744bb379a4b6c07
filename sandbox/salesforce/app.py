"""Salesforce REST / Bulk API 2.0 emulator: routes, the session gate, limits, fault rendering.

Why it is shaped like this: the unmodified simple-salesforce 1.12.10 client must work against it
(see ``/work/shared/API_CONTRACT.md`` sections 1, 2, 5, 6), so paths keep the client's trailing
slashes, every error is Salesforce's JSON array, every API response carries
``Sforce-Limit-Info`` and a ``Date`` on the sandbox clock. The pieces live in role modules:
:mod:`.auth` (login flows), :mod:`.rest` (query, sObject rows, describe, replication),
:mod:`.composite` (sObject Collections), :mod:`.bulk` (Bulk API 2.0), :mod:`.bulk1` (Bulk API
1.0 query jobs under ``/services/async``), :mod:`.tooling`
(custom fields), :mod:`.query`/:mod:`.soql` (SOQL to SQLite), :mod:`.store` (validated writes).

Fault kinds rendered here (``FaultRule.kind``): ``rate_limit``/``quota_exhausted`` -> 403
``REQUEST_LIMIT_EXCEEDED``; ``server_error`` -> ``params.status`` (503) ``SERVER_UNAVAILABLE``;
``expired_token`` -> every Salesforce token expires, then 401 ``INVALID_SESSION_ID``;
``row_lock`` and ``partial`` -> the request runs, but the records named in ``params.ids``
(record ids or external-id values; ``params.indexes`` for positions; neither: all) fail with
``UNABLE_TO_LOCK_ROW`` or ``params.code`` (default ``FIELD_CUSTOM_VALIDATION_EXCEPTION``):
per record with HTTP 200 in Collections and Bulk, as a 400 for single-record writes. On a
request that writes nothing, ``row_lock``/``partial`` do not apply.
"""

from __future__ import annotations

import email.utils
import re
import threading
from typing import Any

from sandbox.http import EmulatorApp, Request, Response
from sandbox.salesforce import limits
from sandbox.salesforce.auth import (
    Auth,
    check_bearer,
    check_token,
    invalid_session,
    session_user,
    user_id_for,
)
from sandbox.salesforce.bulk import Bulk2
from sandbox.salesforce.bulk1 import Bulk1, BulkError, from_api_error, session_token, wants_json
from sandbox.salesforce.composite import Collections
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.rest import RestApi
from sandbox.salesforce.store import (
    REFERENCE_INDEXES,
    FailSpec,
    Store,
    WriteContext,
    ensure_index,
    set_context,
)
from sandbox.salesforce.tooling import Tooling
from sandbox.state import SF, SandboxState

_VERSION = re.compile(r"^v\d{2}\.\d$")
_V = "/services/data/{ver}"
_A = "/services/async/{ver}"
_WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


class SalesforceApp(EmulatorApp):
    crm = SF

    def __init__(self, state: SandboxState) -> None:
        super().__init__(state)
        self.store = Store(state)
        self.rest = RestApi(state, self.store)
        self.collections = Collections(state, self.store)
        self.bulk = Bulk2(state, self.store)
        self.bulk1 = Bulk1(state)
        self.tooling = Tooling(state)
        self._pending = threading.local()
        self._prepare_indexes()
        self._routes()

    def _prepare_indexes(self) -> None:
        """Indexes the emulator's hot queries need beyond those of ``sandbox.state``.

        ``sf_live`` serves the incremental-sync query (live rows of one object by
        ``SystemModstamp, Id``) without touching deleted rows; external-id indexes serve upserts.
        """
        self.state.execute("DROP INDEX IF EXISTS sf_records_live")  # an earlier, non-partial form
        self.state.execute(
            f"CREATE INDEX IF NOT EXISTS sf_live ON records (object, deleted, modified, id) "
            f"WHERE crm = '{SF}'"
        )
        from sandbox.salesforce.describe import load_schema, object_names

        for obj in object_names():
            schema = load_schema(self.state, obj)
            assert schema is not None
            for f in schema.fields:
                if f.external_id:
                    ensure_index(self.state, obj, f.name)
        for obj, names in REFERENCE_INDEXES.items():
            for name in names:
                ensure_index(self.state, obj, name, nocase=False)

    def _routes(self) -> None:
        r = self.router
        rest, coll, bulk, tool = self.rest, self.collections, self.bulk, self.tooling
        r.add("GET", "/services/data/", rest.versions)
        r.add("GET", "/services/data", rest.versions)
        r.add("GET", f"{_V}/", rest.resources)
        r.add("GET", f"{_V}", rest.resources)
        for path in (f"{_V}/limits/", f"{_V}/limits"):
            r.add("GET", path, rest.limits)
        r.add("GET", f"{_V}/limits/recordCount", rest.record_count)
        for ep in ("query", "queryAll"):
            r.add("GET", f"{_V}/{ep}/", rest.query)
            r.add("GET", f"{_V}/{ep}", rest.query)
            r.add("GET", f"{_V}/{ep}/{{locator}}", rest.query_more)
        r.add("GET", f"{_V}/sobjects", rest.describe_global)
        r.add("GET", f"{_V}/sobjects/", rest.describe_global)
        for suffix in ("describe", "describe/"):
            r.add("GET", f"{_V}/sobjects/{{obj}}/{suffix}", rest.describe)
        for suffix in ("updated/", "updated"):
            r.add("GET", f"{_V}/sobjects/{{obj}}/{suffix}", rest.updated)
        for suffix in ("deleted/", "deleted"):
            r.add("GET", f"{_V}/sobjects/{{obj}}/{suffix}", rest.deleted)
        for path in (f"{_V}/sobjects/{{obj}}/", f"{_V}/sobjects/{{obj}}"):
            r.add("GET", path, rest.metadata)
            r.add("POST", path, rest.create)
        r.add("GET", f"{_V}/sobjects/{{obj}}/{{id}}", rest.get)
        r.add("PATCH", f"{_V}/sobjects/{{obj}}/{{id}}", rest.update)
        r.add("DELETE", f"{_V}/sobjects/{{obj}}/{{id}}", rest.delete)
        r.add("GET", f"{_V}/sobjects/{{obj}}/{{field}}/{{value}}", rest.get_by_ext)
        r.add("PATCH", f"{_V}/sobjects/{{obj}}/{{field}}/{{value}}", rest.upsert)
        # sObject Collections
        for path in (f"{_V}/composite/sobjects", f"{_V}/composite/sobjects/"):
            r.add("POST", path, coll.create)
            r.add("PATCH", path, coll.update)
            r.add("DELETE", path, coll.delete)
        r.add("GET", f"{_V}/composite/sobjects/{{obj}}", coll.retrieve)
        r.add("POST", f"{_V}/composite/sobjects/{{obj}}", coll.retrieve)
        r.add("PATCH", f"{_V}/composite/sobjects/{{obj}}/{{field}}", coll.upsert)
        # Tooling
        for path in (f"{_V}/tooling/query/", f"{_V}/tooling/query"):
            r.add("GET", path, tool.query)
        for path in (f"{_V}/tooling/sobjects/{{type}}", f"{_V}/tooling/sobjects/{{type}}/"):
            r.add("POST", path, tool.create_field)
        r.add("GET", f"{_V}/tooling/sobjects/CustomField/{{id}}", tool.get_field)
        r.add("DELETE", f"{_V}/tooling/sobjects/CustomField/{{id}}", tool.delete_field)
        # Bulk API 2.0
        for path in (f"{_V}/jobs/query", f"{_V}/jobs/query/"):
            r.add("POST", path, bulk.create_query)
            r.add("GET", path, bulk.list_jobs)
        r.add("GET", f"{_V}/jobs/query/{{job}}", bulk.get_query)
        r.add("PATCH", f"{_V}/jobs/query/{{job}}", self._abort_query)
        r.add("DELETE", f"{_V}/jobs/query/{{job}}", bulk.delete_job)
        r.add("GET", f"{_V}/jobs/query/{{job}}/results", bulk.query_results)
        for path in (f"{_V}/jobs/ingest", f"{_V}/jobs/ingest/"):
            r.add("POST", path, bulk.create_ingest)
            r.add("GET", path, bulk.list_jobs)
        r.add("GET", f"{_V}/jobs/ingest/{{job}}", bulk.get_ingest)
        r.add("PATCH", f"{_V}/jobs/ingest/{{job}}", bulk.patch_ingest)
        r.add("DELETE", f"{_V}/jobs/ingest/{{job}}", bulk.delete_job)
        r.add("PUT", f"{_V}/jobs/ingest/{{job}}/batches", bulk.upload)
        r.add("GET", f"{_V}/jobs/ingest/{{job}}/{{kind}}", bulk.ingest_results)

        # Bulk API 1.0 (query and queryAll jobs)
        b1 = self.bulk1
        r.add("POST", f"{_A}/job", b1.create_job)
        r.add("GET", f"{_A}/job/{{job}}", b1.get_job)
        r.add("POST", f"{_A}/job/{{job}}", b1.update_job)
        r.add("POST", f"{_A}/job/{{job}}/batch", b1.add_batch)
        r.add("GET", f"{_A}/job/{{job}}/batch", b1.list_batches)
        r.add("GET", f"{_A}/job/{{job}}/batch/{{batch}}", b1.get_batch)
        r.add("GET", f"{_A}/job/{{job}}/batch/{{batch}}/request", b1.batch_request)
        r.add("GET", f"{_A}/job/{{job}}/batch/{{batch}}/result", b1.result_list)
        r.add("GET", f"{_A}/job/{{job}}/batch/{{batch}}/result/{{result}}", b1.result)

    def _abort_query(self, request: Request) -> Response:
        job = self.bulk._load(request.params["job"], "query")
        job["state"] = "Aborted" if job["state"] != "JobComplete" else job["state"]
        self.bulk._save(job)
        return Response(200, self.bulk._public(job))

    # ---- request pipeline ---------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except ApiError as exc:
            return exc.response()
        finally:
            set_context(None)

    def _handle(self, request: Request) -> Response:
        path = request.path
        auth = Auth(self.state, self.base_url)
        if path.rstrip("/") == "/services/oauth2/token":
            if request.method != "POST":
                return Response(405, {"error": "invalid_request", "error_description": "POST only"})
            return auth.token(request)
        if path.rstrip("/") == "/services/oauth2/revoke" and request.method == "POST":
            return auth.revoke(request)
        m = re.fullmatch(r"/services/Soap/u/(\d{2}\.\d)/?(\w*)", path)
        if m and request.method == "POST":
            return auth.soap_login(request, m.group(1))
        if path.startswith("/services/async/"):
            return self._bulk1(request)
        if not path.startswith("/services/data"):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        parts = path.split("/")
        if len(parts) > 3 and parts[3] and not _VERSION.match(parts[3]):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if path.rstrip("/") != "/services/data":
            token = check_bearer(self.state, request)
            if token is None:
                return invalid_session()
            limits.spend(self.state)
            username = session_user(self.state, token)
            from sandbox.config import get_config

            user_id = get_config(self.state, SF).get("api_user_id") or (
                user_id_for(self.state, username) if username else None
            )
            set_context(WriteContext(user_id=user_id, fail=getattr(self._pending, "fail", None)))
        response = self.router.route(request)
        if response is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if response.status == 405 and isinstance(response.body, dict):
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed")
        return response

    def _bulk1(self, request: Request) -> Response:
        """Bulk API 1.0: its own session header and error shape, the same limits and router."""
        as_json = wants_json(request)
        try:
            token = check_token(self.state, session_token(request))
            if token is None:
                raise BulkError(400, "InvalidSessionId", "Invalid session id")
            try:
                limits.spend(self.state)
            except ApiError as exc:
                raise from_api_error(exc) from None
            username = session_user(self.state, token)
            set_context(
                WriteContext(user_id=user_id_for(self.state, username) if username else None)
            )
            response = self.router.route(request)
            if response is None:
                raise BulkError(404, "InvalidUrl", f"No Bulk API 1.0 resource at {request.path}")
            return response
        except BulkError as exc:
            return exc.response(as_json)

    def decorate(self, request: Request, response: Response) -> None:
        now = self.state.now()
        response.headers.setdefault("Date", email.utils.format_datetime(now, usegmt=True))
        if request.path.startswith("/services/data/"):
            exhausted = response.status == 403 and _error_code(response) == "REQUEST_LIMIT_EXCEEDED"
            response.headers.setdefault(
                "Sforce-Limit-Info", limits.header(self.state, exhausted=exhausted)
            )

    def fault_response(
        self, kind: str, params: dict[str, Any], request: Request
    ) -> Response | None:
        if kind in ("rate_limit", "quota_exhausted"):
            return limits.quota_error().response()
        if kind == "server_error":
            status = int(params.get("status", 503))
            return Response(
                status,
                [
                    {
                        "message": params.get("message", "Server temporarily unavailable"),
                        "errorCode": "SERVER_UNAVAILABLE",
                    }
                ],
            )
        if kind == "expired_token":
            self.state.expire_tokens(SF)
            return invalid_session()
        if kind in ("row_lock", "partial"):
            if request.method not in _WRITE_METHODS or "/query" in request.path:
                return None
            if kind == "row_lock":
                code = "UNABLE_TO_LOCK_ROW"
                message = "unable to obtain exclusive access to this record or 1 records"
            else:
                code = str(params.get("code", "FIELD_CUSTOM_VALIDATION_EXCEPTION"))
                message = str(params.get("message", "Injected validation failure"))
            ids = params.get("ids")
            indexes = params.get("indexes")
            self._pending.fail = FailSpec(
                code,
                message,
                {str(i) for i in ids} if ids is not None else None,
                {int(i) for i in indexes} if indexes is not None else None,
            )
            try:
                return self.handle(request)
            finally:
                self._pending.fail = None
        return None


def _error_code(response: Response) -> str | None:
    body = response.body
    if isinstance(body, list) and body and isinstance(body[0], dict):
        code = body[0].get("errorCode")
        return str(code) if code is not None else None
    return None
