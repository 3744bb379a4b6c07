"""Bulk API 1.0 query and queryAll jobs (``/services/async/{ver}/job``), JSON and CSV results.

Why: every org serves the older Bulk API next to 2.0, and simple-salesforce's
``sf.bulk.<Object>.query(...)``/``query_all(...)`` and several well-known extractors use it
first. The protocol a client walks: create a job (``{"operation", "object", "contentType"}``),
add a batch whose body is the SOQL text, close the job, poll the batch until ``Completed``, list
its result ids (``batch/{id}/result``), fetch each result (``batch/{id}/result/{rid}``).

What is kept from the real API: authentication by the ``X-SFDC-Session`` header (a bearer token
works too); errors as ``{"exceptionCode", "exceptionMessage"}`` (``InvalidSessionId``,
``InvalidJob``, ``InvalidBatch``, ``ExceededQuota``); an invalid SOQL fails the *batch*
(``state: Failed`` with ``stateMessage``), not the request; job and batch info in JSON when the
request says JSON, else in XML; JSON results where datetimes and dates are epoch milliseconds
(the 1.0 quirk), CSV results with every value quoted and datetimes ``…000Z``; a CSV job's result
list in XML. A batch completes on its first poll (a real org is asynchronous; the contract is
only that polling ends in ``Completed``). Results are produced page by page with the same
keyset cursor as the REST and Bulk 2.0 paths, ``bulk_results_max_records`` rows per result.

Not served (answered 400 ``InvalidJob``): ingest operations (insert, update, upsert, delete,
hardDelete: use Bulk API 2.0 ingest, which the sandbox serves), XML content, PK chunking.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from xml.sax.saxutils import escape

from sandbox.config import get_config
from sandbox.formats import sf_datetime, sf_new_id
from sandbox.http import Request, Response
from sandbox.salesforce import limits
from sandbox.salesforce.bulk import _csv_text
from sandbox.salesforce.describe import load_schema
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.query import Plan, compile_query
from sandbox.salesforce.store import current
from sandbox.state import SF, SandboxState, parse_ts

_NS = "http://www.force.com/2009/06/asyncapi/dataload"
_QUERY_OPS = ("query", "queryAll")
#: REST error codes as Bulk API 1.0 names them.
_CODES = {
    "REQUEST_LIMIT_EXCEEDED": "ExceededQuota",
    "INVALID_SESSION_ID": "InvalidSessionId",
    "NOT_FOUND": "InvalidJob",
}


class BulkError(Exception):
    """A whole Bulk 1.0 request fails with ``{"exceptionCode", "exceptionMessage"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def response(self, as_json: bool) -> Response:
        if as_json:
            return Response(
                self.status, {"exceptionCode": self.code, "exceptionMessage": self.message}
            )
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><error xmlns="{_NS}">'
            f"<exceptionCode>{self.code}</exceptionCode>"
            f"<exceptionMessage>{escape(self.message)}</exceptionMessage></error>"
        )
        return Response(self.status, body, content_type="application/xml")


def from_api_error(exc: ApiError) -> BulkError:
    return BulkError(exc.status, _CODES.get(exc.code, "InvalidBatch"), exc.message)


def wants_json(request: Request) -> bool:
    """JSON when the request is JSON (``Content-Type`` or ``Accept``), XML otherwise."""
    kind = request.headers.get("content-type", "") + request.headers.get("accept", "")
    return "json" in kind.lower()


def session_token(request: Request) -> str | None:
    """Bulk 1.0 sends the session in ``X-SFDC-Session``; a bearer token is accepted too."""
    raw = request.headers.get("x-sfdc-session") or request.bearer() or ""
    return raw.removeprefix("Bearer ").strip() or None


def _xml(root: str, info: dict[str, Any]) -> str:
    parts = []
    for key, value in info.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f"<{key}>{escape(text)}</{key}>")
    return f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{_NS}">{"".join(parts)}</{root}>'


def _epoch_ms(value: Any, kind: str) -> Any:
    """Bulk 1.0 JSON sends datetimes and dates as epoch milliseconds."""
    if not isinstance(value, str):
        return value
    if kind == "date":
        day = dt.date.fromisoformat(value)
        return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return int(parse_ts(value).timestamp() * 1000)


