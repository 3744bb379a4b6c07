"""Salesforce rows -> the hub's typed records, and which fields each object is read with.

Why here and nowhere else: Salesforce semantics (``IsWon``, ``Incoming``, ``TaskSubtype``, key
prefixes such as ``006`` for an Opportunity, ``;``-joined multi-select picklists, ``+0000``
datetimes, Bulk CSV strings) are translated once into the records of ``connectors.records``.
Both read paths (REST JSON and Bulk 2.0 CSV, typed first by :func:`typed_csv_row`) end up here,
so a record looks the same whichever path produced it.

Org-specific custom fields come from the field map (record attribute -> Salesforce field); the
defaults are the fields a typical B2B SaaS org (and the sandbox) keeps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import MappingError
from connectors.records import (
    SALESFORCE,
    AccountRecord,
    ActivityRecord,
    AnyRecord,
    ContactRecord,
    DealRecord,
    DealStageRecord,
    EmailRecord,
    OwnerAssignmentRecord,
    OwnerRecord,
    TicketRecord,
)

Row = Mapping[str, Any]

#: The Salesforce objects behind each hub kind, in read order.
KIND_OBJECTS: dict[str, tuple[str, ...]] = {
    "owner": ("User",),
    # AccountHistory (owner changes, where history tracking on Owner is on) after Account, so
    # the accounts an owner change names are stored before it
    "account": ("Account", "AccountHistory"),
    "contact": ("Contact", "Lead"),
    "deal": ("Opportunity",),
    "deal_stage": ("OpportunityHistory",),
    "email": ("EmailMessage",),
    "ticket": ("Case",),
    "activity": ("Task", "Event"),
}

SYSTEM_FIELDS: tuple[str, ...] = ("Id", "IsDeleted", "SystemModstamp", "CreatedDate")
#: Field history objects: rows the org writes once and never changes, so they have no
#: SystemModstamp; their cursor is CreatedDate, and only the tracked fields the hub reads are
#: asked for (a static filter of every query on them).
HISTORY_OBJECTS: dict[str, str] = {"AccountHistory": "Field = 'Owner'"}
_HISTORY_SYSTEM_FIELDS: tuple[str, ...] = ("Id", "IsDeleted", "CreatedDate")


def cursor_field(sf_object: str) -> str:
    """The timestamp an object's incremental read is keyed on (with ``Id`` for ties)."""
    return "CreatedDate" if sf_object in HISTORY_OBJECTS else "SystemModstamp"


def system_fields(sf_object: str) -> tuple[str, ...]:
    return _HISTORY_SYSTEM_FIELDS if sf_object in HISTORY_OBJECTS else SYSTEM_FIELDS


#: Standard fields read per object (besides the system fields), with their describe types.
STANDARD_FIELDS: dict[str, dict[str, str]] = {
    "User": {
        "Email": "email",
        "FirstName": "string",
        "LastName": "string",
        "Department": "string",
        "IsActive": "boolean",
    },
    "Account": {
        "Name": "string",
        "Website": "url",
        "Phone": "phone",
        "Industry": "picklist",
        "BillingStreet": "textarea",
        "BillingCity": "string",
        "BillingState": "string",
        "BillingPostalCode": "string",
        "BillingCountry": "string",
        "NumberOfEmployees": "int",
        "AnnualRevenue": "currency",
        "OwnerId": "reference",
    },
    "Contact": {
        "AccountId": "reference",
        "FirstName": "string",
        "LastName": "string",
        "Email": "email",
        "Phone": "phone",
        "Title": "string",
        "OwnerId": "reference",
    },
    "Lead": {
        "FirstName": "string",
        "LastName": "string",
        "Email": "email",
        "Company": "string",
        "Website": "url",
        "Status": "picklist",
        "IsConverted": "boolean",
        "ConvertedAccountId": "reference",
        "OwnerId": "reference",
    },
    "Opportunity": {
        "AccountId": "reference",
        "Name": "string",
        "StageName": "picklist",
        "Amount": "currency",
        "Probability": "percent",
        "CloseDate": "date",
        "IsClosed": "boolean",
        "IsWon": "boolean",
        "Type": "picklist",
        "LastStageChangeDate": "datetime",
        "OwnerId": "reference",
    },
    "OpportunityHistory": {"OpportunityId": "reference", "StageName": "picklist"},
    "AccountHistory": {"AccountId": "reference", "Field": "picklist", "NewValue": "anyType"},
    "Case": {
        "AccountId": "reference",
        "ContactId": "reference",
        "Subject": "string",
        "Status": "picklist",
        "Priority": "picklist",
        "Type": "picklist",
        "IsClosed": "boolean",
        "ClosedDate": "datetime",
        "OwnerId": "reference",
    },
    "EmailMessage": {
        "CreatedById": "reference",
        "RelatedToId": "reference",
        "ThreadIdentifier": "string",
        "Subject": "string",
        "FromAddress": "email",
        "ToAddress": "string",
        "Incoming": "boolean",
        "MessageDate": "datetime",
    },
    "Task": {
        "WhatId": "reference",
        "AccountId": "reference",
        "TaskSubtype": "picklist",
        "ActivityDate": "date",
        "CallDurationInSeconds": "int",
        "OwnerId": "reference",
    },
    "Event": {
        "WhatId": "reference",
        "AccountId": "reference",
        "Type": "picklist",
        "ActivityDateTime": "datetime",
        "ActivityDate": "date",
        "DurationInMinutes": "int",
        "OwnerId": "reference",
    },
}
SYSTEM_TYPES = {
    "Id": "id",
    "IsDeleted": "boolean",
    "SystemModstamp": "datetime",
    "CreatedDate": "datetime",
}


