"""The HubSpot client parses the SDK's timestamps with the standard library when they are ISO
8601 (as HubSpot sends them) and hands anything else to the SDK's own parser, so records carry
the same aware instants either way; and the SDK hook it replaces still exists (an SDK upgrade
that renames it fails here instead of silently going slow)."""

from __future__ import annotations

import datetime as dt
import functools

from dateutil.parser import parse

from connectors.hubspot import HubSpotConfig
from connectors.hubspot.client import HubSpotClient, _iso_date, _iso_datetime


def test_iso_timestamps_parse_to_the_same_instant_as_the_sdk_parser() -> None:
    for value in ("2026-05-01T07:25:37.123Z", "2026-05-01T07:25:37Z", "2026-05-01T09:25:37+02:00"):
        ours = _iso_datetime(parse, value)
        assert ours == parse(value) and ours.utcoffset() is not None
    assert _iso_datetime(parse, "Fri, 01 May 2026 07:25:37 GMT") == dt.datetime(
        2026, 5, 1, 7, 25, 37, tzinfo=dt.UTC
    )
    assert _iso_date(lambda s: parse(s).date(), "2026-05-01") == dt.date(2026, 5, 1)
    assert _iso_date(lambda s: parse(s).date(), "May 1, 2026") == dt.date(2026, 5, 1)


def test_every_sdk_client_the_connector_builds_uses_the_fast_parser() -> None:
    client = HubSpotClient(HubSpotConfig(base_url="https://hs.invalid", access_token="pat-x"))
    for name in ("search", "objects", "batch", "associations", "properties", "owners"):
        api_client = client.api(name).api_client
        hook = api_client._ApiClient__deserialize_datetime
        assert isinstance(hook, functools.partial) and hook.func is _iso_datetime
        assert api_client._ApiClient__deserialize_date.func is _iso_date
