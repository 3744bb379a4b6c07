"""Provisioning the hub's own properties (``crmhub_*`` in the ``crmhub`` group).

On companies (the hub fields) and on contacts (the marketing suppression marketers filter lists
on); the group is created per object type, as HubSpot keeps property groups per object.

Why the hub creates its fields itself: sellers and AMs see the hub's results as ordinary company
properties, grouped under "crmhub (integration hub)" so they know where the values come from and
that editing them is pointless. Provisioning is idempotent and cheap: one call lists every
company property; only missing ones are created (group first); a 409 means someone (another hub
run) created it meanwhile, which is fine. A dry run only reports what it would create.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyGroupCreate

from connectors.base import ProvisionResult
from connectors.errors import CrmRequestError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.records import HubFieldSpec

COMPANIES = "companies"
_NOUNS = {"companies": "company", "contacts": "contact"}

#: Hub field kind -> (HubSpot type, fieldType).
PROPERTY_TYPES: dict[str, tuple[str, str]] = {
    "string": ("string", "text"),
    "text": ("string", "textarea"),
    "number": ("number", "number"),
    "date": ("date", "date"),
    "datetime": ("datetime", "date"),
    "bool": ("enumeration", "booleancheckbox"),
    "enum": ("enumeration", "select"),
}


def _options(spec: HubFieldSpec) -> list[OptionInput]:
    if spec.kind == "bool":
        return [
            OptionInput(label="Yes", value="true", display_order=0, hidden=False),
            OptionInput(label="No", value="false", display_order=1, hidden=False),
        ]
    if spec.kind == "enum":
        return [
            OptionInput(label=o, value=o, display_order=i, hidden=False)
            for i, o in enumerate(spec.options)
        ]
    return []


def property_create(spec: HubFieldSpec, name: str, group: str) -> PropertyCreate:
    """The create request for one hub field."""
    if spec.kind not in PROPERTY_TYPES:
        raise ValueError(
            f"hub field {spec.key} has kind {spec.kind!r}; use one of {', '.join(PROPERTY_TYPES)}"
        )
    ptype, field_type = PROPERTY_TYPES[spec.kind]
    return PropertyCreate(
        name=name,
        label=spec.label,
        type=ptype,
        field_type=field_type,
        group_name=group,
        description=spec.description or f"Written by crmhub ({spec.key}); edits are overwritten.",
        options=_options(spec),
        form_field=False,
    )


def ensure_fields(
    client: HubSpotClient,
    config: HubSpotConfig,
    specs: Sequence[HubFieldSpec],
    *,
    dry_run: bool = False,
    object_type: str = COMPANIES,
) -> list[ProvisionResult]:
    """Create missing hub properties (and the group); one result per spec, in order."""
    noun = _NOUNS.get(object_type, object_type)
    names = {spec.key: config.hub_property(spec.key) for spec in specs}
    answer = client.call(
        f"list {noun} properties",
        lambda: client.api("properties").get_all(object_type, archived=False),
    )
    existing: dict[str, Any] = {p.name: p for p in (answer.results if answer else [])}
    results: list[ProvisionResult] = []
    group_ready = False
    for spec in specs:
        name = names[spec.key]
        found = existing.get(name)
        if found is not None:
            results.append(_existing(spec, name, found, noun))
            continue
        if dry_run:
            results.append(ProvisionResult(spec.key, name, "would_create"))
            continue
        if not group_ready:
            _ensure_group(client, config, object_type)
            group_ready = True
        request = property_create(spec, name, config.property_group)
        try:
            client.call(
                f"create {noun} property {name}",
                functools.partial(client.api("properties").create, object_type, request),
            )
        except CrmRequestError as exc:
            if exc.status == 409:
                results.append(ProvisionResult(spec.key, name, "exists", "created concurrently"))
                continue
            raise
        results.append(ProvisionResult(spec.key, name, "created"))
    return results


def _existing(spec: HubFieldSpec, name: str, prop: Any, noun: str) -> ProvisionResult:
    meta = getattr(prop, "modification_metadata", None)
    if meta is not None and getattr(meta, "read_only_value", False):
        return ProvisionResult(
            spec.key,
            name,
            "not_writable",
            f"HubSpot {noun} property {name} exists but is read-only; "
            + (
                f"rename the hub field with writeback.hubspot_names.{spec.key}"
                if noun == "company"
                else f"drop {spec.key} from writeback.hubspot_contact_fields"
            )
            + " or make the property writable",
        )
    expected = PROPERTY_TYPES.get(spec.kind, ("", ""))[0]
    if expected and getattr(prop, "type", expected) != expected:
        return ProvisionResult(
            spec.key,
            name,
            "exists",
            f"type is {prop.type}, the hub expects {expected}; values are sent as text",
        )
    return ProvisionResult(spec.key, name, "exists")


def _ensure_group(client: HubSpotClient, config: HubSpotConfig, object_type: str) -> None:
    request = PropertyGroupCreate(
        name=config.property_group, label=config.property_group_label, display_order=-1
    )
    try:
        client.call(
            "create the crmhub property group",
            lambda: client.api("groups").create(object_type, request),
        )
    except CrmRequestError as exc:
        if exc.status != 409:  # 409: the group exists already
            raise