@dataclass(frozen=True)
class MappedAttribute:
    """A record attribute fed by an org-specific field: which object, and the value's type."""

    sf_object: str
    default_field: str
    kind: str  # "string", "date", "bool", "multi", "number"


#: Attributes the field map can point at another field (or switch off with "").
MAPPABLE: dict[str, MappedAttribute] = {
    "cross_crm_id": MappedAttribute("Account", "HubSpot_Company_Id__c", "string"),
    "go_live_date": MappedAttribute("Account", "Go_Live_Date__c", "date"),
    "onboarding_completed": MappedAttribute("Account", "Onboarding_Completed__c", "bool"),
    "contracted_modules": MappedAttribute("Account", "Contracted_Modules__c", "multi"),
    "modules_in_use": MappedAttribute("Account", "Modules_In_Use__c", "multi"),
    "usage_score": MappedAttribute("Account", "Usage_Score__c", "number"),
    "contract_term_months": MappedAttribute("Opportunity", "Contract_Term_Months__c", "number"),
    "satisfaction": MappedAttribute("Case", "CSAT__c", "number"),
    # off unless mapped: few orgs keep a survey score on the Account, and a default field name
    # would fail every org that has none
    "nps_score": MappedAttribute("Account", "", "number"),
}
DEFAULT_FIELD_MAP: dict[str, str] = {k: v.default_field for k, v in MAPPABLE.items()}
EXTRA_PREFIX = "extra."


class FieldMap:
    """The effective read mapping: defaults overlaid with the configured entries.

    Raises :class:`MappingError` for keys that name no record attribute, so a typo in the mapping
    file fails at start-up instead of silently reading nothing.
    """

    def __init__(self, configured: Mapping[str, str]) -> None:
        entries = dict(DEFAULT_FIELD_MAP)
        for key, value in configured.items():
            if key not in MAPPABLE and not (
                key.startswith(EXTRA_PREFIX) and len(key) > len(EXTRA_PREFIX)
            ):
                raise MappingError(
                    f"field mapping key '{key}' is not a Salesforce record attribute the hub "
                    f"reads; use one of {', '.join(sorted(MAPPABLE))} or 'extra.<name>' "
                    "(fix the salesforce.read section of the mapping file)",
                    crm=SALESFORCE,
                )
            entries[key] = (value or "").strip()
        self.entries = entries

    def object_of(self, key: str) -> str:
        return MAPPABLE[key].sf_object if key in MAPPABLE else "Account"

    def fields_for(self, sf_object: str) -> dict[str, str]:
        """``{mapping key: field}`` read from one object (switched-off entries left out)."""
        return {k: f for k, f in self.entries.items() if f and self.object_of(k) == sf_object}

    def key_for(self, sf_object: str, field_name: str) -> str | None:
        """The mapping key that names ``field_name`` on ``sf_object`` (for error messages)."""
        for key, f in self.fields_for(sf_object).items():
            if f.lower() == field_name.lower():
                return key
        return None

    def unknown_field_error(self, key: str, sf_object: str, field_name: str) -> MappingError:
        return MappingError(
            f"field mapping '{key}' names {sf_object}.{field_name}, which does not exist in this "
            f"Salesforce org (or is hidden from the integration user by field-level security); "
            f"add the field in Salesforce or change salesforce.read.{key} in mapping.yaml",
            crm=SALESFORCE,
        )


