"""The org's daily API request allowance, the ``limits`` resource and ``limits/recordCount``.

Why: the hub must budget its calls from ``Sforce-Limit-Info: api-usage=USED/MAX`` and stop a
source cleanly on 403 ``REQUEST_LIMIT_EXCEEDED``. The counter is per day of the *sandbox clock*
(so a test advances the clock a day instead of waiting), kept in the state's meta table so that
it survives restarts like a real org's 24-hour usage does.

``GET V/limits/recordCount?sObjects=A,B`` (API 40.0 and later) answers
``{"sObjects": [{"count": n, "name": "A"}, ...]}``: the live rows of each listed object (the
recycle bin left out, as Salesforce does), in the order asked; names that are no object of the
org are ignored, and objects without live rows are left out. Without ``sObjects``: every object
with rows, by name. Salesforce serves a cached snapshot it refreshes at irregular intervals; the
emulator recounts on every request unless ``record_count_refresh_seconds`` (emulator config) is
set, in which case it serves a snapshot at most that old on the sandbox clock (stale counts for
tests). Before API 40.0 the resource does not exist (404 ``NOT_FOUND``).
"""

from __future__ import annotations

from typing import Any

from sandbox.config import get_config
from sandbox.salesforce.describe import canonical_object, object_names
from sandbox.salesforce.errors import ApiError
from sandbox.state import SF, SandboxState, fmt_ts, parse_ts

#: The first API version with ``limits/recordCount``.
RECORD_COUNT_SINCE = 40.0
_SNAPSHOT = "sf:record_counts"


def _day(state: SandboxState) -> str:
    return state.now().date().isoformat()


def daily_limit(state: SandboxState) -> int:
    return int(get_config(state, SF).get("daily_limit", 100_000))


def used(state: SandboxState) -> int:
    return int(state.get_meta(f"counter:sf:api_usage:{_day(state)}", "0"))


def spend(state: SandboxState) -> int:
    """Count one API request; 403 ``REQUEST_LIMIT_EXCEEDED`` once the day's allowance is spent."""
    with state.lock:
        if used(state) >= daily_limit(state):
            raise quota_error()
        return state.next_counter(f"sf:api_usage:{_day(state)}")


def quota_error() -> ApiError:
    return ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def header(state: SandboxState, *, exhausted: bool = False) -> str:
    limit = daily_limit(state)
    return f"api-usage={limit if exhausted else min(used(state), limit)}/{limit}"


def count_bulk_query_job(state: SandboxState) -> None:
    state.next_counter(f"sf:bulk_query_jobs:{_day(state)}")


def _pair(limit: int, spent: int) -> dict[str, int]:
    return {"Max": limit, "Remaining": max(limit - spent, 0)}


def limits_body(state: SandboxState) -> dict[str, Any]:
    """``GET V/limits/``: the allowances a connector may check before a large run."""
    day = _day(state)
    bulk_jobs = int(state.get_meta(f"counter:sf:bulk_query_jobs:{day}", "0"))
    return {
        "ConcurrentAsyncGetReportInstances": _pair(200, 0),
        "ConcurrentSyncReportRuns": _pair(20, 0),
        "DailyApiRequests": _pair(daily_limit(state), used(state)),
        "DailyAsyncApexExecutions": _pair(250_000, 0),
        "DailyBulkApiBatches": _pair(15_000, 0),
        "DailyBulkV2QueryFileStorageMB": _pair(976_562, 0),
        "DailyBulkV2QueryJobs": _pair(10_000, bulk_jobs),
        "DataStorageMB": _pair(5_120, 0),
        "FileStorageMB": _pair(20_480, 0),
        "HourlyODataCallout": _pair(10_000, 0),
        "SingleEmail": _pair(5_000, 0),
    }


def _live_counts(state: SandboxState) -> dict[str, int]:
    rows = state.execute(
        "SELECT object, COUNT(*) FROM records WHERE crm=? AND deleted=0 GROUP BY object", (SF,)
    )
    known = set(object_names())
    return {str(r[0]): int(r[1]) for r in rows if str(r[0]) in known and int(r[1]) > 0}


def _snapshot(state: SandboxState) -> dict[str, int]:
    """The counts as the org's periodic recount last saw them (recounted now when due)."""
    refresh = float(get_config(state, SF).get("record_count_refresh_seconds") or 0)
    if refresh <= 0:
        return _live_counts(state)
    now = state.now()
    cached = state.get_json(_SNAPSHOT, None)
    if cached is not None and (now - parse_ts(cached["at"])).total_seconds() < refresh:
        return {str(k): int(v) for k, v in cached["counts"].items()}
    counts = _live_counts(state)
    state.set_json(_SNAPSHOT, {"at": fmt_ts(now), "counts": counts})
    return counts


def record_count_body(state: SandboxState, ver: str, sobjects: str | None) -> dict[str, Any]:
    """``GET V/limits/recordCount[?sObjects=A,B]``."""
    if float(ver.lstrip("v")) < RECORD_COUNT_SINCE:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    counts = _snapshot(state)
    if sobjects is None:
        names = sorted(counts)
    else:
        asked = (canonical_object(n.strip()) for n in sobjects.split(","))
        names = list(dict.fromkeys(n for n in asked if n is not None))
    return {"sObjects": [{"count": counts[n], "name": n} for n in names if n in counts]}
