"""Writing hub-owned fields onto Accounts: sObject Collections, or Bulk 2.0 for large batches.

Why per-record outcomes: a Collections PATCH answers HTTP 200 even when some records failed, each
with its own ``statusCode``. The writeback ledger must know exactly which records now hold the new
values (``ok``), which must be tried again (``failed`` + ``retryable``: row locks, limits, server
trouble) and which are gone for good (``skipped``: the Account was deleted meanwhile; the hub never
re-creates it, and an update cannot). Row locks (``UNABLE_TO_LOCK_ROW``: someone else is saving a
child of that Account) are retried here with backoff for just the locked rows, within the budget.

Only the account object is written, only with fields on the allow-list (``fields.py``), and every
update is checked before the first request is sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from connectors.errors import CrmRequestError, MappingError, QuotaExhausted, TransientError
from connectors.records import SALESFORCE, FieldUpdate, WriteResult
from connectors.salesforce import bulk
from connectors.salesforce.client import SalesforceClient, safe_code
from connectors.salesforce.fields import HubField, ValueRejected, to_bulk_csv, to_salesforce

ACCOUNT = "Account"
#: The record is gone: report ``skipped`` (never re-create it).
GONE_CODES = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})
#: Worth another try in a later run (or, for row locks, right away with backoff).
RETRYABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "REQUEST_LIMIT_EXCEEDED",
        "SERVER_UNAVAILABLE",
        "REQUEST_RUNNING_TOO_LONG",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    }
)
FLS_CODES = frozenset(
    {"INVALID_FIELD_FOR_INSERT_UPDATE", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"}
)


@dataclass
class _Pending:
    index: int
    source_id: str
    payload: dict[str, Any]


class AccountWriter:
    """Writes batches of :class:`FieldUpdate` to Salesforce Accounts."""

    def __init__(self, client: SalesforceClient, hub_fields: dict[str, HubField]) -> None:
        self.client = client
        self.config = client.config
        self.hub_fields = hub_fields

    def check(self, updates: Sequence[FieldUpdate]) -> None:
        """Refuse, before any request, keys this connector was not configured to write."""
        for update in updates:
            for key in update.values:
                if key not in self.hub_fields:
                    raise MappingError(
                        f"hub field '{key}' is not configured for Salesforce writeback (known: "
                        f"{', '.join(sorted(self.hub_fields)) or 'none'}); add it to the "
                        "writeback fields in the mapping file",
                        crm=SALESFORCE,
                    )

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        self.check(updates)
        results: list[WriteResult | None] = [None] * len(updates)
        pending: list[_Pending] = []
        for i, update in enumerate(updates):
            try:
                payload = self._payload(update)
            except ValueRejected as exc:
                results[i] = WriteResult(update.source_id, "failed", str(exc), False)
                continue
            if not payload:
                results[i] = WriteResult(update.source_id, "ok")
                continue
            pending.append(_Pending(i, update.source_id, payload))
        if len(pending) > self.config.bulk_write_threshold:
            self._bulk(pending, results)
        else:
            size = self.config.write_batch_size
            for start in range(0, len(pending), size):
                batch = pending[start : start + size]
                try:
                    self._collection(batch, results)
                except QuotaExhausted as exc:
                    for item in pending[start:]:
                        if results[item.index] is None:
                            results[item.index] = WriteResult(
                                item.source_id, "failed", str(exc), True
                            )
                    break
        return [
            r if r is not None else WriteResult(u.source_id, "failed", "not sent", True)
            for r, u in zip(results, updates, strict=True)
        ]

    def _payload(self, update: FieldUpdate) -> dict[str, Any]:
        """The update's values by Salesforce field name, converted (``ValueRejected`` if not)."""
        return {
            self.hub_fields[k].name: to_salesforce(self.hub_fields[k], v)
            for k, v in update.values.items()
        }

    def write_stream(self, updates: Iterable[FieldUpdate]) -> list[WriteResult]:
        """Every update through one Bulk API 2.0 job, consumed lazily: only the CSV is held.

        Why: a first writeback changes every Account (75,000 on ``large``); as update objects,
        payloads and CSV rows at once that was most of the writeback's 2 GB. Here each update
        becomes a CSV line as it arrives, and nothing is sent before the last has arrived (the
        hub commits each record's write intent before handing it over). Each update is checked
        as it comes, still before any request. Results come in no particular order.
        """
        names = sorted(f.name for f in self.hub_fields.values())
        raw = io.BytesIO()
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
        out = csv.writer(text, lineterminator="\n")
        out.writerow(["Id", *names])
        results: list[WriteResult] = []
        sent: list[str] = []
        used: set[str] = set()
        for update in updates:
            self.check([update])
            try:
                payload = self._payload(update)
            except ValueRejected as exc:
                results.append(WriteResult(update.source_id, "failed", str(exc), False))
                continue
            if not payload:
                results.append(WriteResult(update.source_id, "ok"))
                continue
            used.update(payload)
            # An empty cell leaves a field unchanged in Bulk; "#N/A" clears it.
            out.writerow(
                [
                    update.source_id,
                    *(to_bulk_csv(payload[n]) if n in payload else "" for n in names),
                ]
            )
            sent.append(update.source_id)
        text.flush()
        if not sent:
            return results
        body = raw.getvalue()
        del text, raw
        if used != set(names):  # only the columns some record sets, as a job of rows sends
            body = _project(body, ["Id", *sorted(used)])
        try:
            outcome = bulk.bulk_update_csv(self.client, ACCOUNT, body, len(sent))
        except (QuotaExhausted, TransientError, CrmRequestError) as exc:
            retryable = not isinstance(exc, CrmRequestError)
            results.extend(WriteResult(sid, "failed", str(exc), retryable) for sid in sent)
            return results
        results.extend(_bulk_result(sid, outcome) for sid in sent)
        return results

    # ---- sObject Collections ---------------------------------------------------------------
    def _collection(self, batch: list[_Pending], results: list[WriteResult | None]) -> None:
        todo = batch
        for attempt in range(self.config.row_lock_retries + 1):
            try:
                answer, todo = self._patch_verified(todo, results)
            except (TransientError, CrmRequestError) as exc:
                retryable = isinstance(exc, TransientError)
                for p in todo:
                    done = results[p.index]
                    if done is None or done.outcome != "ok":  # keep read-back confirmations
                        results[p.index] = WriteResult(p.source_id, "failed", str(exc), retryable)
                return
            if not todo:
                return
            locked: list[_Pending] = []
            for p, item in zip(todo, answer or [], strict=False):
                if item.get("success"):
                    results[p.index] = WriteResult(p.source_id, "ok")
                    continue
                code, message = _first_error(item)
                if code == "UNABLE_TO_LOCK_ROW":
                    locked.append(p)
                results[p.index] = _failure(p.source_id, code, message)
            if not locked or attempt == self.config.row_lock_retries:
                return
            self.client.sleep(self.config.row_lock_backoff_seconds * (2**attempt))
            todo = locked

    def _patch_verified(
        self, todo: list[_Pending], results: list[WriteResult | None]
    ) -> tuple[Any, list[_Pending]]:
        """One Collections PATCH, retried; never re-sent blindly after an unanswered attempt.

        When an attempt may have been executed without its answer reaching us (a read timeout, a
        dropped connection, a 5xx), the Accounts are read back first; those already holding their
        new values are confirmed (``ok``) and left out of the next attempt. Returns the answer and
        the records it covers.
        """
        attempts = max(1, self.config.retry_attempts)
        for attempt in range(1, attempts + 1):
            body = {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": ACCOUNT}, "id": p.source_id, **p.payload} for p in todo
                ],
            }
            try:
                answer = self.client.call(
                    ACCOUNT, partial(_patch_collection, body=body), retry=False
                )
                return answer, todo
            except TransientError as exc:
                if attempt == attempts:
                    raise
                if exc.maybe_applied:
                    landed = self._landed(todo)
                    for p in todo:
                        if p.source_id in landed:
                            results[p.index] = WriteResult(
                                p.source_id,
                                "ok",
                                "confirmed by reading the Account back after an unanswered write",
                            )
                    todo = [p for p in todo if p.source_id not in landed]
                    if not todo:
                        return None, []
                wait = exc.retry_after if exc.retry_after is not None else min(2.0**attempt, 30)
                self.client.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _landed(self, todo: list[_Pending]) -> set[str]:
        """Accounts of ``todo`` whose fields already hold the values being written."""
        names = [f.name for f in self.hub_fields.values()]
        ids = [p.source_id for p in todo]
        rows = self.client.call(
            ACCOUNT,
            partial(_retrieve, params={"ids": ",".join(ids), "fields": ",".join(["Id", *names])}),
        )
        held = {str(r["Id"]): r for r in rows or [] if r}
        landed = set()
        for p in todo:
            row = held.get(p.source_id)
            if row is not None and all(_same(row.get(k), v) for k, v in p.payload.items()):
                landed.add(p.source_id)
        return landed

    # ---- Bulk API 2.0 ingest ---------------------------------------------------------------
    def _bulk(self, pending: list[_Pending], results: list[WriteResult | None]) -> None:
        columns = sorted({name for p in pending for name in p.payload})
        rows = []
        for p in pending:
            row = {"Id": p.source_id}
            for name in columns:
                # An empty cell leaves a field unchanged in Bulk; "#N/A" clears it.
                row[name] = to_bulk_csv(p.payload[name]) if name in p.payload else ""
            rows.append(row)
        try:
            outcome = bulk.bulk_update(self.client, ACCOUNT, rows)
        except (QuotaExhausted, TransientError, CrmRequestError) as exc:
            retryable = not isinstance(exc, CrmRequestError)
            for p in pending:
                results[p.index] = WriteResult(p.source_id, "failed", str(exc), retryable)
            return
        for p in pending:
            results[p.index] = _bulk_result(p.source_id, outcome)