def select_fields(
    sf_object: str, field_map: FieldMap, hub_names: tuple[str, ...] = ()
) -> list[str]:
    """The SELECT list for one object: system, standard, mapped and (Account) hub fields."""
    fields = [*system_fields(sf_object), *STANDARD_FIELDS[sf_object]]
    for name in [*field_map.fields_for(sf_object).values(), *hub_names]:
        if name not in fields:
            fields.append(name)
    return fields


# --------------------------------------------------------------------------------------------
# value parsing (REST JSON and typed Bulk CSV share these)
# --------------------------------------------------------------------------------------------


def parse_datetime(value: Any) -> dt.datetime | None:
    """Salesforce ``2026-05-01T07:25:37.000+0000`` (or Bulk ``…Z``) -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    text = str(value).strip()
    # Python 3.11's fromisoformat reads "Z" and "+0000" (ISO 8601 basic offsets) alike.
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def parse_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def parse_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def parse_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def parse_int(value: Any) -> int | None:
    number = parse_float(value)
    return None if number is None else int(number)


def parse_multi(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    return tuple(p.strip() for p in str(value).split(";") if p.strip())


def text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def iso_ts(value: dt.datetime) -> str:
    """The cursor's timestamp form: UTC with milliseconds and ``Z`` (also a SOQL literal)."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_CSV_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "boolean": lambda v: v.strip().lower() == "true",
    "int": lambda v: int(float(v)),
    "double": float,
    "currency": float,
    "percent": float,
}


def typed_csv_row(row: Mapping[str, str], types: Mapping[str, str]) -> dict[str, Any]:
    """A Bulk 2.0 CSV row (all strings, empty = null) typed like a REST JSON row."""
    out: dict[str, Any] = {}
    for name, raw in row.items():
        if raw is None or raw == "":
            out[name] = None
            continue
        convert = _CSV_CONVERTERS.get(types.get(name, "string"))
        out[name] = convert(raw) if convert else raw
    return out


def field_types(sf_object: str, describe: Mapping[str, Any] | None) -> dict[str, str]:
    """Field name -> describe type for one object (describe wins over the built-in table)."""
    types = {**SYSTEM_TYPES, **STANDARD_FIELDS[sf_object]}
    if describe:
        for f in describe.get("fields", []):
            types[str(f["name"])] = str(f.get("type") or "string")
    return types


# --------------------------------------------------------------------------------------------
# rows -> records
# --------------------------------------------------------------------------------------------


def _base(sf_object: str, row: Row) -> dict[str, Any]:
    modified = parse_datetime(row.get(cursor_field(sf_object)))
    assert modified is not None, "every Salesforce row carries its cursor field"
    return {
        "source": SALESFORCE,
        "object_type": sf_object,
        "source_id": str(row["Id"]),
        "modified_at": modified,
        "deleted": bool(parse_bool(row.get("IsDeleted"))),
    }


def _mapped(row: Row, field_map: FieldMap, key: str) -> Any:
    name = field_map.entries.get(key)
    if not name:
        return None
    return row.get(name)


def _is_user_id(value: Any) -> bool:
    text_value = str(value or "")
    return text_value.startswith("005") and len(text_value) in (15, 18) and text_value.isalnum()


def wanted_row(sf_object: str, row: Row) -> bool:
    """Whether a row becomes a record. An owner change writes two ``AccountHistory`` rows, one
    with the user ids and one with their names; only the id row says who the owner is."""
    if sf_object == "AccountHistory":
        return bool(parse_bool(row.get("IsDeleted"))) or _is_user_id(row.get("NewValue"))
    return True


