"""Bulk API 2.0: the first extraction of a large object, and large batches of field updates.

Why Bulk for a first sync above a threshold: REST returns at most 2000 rows per request, so a
first read of 1.5 million Tasks would cost 750 calls of the shared daily quota; one Bulk 2.0
``queryAll`` job costs a handful (create, poll, one call per 50,000-row result chunk). After the
job the object switches to the REST keyset cursor, positioned at the newest row the job returned.

The query side uses the REST endpoints directly (job JSON through ``sf.restful``, CSV chunks
through the client's raw request) rather than ``sf.bulk2.<Object>.query``: the hub must keep the
job id and ``Sforce-Locator`` in its cursor, so that a run killed after chunk 7 of 30 resumes at
chunk 8 instead of starting over, and must put each chunk through the same budget guard, re-login
and retry policy as every other call.

Ingest (large writebacks) uses the same endpoints directly too, so that a job costs what the
protocol needs and no more: create, upload, close, one status poll per ``bulk_poll_seconds``
until the job is done, the successful and the failed results: 6 calls when the first poll finds
it complete. (``sf.bulk2.<Object>.update`` reads the job status once more after it completed,
and the caller would still have to read the unprocessed records, which only exist when the job
stopped early: 8.) The unprocessed records are read only when the job processed fewer rows than
were sent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.errors import CrmRequestError
from connectors.salesforce.client import CRM, SalesforceClient, safe_code

QUERY_DONE = "JobComplete"
QUERY_FAILED = ("Failed", "Aborted")


@dataclass(frozen=True)
class Chunk:
    """One result chunk of a query job: its rows and the locator of the next chunk ("" = last)."""

    rows: list[dict[str, str]]
    next_locator: str


def create_query_job(client: SalesforceClient, sf_object: str, soql: str) -> str:
    """Start a ``queryAll`` job (deleted rows included, so first syncs see tombstones too)."""
    payload = {
        "operation": "queryAll",
        "query": soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    job = client.call(sf_object, lambda sf: sf.restful("jobs/query", method="POST", json=payload))
    return str(_job(job, sf_object)["id"])


def wait_for_query_job(client: SalesforceClient, sf_object: str, job_id: str) -> None:
    """Poll until the job completes; a failed or aborted job is a :class:`CrmRequestError`."""
    config = client.config
    deadline = time.monotonic() + config.bulk_timeout_seconds
    while True:
        job = _job(client.call(sf_object, lambda sf: sf.restful(f"jobs/query/{job_id}")), sf_object)
        state = str(job.get("state"))
        if state == QUERY_DONE:
            return
        if state in QUERY_FAILED:
            raise CrmRequestError(
                f"The Salesforce Bulk API query job for {sf_object} ended as {safe_code(state.upper())}; "
                "the next run starts the extraction again (check the org's Bulk API job "
                "monitoring page for the reason).",
                crm=CRM,
                code=state,
            )
        if time.monotonic() > deadline:
            raise CrmRequestError(
                f"The Salesforce Bulk API query job for {sf_object} did not finish within "
                f"{config.bulk_timeout_seconds:.0f} s; raise bulk_timeout_seconds or retry later.",
                crm=CRM,
                code="TIMEOUT",
            )
        client.sleep(config.bulk_poll_seconds)


def _job(answer: Any, sf_object: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise CrmRequestError(
            f"The Salesforce Bulk API answered a {sf_object} job request without a job; retry "
            "later or check the org's Bulk API access.",
            crm=CRM,
            code="BULK_NO_JOB",
        )
    return answer


def fetch_chunk(client: SalesforceClient, sf_object: str, job_id: str, locator: str) -> Chunk:
    """One result chunk as CSV rows (at most ``bulk_max_records``)."""
    params: dict[str, Any] = {"maxRecords": client.config.bulk_max_records}
    if locator:
        params["locator"] = locator
    response = client.raw(
        sf_object,
        "GET",
        f"jobs/query/{job_id}/results",
        params=params,
        headers={"Accept": "text/csv"},
    )
    next_locator = response.headers.get("Sforce-Locator") or ""
    if next_locator == "null":
        next_locator = ""
    body = response.content.decode("utf-8").replace("\x00", "")
    rows = list(csv.DictReader(io.StringIO(body)))
    return Chunk(rows=rows, next_locator=next_locator)


# --------------------------------------------------------------------------------------------
# ingest (writes)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestOutcome:
    """Per-record result of a Bulk ingest job, keyed by the record Id sent."""

    ok: set[str]
    failed: dict[str, str]  # id -> "CODE:message"
    unprocessed: set[str]


INGEST_DONE = "JobComplete"
INGEST_FAILED = ("Failed", "Aborted")


def _csv_rows(text: str) -> Iterator[dict[str, str]]:
    yield from csv.DictReader(io.StringIO(text or ""))


def _csv_body(rows: Sequence[dict[str, str]]) -> bytes:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def bulk_update(
    client: SalesforceClient, sf_object: str, rows: Sequence[dict[str, str]]
) -> IngestOutcome:
    """Update rows (each with ``Id``) through one Bulk 2.0 ingest job and read every outcome."""
    if not rows:
        return IngestOutcome(ok=set(), failed={}, unprocessed=set())
    return bulk_update_csv(client, sf_object, _csv_body(rows), len(rows))


def bulk_update_csv(
    client: SalesforceClient, sf_object: str, body: bytes, count: int
) -> IngestOutcome:
    """Update the ``count`` rows of a CSV ``body`` (header first, ``Id`` column) in one job.

    Creating, uploading and closing are not retried (a job is not idempotent in its
    bookkeeping); a failure before the job is closed aborts it. Polls and result reads are.
    Records the job did not process come back as ``unprocessed`` for the caller to report as
    retryable. A job that ends ``Failed``/``Aborted`` is a :class:`CrmRequestError`.
    """
    spec = {
        "object": sf_object,
        "operation": "update",
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    created = client.call(
        sf_object, lambda sf: sf.restful("jobs/ingest", method="POST", json=spec), retry=False
    )
    job_id = str(_job(created, sf_object)["id"])
    try:
        client.raw(
            sf_object,
            "PUT",
            f"jobs/ingest/{job_id}/batches",
            headers={"Content-Type": "text/csv"},
            data=body,
            retry=False,
        )
        close = {"state": "UploadComplete"}
        client.call(
            sf_object,
            lambda sf: sf.restful(f"jobs/ingest/{job_id}", method="PATCH", json=close),
            retry=False,
        )
    except Exception:
        _abort_ingest(client, sf_object, job_id)
        raise
    job = _wait_for_ingest(client, sf_object, job_id)
    ok: set[str] = set()
    failed: dict[str, str] = {}
    for row in _csv_rows(_ingest_result(client, sf_object, job_id, "successfulResults")):
        ok.add(row.get("sf__Id") or row.get("Id") or "")
    for row in _csv_rows(_ingest_result(client, sf_object, job_id, "failedResults")):
        failed[row.get("Id") or row.get("sf__Id") or ""] = row.get("sf__Error") or ""
    unprocessed: set[str] = set()
    if int(job.get("numberRecordsProcessed") or 0) < count:
        for row in _csv_rows(_ingest_result(client, sf_object, job_id, "unprocessedRecords")):
            unprocessed.add(row.get("Id") or "")
    return IngestOutcome(ok=ok, failed=failed, unprocessed=unprocessed)


def _wait_for_ingest(client: SalesforceClient, sf_object: str, job_id: str) -> dict[str, Any]:
    """Poll (after ``bulk_poll_seconds``, then at that interval) until the job is done."""
    config = client.config
    deadline = time.monotonic() + config.bulk_timeout_seconds
    while True:
        client.sleep(config.bulk_poll_seconds)
        job = _job(
            client.call(sf_object, lambda sf: sf.restful(f"jobs/ingest/{job_id}")), sf_object
        )
        state = str(job.get("state"))
        if state == INGEST_DONE:
            return job
        if state in INGEST_FAILED:
            raise CrmRequestError(
                f"A Salesforce Bulk API job for {sf_object} ended as "
                f"{safe_code(state.upper())}; see the org's Bulk Data Load Jobs page for the "
                "reason.",
                crm=CRM,
                code="BULK_JOB_FAILED",
            )
        if time.monotonic() > deadline:
            raise CrmRequestError(
                f"The Salesforce Bulk API ingest job for {sf_object} did not finish within "
                f"{config.bulk_timeout_seconds:.0f} s; its rows are reported as not processed "
                "and retried by the next writeback.",
                crm=CRM,
                code="TIMEOUT",
            )


def _ingest_result(client: SalesforceClient, sf_object: str, job_id: str, kind: str) -> str:
    response = client.raw(
        sf_object, "GET", f"jobs/ingest/{job_id}/{kind}", headers={"Accept": "text/csv"}
    )
    return response.content.decode("utf-8-sig")


def _abort_ingest(client: SalesforceClient, sf_object: str, job_id: str) -> None:
    """Best effort: an unclosed job must not linger (or be processed half uploaded)."""
    aborted = {"state": "Aborted"}
    with contextlib.suppress(Exception):  # the original error is the one to report
        client.call(
            sf_object,
            lambda sf: sf.restful(f"jobs/ingest/{job_id}", method="PATCH", json=aborted),
            retry=False,
        )
