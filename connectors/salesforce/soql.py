"""The few SOQL statements the sync needs, built with simple-salesforce's quoting helper.

Why so few and so strict: values (ids, timestamps) go through ``format_soql`` so that no outside
string is ever pasted into a query; field names cannot be quoted in SOQL, so the ones that come
from the mapping file are checked against a plain identifier pattern first.

Keyset paging (``ORDER BY SystemModstamp, Id`` with ``(SystemModstamp, Id) > (ts, id)``) rather
than ``nextRecordsUrl`` or OFFSET: each page is an independent query whose position is two values
the hub can store, so a killed run resumes exactly where the last stored page ended, and records
sharing one timestamp across a page boundary are neither lost nor repeated.

Timestamps are rendered with milliseconds (``format_soql`` would drop them for ``datetime``
values, which makes ties at sub-second precision loop forever); they are produced from a
``datetime`` by :func:`connectors.salesforce.mapping.iso_ts`, never taken from outside text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from simple_salesforce import format_soql

from connectors.errors import MappingError
from connectors.salesforce.mapping import iso_ts

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain Salesforce API name, else a :class:`MappingError`."""
    if not _IDENT.match(name):
        raise MappingError(
            f"{what} '{name}' is not a valid Salesforce field API name (letters, digits and "
            "underscores, custom fields ending in __c); fix the mapping file",
            crm="salesforce",
        )
    return name


def _select(fields: Sequence[str], sf_object: str) -> str:
    for name in fields:
        check_identifier(name, "field")
    check_identifier(sf_object, "object")
    return format_soql(
        "SELECT {fields:literal} FROM {obj:literal}", fields=", ".join(fields), obj=sf_object
    )


def _after(position: tuple[dt.datetime, str], ts_field: str = "SystemModstamp") -> str:
    """The condition strictly after a keyset position, ties on the timestamp broken by Id."""
    ts, last_id = position
    check_identifier(ts_field, "field")
    return format_soql(
        "{f:literal} > {ts:literal} OR ({f:literal} = {ts:literal} AND Id > {id})",
        f=ts_field,
        ts=iso_ts(ts),
        id=last_id,
    )


def _where(static: str, moved: str) -> str:
    """`` WHERE`` with the static condition and the position (parenthesised when both)."""
    if static and moved:
        return f" WHERE {static} AND ({moved})"
    return f" WHERE {static or moved}" if (static or moved) else ""


def changed_since(
    sf_object: str,
    fields: Sequence[str],
    *,
    since: dt.datetime | None,
    after: tuple[dt.datetime, str] | None,
    limit: int | None,
    ts_field: str = "SystemModstamp",
    static: str = "",
) -> str:
    """One keyset page of rows changed after a position, oldest first.

    ``after`` (timestamp, id): strictly after that row, ties on the timestamp broken by Id.
    ``since`` without ``after``: every row with a later SystemModstamp (a run's first page,
    ``cursor - overlap``). Neither: from the beginning (first sync). ``limit`` None: no
    ``LIMIT``. The answer's ``totalSize`` counts the rows the query matches (up to ``limit``),
    which is how a first sync's first page tells REST from Bulk without a ``COUNT()`` call.
    ``ts_field``: the object's cursor field (``CreatedDate`` for field history objects, whose
    rows never change); ``static``: a fixed condition (a code constant, never outside text)
    every query of the object carries (``Field = 'Owner'``).
    """
    head = _select(fields, sf_object)
    check_identifier(ts_field, "field")
    order = format_soql(" ORDER BY {f:literal}, Id", f=ts_field)
    if limit is not None:
        order += format_soql(" LIMIT {n}", n=int(limit))
    if after is not None:
        moved = _after(after, ts_field)
    elif since is not None:
        moved = format_soql("{f:literal} > {ts:literal}", f=ts_field, ts=iso_ts(since))
    else:
        moved = ""
    return head + _where(static, moved) + order


def full_extract(
    sf_object: str,
    fields: Sequence[str],
    *,
    after: tuple[dt.datetime, str] | None = None,
    ts_field: str = "SystemModstamp",
    static: str = "",
) -> str:
    """The rows of an object for a Bulk API 2.0 ``queryAll`` job (no ORDER BY: Bulk streams).

    ``after``: only the rows after that keyset position (the REST page a first sync read first).
    """
    moved = _after(after, ts_field) if after is not None else ""
    return _select(fields, sf_object) + _where(static, moved)


def ids_after(sf_object: str, last_id: str | None, limit: int) -> str:
    """One page of live ids in id order (the hard-delete reconciliation pass)."""
    head = _select(["Id"], sf_object)
    where = format_soql(" WHERE Id > {id}", id=last_id) if last_id else ""
    return head + where + format_soql(" ORDER BY Id LIMIT {n}", n=int(limit))