def to_record(
    sf_object: str,
    row: Row,
    field_map: FieldMap,
    hub_names: Mapping[str, str] | None = None,
) -> AnyRecord:
    """One Salesforce row (REST JSON or typed CSV) as the hub record of its kind.

    ``hub_names``: hub key -> Salesforce field of the hub-owned fields present on Account.
    """
    base = _base(sf_object, row)
    if sf_object == "User":
        return OwnerRecord(
            **base,
            email=text(row.get("Email")),
            first_name=text(row.get("FirstName")),
            last_name=text(row.get("LastName")),
            department=text(row.get("Department")),
            active=parse_bool(row.get("IsActive")) is not False,
        )
    if sf_object == "Account":
        return _account(base, row, field_map, hub_names or {})
    if sf_object == "Contact":
        account = text(row.get("AccountId"))
        return ContactRecord(
            **base,
            email=text(row.get("Email")),
            first_name=text(row.get("FirstName")),
            last_name=text(row.get("LastName")),
            phone=text(row.get("Phone")),
            title=text(row.get("Title")),
            account_ids=(account,) if account else (),
            owner_id=text(row.get("OwnerId")),
            created_at=parse_datetime(row.get("CreatedDate")),
        )
    if sf_object == "Lead":
        # A converted lead lives on as a Contact (and Account); the lead row is kept for the
        # "new leads" KPI but marked by its status ("Closed - Converted") and tied to the
        # account it became, so identity resolution does not count the person twice.
        converted = (
            text(row.get("ConvertedAccountId")) if parse_bool(row.get("IsConverted")) else None
        )
        return ContactRecord(
            **base,
            email=text(row.get("Email")),
            first_name=text(row.get("FirstName")),
            last_name=text(row.get("LastName")),
            account_ids=(converted,) if converted else (),
            owner_id=text(row.get("OwnerId")),
            created_at=parse_datetime(row.get("CreatedDate")),
            is_lead=True,
            lifecycle_stage=text(row.get("Status")),
            company_name=text(row.get("Company")),
            company_website=text(row.get("Website")),
        )
    if sf_object == "Opportunity":
        stage = text(row.get("StageName"))
        stage_changed = parse_datetime(row.get("LastStageChangeDate"))
        probability = parse_float(row.get("Probability"))
        return DealRecord(
            **base,
            name=text(row.get("Name")),
            account_id=text(row.get("AccountId")),
            stage=stage,
            stage_label=stage,  # Salesforce stage values are their labels
            is_closed=bool(parse_bool(row.get("IsClosed"))),
            is_won=bool(parse_bool(row.get("IsWon"))),
            probability=None if probability is None else probability / 100.0,
            amount=parse_float(row.get("Amount")),
            close_date=parse_date(row.get("CloseDate")),
            created_at=parse_datetime(row.get("CreatedDate")),
            owner_id=text(row.get("OwnerId")),
            deal_type=text(row.get("Type")),
            contract_term_months=parse_float(_mapped(row, field_map, "contract_term_months")),
            # Only the current stage's entry is on the Opportunity; the full history comes
            # from the deal_stage kind (OpportunityHistory).
            stage_entered_at={stage: stage_changed} if stage and stage_changed else {},
        )
    if sf_object == "OpportunityHistory":
        return DealStageRecord(
            **base,
            deal_id=str(row.get("OpportunityId") or ""),
            stage=text(row.get("StageName")),
            entered_at=parse_datetime(row.get("CreatedDate")),
        )
    if sf_object == "AccountHistory":
        return OwnerAssignmentRecord(
            **base,
            account_id=str(row.get("AccountId") or ""),
            owner_id=text(row.get("NewValue")),
            assigned_at=parse_datetime(row.get("CreatedDate")),
        )
    if sf_object == "Case":
        return TicketRecord(
            **base,
            subject=text(row.get("Subject")),
            account_id=text(row.get("AccountId")),
            contact_id=text(row.get("ContactId")),
            priority=text(row.get("Priority")),
            category=text(row.get("Type")),
            status=text(row.get("Status")),
            is_closed=bool(parse_bool(row.get("IsClosed"))),
            opened_at=parse_datetime(row.get("CreatedDate")),
            closed_at=parse_datetime(row.get("ClosedDate")),
            satisfaction=parse_float(_mapped(row, field_map, "satisfaction")),
            owner_id=text(row.get("OwnerId")),
        )
    if sf_object == "EmailMessage":
        related = text(row.get("RelatedToId")) or ""
        incoming = parse_bool(row.get("Incoming"))
        to_raw = text(row.get("ToAddress")) or ""
        return EmailRecord(
            **base,
            direction="inbound" if incoming else "outbound",
            sent_at=parse_datetime(row.get("MessageDate"))
            or parse_datetime(row.get("CreatedDate")),
            subject=text(row.get("Subject")),
            from_address=text(row.get("FromAddress")),
            to_addresses=tuple(a.strip() for a in to_raw.replace(",", ";").split(";") if a.strip()),
            thread_id=text(row.get("ThreadIdentifier")),
            # An email logged on an Opportunity names the deal only; the unify step finds the
            # account through the deal (a polymorphic RelatedTo path would cost more than it gives).
            account_ids=(related,) if related.startswith("001") else (),
            deal_ids=(related,) if related.startswith("006") else (),
            owner_id=text(row.get("CreatedById")),  # the user who logged the email
        )
    if sf_object == "Task":
        what = text(row.get("WhatId")) or ""
        subtype = text(row.get("TaskSubtype"))
        due = parse_date(row.get("ActivityDate"))
        occurred = (
            dt.datetime(due.year, due.month, due.day, tzinfo=dt.UTC)
            if due
            else parse_datetime(row.get("CreatedDate"))
        )
        return ActivityRecord(
            **base,
            kind=subtype.lower() if subtype else "task",
            account_id=text(row.get("AccountId")),
            deal_id=what if what.startswith("006") else None,
            occurred_at=occurred,
            duration_seconds=parse_int(row.get("CallDurationInSeconds")),
            owner_id=text(row.get("OwnerId")),
        )
    if sf_object == "Event":
        # A calendar entry: a meeting unless its Type says call. All-day events carry only
        # ActivityDate (midnight UTC, like a Task's due date).
        what = text(row.get("WhatId")) or ""
        event_type = (text(row.get("Type")) or "").strip().lower()
        day_only = parse_date(row.get("ActivityDate"))
        occurred = parse_datetime(row.get("ActivityDateTime")) or (
            dt.datetime(day_only.year, day_only.month, day_only.day, tzinfo=dt.UTC)
            if day_only
            else parse_datetime(row.get("CreatedDate"))
        )
        minutes = parse_int(row.get("DurationInMinutes"))
        return ActivityRecord(
            **base,
            kind="call" if event_type == "call" else "meeting",
            account_id=text(row.get("AccountId")),
            deal_id=what if what.startswith("006") else None,
            occurred_at=occurred,
            duration_seconds=None if minutes is None else minutes * 60,
            owner_id=text(row.get("OwnerId")),
        )
    raise ValueError(f"no record mapping for Salesforce object {sf_object}")


