"""Record writes as an org performs them: validation, derived fields, history, cascades.

Why in one place: single-record REST, sObject Collections and Bulk ingest must validate and
derive identically (a connector that works with one must see the same errors from the others).
What a real org does on every write and the emulator reproduces:

- field checks: unknown field (``INVALID_FIELD``, request-level), read-only or FLS-restricted field
  (``INVALID_FIELD_FOR_INSERT_UPDATE``), type (``JSON_PARSER_ERROR``), required fields
  (``REQUIRED_FIELD_MISSING``), length (``STRING_TOO_LONG``), restricted picklists, references
  (``MALFORMED_ID`` / ``INVALID_CROSS_REFERENCE_KEY``), unique fields (``DUPLICATE_VALUE``);
- derived values: ``Name`` of Contact/Lead/User, Opportunity ``IsClosed``/``IsWon``/``Probability``/
  ``LastStageChangeDate`` from the stage, an ``OpportunityHistory`` row whenever stage, amount,
  close date or probability change, ``AccountHistory`` rows whenever an Account's owner changes
  (field history tracking on ``Owner``, see :func:`record_owner_change`), Case ``CaseNumber``/``IsClosed``/``ClosedDate``, Task and
  Event ``AccountId``, an opportunity product's product fields and totals; ``CreatedById``/``LastModifiedById``/``OwnerId`` from the API user;
- deletes go to the recycle bin (``IsDeleted``) and cascade from an Account to its Contacts,
  Opportunities, Cases and Events, from an Opportunity to its line items and contact roles,
  from a Contact, Lead or Campaign to its campaign memberships, as the master-detail-like
  standard relationships do.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox.catalog import SF_OPPORTUNITY_STAGES
from sandbox.formats import sf_datetime, sf_id15_to_18, sf_new_id
from sandbox.salesforce.describe import (
    ID_TYPES,
    STRING_TYPES,
    FieldDef,
    ObjectSchema,
    load_schema,
    prefix_object,
)
from sandbox.salesforce.errors import ApiError, RecordError, json_parser_error
from sandbox.salesforce.values import BadValue, coerce, is_id
from sandbox.state import SF, SandboxState

_STAGES = {s[0]: s for s in SF_OPPORTUNITY_STAGES}
_HISTORY_FIELDS = ("StageName", "Amount", "CloseDate", "Probability")
_NAME_OBJECTS = ("Contact", "Lead", "User")
#: What goes to the recycle bin with a record: parent object -> (child object, reference).
_CASCADE: dict[str, tuple[tuple[str, str], ...]] = {
    "Account": (
        ("Contact", "AccountId"),
        ("Opportunity", "AccountId"),
        ("Case", "AccountId"),
        ("Event", "AccountId"),
    ),
    "Opportunity": (
        ("OpportunityLineItem", "OpportunityId"),
        ("OpportunityContactRole", "OpportunityId"),
    ),
    "Contact": (("CampaignMember", "ContactId"), ("OpportunityContactRole", "ContactId")),
    "Lead": (("CampaignMember", "LeadId"),),
    "Campaign": (("CampaignMember", "CampaignId"),),
}


@dataclass
class FailSpec:
    """Injected per-record failures (fault kinds ``row_lock``/``partial``).

    ``ids``: record ids or external-id values to fail (None: every record); ``indexes``: positions
    in the request, for inserts that have no id yet.
    """

    code: str
    message: str
    ids: set[str] | None = None
    indexes: set[int] | None = None

    def matches(self, keys: list[str | None], index: int | None) -> bool:
        if self.ids is None and self.indexes is None:
            return True
        if self.ids is not None and any(k in self.ids for k in keys if k):
            return True
        return self.indexes is not None and index is not None and index in self.indexes


@dataclass
class WriteContext:
    """Who writes and which faults apply, for the duration of one request."""

    user_id: str | None = None
    fail: FailSpec | None = None
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


#: Per-thread context (the HTTP server runs each request on its own thread).
_local = threading.local()


def current() -> WriteContext:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = WriteContext()
        _local.ctx = ctx
    return ctx


def set_context(ctx: WriteContext | None) -> None:
    _local.ctx = ctx


def unknown_field(schema: ObjectSchema, name: str) -> ApiError:
    return ApiError(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on sobject of type {schema.name}",
    )


class Store:
    """Validated writes to one org's records."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # ---- reads ----------------------------------------------------------------------------
    def get(self, obj: str, rid: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        if len(rid) == 15 and rid.isalnum():
            rid = sf_id15_to_18(rid)
        return self.state.get(SF, obj, rid, include_deleted=include_deleted)

    def find_by_field(self, schema: ObjectSchema, f: FieldDef, value: Any) -> list[str]:
        """Ids of live records whose ``f`` equals ``value`` (external ids: case-insensitive)."""
        if f.name == "Id":
            rec = self.get(schema.name, str(value))
            return [rec["id"]] if rec else []
        coll = " COLLATE NOCASE" if f.type in STRING_TYPES else ""
        rows = self.state.execute(
            f"SELECT id FROM records WHERE crm = '{SF}' AND object = '{schema.name}' AND "
            f"deleted = 0 AND json_extract(data, '$.{f.name}') = ?{coll} ORDER BY +id LIMIT 10",
            (value,),
        )
        return [r[0] for r in rows]

    # ---- validation -----------------------------------------------------------------------
    def prepare(
        self, schema: ObjectSchema, body: dict[str, Any], *, insert: bool, csv: bool = False
    ) -> dict[str, Any]:
        """Request-level checks of a write body: known fields and value types.

        Returns ``{canonical field name: stored value}``. Raises :class:`ApiError` (the whole
        request fails, as Salesforce's JSON deserialisation does) or, for Bulk CSV rows,
        :class:`RecordError`.
        """
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == "attributes" or (key.lower() == "id" and not insert):
                continue
            f = schema.field(key)
            if f is None:
                if csv:
                    raise RecordError("INVALID_FIELD", f"No such column '{key}'", [key])
                raise unknown_field(schema, key)
            try:
                out[f.name] = coerce(f, value, csv=csv)
            except BadValue as exc:
                if csv:
                    raise RecordError(
                        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.label}: {exc}", [f.name]
                    ) from exc
                raise json_parser_error(f"{exc} at field {f.name}") from exc
        return out

    def _check(
        self,
        schema: ObjectSchema,
        values: dict[str, Any],
        *,
        insert: bool,
        current_data: dict[str, Any] | None = None,
        rid: str | None = None,
    ) -> None:
        """Record-level checks (raise :class:`RecordError`)."""
        denied = [
            name
            for name in values
            if not (
                schema.by_name[name.lower()].createable
                if insert
                else schema.by_name[name.lower()].updateable
            )
        ]
        if "Id" in denied and insert:
            raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        if denied:
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(denied)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                denied,
            )
        merged = dict(current_data or {})
        merged.update(values)
        missing = [f.name for f in schema.fields if f.required and merged.get(f.name) in (None, "")]
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        for name, value in values.items():
            f = schema.by_name[name.lower()]
            if value is None:
                continue
            if f.type in STRING_TYPES and f.length and len(str(value)) > f.length:
                raise RecordError(
                    "STRING_TOO_LONG",
                    f"{f.label}: data value too large: {str(value)[:40]} (max length={f.length})",
                    [f.name],
                )
            if f.restricted_picklist and f.picklist:
                chosen = str(value).split(";") if f.type == "multipicklist" else [str(value)]
                bad = [c for c in chosen if c not in f.picklist]
                if bad:
                    raise RecordError(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{f.label}: bad value for restricted picklist field: {bad[0]}",
                        [f.name],
                    )
            if f.type == "reference":
                self._check_reference(f, str(value))
            if f.unique or (f.external_id and f.type in STRING_TYPES and f.unique):
                others = [i for i in self.find_by_field(schema, f, value) if i != rid]
                if others:
                    raise RecordError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: "
                        f"{others[0]}",
                        [f.name],
                    )

    def _check_reference(self, f: FieldDef, value: str) -> None:
        if not is_id(value):
            raise RecordError(
                "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name]
            )
        rid = sf_id15_to_18(value) if len(value) == 15 else value
        target = prefix_object(rid)
        if target is None or target not in f.reference_to:
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{f.label}: id value of incorrect type: {value}",
                [f.name],
            )
        rec = self.state.get(SF, target, rid, include_deleted=True)
        if rec is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        if rec["deleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [f.name])

    def _injected(self, keys: list[str | None], index: int | None) -> None:
        fail = current().fail
        if fail is not None and fail.matches(keys, index):
            raise RecordError(fail.code, fail.message, [])

    # ---- derived fields -------------------------------------------------------------------
    def _derive(
        self,
        obj: str,
        old: dict[str, Any] | None,
        values: dict[str, Any],
        now_sf: str,
    ) -> dict[str, Any]:
        """Changes the org makes on its own when ``values`` are written."""
        merged = dict(old or {})
        merged.update(values)
        extra: dict[str, Any] = {}
        user = current().user_id
        if old is None:
            extra["CreatedById"] = user
        extra["LastModifiedById"] = user
        if obj in _NAME_OBJECTS and (old is None or "FirstName" in values or "LastName" in values):
            extra["Name"] = " ".join(
                str(p) for p in (merged.get("FirstName"), merged.get("LastName")) if p
            )
        if obj == "Opportunity" and (old is None or "StageName" in values):
            stage = merged.get("StageName")
            changed = old is None or old.get("StageName") != stage
            if stage in _STAGES:
                _, probability, closed, won = _STAGES[stage]
                extra["IsClosed"] = closed
                extra["IsWon"] = won
                if "Probability" not in values and changed:
                    extra["Probability"] = probability
            if changed:
                extra["LastStageChangeDate"] = now_sf
        if obj == "Case":
            if old is None:
                extra["CaseNumber"] = self._next_case_number()
            if old is None or "Status" in values:
                closed = merged.get("Status") == "Closed"
                was_closed = bool(old and old.get("IsClosed"))
                extra["IsClosed"] = closed
                if closed and not was_closed:
                    extra["ClosedDate"] = now_sf
                elif not closed:
                    extra["ClosedDate"] = None
        if obj in ("Task", "Event") and (old is None or "WhatId" in values or "WhoId" in values):
            extra["AccountId"] = self._task_account(merged)
        if obj == "PricebookEntry" and (old is None or "Product2Id" in values):
            product = self.state.get(SF, "Product2", str(merged.get("Product2Id") or ""))
            pdata = product["data"] if product else {}
            extra["Name"] = pdata.get("Name")
            extra["ProductCode"] = pdata.get("ProductCode")
        if obj == "OpportunityLineItem":
            extra.update(self._line_item(old, values, merged))
        return extra

    def _line_item(
        self, old: dict[str, Any] | None, values: dict[str, Any], merged: dict[str, Any]
    ) -> dict[str, Any]:
        """What an org fills on an opportunity product: product fields from the price book
        entry, the sales price defaulting to the list price, and the total."""
        extra: dict[str, Any] = {}
        if old is None or "PricebookEntryId" in values:
            entry = self.state.get(SF, "PricebookEntry", str(merged.get("PricebookEntryId") or ""))
            edata = entry["data"] if entry else {}
            extra["Product2Id"] = edata.get("Product2Id")
            extra["Name"] = edata.get("Name")
            extra["ProductCode"] = edata.get("ProductCode")
            extra["ListPrice"] = edata.get("UnitPrice")
            if merged.get("UnitPrice") is None:
                extra["UnitPrice"] = merged["UnitPrice"] = edata.get("UnitPrice")
        quantity, price = merged.get("Quantity"), merged.get("UnitPrice")
        if quantity is not None and price is not None:
            subtotal = round(float(quantity) * float(price), 2)
            discount = float(merged.get("Discount") or 0)
            extra["Subtotal"] = subtotal
            extra["TotalPrice"] = round(subtotal * (1 - discount / 100), 2)
        return extra

    def _next_case_number(self) -> str:
        # Start after the highest number the generator (or anyone) stored, once per state.
        if self.state.get_meta("counter:sf:case_number", "") == "":
            rows = self.state.execute(
                f"SELECT MAX(CAST(json_extract(data, '$.CaseNumber') AS INTEGER)) FROM records "
                f"WHERE crm = '{SF}' AND object = 'Case'"
            )
            self.state.set_meta("counter:sf:case_number", str(int(rows[0][0] or 1000)))
        return f"{self.state.next_counter('sf:case_number'):08d}"

    def _task_account(self, data: dict[str, Any]) -> str | None:
        what, who = data.get("WhatId"), data.get("WhoId")
        if what:
            obj = prefix_object(what)
            if obj == "Account":
                return str(what)
            if obj in ("Opportunity", "Case"):
                rec = self.state.get(SF, obj, what)
                if rec:
                    return rec["data"].get("AccountId")
        if who and prefix_object(who) == "Contact":
            rec = self.state.get(SF, "Contact", who)
            if rec:
                return rec["data"].get("AccountId")
        return None

    def _history(
        self, opp_id: str, old: dict[str, Any] | None, new: dict[str, Any], now: dt.datetime
    ) -> None:
        if old is not None and all(old.get(k) == new.get(k) for k in _HISTORY_FIELDS):
            return
        hid = sf_new_id(self.state, "008")
        self.state.insert(
            SF,
            "OpportunityHistory",
            hid,
            {
                "OpportunityId": opp_id,
                "StageName": new.get("StageName"),
                "Amount": new.get("Amount"),
                "CloseDate": new.get("CloseDate"),
                "CreatedById": current().user_id,
                "LastModifiedById": current().user_id,
            },
            created=now,
        )

    # ---- writes ---------------------------------------------------------------------------
    def create(
        self,
        schema: ObjectSchema,
        values: dict[str, Any],
        *,
        index: int | None = None,
        ext_key: str | None = None,
    ) -> str:
        """Insert a validated record; returns the new id."""
        self._check(schema, values, insert=True)
        self._injected([ext_key], index)
        data: dict[str, Any] = {}
        for f in schema.fields:
            if f.column or f.is_compound:
                continue
            data[f.name] = False if f.type == "boolean" else None
        if "OwnerId" in data and values.get("OwnerId") is None and current().user_id:
            data["OwnerId"] = current().user_id
        data.update(values)
        now = self.state.now()
        data.update(self._derive(schema.name, None, values, sf_datetime(now)))
        rid = sf_new_id(self.state, schema.prefix)
        self.state.insert(SF, schema.name, rid, data, created=now)
        if schema.name == "Opportunity":
            self._history(rid, None, data, now)
        return rid

    def update(
        self,
        schema: ObjectSchema,
        rid: str,
        values: dict[str, Any],
        *,
        index: int | None = None,
        missing_code: str = "NOT_FOUND",
    ) -> None:
        """Update a live record (raises ``RecordError`` with ``missing_code`` if absent)."""
        rec = self._live(schema, rid, missing_code)
        self._check(schema, values, insert=False, current_data=rec["data"], rid=rec["id"])
        self._injected([rec["id"]], index)
        now = self.state.now()
        changes = dict(values)
        changes.update(self._derive(schema.name, rec["data"], values, sf_datetime(now)))
        self.state.update(SF, schema.name, rec["id"], changes, modified=now)
        if schema.name == "Account" and "OwnerId" in changes:
            record_owner_change(
                self.state,
                rec["id"],
                rec["data"].get("OwnerId"),
                changes["OwnerId"],
                now,
                current().user_id,
            )
        if schema.name == "Opportunity":
            new = dict(rec["data"])
            new.update(changes)
            self._history(rec["id"], rec["data"], new, now)

    def _live(self, schema: ObjectSchema, rid: str, missing_code: str) -> dict[str, Any]:
        if not is_id(rid):
            raise RecordError("MALFORMED_ID", f"malformed id {rid}", [], status=400)
        rec = self.get(schema.name, rid, include_deleted=True)
        if rec is None:
            if missing_code == "NOT_FOUND":
                raise RecordError("NOT_FOUND", "The requested resource does not exist", [], 404)
            raise RecordError(missing_code, "invalid cross reference id", [], 400)
        if rec["deleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [], 404)
        return rec

    def upsert(
        self,
        schema: ObjectSchema,
        ext: FieldDef,
        key: Any,
        values: dict[str, Any],
        *,
        index: int | None = None,
    ) -> tuple[str, bool]:
        """Insert or update by external id; returns ``(id, created)``."""
        matches = self.find_by_field(schema, ext, key)
        if len(matches) > 1:
            raise RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"more than one record found for external id field: {matches}",
                [ext.name],
                status=300,
            )
        if matches:
            values = {k: v for k, v in values.items() if k != ext.name}
            self.update(schema, matches[0], values, index=index)
            return matches[0], False
        if ext.name == "Id":
            raise RecordError("NOT_FOUND", "The requested resource does not exist", [], 404)
        values = dict(values)
        values[ext.name] = key
        return self.create(schema, values, index=index, ext_key=str(key)), True

    def delete(
        self,
        rid: str,
        *,
        obj: str | None = None,
        index: int | None = None,
        missing_code: str = "NOT_FOUND",
        hard: bool = False,
    ) -> None:
        """Move a record to the recycle bin (or purge it) with its children (``_CASCADE``)."""
        if not is_id(rid):
            raise RecordError("MALFORMED_ID", f"malformed id {rid}", [], status=400)
        if len(rid) == 15:
            rid = sf_id15_to_18(rid)
        target = obj or prefix_object(rid)
        if target is None or (obj is not None and prefix_object(rid) != obj):
            raise RecordError(missing_code, "The requested resource does not exist", [], 404)
        schema = load_schema(self.state, target)
        assert schema is not None
        rec = self._live(schema, rid, missing_code)
        self._injected([rid], index)
        if hard:
            self.state.hard_delete(SF, target, rid)
            return
        self.state.soft_delete(SF, target, rid)
        self._cascade(target, rec["id"])

    def _cascade(self, obj: str, rid: str) -> None:
        """Send the record's children to the recycle bin too (and theirs, recursively)."""
        for child, ref in _CASCADE.get(obj, ()):
            rows = self.state.execute(
                f"SELECT id FROM records WHERE crm = '{SF}' AND object = '{child}' AND "
                f"deleted = 0 AND json_extract(data, '$.{ref}') = ?",
                (rid,),
            )
            for (cid,) in rows:
                self.state.soft_delete(SF, child, cid)
                self._cascade(child, cid)


def _user_name(state: SandboxState, user_id: str | None) -> str | None:
    rec = state.get(SF, "User", user_id, include_deleted=True) if user_id else None
    return None if rec is None else rec["data"].get("Name")


def record_owner_change(
    state: SandboxState,
    account_id: str,
    old_owner: str | None,
    new_owner: str | None,
    when: dt.datetime,
    user_id: str | None,
) -> bool:
    """The ``AccountHistory`` rows an org with history tracking on ``Owner`` writes for one
    owner change: two rows at the same instant, one with the user ids (``DataType`` EntityId)
    and one with their names (Text), as real orgs record lookup fields. Nothing when the owner
    stays the same. Used by API writes, the mutator and the generator alike."""
    if not new_owner or old_owner == new_owner:
        return False
    for data_type, old, new in (
        ("EntityId", old_owner, new_owner),
        ("Text", _user_name(state, old_owner), _user_name(state, new_owner)),
    ):
        state.insert(
            SF,
            "AccountHistory",
            sf_new_id(state, "017"),
            {
                "AccountId": account_id,
                "CreatedById": user_id,
                "Field": "Owner",
                "DataType": data_type,
                "OldValue": old,
                "NewValue": new,
            },
            created=when,
        )
    return True


_EXT_SAFE = re.compile(r"^[A-Za-z0-9_]+$")

#: Parent references the connectors and cascades filter on; indexed like external ids.
REFERENCE_INDEXES: dict[str, tuple[str, ...]] = {
    "Contact": ("AccountId",),
    "Opportunity": ("AccountId",),
    "Case": ("AccountId",),
    "Task": ("WhatId",),
    "Event": ("WhatId",),
    "OpportunityLineItem": ("OpportunityId",),
    "OpportunityContactRole": ("OpportunityId",),
    "CampaignMember": ("CampaignId",),
    "EmailMessage": ("ParentId",),
    "OpportunityHistory": ("OpportunityId",),
    "AccountHistory": ("AccountId",),
}


def index_name(obj: str, name: str) -> str:
    return f"sf_ext_{obj}_{name}"


def ensure_index(state: SandboxState, obj: str, name: str, *, nocase: bool = True) -> None:
    """An expression index for lookups by one field (external ids, parent references).

    Partial (this CRM and object only). External ids compare case-insensitively, so their index
    is ``NOCASE``; id references compare exactly. Created lazily; a no-op once it exists.
    """
    if not (_EXT_SAFE.match(obj) and _EXT_SAFE.match(name)):
        return
    collate = " COLLATE NOCASE" if nocase else ""
    state.execute(
        f"CREATE INDEX IF NOT EXISTS {index_name(obj, name)} ON records("
        f"json_extract(data, '$.{name}'){collate}) "
        f"WHERE crm = '{SF}' AND object = '{obj}'"
    )


def indexed_fields(state: SandboxState, obj: str) -> set[str]:
    """Fields of ``obj`` that have an expression index (names as in the index)."""
    prefix = f"sf_ext_{obj}_"
    rows = state.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    return {r[0][len(prefix) :] for r in rows if r[0].startswith(prefix)}


__all__ = [
    "ID_TYPES",
    "FailSpec",
    "Store",
    "WriteContext",
    "current",
    "ensure_index",
    "set_context",
]
