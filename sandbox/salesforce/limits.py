"""The org's daily API request allowance and the ``limits`` resource.

Why: the hub must budget its calls from ``Sforce-Limit-Info: api-usage=USED/MAX`` and stop a
source cleanly on 403 ``REQUEST_LIMIT_EXCEEDED``. The counter is per day of the *sandbox clock*
(so a test advances the clock a day instead of waiting), kept in the state's meta table so that
it survives restarts like a real org's 24-hour usage does.
"""

from __future__ import annotations

from typing import Any

from sandbox.control import get_config
from sandbox.salesforce.errors import ApiError
from sandbox.state import SF, SandboxState


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
