"""Bulk API 2.0: query jobs with paged CSV results, ingest jobs with per-row result CSVs.

Why small jobs complete at once: a real org processes asynchronously, but the contract only
promises that a poll eventually reports ``JobComplete``; completing on the first poll keeps tests
fast while the client still walks the full create -> poll -> results protocol. An ingest job of
more than ``SYNC_INGEST_ROWS`` rows is processed as an org does: the upload's close answers at
once, a background worker applies the rows in batches (``InProgress`` until done), and the other
APIs, HubSpot's included, keep answering meanwhile. Query results are not
materialised: a job stores its SOQL and, per locator served, the keyset of the last row (the same
cursor technique as REST ``nextRecordsUrl``), so a 100,000-row extract is produced page by page.

CSV conventions kept: every value quoted, null is an empty field, datetimes ``…000Z``, doubles in
Java form (``9.12260031E8``), header in SELECT order with dotted relationship columns, locator
``null`` on the last page, ``Sforce-NumberOfRecords`` on every page. Ingest: an empty cell leaves
a field unchanged, ``#N/A`` sets it to null; results CSVs lead with ``sf__Id``/``sf__Created`` or
``sf__Id``/``sf__Error``.
"""

from __future__ import annotations

import base64
import csv
import io
import threading
import time
from typing import Any

from sandbox.config import get_config
from sandbox.formats import sf_datetime, sf_new_id
from sandbox.http import Request, Response
from sandbox.salesforce import limits
from sandbox.salesforce.describe import load_schema
from sandbox.salesforce.errors import ApiError, RecordError
from sandbox.salesforce.query import compile_query
from sandbox.salesforce.rest import body_json
from sandbox.salesforce.store import (
    FailSpec,
    Store,
    WriteContext,
    current,
    ensure_index,
    set_context,
)
from sandbox.state import SF, SandboxState

#: Ingest jobs up to this many rows are processed when the upload is closed, so the first poll
#: finds them done (tests, everyday writebacks); larger ones in the background, like an org.
SYNC_INGEST_ROWS = 10_000
#: Rows applied per transaction. The emulators share one database lock: a 150,000-row job
#: applied in one transaction held it for 80 s and stalled HubSpot's emulator past the hub's
#: 60 s request timeout (an org commits a job in batches of 10,000 records, each on its own).
INGEST_CHUNK_ROWS = 2_000

_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_INGEST_OPS = ("insert", "update", "upsert", "delete", "hardDelete")


def _job_key(job_id: str) -> str:
    return f"sf:job:{job_id}"


def _csv_text(rows: list[list[str]], delimiter: str, ending: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=ending, quoting=csv.QUOTE_ALL)
    writer.writerows(rows)
    return buf.getvalue()


