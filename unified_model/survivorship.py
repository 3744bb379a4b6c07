"""Survivorship: the golden customer record built from the CRM records identity resolution joined.

Why: once Salesforce's Acme account and HubSpot's Acme company are known to be one customer,
every field still has up to two (or, with duplicates, more) values. Sellers and AMs trust the
pushed-back fields only if the hub picks the value people would pick, and can say where it came
from. The rules, in the order they apply to each golden field:

1. An empty value (None, blank text, empty list) never wins over a non-empty one.
2. A per-field source priority, where configured: the preferred CRM's value wins when it has
   one. Defaults follow who owns what in a company running both: the billing address, annual
   revenue, employee count, contracted modules and the owner come from Salesforce (finance and
   account management keep them there); website, domain and industry come from HubSpot
   (marketing keeps them current, often enriched).
3. Otherwise, the value of the most recently modified record wins (ties: Salesforce first,
   then by id, so the result is deterministic).

Fields that only make sense together survive as a unit (by default the address): the best record
with any part of it supplies all its parts, and a missing part is filled only from a record that
does not contradict the parts already chosen, so a street from Boston is never paired with
Berlin.

List fields (``contracted_modules``, ``modules_in_use``) take the winning record's list whole
rather than a union of all records: a union could never reflect a module removed in one CRM,
and the hub must not contract modules nobody sold.

``field_sources`` records, per golden field, "salesforce:<id>" / "hubspot:<id>" of the record the
value came from; the owner fields name the account whose owner survived.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.records import HUBSPOT, SALESFORCE
from unified_model.domains import fold_text, normalize_country, normalize_email
from unified_model.identity import account_domain
from unified_model.tables import Customer, Owner, SourceAccount

SOURCES: tuple[str, ...] = (SALESFORCE, HUBSPOT)

#: The golden fields survivorship decides ("owner" gives ``owner_email`` and ``owner_name``).
GOLDEN_FIELDS: tuple[str, ...] = (
    "name",
    "domain",
    "website",
    "phone",
    "industry",
    "street",
    "city",
    "state",
    "postal_code",
    "country",
    "employees",
    "annual_revenue",
    "go_live_date",
    "onboarding_completed",
    "contracted_modules",
    "modules_in_use",
    "usage_score",
    "nps_score",
    "owner",
)

ADDRESS_FIELDS: tuple[str, ...] = ("street", "city", "state", "postal_code", "country")

DEFAULT_SOURCE_PRIORITY: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(ADDRESS_FIELDS, (SALESFORCE,)),
    "annual_revenue": (SALESFORCE,),
    "employees": (SALESFORCE,),
    "contracted_modules": (SALESFORCE,),
    "owner": (SALESFORCE,),
    "website": (HUBSPOT,),
    "domain": (HUBSPOT,),
    "industry": (HUBSPOT,),
}
DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {"address": ADDRESS_FIELDS}


class PolicyError(ValueError):
    """An invalid survivorship policy; ``field`` names the offending setting."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"survivorship policy: {field_path}: {problem}")
        self.field = field_path


