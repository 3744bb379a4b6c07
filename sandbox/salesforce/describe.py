"""The org's schema (catalogue + custom fields made through Tooling) and the describe payloads.

Why one registry: SOQL compilation, write validation, Bulk CSV headers and ``describe`` must all
agree on which fields exist, their types and whether the caller may write them, exactly like one
org's metadata does. Custom fields created at run time (the hub provisions its writeback fields)
live in ``schema_extra``; field-level security is emulated from the emulator config:

- ``fls_restricted_fields``: ``["Account.Hub_Status__c", ...]`` readable but not writable
  (describe says ``updateable: false``; writes fail with ``INVALID_FIELD_FOR_INSERT_UPDATE``);
- ``fls_hidden_fields``: invisible to the API user (absent from describe, ``INVALID_FIELD`` in
  SOQL and writes), as a real field is before anyone grants field-level security on it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.catalog import SF_OBJECTS, SfField, sf_fields
from sandbox.config import get_config
from sandbox.formats import sf_make_id
from sandbox.state import SF, SandboxState

#: Fields whose value comes from a row column rather than ``data`` (storage convention).
COLUMN_FIELDS: dict[str, str] = {
    "Id": "id",
    "IsDeleted": "deleted",
    "CreatedDate": "created",
    "LastModifiedDate": "modified",
    "SystemModstamp": "modified",
}

STRING_TYPES = frozenset(
    {"string", "textarea", "email", "url", "phone", "picklist", "multipicklist", "combobox"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
ID_TYPES = frozenset({"id", "reference"})

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
}

#: Plural child relationship names where appending "s" is wrong.
_PLURALS = {
    "OpportunityHistory": "OpportunityHistories",
    "AccountHistory": "Histories",
    "EmailMessage": "EmailMessages",
}


@dataclass(frozen=True)
class FieldDef:
    """One field as the API user sees it (after field-level security)."""

    name: str
    type: str
    label: str
    length: int = 0
    custom: bool = False
    updateable: bool = True
    createable: bool = True
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    restricted_picklist: bool = False
    compound_field_name: str | None = None
    external_id: bool = False
    unique: bool = False
    precision: int = 0
    scale: int = 0
    default: Any = None
    tooling_id: str | None = None
    description: str | None = None

    @property
    def column(self) -> str | None:
        """The row column holding this field, or None when it lives in ``data``."""
        return COLUMN_FIELDS.get(self.name)

    @property
    def is_compound(self) -> bool:
        return self.type == "address"

    @property
    def filterable(self) -> bool:
        return self.type not in ("address", "textarea") or self.length <= 255

    @property
    def required(self) -> bool:
        """Must be given on insert (``REQUIRED_FIELD_MISSING`` otherwise)."""
        return not self.nillable and self.createable and self.type != "boolean"


@dataclass
class ObjectSchema:
    """One sObject: its fields by lower-cased name and its parent relationships."""

    name: str
    label: str
    prefix: str
    fields: list[FieldDef]
    by_name: dict[str, FieldDef] = field(default_factory=dict)
    by_relationship: dict[str, FieldDef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in self.fields:
            self.by_name[f.name.lower()] = f
            if f.relationship_name:
                self.by_relationship[f.relationship_name.lower()] = f

    def field(self, name: str) -> FieldDef | None:
        return self.by_name.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        return self.by_relationship.get(name.lower())

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")


_PRECISION = {"currency": (18, 2), "percent": (3, 0), "double": (18, 0)}


def _from_catalog(f: SfField) -> FieldDef:
    precision, scale = _PRECISION.get(f.type, (0, 0))
    return FieldDef(
        name=f.name,
        type=f.type,
        label=f.label or f.name,
        length=f.length,
        custom=f.custom,
        updateable=f.updateable,
        createable=f.createable,
        nillable=f.nillable,
        reference_to=f.reference_to,
        relationship_name=f.relationship_name,
        picklist=f.picklist,
        compound_field_name=f.compound_field_name,
        external_id=f.external_id,
        precision=precision,
        scale=scale,
        tooling_id=catalog_field_tooling_id(f.name) if f.custom else None,
    )


def catalog_field_tooling_id(name: str) -> str:
    """A stable Tooling id (``00N…``) for a custom field that ships with the org."""
    return sf_make_id("00N", zlib.crc32(name.encode()) % 10**9, pod="1a")


def custom_field_from_definition(d: dict[str, Any]) -> FieldDef:
    """A field created through the Tooling API, from its stored definition."""
    return FieldDef(
        name=d["name"],
        type=d["type"],
        label=d.get("label") or d["name"],
        length=int(d.get("length") or 0),
        custom=True,
        nillable=not d.get("required", False),
        picklist=tuple(d.get("picklist") or ()),
        restricted_picklist=bool(d.get("restricted")),
        external_id=bool(d.get("external_id")),
        unique=bool(d.get("unique")),
        precision=int(d.get("precision") or 0),
        scale=int(d.get("scale") or 0),
        default=d.get("default"),
        tooling_id=d.get("id"),
        description=d.get("description"),
    )


_CANONICAL = {name.lower(): name for name in SF_OBJECTS}


def object_names() -> list[str]:
    return list(SF_OBJECTS)


def canonical_object(name: str) -> str | None:
    return _CANONICAL.get(name.lower())


def prefix_object(record_id: str) -> str | None:
    """The sObject a record id belongs to, from its 3-character key prefix."""
    for name, meta in SF_OBJECTS.items():
        if record_id.startswith(str(meta["prefix"])):
            return name
    return None


def load_schema(state: SandboxState, name: str) -> ObjectSchema | None:
    """The schema of one object as the API user sees it now (None if the object is unknown)."""
    obj = canonical_object(name)
    if obj is None:
        return None
    meta = SF_OBJECTS[obj]
    cfg = get_config(state, SF)
    restricted = {s.lower() for s in cfg.get("fls_restricted_fields") or ()}
    hidden = {s.lower() for s in cfg.get("fls_hidden_fields") or ()}
    fields: list[FieldDef] = [_from_catalog(f) for f in sf_fields(obj)]
    fields.extend(custom_field_from_definition(d) for d in state.schema(SF, obj, "field"))
    out: list[FieldDef] = []
    for f in fields:
        key = f"{obj}.{f.name}".lower()
        if key in hidden:
            continue
        if key in restricted:
            f = replace(f, updateable=False, createable=False)
        out.append(f)
    return ObjectSchema(obj, str(meta["label"]), str(meta["prefix"]), out)


# --------------------------------------------------------------------------------------------
# describe payloads
# --------------------------------------------------------------------------------------------


def _urls(obj: str, ver: str) -> dict[str, str]:
    base = f"/services/data/{ver}/sobjects/{obj}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def _object_summary(obj: str, ver: str) -> dict[str, Any]:
    meta = SF_OBJECTS[obj]
    history = obj.endswith("History")
    return {
        "activateable": False,
        "createable": not history,
        "custom": False,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": not history,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": meta["prefix"],
        "label": meta["label"],
        "labelPlural": f"{meta['label']}s" if not history else str(meta["label"]),
        "layoutable": not history,
        "mergeable": obj in ("Account", "Contact", "Lead"),
        "mruEnabled": True,
        "name": obj,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": not history,
        "triggerable": not history,
        "undeletable": not history,
        "updateable": not history,
        "urls": _urls(obj, ver),
    }


def describe_global(ver: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [_object_summary(obj, ver) for obj in object_names()],
    }


def describe_field(f: FieldDef) -> dict[str, Any]:
    """One entry of ``fields`` in an object describe, with the keys real orgs send."""
    is_text = f.type in STRING_TYPES
    return {
        "aggregatable": f.type not in ("textarea", "address", "multipicklist"),
        "aiPredictionField": False,
        "autoNumber": f.name == "CaseNumber",
        "byteLength": f.length * 3 if (is_text or f.type in ID_TYPES) else 0,
        "calculated": f.name in ("Name",) and f.createable is False,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": f.compound_field_name,
        "controllerName": None,
        "createable": f.createable,
        "custom": f.custom,
        "defaultValue": f.default,
        "defaultValueFormula": None,
        "defaultedOnCreate": f.type == "boolean" or f.name in ("OwnerId", "CaseNumber"),
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": 9 if f.type == "int" else 0,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": f.external_id,
        "extraTypeInfo": None,
        "filterable": f.filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": f.type not in ("textarea", "address", "double", "currency", "percent"),
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": f.name == "Id" or f.external_id,
        "inlineHelpText": f.description,
        "label": f.label,
        "length": f.length if (is_text or f.type in ID_TYPES) else 0,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name == "Name",
        "namePointing": len(f.reference_to) > 1,
        "nillable": f.nillable,
        "permissionable": f.nillable and not f.column,
        "picklistValues": [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
            for v in f.picklist
        ],
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": f.restricted_picklist,
        "scale": f.scale,
        "searchPrefilterable": False,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "sortable": f.type not in ("textarea", "address", "multipicklist"),
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable,
        "writeRequiresMasterRead": False,
    }


def _child_relationships(obj: str) -> list[dict[str, Any]]:
    out = []
    for child in object_names():
        for f in sf_fields(child):
            if f.type == "reference" and obj in f.reference_to and not f.name.endswith("ById"):
                out.append(
                    {
                        "cascadeDelete": obj == "Account" and child in ("Contact", "Opportunity"),
                        "childSObject": child,
                        "deprecatedAndHidden": False,
                        "field": f.name,
                        "junctionIdListNames": [],
                        "junctionReferenceTo": [],
                        "relationshipName": _PLURALS.get(child, f"{child}s")
                        if f.name in ("AccountId", "OpportunityId", "ParentId", "WhatId", "WhoId")
                        else None,
                        "restrictedDelete": False,
                    }
                )
    return out


def describe_object(schema: ObjectSchema, ver: str) -> dict[str, Any]:
    body = _object_summary(schema.name, ver)
    body.update(
        {
            "actionOverrides": [],
            "childRelationships": _child_relationships(schema.name),
            "compactLayoutable": True,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [describe_field(f) for f in schema.fields],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                    "urls": {
                        "layout": f"/services/data/{ver}/sobjects/{schema.name}/describe/layouts/"
                        "012000000000000AAA"
                    },
                }
            ],
            "searchLayoutable": True,
            "supportedScopes": [{"label": "All", "name": "everything"}],
        }
    )
    return body


def object_metadata(schema: ObjectSchema, ver: str) -> dict[str, Any]:
    """``GET V/sobjects/{obj}/``: the short describe plus recent items."""
    return {"objectDescribe": _object_summary(schema.name, ver), "recentItems": []}