class Bulk2:
    def __init__(self, state: SandboxState, store: Store) -> None:
        self.state = state
        self.store = store

    # ---- job storage ----------------------------------------------------------------------
    def _load(self, job_id: str, kind: str) -> dict[str, Any]:
        job = self.state.get_json(_job_key(job_id), None)
        if job is None or job["kind"] != kind:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return dict(job)

    def _save(self, job: dict[str, Any]) -> None:
        job["systemModstamp"] = sf_datetime(self.state.now())
        self.state.set_json(_job_key(job["id"]), job)

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_") and k != "kind"}

    def _new_job(self, kind: str, ver: str, spec: dict[str, Any]) -> dict[str, Any]:
        delim = spec.get("columnDelimiter") or "COMMA"
        ending = spec.get("lineEnding") or "LF"
        if delim not in _DELIMITERS or ending not in _ENDINGS:
            raise ApiError(400, "INVALIDJOB", "Invalid columnDelimiter or lineEnding")
        now = sf_datetime(self.state.now())
        return {
            "kind": kind,
            "id": sf_new_id(self.state, "750"),
            "operation": spec.get("operation"),
            "object": spec.get("object"),
            "createdById": current().user_id,
            "createdDate": now,
            "systemModstamp": now,
            "state": "UploadComplete" if kind == "query" else "Open",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(ver.lstrip("v")),
            "jobType": "V2Query" if kind == "query" else "V2Ingest",
            "lineEnding": ending,
            "columnDelimiter": delim,
        }

    # ---- query jobs -----------------------------------------------------------------------
    def create_query(self, request: Request) -> Response:
        spec = body_json(request)
        if not isinstance(spec, dict):
            raise ApiError(400, "INVALIDJOB", "Expected a JSON job definition")
        op = spec.get("operation")
        if op not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"Invalid operation for a query job: {op}")
        text = spec.get("query")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "INVALIDJOB", "A query is required")
        plan = compile_query(self.state, text, include_deleted=op == "queryAll", bulk=True)
        job = self._new_job("query", request.params["ver"], spec)
        job["object"] = plan.schema.name
        job["query"] = text
        job["numberRecordsProcessed"] = 0
        job["retries"] = 0
        job["totalProcessingTime"] = 0
        job["isPkChunkingSupported"] = True
        job["_pos"] = {}
        limits.count_bulk_query_job(self.state)
        self._save(job)
        return Response(200, self._public(job))

    def get_query(self, request: Request) -> Response:
        job = self._load(request.params["job"], "query")
        if job["state"] == "UploadComplete":
            plan = compile_query(
                self.state, job["query"], include_deleted=job["operation"] == "queryAll", bulk=True
            )
            job["numberRecordsProcessed"] = plan.count()
            job["state"] = "JobComplete"
            self._save(job)
        return Response(200, self._public(job))

    def query_results(self, request: Request) -> Response:
        job = self._load(request.params["job"], "query")
        if job["state"] != "JobComplete":
            raise ApiError(
                400, "INVALIDJOB", f"Job {job['id']} is not complete; state: {job['state']}"
            )
        default_max = int(get_config(self.state, SF).get("bulk_results_max_records", 50_000))
        try:
            max_records = int(request.arg("maxRecords") or default_max)
        except ValueError as exc:
            raise ApiError(400, "INVALIDJOB", "maxRecords must be a number") from exc
        max_records = max(1, max_records)
        locator = request.arg("locator") or ""
        offset = 0
        after = None
        if locator:
            try:
                offset = int(base64.b64decode(locator.encode()).decode())
            except ValueError as exc:
                raise ApiError(400, "INVALIDJOB", "Invalid locator") from exc
            if str(offset) not in job["_pos"]:
                raise ApiError(400, "INVALIDJOB", "Invalid locator")
            after = job["_pos"][str(offset)]
        plan = compile_query(
            self.state, job["query"], include_deleted=job["operation"] == "queryAll", bulk=True
        )
        total = int(job["numberRecordsProcessed"])
        want = max(0, min(max_records, total - offset))
        rows, last = plan.csv_fetch(after, want) if want else ([], None)
        served = offset + len(rows)
        delim = _DELIMITERS[job["columnDelimiter"]]
        ending = _ENDINGS[job["lineEnding"]]
        table = [plan.csv_header(), *rows]
        next_locator = "null"
        if served < total and len(rows) == want and last is not None:
            job["_pos"][str(served)] = last
            self._save(job)
            next_locator = base64.b64encode(str(served).encode()).decode()
        return Response(
            200,
            _csv_text(table, delim, ending),
            headers={
                "Sforce-Locator": next_locator,
                "Sforce-NumberOfRecords": str(len(rows)),
            },
            content_type="text/csv",
        )

    # ---- ingest jobs ----------------------------------------------------------------------
    def create_ingest(self, request: Request) -> Response:
        spec = body_json(request)
        if not isinstance(spec, dict):
            raise ApiError(400, "INVALIDJOB", "Expected a JSON job definition")
        op = spec.get("operation")
        if op not in _INGEST_OPS:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {op}")
        schema = load_schema(self.state, str(spec.get("object") or ""))
        if schema is None:
            raise ApiError(400, "INVALIDJOB", f"Unknown object: {spec.get('object')}")
        ext_name = spec.get("externalIdFieldName")
        if op == "upsert":
            ext = schema.field(str(ext_name or ""))
            if ext is None or not (ext.external_id or ext.name == "Id"):
                raise ApiError(
                    400,
                    "INVALIDJOB",
                    f"InvalidJob : Field name provided, {ext_name} is not an External ID or "
                    f"indexed field for {schema.name}",
                )
            ext_name = ext.name
        ver = request.params["ver"]
        job = self._new_job("ingest", ver, spec)
        job["object"] = schema.name
        if ext_name:
            job["externalIdFieldName"] = ext_name
        job["contentUrl"] = f"services/data/{ver}/jobs/ingest/{job['id']}/batches"
        job["numberRecordsProcessed"] = 0
        job["numberRecordsFailed"] = 0
        job["retries"] = 0
        job["totalProcessingTime"] = 0
        job["apiActiveProcessingTime"] = 0
        job["apexProcessingTime"] = 0
        self._save(job)
        self._store_fail(job)
        return Response(200, self._public(job))

    def _store_fail(self, job: dict[str, Any]) -> None:
        """Remember an injected per-record fault that matched a request of this job."""
        fail = current().fail
        if fail is not None:
            job["_fail"] = {
                "code": fail.code,
                "message": fail.message,
                "ids": sorted(fail.ids) if fail.ids is not None else None,
                "indexes": sorted(fail.indexes) if fail.indexes is not None else None,
            }
            self._save(job)

    def get_ingest(self, request: Request) -> Response:
        job = self._load(request.params["job"], "ingest")
        return Response(200, self._public(job))

    def upload(self, request: Request) -> Response:
        job = self._load(request.params["job"], "ingest")
        if job["state"] != "Open":
            raise ApiError(
                409, "INVALIDJOBSTATE", f"Job {job['id']} is not open for uploads: {job['state']}"
            )
        if job.get("_uploaded"):
            raise ApiError(
                409, "INVALIDJOBSTATE", "Found a prior upload for this job; only one is allowed"
            )
        self.state.set_meta(f"sf:jobdata:{job['id']}", request.body.decode("utf-8-sig"))
        job["_uploaded"] = True
        self._save(job)
        self._store_fail(self._load(job["id"], "ingest"))
        return Response(201, None)

    def patch_ingest(self, request: Request) -> Response:
        job = self._load(request.params["job"], "ingest")
        self._store_fail(job)
        job = self._load(job["id"], "ingest")
        spec = body_json(request) or {}
        target = spec.get("state") if isinstance(spec, dict) else None
        if target == "Aborted":
            if job["state"] in ("JobComplete", "Failed"):
                raise ApiError(409, "INVALIDJOBSTATE", "Job is already finished")
            job["state"] = "Aborted"
            self._save(job)
            return Response(200, self._public(job))
        if target != "UploadComplete":
            raise ApiError(400, "INVALIDJOB", f"Invalid state change: {target}")
        if job["state"] != "Open":
            raise ApiError(409, "INVALIDJOBSTATE", f"Job is not open: {job['state']}")
        if not job.get("_uploaded"):
            job["state"] = "Failed"
            job["errorMessage"] = "InvalidBatch : No data was uploaded for this job"
            self._save(job)
            return Response(200, self._public(job))
        job["state"] = "UploadComplete"
        answer = self._public(job)
        text = self.state.get_meta(f"sf:jobdata:{job['id']}", "")
        if text.count("\n") <= SYNC_INGEST_ROWS:  # header + rows; a row may span lines
            self._process(job)
        else:
            job["state"] = "InProgress"
            self._save(job)
            threading.Thread(
                target=self._process_in_background,
                args=(job, current().user_id),
                name=f"sandbox-bulk-ingest-{job['id']}",
                daemon=True,
            ).start()
        return Response(200, answer)

    def _process_in_background(self, job: dict[str, Any], user_id: str | None) -> None:
        """A large job's rows, applied as the job's creator (the worker thread has no request
        context); an unexpected error fails the job rather than leaving it in progress."""
        set_context(WriteContext(user_id=user_id))
        try:
            self._process(job)
        except Exception as exc:  # an emulator bug must not look like a job that never ends
            try:
                job["state"] = "Failed"
                job["errorMessage"] = f"InternalServerError : sandbox error: {exc!r}"
                self._save(job)
            except Exception:  # the sandbox stopped under the worker: nothing left to tell
                return
        finally:
            set_context(None)

    def _aborted(self, job_id: str) -> bool:
        return bool(self.state.get_json(_job_key(job_id), {}).get("state") == "Aborted")

    def _process(self, job: dict[str, Any]) -> None:
        """Apply the uploaded CSV row by row; store success/failure CSVs; complete the job."""
        delim = _DELIMITERS[job["columnDelimiter"]]
        ending = _ENDINGS[job["lineEnding"]]
        text = self.state.get_meta(f"sf:jobdata:{job['id']}", "")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
        rows = [r for r in reader if r]
        schema = load_schema(self.state, job["object"])
        assert schema is not None
        if not rows:
            job["state"] = "Failed"
            job["errorMessage"] = "InvalidBatch : Empty CSV"
            self._save(job)
            return
        header = rows[0]
        op = job["operation"]
        for col in header:
            if "." in col:
                continue
            if schema.field(col) is None:
                job["state"] = "Failed"
                job["errorMessage"] = f"InvalidBatch : Field name not found : {col}"
                self._save(job)
                return
        if op in ("delete", "hardDelete") and [c.lower() for c in header] != ["id"]:
            job["state"] = "Failed"
            job["errorMessage"] = "InvalidBatch : The 'delete' batch must contain only ids"
            self._save(job)
            return
        fail_spec = job.get("_fail")
        ok_rows: list[list[str]] = [["sf__Id", "sf__Created", *header]]
        bad_rows: list[list[str]] = [["sf__Id", "sf__Error", *header]]
        ctx = current()
        saved_fail = ctx.fail
        if fail_spec:
            ctx.fail = FailSpec(
                fail_spec["code"],
                fail_spec["message"],
                set(fail_spec["ids"]) if fail_spec["ids"] is not None else None,
                set(fail_spec["indexes"]) if fail_spec["indexes"] is not None else None,
            )
        ext = schema.field(job.get("externalIdFieldName") or "") if op == "upsert" else None
        if ext is not None and ext.external_id:
            ensure_index(self.state, schema.name, ext.name)
        body = rows[1:]
        done = 0
        try:
            for start in range(0, len(body), INGEST_CHUNK_ROWS):
                if start and self._aborted(job["id"]):  # an org stops at the next batch
                    break
                if start:
                    time.sleep(0)  # let the requests waiting for the lock in between
                self._apply_chunk(job, schema, header, body, start, ext, ok_rows, bad_rows)
                done = min(len(body), start + INGEST_CHUNK_ROWS)
        finally:
            ctx.fail = saved_fail
        self.state.set_meta(f"sf:jobok:{job['id']}", _csv_text(ok_rows, delim, ending))
        self.state.set_meta(f"sf:jobbad:{job['id']}", _csv_text(bad_rows, delim, ending))
        job["numberRecordsProcessed"] = done
        job["numberRecordsFailed"] = len(bad_rows) - 1
        job["state"] = "Aborted" if done < len(body) else "JobComplete"
        self._save(job)

    def _apply_chunk(
        self,
        job: dict[str, Any],
        schema: Any,
        header: list[str],
        body: list[list[str]],
        start: int,
        ext: Any,
        ok_rows: list[list[str]],
        bad_rows: list[list[str]],
    ) -> None:
        """Rows ``start`` to ``start + INGEST_CHUNK_ROWS`` of the job in one transaction."""
        op = job["operation"]
        with self.state.transaction():
            for i, row in enumerate(body[start : start + INGEST_CHUNK_ROWS], start):
                cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))
                rid = next((v for k, v in cells.items() if k.lower() == "id"), "")
                try:
                    values_in: dict[str, Any] = {}
                    for k, v in cells.items():
                        if "." in k:
                            raise RecordError(
                                "INVALID_FIELD",
                                f"Relationship columns are not supported by the sandbox: {k}",
                                [k],
                            )
                        if v == "":
                            continue
                        values_in[k] = None if v == "#N/A" else v
                    if op == "insert":
                        values = self.store.prepare(schema, values_in, insert=True, csv=True)
                        rid = self.store.create(schema, values, index=i)
                        ok_rows.append([rid, "true", *row])
                    elif op == "update":
                        values = self.store.prepare(schema, values_in, insert=False, csv=True)
                        self.store.update(
                            schema,
                            rid,
                            values,
                            index=i,
                            missing_code="INVALID_CROSS_REFERENCE_KEY",
                        )
                        ok_rows.append([rid, "false", *row])
                    elif op == "upsert":
                        assert ext is not None
                        key = next(
                            (v for k, v in cells.items() if k.lower() == ext.name.lower()), ""
                        )
                        if not key:
                            raise RecordError(
                                "MISSING_ARGUMENT", f"{ext.name} not specified", [ext.name]
                            )
                        values = self.store.prepare(schema, values_in, insert=False, csv=True)
                        values.pop(ext.name, None)
                        rid, created = self.store.upsert(schema, ext, key, values, index=i)
                        ok_rows.append([rid, "true" if created else "false", *row])
                    else:
                        self.store.delete(
                            rid,
                            obj=schema.name,
                            index=i,
                            missing_code="INVALID_CROSS_REFERENCE_KEY",
                            hard=op == "hardDelete",
                        )
                        ok_rows.append([rid, "false", *row])
                except RecordError as exc:
                    bad_rows.append([rid if op != "insert" else "", exc.bulk_text(), *row])
                except ApiError as exc:
                    err = RecordError(exc.code, exc.message, exc.fields or [])
                    bad_rows.append([rid if op != "insert" else "", err.bulk_text(), *row])

    def ingest_results(self, request: Request) -> Response:
        job = self._load(request.params["job"], "ingest")
        kind = request.params["kind"]
        delim = _DELIMITERS[job["columnDelimiter"]]
        ending = _ENDINGS[job["lineEnding"]]
        if kind == "successfulResults":
            text = self.state.get_meta(f"sf:jobok:{job['id']}", "")
            if not text:
                text = _csv_text([["sf__Id", "sf__Created"]], delim, ending)
        elif kind == "failedResults":
            text = self.state.get_meta(f"sf:jobbad:{job['id']}", "")
            if not text:
                text = _csv_text([["sf__Id", "sf__Error"]], delim, ending)
        elif kind == "unprocessedRecords":
            data = self.state.get_meta(f"sf:jobdata:{job['id']}", "")
            if job["state"] in ("JobComplete",) or not data:
                first = data.splitlines()[0] + ending if data else ""
                text = first
            else:
                text = data
        else:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(200, text, content_type="text/csv")

    # ---- listing and deletion ---------------------------------------------------------------
    def list_jobs(self, request: Request) -> Response:
        kind = "query" if request.path.rstrip("/").endswith("query") else "ingest"
        rows = self.state.execute("SELECT value FROM meta WHERE key LIKE 'sf:job:%' ORDER BY key")
        import json

        jobs = [json.loads(r[0]) for r in rows]
        records = [self._public(j) for j in jobs if j.get("kind") == kind]
        return Response(200, {"done": True, "records": records, "nextRecordsUrl": None})

    def delete_job(self, request: Request) -> Response:
        kind = "query" if "/jobs/query/" in request.path else "ingest"
        job = self._load(request.params["job"], kind)
        if job["state"] in ("Open", "UploadComplete", "InProgress"):
            raise ApiError(400, "INVALIDJOBSTATE", "Abort the job before deleting it")
        for prefix in ("sf:job:", "sf:jobdata:", "sf:jobok:", "sf:jobbad:"):
            self.state.execute("DELETE FROM meta WHERE key = ?", (prefix + job["id"],))
        return Response(204)
