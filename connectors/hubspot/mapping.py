"""HubSpot properties → the hub's typed records.

Why one module: HubSpot sends every property as a string (``"5000.00"``, ``"true"``, datetimes as
ISO ``…Z`` or epoch milliseconds, multi-selects ``;``-joined) or ``null`` (``""`` after a clear).
This is the one place that knows those conventions and HubSpot's vocabulary (``dealstage`` ids,
``INCOMING_EMAIL``, lifecycle stages, the four activity objects), so that nothing right of the
connector does.

Field mapping: each record attribute read from a single property has a default property (the
standard HubSpot ones plus the custom fields a SaaS portal typically adds); ``field_map`` in the
config overrides them. Keys: ``go_live_date`` or ``extra.segment`` (companies, where the custom
fields live), or qualified ``deal.contract_term_months``, ``contact.title``, ``ticket.…``,
``email.…``, ``account.…``. Mapping an attribute to ``""`` switches it off (the portal has no such
field). Which properties exist is checked once against the properties API (``validate``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any, Literal

from connectors.errors import MappingError
from connectors.hubspot.config import HubSpotConfig
from connectors.records import (
    HUBSPOT,
    AccountRecord,
    ActivityRecord,
    AnyRecord,
    ContactRecord,
    DealRecord,
    EmailRecord,
    ObjectKind,
    OwnerAssignmentRecord,
    OwnerRecord,
    SourceRecord,
    TicketRecord,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ObjectSpec:
    """How one hub kind lives in HubSpot: object type, last-modified property, associations."""

    kind: ObjectKind
    object_type: str
    lastmod: str
    #: Object types whose associations the record needs (one batch read per type and unit).
    associations: tuple[str, ...]
    #: Record attribute -> default property.
    defaults: Mapping[str, str]


SPECS: dict[str, ObjectSpec] = {
    "account": ObjectSpec(
        "account",
        "companies",
        "hs_lastmodifieddate",
        (),
        {
            "name": "name",
            "website": "website",
            "domain": "domain",
            "phone": "phone",
            "industry": "industry",
            "street": "address",
            "city": "city",
            "state": "state",
            "postal_code": "zip",
            "country": "country",
            "employees": "numberofemployees",
            "annual_revenue": "annualrevenue",
            "owner_id": "hubspot_owner_id",
            "cross_crm_id": "salesforceaccountid",
            "go_live_date": "go_live_date",
            "onboarding_completed": "onboarding_completed",
            "contracted_modules": "contracted_modules",
            "modules_in_use": "modules_in_use",
            "usage_score": "usage_score",
        },
    ),
    "contact": ObjectSpec(
        "contact",
        "contacts",
        "lastmodifieddate",
        ("companies",),
        {
            "email": "email",
            "first_name": "firstname",
            "last_name": "lastname",
            "phone": "phone",
            "title": "jobtitle",
            "owner_id": "hubspot_owner_id",
            "lifecycle_stage": "lifecyclestage",
            "company_name": "company",
            "company_website": "website",
            "last_marketing_email_at": "hs_email_last_send_date",
        },
    ),
    "deal": ObjectSpec(
        "deal",
        "deals",
        "hs_lastmodifieddate",
        ("companies", "contacts"),
        {
            "name": "dealname",
            "stage": "dealstage",
            "amount": "amount",
            "close_date": "closedate",
            "owner_id": "hubspot_owner_id",
            "deal_type": "dealtype",
            "contract_term_months": "contract_term_months",
            "is_closed": "hs_is_closed",
            "is_won": "hs_is_closed_won",
        },
    ),
    "ticket": ObjectSpec(
        "ticket",
        "tickets",
        "hs_lastmodifieddate",
        ("companies", "contacts"),
        {
            "subject": "subject",
            "priority": "hs_ticket_priority",
            "category": "hs_ticket_category",
            "status": "hs_pipeline_stage",
            "closed_at": "closed_date",
            "satisfaction": "hs_customer_satisfaction",
            "owner_id": "hubspot_owner_id",
        },
    ),
    "email": ObjectSpec(
        "email",
        "emails",
        "hs_lastmodifieddate",
        ("contacts", "companies", "deals"),
        {
            "sent_at": "hs_timestamp",
            "direction": "hs_email_direction",
            "subject": "hs_email_subject",
            "from_address": "hs_email_from_email",
            "to_addresses": "hs_email_to_email",
            "thread_id": "hs_email_thread_id",
            "owner_id": "hubspot_owner_id",
        },
    ),
    # Activities: four HubSpot objects under the hub's one ``activity`` kind (``KIND_SPECS``).
    # Companies give the customer (as for emails), deals the deal; ``hs_timestamp`` is when it
    # happened (a task's due time).
    "call": ObjectSpec(
        "activity",
        "calls",
        "hs_lastmodifieddate",
        ("companies", "deals"),
        {
            "occurred_at": "hs_timestamp",
            "duration": "hs_call_duration",
            "direction": "hs_call_direction",
            "status": "hs_call_status",
            "owner_id": "hubspot_owner_id",
        },
    ),
    "meeting": ObjectSpec(
        "activity",
        "meetings",
        "hs_lastmodifieddate",
        ("companies", "deals"),
        {
            "occurred_at": "hs_timestamp",
            "start": "hs_meeting_start_time",
            "end": "hs_meeting_end_time",
            "status": "hs_meeting_outcome",
            "owner_id": "hubspot_owner_id",
        },
    ),
    "note": ObjectSpec(
        "activity",
        "notes",
        "hs_lastmodifieddate",
        ("companies", "deals"),
        {"occurred_at": "hs_timestamp", "owner_id": "hubspot_owner_id"},
    ),
    "task": ObjectSpec(
        "activity",
        "tasks",
        "hs_lastmodifieddate",
        ("companies", "deals"),
        {
            "occurred_at": "hs_timestamp",
            "status": "hs_task_status",
            "owner_id": "hubspot_owner_id",
        },
    ),
}

#: The specs (keys of ``SPECS``) read for each hub kind, in read order: one per kind except
#: ``activity``, which HubSpot files as four objects.
KIND_SPECS: dict[str, tuple[str, ...]] = {}
for _name, _spec in SPECS.items():
    KIND_SPECS.setdefault(_spec.kind, ())
    KIND_SPECS[_spec.kind] += (_name,)
ACTIVITY_SPECS = KIND_SPECS["activity"]

#: Association type ids HubSpot defines for the *primary* company of a contact, deal, ticket.
_PRIMARY_TYPE_IDS = {1, 5, 26}
#: The same primary types by their v3 names, as inline associations of a list read carry them
#: (the unlabelled type of those pairs is ``…_unlabeled``; a label called "Primary" counts too,
#: as it does in ``ordered_targets``).
_PRIMARY_V3_NAMES = {"contact_to_company", "deal_to_company", "ticket_to_company", "primary"}
_LEAD_STAGES = {"lead", "marketingqualifiedlead"}


# ---- value parsing -----------------------------------------------------------------------------


#: ``hs_email_direction`` -> the hub's direction. Only ``EMAIL`` (sent by a rep to the customer)
#: is a reply; a forwarded email (``FORWARDED_EMAIL``) went to a colleague, not to the customer,
#: and must not count as the answer to an inquiry. Unknown values are "other" for the same reason.
EMAIL_DIRECTIONS: dict[str, Literal["inbound", "outbound", "forwarded", "other"]] = {
    "INCOMING_EMAIL": "inbound",
    "EMAIL": "outbound",
    "FORWARDED_EMAIL": "forwarded",
}


def text(raw: str | None) -> str | None:
    """A string property: ``null`` and ``""`` (cleared) are both "no value"."""
    if raw is None:
        return None
    value = str(raw)
    return value if value != "" else None


def number(raw: str | None) -> float | None:
    value = text(raw)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def integer(raw: str | None) -> int | None:
    value = number(raw)
    return int(value) if value is not None else None


def boolean(raw: str | None) -> bool | None:
    value = text(raw)
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return None


def instant(raw: Any) -> dt.datetime | None:
    """A datetime property (ISO ``…Z``/offset, or epoch milliseconds) as aware UTC."""
    if isinstance(raw, dt.datetime):
        return (raw if raw.tzinfo else raw.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    value = text(raw)
    if value is None:
        return None
    value = value.strip()
    if value.lstrip("-").isdigit():
        return EPOCH + dt.timedelta(milliseconds=int(value))
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def day(raw: str | None) -> dt.date | None:
    """A date property (``2026-05-24``, epoch ms of midnight UTC, or an ISO instant)."""
    value = text(raw)
    if value is None:
        return None
    value = value.strip()
    if len(value) == 10 and value[4] == "-":
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    moment = instant(value)
    return moment.date() if moment else None


def multi(raw: str | None) -> tuple[str, ...]:
    """A multi-select (``Billing;Payroll``) as a tuple, empty items dropped."""
    value = text(raw)
    if value is None:
        return ()
    return tuple(p.strip() for p in value.split(";") if p.strip())


def addresses(raw: str | None) -> tuple[str, ...]:
    """The bare addresses of an email address property, in order, without duplicates.

    HubSpot's ``hs_email_to_email`` (and from/cc/bcc) may hold display-name forms such as
    ``Jane Doe<jane@example.com>`` and several entries separated by ``;`` or ``,``. Only the
    address itself is kept, so erasure and its block match the person by address.
    """
    value = text(raw)
    if value is None:
        return ()
    parsed = getaddresses([value.replace(";", ",")])
    found = [addr.strip() for _, addr in parsed if addr.strip()]
    if not found and not any(name for name, _ in parsed):
        # The strict parser gives up on the whole header; fall back to the plain split.
        found = [p.strip() for p in value.replace(",", ";").split(";") if p.strip()]
    return tuple(dict.fromkeys(found))


def address(raw: str | None) -> str | None:
    """The first bare address of a single-address property (``hs_email_from_email``)."""
    found = addresses(raw)
    return found[0] if found else None


#: The company owner property whose versions date an owner change (``propertiesWithHistory``).
OWNER_PROPERTY = "hubspot_owner_id"
#: A version this close to the record's creation was set when the record was made.
_AT_CREATION = dt.timedelta(seconds=60)


def owner_assignment(obj: Any) -> OwnerAssignmentRecord | None:
    """When a company got its current owner, from a read with
    ``propertiesWithHistory=hubspot_owner_id`` (versions newest first).

    The current owner's versions at the head of the list (a re-set to the same owner is no
    change) go back to the one that assigned it. It dates an assignment when an earlier version
    names another owner (or a cleared value), or when it came after the company was created
    and not by an import; an owner set when the company was created or imported dates no
    handover (``assigned_at`` None: the hub says "first seen on"). None without an owner or
    without versions of it (nothing to say).
    """
    props = obj.properties or {}
    current = text(props.get(OWNER_PROPERTY))
    history = getattr(obj, "properties_with_history", None) or {}
    versions = list(history.get(OWNER_PROPERTY) or [])
    if current is None or not versions:
        return None
    run = []
    for v in versions:
        if text(getattr(v, "value", None)) != current:
            break
        run.append(v)
    if not run:
        return None  # the history does not know the current owner yet: say nothing
    first = run[-1]
    when = instant(getattr(first, "timestamp", None))
    earlier = len(run) < len(versions)
    created = instant(getattr(obj, "created_at", None)) or instant(props.get("createdate"))
    after_creation = when is not None and (created is None or when - created > _AT_CREATION)
    imported = str(getattr(first, "source_type", "") or "").upper() == "IMPORT"
    dated = earlier or (after_creation and not imported)
    modified = instant(props.get("hs_lastmodifieddate")) or instant(obj.updated_at) or when
    return OwnerAssignmentRecord(
        source=HUBSPOT,
        object_type="companies",
        source_id=str(obj.id),
        modified_at=modified or EPOCH,
        account_id=str(obj.id),
        owner_id=current,
        assigned_at=when if dated else None,
    )


def iso(moment: dt.datetime) -> str:
    """The cursor's form of an instant: UTC, milliseconds, ``Z``."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms(moment: dt.datetime) -> str:
    """A search filter value: HubSpot compares datetimes as epoch milliseconds."""
    return str((moment - EPOCH) // dt.timedelta(milliseconds=1))


# ---- field mapping --------------------------------------------------------------------------


#: Attributes read only when the mapping names a property (no default: most portals have none).
OPTIONAL: dict[str, tuple[str, ...]] = {"account": ("nps_score",)}


class FieldMapping:
    """Which property feeds which attribute of which kind, after the config's overrides."""

    def __init__(self, config: HubSpotConfig) -> None:
        self.config = config
        self.props: dict[str, dict[str, str]] = {k: dict(s.defaults) for k, s in SPECS.items()}
        self.extras: dict[str, str] = {}
        self.sources: dict[tuple[str, str], str] = {}  # (kind, attr) -> the field_map key
        for key, prop in config.field_map.items():
            kind, attr = _split_key(key)
            if attr.startswith("extra."):
                if kind != "account":
                    raise MappingError(
                        f"hubspot.read.{key}: only accounts (HubSpot companies) carry extra fields; "
                        f"use extra.<name> or account.extra.<name> in the mapping file",
                        crm=HUBSPOT,
                    )
                name = attr.removeprefix("extra.")
                if prop:
                    self.extras[name] = prop
                self.sources[(kind, attr)] = key
                continue
            if attr not in self.props[kind] and attr not in OPTIONAL.get(kind, ()):
                raise MappingError(
                    f"hubspot.read.{key}: {kind} has no attribute {attr} read from HubSpot; "
                    f"mappable: {', '.join(sorted({*self.props[kind], *OPTIONAL.get(kind, ())}))}; "
                    "fix the key in the mapping file",
                    crm=HUBSPOT,
                )
            if prop:
                self.props[kind][attr] = prop
            else:
                self.props[kind].pop(attr, None)
            self.sources[(kind, attr)] = key
        self.hub = config.hub_properties()

    def prop(self, kind: str, attr: str) -> str | None:
        return self.props[kind].get(attr)

    def properties(self, kind: str) -> list[str]:
        """Every property a search for ``kind`` must request (nothing more: payload is money)."""
        spec = SPECS[kind]
        names = ["hs_object_id", "createdate", spec.lastmod, *self.props[kind].values()]
        if kind == "account":
            names += [*self.extras.values(), *self.hub.values()]
        if kind == "deal":
            names += [f"hs_v2_date_entered_{stage}" for stage in self.config.deal_stages]
        return list(dict.fromkeys(names))

    def validate(self, kind: str, existing: Iterable[str]) -> None:
        """Raise ``MappingError`` for the first mapped property the portal does not have.

        Hub-owned ``crmhub_*`` properties are not checked: ``ensure_fields`` creates them, and
        until then they are simply absent from what HubSpot returns.
        """
        known = set(existing)
        checks = [(attr, p) for attr, p in self.props[kind].items()]
        if kind == "account":
            checks += [(f"extra.{n}", p) for n, p in self.extras.items()]
        for attr, prop in checks:
            if prop in known:
                continue
            key = self.sources.get((kind, attr), attr if kind == "account" else f"{kind}.{attr}")
            raise MappingError(
                f"the HubSpot {SPECS[kind].object_type} property {prop} (mapped to "
                f"hubspot.read.{key}) does not exist in the portal; add the property in HubSpot or "
                f"change hubspot.read.{key} in mapping.yaml (an empty value switches it off)",
                crm=HUBSPOT,
            )


def _split_key(key: str) -> tuple[str, str]:
    head, _, rest = key.partition(".")
    if head in SPECS and rest:
        return head, rest
    return "account", key


# ---- records ------------------------------------------------------------------------------


def _common(spec: ObjectSpec, obj: Any) -> dict[str, Any]:
    props: dict[str, Any] = obj.properties or {}
    modified = instant(props.get(spec.lastmod)) or instant(obj.updated_at) or EPOCH
    return {
        "source": HUBSPOT,
        "object_type": spec.object_type,
        "source_id": str(obj.id),
        "modified_at": modified,
    }


class RecordMapper:
    """Turns SDK objects (plus their associations) into records of one kind."""

    def __init__(self, mapping: FieldMapping) -> None:
        self.mapping = mapping
        self.config = mapping.config

    def _get(self, kind: str, props: Mapping[str, Any], attr: str) -> Any:
        name = self.mapping.prop(kind, attr)
        return props.get(name) if name else None

    def record(
        self, kind: str, obj: Any, assoc: Mapping[str, Mapping[str, list[str]]]
    ) -> AnyRecord:
        """``assoc``: to-object type -> {from id -> associated ids, primary first}."""
        spec = SPECS[kind]
        base = _common(spec, obj)
        props: Mapping[str, Any] = obj.properties or {}
        oid = str(obj.id)

        def linked(to_ot: str) -> list[str]:
            return list(assoc.get(to_ot, {}).get(oid, []))

        def g(attr: str) -> Any:
            return self._get(kind, props, attr)

        created = instant(props.get("createdate")) or instant(obj.created_at)
        if kind == "account":
            return AccountRecord(
                **base,
                name=text(g("name")),
                website=text(g("website")),
                domain=text(g("domain")),
                phone=text(g("phone")),
                industry=text(g("industry")),
                street=text(g("street")),
                city=text(g("city")),
                state=text(g("state")),
                postal_code=text(g("postal_code")),
                country=text(g("country")),
                employees=integer(g("employees")),
                annual_revenue=number(g("annual_revenue")),
                owner_id=text(g("owner_id")),
                created_at=created,
                cross_crm_id=text(g("cross_crm_id")),
                go_live_date=day(g("go_live_date")),
                onboarding_completed=boolean(g("onboarding_completed")),
                contracted_modules=multi(g("contracted_modules")),
                modules_in_use=multi(g("modules_in_use")),
                usage_score=number(g("usage_score")),
                nps_score=number(g("nps_score")),
                extra={n: text(props.get(p)) for n, p in self.mapping.extras.items()},
                hub_fields={
                    key: text(props.get(p)) for key, p in self.mapping.hub.items() if p in props
                },
            )
        if kind == "contact":
            stage = text(g("lifecycle_stage"))
            return ContactRecord(
                **base,
                email=text(g("email")),
                first_name=text(g("first_name")),
                last_name=text(g("last_name")),
                phone=text(g("phone")),
                title=text(g("title")),
                account_ids=tuple(linked("companies")),
                owner_id=text(g("owner_id")),
                created_at=created,
                is_lead=(stage or "").lower() in _LEAD_STAGES,
                lifecycle_stage=stage,
                company_name=text(g("company_name")),
                company_website=text(g("company_website")),
                last_marketing_email_at=instant(g("last_marketing_email_at")),
            )
        if kind == "deal":
            stage_id = text(g("stage"))
            known = self.config.deal_stages.get(stage_id or "")
            closed = boolean(g("is_closed"))
            won = boolean(g("is_won"))
            entered: dict[str, dt.datetime] = {}
            for sid in self.config.deal_stages:
                when = instant(props.get(f"hs_v2_date_entered_{sid}"))
                if when is not None:
                    entered[sid] = when
            close = g("close_date")
            return DealRecord(
                **base,
                name=text(g("name")),
                account_id=next(iter(linked("companies")), None),
                stage=stage_id,
                stage_label=known[0] if known else None,
                is_closed=closed if closed is not None else bool(known and known[2]),
                is_won=won if won is not None else bool(known and known[3]),
                probability=known[1] if known else None,
                amount=number(g("amount")),
                close_date=day(close),
                created_at=created,
                owner_id=text(g("owner_id")),
                deal_type=text(g("deal_type")),
                contract_term_months=number(g("contract_term_months")),
                stage_entered_at=entered,
                contact_ids=tuple(linked("contacts")),
            )
        if kind == "ticket":
            status = text(g("status"))
            return TicketRecord(
                **base,
                subject=text(g("subject")),
                account_id=next(iter(linked("companies")), None),
                contact_id=next(iter(linked("contacts")), None),
                priority=text(g("priority")),
                category=text(g("category")),
                status=status,
                is_closed=status in self.config.closed_ticket_stages,
                opened_at=created,
                closed_at=instant(g("closed_at")),
                satisfaction=number(g("satisfaction")),
                owner_id=text(g("owner_id")),
            )
        if kind == "email":
            direction = text(g("direction"))
            return EmailRecord(
                **base,
                direction=EMAIL_DIRECTIONS.get(direction or "", "other"),
                sent_at=instant(g("sent_at")) or created,
                subject=text(g("subject")),
                from_address=address(g("from_address")),
                to_addresses=addresses(g("to_addresses")),
                thread_id=text(g("thread_id")),
                account_ids=tuple(linked("companies")),
                contact_ids=tuple(linked("contacts")),
                deal_ids=tuple(linked("deals")),
                owner_id=text(g("owner_id")),
            )
        if kind in ACTIVITY_SPECS:
            return self._activity(kind, base, g, created, linked)
        raise ValueError(f"no HubSpot mapping for kind {kind}")

    @staticmethod
    def _activity(
        name: str, base: dict[str, Any], g: Any, created: dt.datetime | None, linked: Any
    ) -> ActivityRecord:
        """A call, meeting, note or task; duration from the call's milliseconds or the
        meeting's start and end."""
        duration: int | None = None
        if name == "call":
            ms = number(g("duration"))
            duration = None if ms is None else int(ms // 1000)
        elif name == "meeting":
            start, end = instant(g("start")), instant(g("end"))
            if start is not None and end is not None and end >= start:
                duration = int((end - start).total_seconds())
        direction = (text(g("direction")) or "").upper() if name == "call" else ""
        return ActivityRecord(
            **base,
            kind=name,
            account_id=next(iter(linked("companies")), None),
            deal_id=next(iter(linked("deals")), None),
            occurred_at=instant(g("occurred_at")) or instant(g("start")) or created,
            duration_seconds=duration,
            owner_id=text(g("owner_id")),
            direction="inbound"
            if direction == "INBOUND"
            else "outbound"
            if direction == "OUTBOUND"
            else None,
            status=text(g("status")),
        )


_RECORD_TYPES: dict[str, type[SourceRecord]] = {
    "account": AccountRecord,
    "contact": ContactRecord,
    "deal": DealRecord,
    "ticket": TicketRecord,
    "email": EmailRecord,
    "owner": OwnerRecord,
    "activity": ActivityRecord,
}


def tombstone(kind: str, source_id: str, modified_at: dt.datetime) -> AnyRecord:
    """A deleted (archived) record: identity and time of deletion only."""
    object_type = "owners" if kind == "owner" else SPECS[kind].object_type
    record_type = _RECORD_TYPES["owner" if kind == "owner" else SPECS[kind].kind]
    if record_type is ActivityRecord:
        return ActivityRecord(
            source=HUBSPOT,
            object_type=object_type,
            source_id=source_id,
            modified_at=modified_at,
            deleted=True,
            kind=kind,
        )
    return record_type(  # type: ignore[return-value]
        source=HUBSPOT,
        object_type=object_type,
        source_id=source_id,
        modified_at=modified_at,
        deleted=True,
    )


def owner_record(owner: Any) -> OwnerRecord:
    """A HubSpot owner; ``department`` is the name of the owner's first (primary) team."""
    teams = list(getattr(owner, "teams", None) or [])
    primary = [t for t in teams if getattr(t, "primary", False)]
    team = (primary or teams or [None])[0]
    archived = bool(getattr(owner, "archived", False))
    return OwnerRecord(
        source=HUBSPOT,
        object_type="owners",
        source_id=str(owner.id),
        modified_at=instant(owner.updated_at) or instant(owner.created_at) or EPOCH,
        email=text(owner.email),
        first_name=text(owner.first_name),
        last_name=text(owner.last_name),
        department=text(getattr(team, "name", None)) if team is not None else None,
        active=not archived,
    )


def ordered_targets(to: Iterable[Any]) -> list[str]:
    """Associated ids from a v4 batch-read result, the primary one first, then by id."""
    primary: list[str] = []
    others: list[str] = []
    for item in to:
        target = str(item.to_object_id)
        types = list(getattr(item, "association_types", None) or [])
        is_primary = any(
            (getattr(t, "label", None) or "").lower() == "primary"
            or (
                getattr(t, "category", None) == "HUBSPOT_DEFINED"
                and getattr(t, "type_id", None) in _PRIMARY_TYPE_IDS
            )
            for t in types
        )
        (primary if is_primary else others).append(target)
    key = _numeric
    return sorted(dict.fromkeys(primary), key=key) + sorted(
        (t for t in dict.fromkeys(others) if t not in primary), key=key
    )


def ordered_inline(results: Iterable[Any]) -> list[str]:
    """Associated ids from a v3 inline ``associations.<type>.results`` list, ordered like
    :func:`ordered_targets` orders a v4 batch read: the primary one first, then by id.

    Each ``{id, type}`` item is one association type of a pair (a primary company comes twice:
    ``contact_to_company`` and ``contact_to_company_unlabeled``).
    """
    primary: list[str] = []
    others: list[str] = []
    for item in results:
        target = str(item.id)
        kind = (getattr(item, "type", None) or "").lower()
        (primary if kind in _PRIMARY_V3_NAMES else others).append(target)
    key = _numeric
    return sorted(dict.fromkeys(primary), key=key) + sorted(
        (t for t in dict.fromkeys(others) if t not in primary), key=key
    )


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)