def _account(
    base: dict[str, Any], row: Row, field_map: FieldMap, hub_names: Mapping[str, str]
) -> AccountRecord:
    extra = {
        key[len(EXTRA_PREFIX) :]: row.get(name)
        for key, name in field_map.fields_for("Account").items()
        if key.startswith(EXTRA_PREFIX)
    }
    hub_values = {key: hub_value(row.get(name)) for key, name in hub_names.items() if name in row}
    return AccountRecord(
        **base,
        name=text(row.get("Name")),
        website=text(row.get("Website")),
        phone=text(row.get("Phone")),
        industry=text(row.get("Industry")),
        street=text(row.get("BillingStreet")),
        city=text(row.get("BillingCity")),
        state=text(row.get("BillingState")),
        postal_code=text(row.get("BillingPostalCode")),
        country=text(row.get("BillingCountry")),
        employees=parse_int(row.get("NumberOfEmployees")),
        annual_revenue=parse_float(row.get("AnnualRevenue")),
        owner_id=text(row.get("OwnerId")),
        created_at=parse_datetime(row.get("CreatedDate")),
        cross_crm_id=text(_mapped(row, field_map, "cross_crm_id")),
        go_live_date=parse_date(_mapped(row, field_map, "go_live_date")),
        onboarding_completed=parse_bool(_mapped(row, field_map, "onboarding_completed")),
        contracted_modules=parse_multi(_mapped(row, field_map, "contracted_modules")),
        modules_in_use=parse_multi(_mapped(row, field_map, "modules_in_use")),
        usage_score=parse_float(_mapped(row, field_map, "usage_score")),
        nps_score=parse_float(_mapped(row, field_map, "nps_score")),
        extra=extra,
        hub_fields=hub_values,
    )


def hub_value(value: Any) -> str | None:
    """A hub field's CRM value as the hub's string form (what the writeback ledger compares)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text_value = str(value)
    if len(text_value) >= 20 and text_value[10:11] == "T":
        try:
            parsed = parse_datetime(text_value)
        except ValueError:
            return text_value
        if parsed is not None:
            return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text_value