@dataclass(frozen=True)
class SurvivorshipPolicy:
    """Which CRM wins which golden field (see the module docstring for the rules).

    ``source_priority``: golden field → CRMs in order of preference (unlisted CRMs come after,
    by recency; an empty tuple means recency only). ``groups``: name → fields that survive as a
    unit; a group's members must share one priority. ``owner_must_be_active``: a deactivated
    CRM user (someone who left) is no owner; with no active owner the golden owner is empty.
    """

    source_priority: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_SOURCE_PRIORITY)
    )
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    owner_must_be_active: bool = True

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SurvivorshipPolicy:
        """Build from the ``survivorship`` section of the hub's YAML, on top of the defaults.

        ``source_priority`` entries replace the default of the fields they name; ``groups``,
        when given, replaces the default groups. Errors name the setting at fault.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise PolicyError("survivorship", "must be a mapping")
        known = {"source_priority", "groups", "owner_must_be_active"}
        for key in data:
            if key not in known:
                raise PolicyError(str(key), f"unknown setting; known: {sorted(known)}")

        priority = dict(DEFAULT_SOURCE_PRIORITY)
        raw_priority = data.get("source_priority", {}) or {}
        if not isinstance(raw_priority, Mapping):
            raise PolicyError("source_priority", "must map golden fields to lists of CRMs")
        for name, sources in raw_priority.items():
            path = f"source_priority.{name}"
            if isinstance(sources, str) or not isinstance(sources, list | tuple):
                raise PolicyError(path, f"must be a list of CRMs ({', '.join(SOURCES)})")
            priority[str(name)] = tuple(sources)

        groups = dict(DEFAULT_GROUPS)
        if "groups" in data:
            raw_groups = data["groups"] or {}
            if not isinstance(raw_groups, Mapping):
                raise PolicyError("groups", "must map group names to lists of golden fields")
            groups = {}
            for name, members in raw_groups.items():
                if isinstance(members, str) or not isinstance(members, list | tuple):
                    raise PolicyError(f"groups.{name}", "must be a list of golden fields")
                groups[str(name)] = tuple(members)

        active = data.get("owner_must_be_active", True)
        if not isinstance(active, bool):
            raise PolicyError("owner_must_be_active", "must be true or false")
        return cls(source_priority=priority, groups=groups, owner_must_be_active=active)

    def priority_of(self, golden_field: str) -> tuple[str, ...]:
        return self.source_priority.get(golden_field, ())


def _validate(policy: SurvivorshipPolicy) -> None:
    for name, sources in policy.source_priority.items():
        path = f"source_priority.{name}"
        if name not in GOLDEN_FIELDS:
            raise PolicyError(path, f"unknown golden field; known: {', '.join(GOLDEN_FIELDS)}")
        seen: set[str] = set()
        for i, source in enumerate(sources):
            if source not in SOURCES:
                raise PolicyError(
                    f"{path}[{i}]", f"unknown CRM {source!r}; use one of {', '.join(SOURCES)}"
                )
            if source in seen:
                raise PolicyError(f"{path}[{i}]", f"CRM {source!r} listed twice")
            seen.add(source)
    grouped: dict[str, str] = {}
    for group, members in policy.groups.items():
        if not members:
            raise PolicyError(f"groups.{group}", "must name at least one golden field")
        for i, member in enumerate(members):
            path = f"groups.{group}[{i}]"
            if member not in GOLDEN_FIELDS or member == "owner":
                raise PolicyError(path, f"{member!r} is not a golden field that can be grouped")
            if member in grouped:
                raise PolicyError(path, f"{member!r} is already in group {grouped[member]!r}")
            grouped[member] = group
        first = members[0]
        for member in members[1:]:
            if policy.priority_of(member) != policy.priority_of(first):
                raise PolicyError(
                    f"source_priority.{member}",
                    f"differs from {first!r}, but both survive as the unit {group!r}; "
                    "give all its fields the same priority",
                )


# --------------------------------------------------------------------------------------------
# Survival
# --------------------------------------------------------------------------------------------

_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def is_empty(value: Any) -> bool:
    """None, blank text and empty collections carry no information and never win."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | set | frozenset | dict):
        return len(value) == 0
    return False


def _source_ref(account: SourceAccount) -> str:
    return f"{account.source}:{account.source_id}"


def _ranked(accounts: list[SourceAccount], priority: tuple[str, ...]) -> list[SourceAccount]:
    """Accounts in the order their values win: preferred CRM, then most recent, then stable."""

    def key(acc: SourceAccount) -> tuple[Any, ...]:
        rank = priority.index(acc.source) if acc.source in priority else len(priority)
        modified = acc.modified_at or _EPOCH
        return (
            rank,
            -modified.timestamp(),
            SOURCES.index(acc.source) if acc.source in SOURCES else 9,
            acc.source_id,
        )

    return sorted(accounts, key=key)


def _list_value(value: Any) -> list[Any]:
    return list(dict.fromkeys(value or ()))


_VALUE_OF: dict[str, Callable[[SourceAccount], Any]] = {
    "domain": account_domain,
    "contracted_modules": lambda a: _list_value(a.contracted_modules),
    "modules_in_use": lambda a: _list_value(a.modules_in_use),
}


def _value(account: SourceAccount, golden_field: str) -> Any:
    getter = _VALUE_OF.get(golden_field)
    value = getter(account) if getter else getattr(account, golden_field)
    return value.strip() if isinstance(value, str) else value


def _comparable(golden_field: str, value: Any) -> Any:
    if golden_field == "country":
        return normalize_country(value)
    if isinstance(value, str):
        return " ".join(fold_text(value).split())
    return value


