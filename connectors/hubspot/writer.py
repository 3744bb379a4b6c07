"""Writing the hub's own fields onto HubSpot companies (and contacts), and reading them back.

Why batch update with per-id judgement: the batch update API takes 100 companies per call and is
idempotent (absolute values), so a retried call does no harm; but HubSpot answers 207 when *some*
ids failed, and a 207 is a success status to the SDK. The writer therefore judges each record by
whether its id is in ``results`` or in an ``errors`` item:

- in ``results`` → ok;
- ``OBJECT_NOT_FOUND`` → skipped: the company was deleted or merged meanwhile; the hub never
  re-creates it (batch *update* cannot create);
- ``VALIDATION_ERROR`` → failed, not retryable, with HubSpot's message;
- rate limits, locks, server errors (whole call or per id) → re-sent with backoff a bounded number
  of rounds within the run, then failed as retryable for the next run.

The same writer serves contacts (``object_type="contacts"``): the marketing suppression the hub
puts on every contact of a customer in a late-stage negotiation, so marketers can filter lists.

Only ``crmhub_*`` properties are ever sent (allow-list, checked at construction and per update).
Values arrive as strings (or None = clear) and are converted by the hub field's kind first; a
value that cannot be converted fails that record before any request.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)

from connectors.errors import (
    CrmRequestError,
    MappingError,
    QuotaExhausted,
    TransientError,
)
from connectors.hubspot.client import OBJECTS_MODEL_CONFIG, HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.mapping import instant, text
from connectors.records import HUBSPOT, FieldUpdate, HubFieldSpec, WriteResult

log = logging.getLogger(__name__)

COMPANIES = "companies"
CONTACTS = "contacts"
#: object type -> the word used in messages
_NOUNS = {COMPANIES: "company", CONTACTS: "contact"}
BATCH_MAX = 100
#: Per-id error categories worth re-sending within the run.
_RETRYABLE = {"RATE_LIMITS", "LOCKED", "INTERNAL_ERROR", "TIMEOUT", "SERVICE_UNAVAILABLE"}
_MAX_TEXT = 65_536  # HubSpot's limit for a string property value


class ValueRejected(ValueError):
    """A hub value that cannot be expressed in the HubSpot property's type."""