def _bulk_result(source_id: str, outcome: bulk.IngestOutcome) -> WriteResult:
    """One record's result from a Bulk job's outcome (not in it: not processed, retryable)."""
    if source_id in outcome.ok:
        return WriteResult(source_id, "ok")
    if source_id in outcome.failed:
        code, _, message = outcome.failed[source_id].partition(":")
        return _failure(source_id, code, message.split(":")[0])
    return WriteResult(source_id, "failed", "not processed by the Bulk API job", True)


def _project(body: bytes, columns: list[str]) -> bytes:
    """A CSV body with only ``columns`` (same rows, same order)."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8")))
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(reader)
    text.flush()
    return raw.getvalue()


def _patch_collection(sf: Any, *, body: dict[str, Any]) -> Any:
    return sf.restful("composite/sobjects", method="PATCH", json=body)


def _retrieve(sf: Any, *, params: dict[str, str]) -> Any:
    return sf.restful(f"composite/sobjects/{ACCOUNT}", params=params)


def _same(held: Any, sent: Any) -> bool:
    """Whether a field read back holds the value sent (numbers and booleans as JSON values)."""
    if sent is None or sent == "":
        return held in (None, "")
    if isinstance(sent, bool) or isinstance(held, bool):
        return bool(held) == bool(sent) and held is not None
    if isinstance(sent, int | float) or isinstance(held, int | float):
        try:
            return held is not None and float(held) == float(sent)
        except (TypeError, ValueError):
            return False
    return str(held).strip() == str(sent).strip()


def _first_error(item: dict[str, Any]) -> tuple[str, str]:
    errors = item.get("errors") or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    return str(first.get("statusCode") or first.get("errorCode") or ""), str(
        first.get("message") or ""
    )


def _failure(source_id: str, code: str, message: str) -> WriteResult:
    shown = safe_code(code)
    if code in GONE_CODES:
        return WriteResult(source_id, "skipped", f"{shown}: the Account no longer exists")
    if code in FLS_CODES:
        return WriteResult(
            source_id,
            "failed",
            f"{shown}: the integration user cannot edit a hub field on Account; an admin must "
            "grant field-level security (Edit) on the hub's fields",
            False,
        )
    # Salesforce's per-record message names the field or rule; it holds no request data.
    detail = " ".join(message.split())[:300]
    return WriteResult(
        source_id, "failed", f"{shown}: {detail}" if detail else shown, code in RETRYABLE_CODES
    )
