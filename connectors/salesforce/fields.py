"""The hub's own fields on Account: their names, the allow-list, provisioning and value types.

Why an allow-list: the hub writes into customers' production CRM. It must only ever touch fields
it owns, recognisable by name (``Hub_...__c``), so that no mapping mistake can overwrite ``Name``
or ``Website`` on thousands of Accounts. Names are derived from the hub key by convention
(``handover_status`` -> ``Hub_Handover_Status__c``) and may be overridden per key, but an override
outside the convention is refused when the connector is built.

Provisioning goes through the Tooling API (``sobjects/CustomField``), which a JSON emulator can
serve and which needs no SOAP/WSDL stack. In a real org a new field is invisible to the
integration user until an admin grants field-level security; that case is reported, not hidden.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import MappingError
from connectors.records import SALESFORCE, HubFieldSpec
from connectors.salesforce.mapping import parse_datetime

HUB_PREFIX = "Hub_"
CUSTOM_SUFFIX = "__c"
MAX_NAME_LENGTH = 40  # Salesforce API names, suffix included
TEXT_LENGTH = 255
LONG_TEXT_LENGTH = 32768
_NAME_RE = re.compile(r"^Hub_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*__c$")
KINDS = ("string", "text", "number", "date", "datetime", "bool", "enum")


def derived_name(key: str) -> str:
    """``handover_status`` -> ``Hub_Handover_Status__c``."""
    return HUB_PREFIX + "_".join(p[:1].upper() + p[1:] for p in key.split("_") if p) + CUSTOM_SUFFIX


def is_hub_owned(name: str) -> bool:
    """The allow-list: a field the hub may write."""
    return bool(_NAME_RE.match(name))


@dataclass(frozen=True)
class HubField:
    spec: HubFieldSpec
    name: str


class HubFieldNames:
    """Hub key -> Account field, validated against the allow-list at construction."""

    def __init__(self, specs: Iterable[HubFieldSpec], overrides: Mapping[str, str]) -> None:
        self.overrides = dict(overrides)
        for key, name in self.overrides.items():
            self._check(key, name)
        self.fields: dict[str, HubField] = {}
        for spec in specs:
            self.fields[spec.key] = HubField(spec, self.name_for(spec.key))
        seen: dict[str, str] = {}
        for key, hub_field in self.fields.items():
            other = seen.setdefault(hub_field.name.lower(), key)
            if other != key:
                raise MappingError(
                    f"hub fields {other} and {key} both map to Account.{hub_field.name}; give "
                    "one of them its own name in writeback.salesforce_names",
                    crm=SALESFORCE,
                )

    def _check(self, key: str, name: str) -> None:
        if not is_hub_owned(name):
            raise MappingError(
                f"field mapping for hub field {key} names {name}, which is not a hub-owned field; "
                f"hub fields must start with {HUB_PREFIX} and end with {CUSTOM_SUFFIX} (letters, "
                "digits, single underscores), e.g. "
                f"{derived_name(key)}; fix writeback.salesforce_names in the mapping file",
                crm=SALESFORCE,
            )
        if len(name) > MAX_NAME_LENGTH:
            raise MappingError(
                f"the Salesforce name {name} for hub field {key} is longer than "
                f"{MAX_NAME_LENGTH} characters; set a shorter one in writeback.salesforce_names",
                crm=SALESFORCE,
            )

    def name_for(self, key: str) -> str:
        name = self.overrides.get(key) or derived_name(key)
        self._check(key, name)
        return name

    def names(self) -> dict[str, str]:
        return {key: f.name for key, f in self.fields.items()}


# --------------------------------------------------------------------------------------------
# provisioning (Tooling API CustomField metadata)
# --------------------------------------------------------------------------------------------


def custom_field_metadata(spec: HubFieldSpec) -> dict[str, Any]:
    """Tooling ``CustomField.Metadata`` for one hub field kind."""
    meta: dict[str, Any] = {"label": spec.label[:40], "description": spec.description[:1000]}
    if spec.kind == "string":
        meta.update(type="Text", length=TEXT_LENGTH)
    elif spec.kind == "text":
        meta.update(type="LongTextArea", length=LONG_TEXT_LENGTH, visibleLines=3)
    elif spec.kind == "number":
        meta.update(type="Number", precision=18, scale=2)
    elif spec.kind == "date":
        meta.update(type="Date")
    elif spec.kind == "datetime":
        meta.update(type="DateTime")
    elif spec.kind == "bool":
        meta.update(type="Checkbox", defaultValue="false")
    elif spec.kind == "enum":
        meta.update(
            type="Picklist",
            valueSet={
                "restricted": True,
                "valueSetDefinition": {
                    "sorted": False,
                    "value": [{"fullName": o, "label": o, "default": False} for o in spec.options],
                },
            },
        )
    else:
        raise MappingError(
            f"hub field {spec.key} has kind '{spec.kind}'; use one of {', '.join(KINDS)}",
            crm=SALESFORCE,
        )
    return meta


def not_writable_detail(name: str) -> str:
    return (
        f"Account.{name} exists but the integration user cannot edit it: an admin must grant "
        f"field-level security (Edit) on Account.{name} to the integration user's profile or "
        "permission set; the hub writes it from the next run on"
    )


def invisible_detail(name: str) -> str:
    return (
        f"Account.{name} was created but is not visible to the integration user yet: an admin "
        f"must grant field-level security (Read and Edit) on Account.{name} to the integration "
        "user's profile or permission set"
    )


# --------------------------------------------------------------------------------------------
# write values: hub strings -> Salesforce types
# --------------------------------------------------------------------------------------------


class ValueRejected(ValueError):
    """A hub value the field cannot hold; the text is safe to show and names the fix."""


def to_salesforce(hub_field: HubField, value: str | None) -> Any:
    """A hub value (string or None to clear) as the JSON value of the Salesforce field."""
    spec, name = hub_field.spec, hub_field.name
    if value is None or value == "":
        return False if spec.kind == "bool" else None
    try:
        if spec.kind == "number":
            return float(value)
        if spec.kind == "bool":
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes")
        if spec.kind == "date":
            return dt.date.fromisoformat(value[:10]).isoformat()
        if spec.kind == "datetime":
            parsed = parse_datetime(value)
            assert parsed is not None
            return parsed.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    except (ValueError, AssertionError):
        raise ValueRejected(
            f"value for {spec.key} is not a valid {spec.kind} for Account.{name}"
        ) from None
    if spec.kind == "enum" and spec.options and value not in spec.options:
        raise ValueRejected(
            f"value for {spec.key} is not one of the picklist values of Account.{name}; add it "
            "to the hub field's options (and the picklist) or fix the rule producing it"
        )
    limit = LONG_TEXT_LENGTH if spec.kind == "text" else TEXT_LENGTH
    if len(value) > limit:
        raise ValueRejected(
            f"value for {spec.key} is {len(value)} characters; Account.{name} holds at most "
            f"{limit}. Shorten the value (or map the key to a long text field)"
        )
    return value


def to_bulk_csv(value: Any) -> str:
    """A converted value as a Bulk API 2.0 CSV cell (``#N/A`` clears a field in Bulk)."""
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