def to_hubspot(value: str | None, spec: HubFieldSpec) -> str:
    """A hub value (string or None) as the string HubSpot stores for the spec's kind.

    ``""`` clears a property in HubSpot, so None becomes ``""``.
    """
    if value is None or value == "":
        return ""
    kind = spec.kind
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            raise ValueRejected(f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueRejected(f"{value!r} is not a finite number")
        return str(int(number)) if number.is_integer() else repr(number)
    if kind == "bool":
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return "true"
        if lowered in ("false", "0", "no"):
            return "false"
        raise ValueRejected(f"{value!r} is not a boolean")
    if kind == "date":
        stripped = value.strip()
        try:
            return dt.date.fromisoformat(stripped[:10]).isoformat()
        except ValueError:
            raise ValueRejected(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if kind == "datetime":
        moment = instant(value)
        if moment is None:
            raise ValueRejected(f"{value!r} is not an ISO datetime")
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if kind == "enum":
        if spec.options and value not in spec.options:
            raise ValueRejected(f"{value!r} is not one of {', '.join(spec.options)}")
        return value
    if len(value) > _MAX_TEXT:
        raise ValueRejected(f"the value is longer than HubSpot's {_MAX_TEXT} characters")
    return value


@dataclass
class _Pending:
    index: int
    update: FieldUpdate
    properties: dict[str, str]


_Outcome = tuple[list[tuple[_Pending, WriteResult]], list[tuple[_Pending, str]]]


def _fail(item: _Pending, reason: str, retryable: bool) -> tuple[_Pending, WriteResult]:
    return item, WriteResult(item.update.source_id, "failed", reason, retryable)


class HubSpotWriter:
    """Batch updates of hub-owned properties of one object type, one result per update.

    ``specs``: the hub fields this writer may set (default: the company hub fields).
    """

    def __init__(
        self,
        client: HubSpotClient,
        config: HubSpotConfig,
        *,
        sleep: Callable[[float], None],
        object_type: str = COMPANIES,
        specs: Sequence[HubFieldSpec] | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.sleep = sleep
        self.object_type = object_type
        self.noun = _NOUNS.get(object_type, object_type)
        fields = tuple(config.hub_fields if specs is None else specs)
        self.specs = {s.key: s for s in fields}
        self.names = {s.key: config.hub_property(s.key) for s in fields}

    def _check_keys(self, updates: Sequence[FieldUpdate]) -> None:
        for update in updates:
            for key in update.values:
                if key not in self.names:
                    raise MappingError(
                        f"a write for HubSpot {self.noun} {update.source_id} names hub field {key}, "
                        "which this connector is not configured to write; add it to "
                        "writeback.fields (hub_fields) or drop it from the update",
                        crm=HUBSPOT,
                    )

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        self._check_keys(updates)  # before any request
        results: list[WriteResult | None] = [None] * len(updates)
        pending: list[_Pending] = []
        for index, update in enumerate(updates):
            try:
                properties = {
                    self.names[key]: to_hubspot(value, self.specs[key])
                    for key, value in update.values.items()
                }
            except ValueRejected as exc:
                results[index] = WriteResult(
                    update.source_id, "failed", f"value rejected before sending: {exc}", False
                )
                continue
            if not properties:
                results[index] = WriteResult(update.source_id, "ok", "nothing to write")
                continue
            pending.append(_Pending(index, update, properties))
        size = min(self.config.write_batch_size, BATCH_MAX)
        try:
            for start in range(0, len(pending), size):
                for index, result in self._send_batch(pending[start : start + size]):
                    results[index] = result
        except QuotaExhausted as exc:
            for item in pending:
                if results[item.index] is None:
                    results[item.index] = WriteResult(
                        item.update.source_id, "failed", str(exc), retryable=True
                    )
        return [r for r in results if r is not None]

    def _send_batch(self, batch: list[_Pending]) -> list[tuple[int, WriteResult]]:
        """Send one batch (≤ 100), re-sending retryable failures a bounded number of rounds."""
        out: list[tuple[int, WriteResult]] = []
        todo = batch
        rounds = self.config.write_retry_rounds
        for round_no in range(rounds + 1):
            finals, retry = self._attempt(todo)
            out.extend((item.index, result) for item, result in finals)
            if not retry:
                break
            if round_no == rounds:
                out.extend(
                    (item.index, WriteResult(item.update.source_id, "failed", reason, True))
                    for item, reason in retry
                )
                break
            wait = min(2.0 * 2**round_no, 30.0)
            log.warning(
                "HubSpot %s batch update: %d records failed transiently; retrying in %.0f s",
                self.noun,
                len(retry),
                wait,
            )
            self.sleep(wait)
            todo = [item for item, _ in retry]
        return out

    def _attempt(self, batch: list[_Pending]) -> _Outcome:
        """One batch update call: final results, and the items worth re-sending (with why)."""
        try:
            answer, confirmed, batch = self._update_verified(batch)
        except TransientError as exc:
            # The call's own retries are spent: fail the batch as retryable (next run).
            return [_fail(item, str(exc), True) for item in batch], []
        except CrmRequestError as exc:
            return self._rejected(batch, exc)
        if not batch:
            return confirmed, []
        if answer is None:
            reason = "HubSpot answered the batch update with an unexpected status"
            return [_fail(item, reason, True) for item in batch], []
        ok_ids = {str(r.id) for r in answer.results or []}
        errors: dict[str, tuple[str, str]] = {}
        for error in getattr(answer, "errors", None) or []:
            context = error.context or {}
            for rid in context.get("ids") or context.get("id") or []:
                errors[str(rid)] = (str(error.category or ""), str(error.message or ""))
        finals: list[tuple[_Pending, WriteResult]] = list(confirmed)
        retry: list[tuple[_Pending, str]] = []
        for item in batch:
            rid = item.update.source_id
            if rid in errors:
                category, message = errors[rid]
                if category == "OBJECT_NOT_FOUND":
                    finals.append(
                        (
                            item,
                            WriteResult(
                                rid,
                                "skipped",
                                f"the {self.noun} no longer exists in HubSpot (deleted or merged)",
                            ),
                        )
                    )
                elif category in _RETRYABLE:
                    retry.append((item, f"{category}: {message}"))
                else:
                    finals.append(_fail(item, f"{category}: {message}", False))
            elif rid in ok_ids:
                finals.append((item, WriteResult(rid, "ok")))
            else:
                finals.append(
                    _fail(
                        item,
                        f"HubSpot did not confirm this update (the {self.noun} may have been merged)",
                        False,
                    )
                )
        return finals, retry

    def _update_verified(
        self, batch: list[_Pending]
    ) -> tuple[Any, list[tuple[_Pending, WriteResult]], list[_Pending]]:
        """One batch update, retried; never re-sent blindly after an unanswered attempt.

        When an attempt may have been applied without an answer reaching us (a timeout, a
        dropped connection, a 5xx), the companies' current values are read back first and the
        ones that already hold their new values are confirmed instead of written a second time.
        Returns the last answer, the records confirmed by read-back, and those the answer covers.
        """
        api = self.client.api("batch")
        confirmed: list[tuple[_Pending, WriteResult]] = []
        todo = batch
        attempts = max(1, self.client.config.retry_attempts)
        for attempt in range(1, attempts + 1):
            request = BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(
                        id=i.update.source_id,
                        properties=i.properties,
                        local_vars_configuration=OBJECTS_MODEL_CONFIG,
                    )
                    for i in todo
                ],
                local_vars_configuration=OBJECTS_MODEL_CONFIG,
            )
            try:
                answer = self.client.call(
                    f"update {self.object_type}",
                    functools.partial(api.update, self.object_type, request),
                    retry=False,
                )
                return answer, confirmed, todo
            except TransientError as exc:
                if attempt == attempts:
                    raise
                if exc.maybe_applied:
                    landed = self._landed(todo)
                    confirmed.extend(
                        (
                            i,
                            WriteResult(
                                i.update.source_id,
                                "ok",
                                f"confirmed by reading the {self.noun} back after an unanswered write",
                            ),
                        )
                        for i in todo
                        if i.update.source_id in landed
                    )
                    todo = [i for i in todo if i.update.source_id not in landed]
                    if not todo:
                        return None, confirmed, []
                wait = exc.retry_after if exc.retry_after is not None else min(2.0**attempt, 30)
                log.warning("HubSpot update %s: %s (retry in %.1f s)", self.object_type, exc, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _landed(self, batch: list[_Pending]) -> set[str]:
        """Companies of ``batch`` whose hub properties already hold the values being written."""
        names = {name: key for key, name in self.names.items()}
        current = self.read_hub_fields([i.update.source_id for i in batch])
        landed = set()
        for item in batch:
            held = current.get(item.update.source_id)
            if held is None:
                continue
            if all(
                _same(held.get(names.get(prop, prop)), value)
                for prop, value in item.properties.items()
            ):
                landed.add(item.update.source_id)
        return landed

    def _rejected(self, batch: list[_Pending], exc: CrmRequestError) -> _Outcome:
        """A whole-call 4xx: a missing property is a mapping problem; a bad value is bisected.

        HubSpot fails a whole batch update for one invalid value, so the batch is split until
        the offending record is alone and only it fails (extra calls bounded by 2·log2(n)).
        """
        codes = getattr(exc, "hubspot_codes", ())
        if exc.status == 400 and "PROPERTY_DOESNT_EXIST" in codes:
            raise MappingError(
                f"a hub-owned HubSpot {self.noun} property does not exist; run the field "
                "provisioning (`crmhub fields ensure`) or fix "
                f"writeback.hubspot_names ({exc})",
                crm=HUBSPOT,
            ) from None
        if exc.status == 400 and len(batch) > 1:
            half = len(batch) // 2
            first, first_retry = self._attempt(batch[:half])
            second, second_retry = self._attempt(batch[half:])
            return first + second, first_retry + second_retry
        message = getattr(exc, "hubspot_message", "") or str(exc)
        reason = f"{exc.code or 'HTTP ' + str(exc.status)}: {message}"
        return [_fail(item, reason, False) for item in batch], []

    # ---- read back ----------------------------------------------------------------------
    def read_hub_fields(self, source_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """Current values of the hub's properties on these records (missing ids left out)."""
        names = self.names
        if not names:
            return {}
        out: dict[str, dict[str, str | None]] = {}
        ids = list(dict.fromkeys(str(i) for i in source_ids))
        api = self.client.api("batch")
        for start in range(0, len(ids), BATCH_MAX):
            request = BatchReadInputSimplePublicObjectId(
                inputs=[
                    SimplePublicObjectId(id=i, local_vars_configuration=OBJECTS_MODEL_CONFIG)
                    for i in ids[start : start + BATCH_MAX]
                ],
                properties=list(names.values()),
                properties_with_history=[],
                local_vars_configuration=OBJECTS_MODEL_CONFIG,
            )
            try:
                answer = self.client.call(
                    f"read {self.noun} hub fields",
                    functools.partial(api.read, self.object_type, request, archived=False),
                )
            except CrmRequestError as exc:
                if exc.status == 404:
                    continue  # none of these companies exists any more
                raise
            for obj in answer.results if answer else []:
                props = obj.properties or {}
                out[str(obj.id)] = {key: text(props.get(name)) for key, name in names.items()}
        return out


def _same(held: str | None, sent: Any) -> bool:
    """Whether a property read back holds the value sent (HubSpot returns every value as text)."""
    if sent is None or sent == "":
        return held in (None, "")
    if held is None:
        return False
    try:
        return float(held) == float(sent)
    except (TypeError, ValueError):
        return str(held).strip().lower() == str(sent).strip().lower()