def _survive_group(
    ranked: list[SourceAccount], members: tuple[str, ...]
) -> dict[str, tuple[Any, SourceAccount]]:
    """Pick a unit of fields from one record, filling gaps only from non-contradicting records
    (``ranked``: the accounts in the order the group's priority makes them win)."""
    chosen: dict[str, tuple[Any, SourceAccount]] = {}
    for acc in ranked:
        values = {m: _value(acc, m) for m in members}
        present = {m: v for m, v in values.items() if not is_empty(v)}
        if not present:
            continue
        contradicts = any(
            m in chosen and _comparable(m, chosen[m][0]) != _comparable(m, v)
            for m, v in present.items()
        )
        if contradicts:
            continue
        for m, v in present.items():
            chosen.setdefault(m, (v, acc))
        if len(chosen) == len(members):
            break
    return chosen


def _owner_candidates(
    account: SourceAccount, owners: Mapping[tuple[str, str], Owner], policy: SurvivorshipPolicy
) -> Owner | None:
    if not account.owner_id:
        return None
    owner = owners.get((account.source, account.owner_id))
    if owner is None or owner.deleted:
        return None
    if policy.owner_must_be_active and not owner.active:
        return None
    if is_empty(owner.email) and is_empty(owner.first_name) and is_empty(owner.last_name):
        return None
    return owner


def survive(
    customer_id: str,
    accounts: list[SourceAccount],
    owners: Mapping[tuple[str, str], Owner],
    policy: SurvivorshipPolicy | None = None,
    now: dt.datetime | None = None,
) -> Customer:
    """The golden record of one customer from its (live) CRM records.

    ``owners``: (source, owner source id) → ``Owner`` rows of both CRMs. ``now`` becomes
    ``updated_at``; ``created_at`` is the earliest creation time among the records.
    """
    return Customer(**survive_row(customer_id, accounts, owners, policy, now))


#: every golden record column with its default: a value, or a factory for a fresh list / dict
_CUSTOMER_DEFAULTS: tuple[tuple[str, Any, Callable[[], Any] | None], ...] = tuple(
    (name, info.default, info.default_factory)  # type: ignore[misc]
    for name, info in Customer.model_fields.items()
)


def survive_row(
    customer_id: str,
    accounts: list[SourceAccount],
    owners: Mapping[tuple[str, str], Owner],
    policy: SurvivorshipPolicy | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """``survive(...).model_dump()`` without the table model in between: every column of the
    golden record, defaults included.

    Why: building a ``Customer`` per customer was most of writing the golden records on a
    first sync (SQLModel's constructor asks pydantic, per default-factory field and instance,
    whether the factory takes the validated data, which inspects its signature: 40 of 90 s
    for 100,000 customers on ``large``). Unify writes rows, so it takes the row.
    """
    policy = policy or SurvivorshipPolicy()
    live = [a for a in accounts if not a.deleted]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    # the accounts in winning order, once per distinct priority: the golden fields share a
    # few priorities, and sorting again per field was a fifth of surviving 100,000 customers
    orders: dict[tuple[str, ...], list[SourceAccount]] = {}

    def ranked(priority: tuple[str, ...]) -> list[SourceAccount]:
        order = orders.get(priority)
        if order is None:
            order = orders[priority] = _ranked(live, priority)
        return order

    grouped: set[str] = set()
    for members in policy.groups.values():
        grouped.update(members)
        chosen = _survive_group(ranked(policy.priority_of(members[0])), members)
        for member, (value, acc) in chosen.items():
            values[member] = value
            sources[member] = _source_ref(acc)

    for golden_field in GOLDEN_FIELDS:
        if golden_field in grouped or golden_field == "owner":
            continue
        for acc in ranked(policy.priority_of(golden_field)):
            value = _value(acc, golden_field)
            if not is_empty(value):
                values[golden_field] = value
                sources[golden_field] = _source_ref(acc)
                break

    for acc in ranked(policy.priority_of("owner")):
        owner = _owner_candidates(acc, owners, policy)
        if owner is None:
            continue
        name = " ".join(p.strip() for p in (owner.first_name, owner.last_name) if p and p.strip())
        values["owner_email"] = normalize_email(owner.email) or (owner.email or None)
        values["owner_name"] = name or None
        for key in ("owner_email", "owner_name"):
            if values[key] is not None:
                sources[key] = _source_ref(acc)
        break

    created = [a.created_at for a in live if a.created_at is not None]
    row: dict[str, Any] = {
        name: factory() if factory is not None else default
        for name, default, factory in _CUSTOMER_DEFAULTS
    }
    row.update((k, v) for k, v in values.items() if k in row)  # what the model keeps
    row.update(
        id=customer_id,
        field_sources=dict(sorted(sources.items())),
        created_at=min(created) if created else None,
        updated_at=now,
    )
    return row
