"""Field values: what a write may send, how it is stored, how REST and Bulk render it.

Why here: Salesforce is lenient in what it accepts (numbers as strings, any ISO datetime) but
strict in what it sends back (``…000+0000`` datetimes in JSON, ``…000Z`` in Bulk CSV, Java-style
doubles such as ``9.12260031E8`` in CSV). The connectors must cope with exactly those forms, so
the emulator normalises on the way in and renders the real forms on the way out.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import Any

from sandbox.formats import sf_datetime
from sandbox.salesforce.describe import ID_TYPES, NUMBER_TYPES, STRING_TYPES, FieldDef
from sandbox.state import parse_ts

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")


class BadValue(ValueError):
    """A value the field's type cannot take (Salesforce: ``JSON_PARSER_ERROR`` / CSV row error)."""


def normalize_datetime(text: str) -> str:
    """Any ISO 8601 instant as Salesforce's stored form ``YYYY-MM-DDTHH:MM:SS.mmm+0000``."""
    if not _DATETIME.match(text.strip()):
        raise BadValue(f"invalid datetime: {text}")
    try:
        return sf_datetime(parse_ts(text.replace(" ", "T")))
    except ValueError as exc:
        raise BadValue(f"invalid datetime: {text}") from exc


def normalize_date(text: str) -> str:
    t = text.strip()
    if _DATETIME.match(t):
        t = t[:10]
    if not _DATE.match(t):
        raise BadValue(f"invalid date: {text}")
    try:
        dt.date.fromisoformat(t)
    except ValueError as exc:
        raise BadValue(f"invalid date: {text}") from exc
    return t


def is_id(value: str) -> bool:
    return bool(_ID.match(value))


def coerce(f: FieldDef, value: Any, *, csv: bool = False) -> Any:
    """The stored form of ``value`` written to ``f`` (None stays None). Raises :class:`BadValue`.

    ``csv``: the value comes from a Bulk CSV cell (always a string).
    """
    if value is None:
        return None
    t = f.type
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise BadValue(f"Cannot deserialize instance of boolean from value {value!r}")
    if t in NUMBER_TYPES:
        if isinstance(value, bool):
            raise BadValue(f"Cannot deserialize instance of {t} from boolean value")
        if isinstance(value, int | float):
            num: int | float = value
        elif isinstance(value, str):
            try:
                num = float(value.strip())
            except ValueError as exc:
                raise BadValue(f"Cannot deserialize instance of {t} from value {value!r}") from exc
            if num.is_integer() and re.fullmatch(r"-?\d+", value.strip()):
                num = int(num)
        else:
            raise BadValue(f"Cannot deserialize instance of {t} from value {value!r}")
        if isinstance(num, float) and not math.isfinite(num):
            raise BadValue(f"invalid number {value!r}")
        if t == "int" and isinstance(num, float):
            if not num.is_integer():
                raise BadValue(f"Cannot deserialize instance of int from value {value!r}")
            num = int(num)
        return num
    if t == "date":
        if not isinstance(value, str):
            raise BadValue(f"Cannot deserialize instance of date from value {value!r}")
        return normalize_date(value)
    if t == "datetime":
        if not isinstance(value, str):
            raise BadValue(f"Cannot deserialize instance of datetime from value {value!r}")
        return normalize_datetime(value)
    if isinstance(value, bool | int | float) and not csv and t in STRING_TYPES | ID_TYPES:
        # Salesforce coerces JSON scalars into text fields.
        value = str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        raise BadValue(f"Cannot deserialize instance of string from value {value!r}")
    if t in ID_TYPES and value == "":
        return None
    return value


def java_double(x: float) -> str:
    """Java's ``Double.toString``: how Bulk CSV renders double/currency/percent values."""
    if x == 0:
        return "0.0"
    ax = abs(x)
    if 1e-3 <= ax < 1e7:
        text = repr(float(x))
        return text if ("." in text or "e" in text) else text + ".0"
    sign, digits, exponent = decimal.Decimal(repr(float(x))).normalize().as_tuple()
    assert isinstance(exponent, int)
    sci = len(digits) + exponent - 1
    tail = "".join(str(d) for d in digits[1:]) or "0"
    return f"{'-' if sign else ''}{digits[0]}.{tail}E{sci}"


def csv_cell(f: FieldDef | None, value: Any) -> str:
    """One Bulk 2.0 CSV cell: null is empty, datetimes ``…Z``, doubles Java-style."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # compound fields are not allowed in Bulk; defensive
        return ""
    if f is not None and f.type == "datetime" and isinstance(value, str):
        return value.replace("+0000", "Z")
    if isinstance(value, float) or (
        f is not None and f.type in ("double", "currency", "percent") and isinstance(value, int)
    ):
        return java_double(float(value))
    return str(value)


def stored_datetime_to_sf(stored: str) -> str:
    """Row column ``…Z`` to Salesforce's JSON form ``…+0000``."""
    return stored[:-1] + "+0000" if stored.endswith("Z") else stored


def compound_address(prefix: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """``BillingAddress`` built from its component fields (null when all are empty)."""
    parts = {
        "city": data.get(f"{prefix}City"),
        "country": data.get(f"{prefix}Country"),
        "countryCode": data.get(f"{prefix}CountryCode"),
        "geocodeAccuracy": data.get(f"{prefix}GeocodeAccuracy"),
        "latitude": data.get(f"{prefix}Latitude"),
        "longitude": data.get(f"{prefix}Longitude"),
        "postalCode": data.get(f"{prefix}PostalCode"),
        "state": data.get(f"{prefix}State"),
        "stateCode": data.get(f"{prefix}StateCode"),
        "street": data.get(f"{prefix}Street"),
    }
    if all(v is None for v in parts.values()):
        return None
    return parts


def field_value(f: FieldDef, row: dict[str, Any]) -> Any:
    """The API value of ``f`` on a stored row (``{"id","created","modified","deleted","data"}``)."""
    col = f.column
    if col == "id":
        return row["id"]
    if col == "deleted":
        return bool(row["deleted"])
    if col in ("created", "modified"):
        return stored_datetime_to_sf(row[col])
    data = row["data"]
    if f.is_compound:
        stored = data.get(f.name)
        if stored is not None:
            return stored
        return compound_address(f.name[: -len("Address")], data)
    value = data.get(f.name)
    if value is None and f.type == "boolean":
        return False
    return value
