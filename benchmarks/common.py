"""Shared helpers of the API-efficiency benchmarks: connectors on a sandbox, call accounting, tables.

Why count from the sandbox's request ledger and not only from ``connector.usage()``: the ledger is
what the CRM saw (every HTTP request that reached the emulator, retries and 429s included), so it
is the figure a customer's API quota would show; ``usage()`` is the connector's own count and is
printed next to it as a cross-check, so a request the connector forgets to count shows up as a
mismatch. OAuth token requests do not count against the CRMs' API quotas and are reported apart.

The connectors are built the way ``crmhub sync`` builds them (the Dagster resources with the
project's ``config/`` folder), so the benchmark measures the production configuration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import platform
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from assets.resources import HubConfigResource, HubSpotResource, SalesforceResource
from connectors.hubspot.connector import HubSpotConnector
from connectors.salesforce.connector import SalesforceConnector
from crmhub import settings
from sandbox.runner import SandboxInfo
from sandbox.state import HS, SF, SandboxState

#: ``usage().calls_by_object`` buckets that hold login/token requests, per CRM.
TOKEN_BUCKETS = {SF: "auth", HS: "oauth"}
#: Ledger categories that are OAuth token requests (excluded from API call counts).
TOKEN_CATEGORIES = frozenset({"oauth token"})
#: Ledger categories that discover the CRM's fields (Salesforce describe, HubSpot properties list):
#: the mapping check the issue requires, counted apart from the data pages.
DISCOVERY_CATEGORIES = frozenset({"describe", "properties"})
#: Salesforce ``limits/recordCount``: the sizes of every object, once per connector that runs a
#: first sync (discovery too, but per run, not per object).
RECORD_COUNT_CATEGORIES = frozenset({"record count"})
#: Ledger categories that write CRM records (the writeback benchmark's "write calls").
WRITE_CATEGORIES = frozenset(
    {
        "collections update",
        "bulk ingest create",
        "bulk ingest upload",
        "bulk ingest close",
        "bulk ingest poll",
        "bulk ingest results",
        "batch update",
    }
)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b) if a > 0 else 0


@contextlib.contextmanager
def scratch_dir(parent: str, prefix: str, *, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for the sandbox state and the hub database, removed afterwards.

    Why: the ``large`` profile writes a few GB of SQLite; a benchmark must not leave that behind.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        if keep:
            print(f"kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def _config() -> HubConfigResource:
    return HubConfigResource(config_dir=str(settings.config_dir()))


def build_salesforce(info: SandboxInfo) -> SalesforceConnector:
    """A Salesforce connector on the sandbox, configured like ``crmhub sync`` configures it."""
    env = settings.sandbox_environment(info)
    resource = SalesforceResource(
        instance_url=env["CRMHUB_SF_INSTANCE_URL"],
        token_url=env["CRMHUB_SF_TOKEN_URL"],
        client_id=env["CRMHUB_SF_CLIENT_ID"],
        client_secret=env["CRMHUB_SF_CLIENT_SECRET"],
        ca_bundle=env["CRMHUB_SF_CA_BUNDLE"],
    )
    config = _config()
    connector: SalesforceConnector = resource.connector(
        config.mapping("salesforce"), config.writeback()
    )
    return connector


def build_hubspot(info: SandboxInfo, *, first_sync_plan: str | None = None) -> HubSpotConnector:
    """A HubSpot connector on the sandbox, configured like ``crmhub sync`` configures it
    (``first_sync_plan``: the resource's setting, its default when None)."""
    env = settings.sandbox_environment(info)
    plan = {"first_sync_plan": first_sync_plan} if first_sync_plan else {}
    resource = HubSpotResource(
        base_url=env["CRMHUB_HS_BASE_URL"],
        access_token=env["CRMHUB_HS_ACCESS_TOKEN"],
        ca_bundle=env["CRMHUB_HS_CA_BUNDLE"],
        **plan,
    )
    config = _config()
    connector: HubSpotConnector = resource.connector(config.mapping("hubspot"), config.writeback())
    return connector


def usage_calls(connector: Any) -> int:
    """The connector's own count of API calls so far, without token requests."""
    usage = connector.usage()
    return int(usage.calls) - int(usage.calls_by_object.get(TOKEN_BUCKETS[connector.crm], 0))


# ---- the request ledger ----------------------------------------------------------------------


def classify(crm: str, method: str, raw_path: str) -> str:
    """What one ledger row was, in the words of the CRM's API (e.g. ``search``, ``describe``)."""
    parts = urlsplit(raw_path)
    path, query = parts.path.rstrip("/"), unquote_plus(parts.query)
    method = method.upper()
    if crm == SF:
        if path.endswith("/oauth2/token"):
            return "oauth token"
        if path.endswith("/describe"):
            return "describe"
        if path.endswith("/limits/recordCount"):
            return "record count"
        if "/tooling/" in path:
            return "tooling"
        if "/jobs/ingest" in path:
            if method == "POST":
                return "bulk ingest create"
            if method == "PUT":
                return "bulk ingest upload"
            if method == "PATCH":
                return "bulk ingest close"
            if path.endswith(("Results", "Records")):
                return "bulk ingest results"
            return "bulk ingest poll"
        if "/jobs/query" in path:
            if method == "POST":
                return "bulk query create"
            if path.endswith("/results"):
                return "bulk query results"
            return "bulk query poll"
        if "/composite/sobjects" in path:
            return "collections update" if method == "PATCH" else "collections retrieve"
        if path.endswith(("/query", "/queryAll")) or "/query/" in path or "/queryAll/" in path:
            return "count" if "COUNT()" in query.upper() else "query"
        return "other"
    if path.endswith("/oauth/v1/token"):
        return "oauth token"
    if path.endswith("/search"):
        return "search"
    if "/associations/" in path and path.endswith("/batch/read"):
        return "associations"
    if path.endswith("/batch/read"):
        return "batch read"
    if path.endswith("/batch/update"):
        return "batch update"
    if "/owners" in path:
        return "owners"
    if "/properties/" in path:
        return "properties" if method == "GET" else "property create"
    if "/objects/" in path and method == "GET":
        return "archived list" if "archived=true" in query.lower() else "list/get"
    return "other"


@dataclass
class Calls:
    """Requests one CRM received in a window of the ledger."""

    api: int = 0
    oauth: int = 0
    by_category: Counter[str] = field(default_factory=Counter)

    def of(self, categories: frozenset[str]) -> int:
        return sum(n for cat, n in self.by_category.items() if cat.split(" [")[0] in categories)

    def split(self, categories: frozenset[str]) -> tuple[Calls, Calls]:
        """(the other calls, the calls of ``categories``); token requests stay with the others."""
        rest, picked = Calls(oauth=self.oauth), Calls()
        for cat, n in self.by_category.items():
            if cat.split(" [")[0] in categories:
                picked.by_category[cat] += n
                picked.api += n
            else:
                rest.by_category[cat] += n
        rest.api = self.api - picked.api
        return rest, picked

    def breakdown(self) -> str:
        """``search 5, associations 2`` (token requests left out; non-2xx marked)."""
        items = [
            (cat, n)
            for cat, n in self.by_category.items()
            if cat.split(" [")[0] not in TOKEN_CATEGORIES
        ]
        return ", ".join(f"{cat} {n}" for cat, n in sorted(items, key=lambda x: (-x[1], x[0])))


def count_calls(state: SandboxState, since: int, crm: str) -> Calls:
    """Count the ledger rows of ``crm`` after sequence number ``since``."""
    calls = Calls()
    for row in state.ledger(since, crm):
        category = classify(crm, str(row["method"]), str(row["path"]))
        status = int(row["status"])
        key = category if 200 <= status < 300 else f"{category} [HTTP {status}]"
        calls.by_category[key] += 1
        if category in TOKEN_CATEGORIES:
            calls.oauth += 1
        else:
            calls.api += 1
    return calls


# ---- output ----------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table, so the output can go into the README as it is."""
    text = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(text[0]), "| " + " | ".join("-" * w for w in widths) + " |"]
    out.extend(line(r) for r in text[1:])
    return "\n".join(out)


def ratio(measured: int, minimum: int) -> str:
    if minimum <= 0:
        return "-" if measured == 0 else "inf"
    return f"{measured / minimum:.2f}"


def per_10k(calls: int, records: int) -> float:
    return calls * 10_000 / records if records else math.nan


def machine_line() -> str:
    """Date, Python and CPU count: the context every figure needs."""
    import os

    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{today}; Python {platform.python_version()}; {os.cpu_count()} CPU cores; "
        f"{platform.system()} {platform.machine()}"
    )
