"""The emulators' settings: defaults, and the overrides kept in the sandbox state.

Why a module of its own: the emulators read their settings, and the control API (which also
seeds and mutates the data) writes them; the emulators must not import the control API.
"""

from __future__ import annotations

from typing import Any

from sandbox.state import SandboxState

#: Default emulator settings; ``config:<crm>`` in the state's meta table overrides them.
DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "salesforce": {
        "daily_limit": 100_000,
        "token_ttl_seconds": 7200,
        "default_batch_size": 2000,
        "bulk_results_max_records": 50_000,
    },
    "hubspot": {
        "burst_limit": 190,  # requests per rolling window per token (Professional tier)
        "burst_window_seconds": 10.0,
        "search_per_second": 5,
        "daily_limit": 650_000,
        "search_lag_seconds": 0.0,  # indexing lag of the search API, in sandbox-clock seconds
        "retry_after_seconds": None,  # override the Retry-After of 429s (tests: small)
    },
}


def get_config(state: SandboxState, crm: str) -> dict[str, Any]:
    """The effective settings of one emulator (defaults merged with overrides)."""
    merged = dict(DEFAULT_CONFIG.get(crm, {}))
    merged.update(state.get_json(f"config:{crm}", {}))
    return merged


def set_config(state: SandboxState, crm: str, changes: dict[str, Any]) -> dict[str, Any]:
    current = state.get_json(f"config:{crm}", {})
    current.update(changes)
    state.set_json(f"config:{crm}", current)
    return get_config(state, crm)
