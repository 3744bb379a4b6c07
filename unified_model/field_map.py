"""The field mapping file (``config/mapping.yaml``): which CRM fields feed which hub attributes.

Why a file: every org customises its CRM (a go-live date lives in ``Go_Live__c`` here and in
``Implementation_Date__c`` there). Users map their own fields without touching code; the connectors
check every mapped field against the CRM's describe/properties and name any unknown one.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class MappingFileError(ValueError):
    """The mapping file is malformed; the message names the key and the fix."""


def _load(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MappingFileError(
            f"{path}: not valid YAML ({exc.__class__.__name__}); fix the syntax"
        ) from None
    if not isinstance(raw, dict):
        raise MappingFileError(
            f"{path}: the top level must be a mapping with salesforce/hubspot/writeback"
        )
    unknown = set(raw) - {"salesforce", "hubspot", "writeback"}
    if unknown:
        raise MappingFileError(
            f"{path}: unknown top-level key '{sorted(unknown)[0]}'; allowed: salesforce, hubspot, writeback"
        )
    return raw


def load_field_map(path: Path, crm: str) -> dict[str, str]:
    """``{record attribute: CRM field}`` overrides for one CRM (empty: the connector's defaults)."""
    raw = _load(path)
    section = raw.get(crm) or {}
    if not isinstance(section, dict):
        raise MappingFileError(f"{path}: '{crm}' must be a mapping with a 'read' section")
    unknown = set(section) - {"read"}
    if unknown:
        raise MappingFileError(f"{path}: unknown key '{crm}.{sorted(unknown)[0]}'; allowed: read")
    read = section.get("read") or {}
    if not isinstance(read, dict) or not all(isinstance(v, str) for v in read.values()):
        raise MappingFileError(
            f"{path}: '{crm}.read' must map hub attributes to CRM field names (strings)"
        )
    return {str(k): str(v) for k, v in read.items()}
