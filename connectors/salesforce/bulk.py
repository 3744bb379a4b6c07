"""Bulk API 2.0: the first extraction of a large object, and large batches of field updates.

Why Bulk for a first sync above a threshold: REST returns at most 2000 rows per request, so a
first read of 1.5 million Tasks would cost 750 calls of the shared daily quota; one Bulk 2.0
``queryAll`` job costs a handful (create, poll, one call per 50,000-row result chunk). After the
job the object switches to the REST keyset cursor, positioned at the newest row the job returned.

The query side uses the REST endpoints directly (job JSON through ``sf.restful``, CSV chunks
through the client's raw request) rather than ``sf.bulk2.<Object>.query``: the hub must keep the
job id and ``Sforce-Locator`` in its cursor, so that a run killed after chunk 7 of 30 resumes at
chunk 8 instead of starting over, and must put each chunk through the same budget guard, re-login
and retry policy as every other call. Ingest uses ``sf.bulk2.Account.update`` as it is.
"""

from __future__ import annotations

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


def _csv_rows(text: str) -> Iterator[dict[str, str]]:
    yield from csv.DictReader(io.StringIO(text or ""))


def bulk_update(
    client: SalesforceClient, sf_object: str, rows: Sequence[dict[str, str]]
) -> IngestOutcome:
    """Update rows (each with ``Id``) through one Bulk 2.0 ingest job and read every outcome.

    Not retried as a whole (a job is not idempotent in its bookkeeping); records the job did not
    process come back as ``unprocessed`` for the caller to report as retryable.
    """
    wait = max(int(client.config.bulk_poll_seconds), 0)

    def run(sf: Any) -> IngestOutcome:
        handler = getattr(sf.bulk2, sf_object)
        jobs = handler.update(records=list(rows), wait=wait)
        ok: set[str] = set()
        failed: dict[str, str] = {}
        unprocessed: set[str] = set()
        for job in jobs:
            job_id = job["job_id"]
            for row in _csv_rows(handler.get_successful_records(job_id)):
                ok.add(row.get("Id") or row.get("sf__Id") or "")
            for row in _csv_rows(handler.get_failed_records(job_id)):
                failed[row.get("Id") or row.get("sf__Id") or ""] = row.get("sf__Error") or ""
            for row in _csv_rows(handler.get_unprocessed_records(job_id)):
                unprocessed.add(row.get("Id") or "")
        return IngestOutcome(ok=ok, failed=failed, unprocessed=unprocessed)

    return client.call(sf_object, run, retry=False)