class Bulk1:
    """Handlers of ``/services/async/{ver}/job…``; state kept in the sandbox's meta table."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # ---- storage ---------------------------------------------------------------------------
    def _load(self, job_id: str) -> dict[str, Any]:
        job = self.state.get_json(f"sf:bulk1:{job_id}", None)
        if job is None:
            raise BulkError(400, "InvalidJob", f"Invalid job id: {job_id}")
        return dict(job)

    def _save(self, job: dict[str, Any]) -> None:
        job["systemModstamp"] = sf_datetime(self.state.now())
        self.state.set_json(f"sf:bulk1:{job['id']}", job)

    def _batch(self, job: dict[str, Any], batch_id: str) -> dict[str, Any]:
        batch = job["_batches"].get(batch_id)
        if batch is None:
            raise BulkError(400, "InvalidBatch", f"Invalid batch id: {batch_id}")
        return dict(batch)

    @staticmethod
    def _public(info: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in info.items() if not k.startswith("_")}

    def _answer(
        self, request: Request, root: str, info: dict[str, Any], status: int = 200
    ) -> Response:
        public = self._public(info)
        if wants_json(request):
            return Response(status, public)
        return Response(status, _xml(root, public), content_type="application/xml")

    def _job_counts(self, job: dict[str, Any]) -> None:
        batches = list(job["_batches"].values())
        job["numberBatchesTotal"] = len(batches)
        for state, key in (
            ("Queued", "numberBatchesQueued"),
            ("InProgress", "numberBatchesInProgress"),
            ("Completed", "numberBatchesCompleted"),
            ("Failed", "numberBatchesFailed"),
        ):
            job[key] = sum(1 for b in batches if b["state"] == state)
        job["numberRecordsProcessed"] = sum(b["numberRecordsProcessed"] for b in batches)

    # ---- jobs ------------------------------------------------------------------------------
    def create_job(self, request: Request) -> Response:
        try:
            spec = json.loads(request.body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BulkError(
                400, "InvalidJob", "The sandbox's Bulk API 1.0 reads JSON job definitions"
            ) from exc
        if not isinstance(spec, dict):
            raise BulkError(400, "InvalidJob", "Expected a JSON job definition")
        op = spec.get("operation")
        if op not in _QUERY_OPS:
            raise BulkError(
                400,
                "InvalidJob",
                f"Operation {op} is not served by the sandbox's Bulk API 1.0 (query and queryAll "
                "are); write through Bulk API 2.0 ingest jobs or sObject Collections",
            )
        schema = load_schema(self.state, str(spec.get("object") or ""))
        if schema is None:
            raise BulkError(400, "InvalidJob", f"Unable to find object: {spec.get('object')}")
        content = str(spec.get("contentType") or "CSV").upper()
        if content not in ("JSON", "CSV"):
            raise BulkError(
                400, "InvalidJob", f"contentType {content} is not served by the sandbox (JSON, CSV)"
            )
        now = sf_datetime(self.state.now())
        mode = spec.get("concurrencyMode")
        job: dict[str, Any] = {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apiVersion": float(request.params["ver"]),
            "assignmentRuleId": None,
            "concurrencyMode": "Serial" if mode in (1, "1", "Serial") else "Parallel",
            "contentType": content,
            "createdById": current().user_id,
            "createdDate": now,
            "externalIdFieldName": None,
            "fastPathEnabled": False,
            "id": sf_new_id(self.state, "750"),
            "numberBatchesCompleted": 0,
            "numberBatchesFailed": 0,
            "numberBatchesInProgress": 0,
            "numberBatchesQueued": 0,
            "numberBatchesTotal": 0,
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": 0,
            "numberRetries": 0,
            "object": schema.name,
            "operation": op,
            "state": "Open",
            "systemModstamp": now,
            "totalProcessingTime": 0,
            "_batches": {},
        }
        limits.count_bulk_query_job(self.state)
        self._save(job)
        return self._answer(request, "jobInfo", job, 201)

    def get_job(self, request: Request) -> Response:
        job = self._load(request.params["job"])
        for bid in list(job["_batches"]):
            self._complete(job, bid)
        self._job_counts(job)
        self._save(job)
        return self._answer(request, "jobInfo", job)

    def update_job(self, request: Request) -> Response:
        """``POST job/{id}`` with ``{"state": "Closed" | "Aborted"}``."""
        job = self._load(request.params["job"])
        try:
            target = json.loads(request.body.decode("utf-8") or "{}").get("state")
        except (ValueError, AttributeError, UnicodeDecodeError) as exc:
            raise BulkError(400, "InvalidJob", "Expected a JSON state change") from exc
        if target not in ("Closed", "Aborted"):
            raise BulkError(400, "InvalidJob", f"Invalid state change: {target}")
        if job["state"] != "Open" and target == "Closed":
            raise BulkError(400, "InvalidJobState", f"Job {job['id']} is not open: {job['state']}")
        job["state"] = target
        self._job_counts(job)
        self._save(job)
        return self._answer(request, "jobInfo", job)

    # ---- batches ---------------------------------------------------------------------------
    def add_batch(self, request: Request) -> Response:
        job = self._load(request.params["job"])
        if job["state"] != "Open":
            raise BulkError(
                400, "InvalidJobState", f"Job {job['id']} is not open for batches: {job['state']}"
            )
        text = request.body.decode("utf-8-sig").strip()
        now = sf_datetime(self.state.now())
        batch: dict[str, Any] = {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "createdDate": now,
            "id": sf_new_id(self.state, "751"),
            "jobId": job["id"],
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": 0,
            "state": "Queued",
            "stateMessage": None,
            "systemModstamp": now,
            "totalProcessingTime": 0,
            "_query": text,
            "_pos": {"0": None},
            "_results": [],
        }
        job["_batches"][batch["id"]] = batch
        self._job_counts(job)
        self._save(job)
        return self._answer(request, "batchInfo", batch, 201)

    def _plan(self, job: dict[str, Any], batch: dict[str, Any]) -> Plan:
        return compile_query(
            self.state, batch["_query"], include_deleted=job["operation"] == "queryAll", bulk=True
        )

    def _complete(self, job: dict[str, Any], batch_id: str) -> dict[str, Any]:
        """Process a queued batch on its first poll: count the rows or fail the batch."""
        batch = self._batch(job, batch_id)
        if batch["state"] != "Queued":
            return batch
        try:
            plan = self._plan(job, batch)
            if plan.schema.name != job["object"]:
                raise ApiError(
                    400,
                    "INVALID_TYPE",
                    f"The query's object {plan.schema.name} is not the job's {job['object']}",
                )
            total = plan.count()
        except ApiError as exc:
            batch["state"] = "Failed"
            batch["stateMessage"] = f"InvalidBatch : {exc.message}"
        else:
            size = self._result_size()
            batch["state"] = "Completed"
            batch["numberRecordsProcessed"] = total
            pages = max(1, -(-total // size))
            batch["_results"] = [sf_new_id(self.state, "752") for _ in range(pages)]
        batch["systemModstamp"] = sf_datetime(self.state.now())
        job["_batches"][batch_id] = batch
        return batch

    def _result_size(self) -> int:
        return max(1, int(get_config(self.state, SF).get("bulk_results_max_records", 50_000)))

    def list_batches(self, request: Request) -> Response:
        job = self._load(request.params["job"])
        batches = [self._public(self._complete(job, bid)) for bid in list(job["_batches"])]
        self._job_counts(job)
        self._save(job)
        if wants_json(request):
            return Response(200, {"batchInfo": batches})
        inner = "".join(_xml("batchInfo", b).split("?>", 1)[1] for b in batches)
        body = f'<?xml version="1.0" encoding="UTF-8"?><batchInfoList xmlns="{_NS}">{inner}'
        return Response(200, body + "</batchInfoList>", content_type="application/xml")

    def get_batch(self, request: Request) -> Response:
        job = self._load(request.params["job"])
        batch = self._complete(job, request.params["batch"])
        self._job_counts(job)
        self._save(job)
        return self._answer(request, "batchInfo", batch)

    def batch_request(self, request: Request) -> Response:
        job = self._load(request.params["job"])
        return Response(200, self._batch(job, request.params["batch"])["_query"])

    def result_list(self, request: Request) -> Response:
        job = self._load(request.params["job"])
        batch = self._complete(job, request.params["batch"])
        self._save(job)
        if batch["state"] != "Completed":
            raise BulkError(
                400, "InvalidBatch", f"Batch {batch['id']} is not completed: {batch['state']}"
            )
        if job["contentType"] == "JSON":
            return Response(200, list(batch["_results"]))
        inner = "".join(f"<result>{r}</result>" for r in batch["_results"])
        body = f'<?xml version="1.0" encoding="UTF-8"?><result-list xmlns="{_NS}">{inner}'
        return Response(200, body + "</result-list>", content_type="application/xml")

    def result(self, request: Request) -> Response:
        """One result file: ``bulk_results_max_records`` rows from where the previous ended."""
        job = self._load(request.params["job"])
        batch = self._batch(job, request.params["batch"])
        results = batch["_results"]
        if request.params["result"] not in results:
            raise BulkError(400, "InvalidBatch", f"Invalid result id: {request.params['result']}")
        index = results.index(request.params["result"])
        plan = self._plan(job, batch)
        size = self._result_size()
        # walk forward from the nearest page whose starting keyset is known
        known = max(int(k) for k in batch["_pos"] if int(k) <= index)
        after = batch["_pos"][str(known)]
        for page in range(known, index):
            _, after = plan.fetch(after, size)
            batch["_pos"][str(page + 1)] = after
        ver = f"v{job['apiVersion']:.1f}"
        if job["contentType"] == "JSON":
            contexts, last = plan.fetch(after, size)
            body: Any = [self._json_record(plan, plan.render(c, ver)) for c in contexts]
            content_type = None
        else:
            rows, last = plan.csv_fetch(after, size)
            body = _csv_text([plan.csv_header(), *rows], ",", "\n")
            content_type = "text/csv"
        batch["_pos"][str(index + 1)] = last
        job["_batches"][batch["id"]] = batch
        self._save(job)
        return Response(200, body, content_type=content_type)

    @staticmethod
    def _json_record(plan: Plan, record: dict[str, Any]) -> dict[str, Any]:
        for col in plan.columns:
            if col.field.type not in ("datetime", "date"):
                continue
            target: Any = record
            for rel in col.rels:
                target = target.get(rel) if isinstance(target, dict) else None
            if isinstance(target, dict) and col.field.name in target:
                target[col.field.name] = _epoch_ms(target[col.field.name], col.field.type)
        return record
