"""Authentication, scopes and rate limits of the emulated HubSpot portal.

Why they are emulated at all: they are the failures a real sync meets first. A private-app token
without a scope gets 403 ``MISSING_SCOPES`` (not retryable: the connector must fail fast and name
the scope); an expired OAuth token gets 401; a burst beyond the portal's quota gets 429 with a
``policyName`` that tells the client how long to back off (``TEN_SECONDLY_ROLLING`` ~10 s,
``SECONDLY`` for search ~1 s, ``DAILY``: stop until tomorrow).

The rolling burst window and the search per-second window run on *real* monotonic time, because
clients really sleep to honour them; the daily quota runs on the sandbox clock's UTC day, so a
test can exhaust it and then advance the clock to the next day instead of waiting. A
``DAILY`` 429 carries no ``Retry-After`` (see ``rate_limit_response``).

Scope choices (HubSpot's real requirements, simplified to "any one of these scopes"):

- companies/contacts/deals: ``crm.objects.<ot>.read`` / ``.write``;
- tickets: ``tickets`` for both;
- emails: read ``sales-email-read``; write ``crm.objects.contacts.write`` (HubSpot files email
  engagements under contacts' write scope);
- calls, meetings, notes, tasks: ``crm.objects.contacts.read`` / ``.write``; products and line
  items: ``e-commerce``; quotes: ``crm.objects.quotes.read`` / ``.write``;
- pipelines: the object's read scope; custom object schemas: ``crm.schemas.custom.read``;
- properties: read ``crm.schemas.<ot>.read`` or the object's read scope; write
  ``crm.schemas.<ot>.write``;
- associations: the read (or write) scope of *both* object types;
- owners: ``crm.objects.owners.read``.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from sandbox.http import Response
from sandbox.hubspot.common import error_body, error_response
from sandbox.state import HS, SandboxState

#: Scope groups per object type and access; a request needs one scope of each group it names.
_OBJECT_SCOPES: dict[str, dict[str, tuple[str, ...]]] = {
    "companies": {
        "read": ("crm.objects.companies.read",),
        "write": ("crm.objects.companies.write",),
    },
    "contacts": {
        "read": ("crm.objects.contacts.read",),
        "write": ("crm.objects.contacts.write",),
    },
    "deals": {"read": ("crm.objects.deals.read",), "write": ("crm.objects.deals.write",)},
    "tickets": {"read": ("tickets",), "write": ("tickets",)},
    "emails": {"read": ("sales-email-read",), "write": ("crm.objects.contacts.write",)},
    # engagements are filed under contacts' scopes; commerce objects under ``e-commerce``
    **{
        ot: {"read": ("crm.objects.contacts.read",), "write": ("crm.objects.contacts.write",)}
        for ot in ("calls", "meetings", "notes", "tasks")
    },
    "products": {"read": ("e-commerce",), "write": ("e-commerce",)},
    "line_items": {"read": ("e-commerce",), "write": ("e-commerce",)},
    "quotes": {"read": ("crm.objects.quotes.read",), "write": ("crm.objects.quotes.write",)},
}
#: Reading custom object schemas (``/crm/v3/schemas``).
SCHEMAS_SCOPE = "crm.schemas.custom.read"
OWNERS_SCOPE = "crm.objects.owners.read"

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)


def object_scopes(ot: str, access: str) -> tuple[str, ...]:
    return _OBJECT_SCOPES[ot][access]


def schema_scopes(ot: str, access: str) -> tuple[str, ...]:
    if access == "read":
        return (f"crm.schemas.{ot}.read", *_OBJECT_SCOPES[ot]["read"])
    return (f"crm.schemas.{ot}.write",)


def authenticate(state: SandboxState, token: str | None) -> tuple[Response | None, set[str]]:
    """``(None, scopes)`` for a valid HubSpot token, else ``(401 response, empty set)``.

    The token itself never appears in the answer (secrets stay out of bodies and logs).
    """
    info = state.token(token) if token else None
    if info is None or info["crm"] != HS:
        return error_response(401, "INVALID_AUTHENTICATION", AUTH_MESSAGE), set()
    expires_at = info["expires_at"]
    if expires_at is not None and expires_at <= state.now():
        ago = int((state.now() - expires_at).total_seconds())
        return (
            error_response(
                401,
                "INVALID_AUTHENTICATION",
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                sub_category="EXPIRED_AUTHENTICATION",
            ),
            set(),
        )
    return None, set(info["scopes"])


def missing_scopes(granted: set[str], required: Sequence[Sequence[str]]) -> Response | None:
    """403 ``MISSING_SCOPES`` naming the first group of which the token holds no scope."""
    for group in required:
        if not granted.intersection(group):
            return error_response(
                403,
                "MISSING_SCOPES",
                SCOPES_MESSAGE,
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": list(group)},
                    }
                ],
            )
    return None


def expired_token_response() -> Response:
    """The 401 of an expired OAuth token (fault ``expired_token``)."""
    return error_response(
        401,
        "INVALID_AUTHENTICATION",
        "The OAuth token used to make this call expired 1 second(s) ago.",
        sub_category="EXPIRED_AUTHENTICATION",
    )


_POLICY_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}


def rate_limit_response(policy: str, retry_after: int | None) -> Response:
    """HubSpot's 429: ``errorType: RATE_LIMIT`` and the ``policyName`` the client backs off by.

    ``retry_after`` None sends no ``Retry-After``: used for ``DAILY`` (unless a test overrides
    it), because urllib3's *default* retry honours ``Retry-After`` on GETs and would sleep
    until midnight inside the SDK; a client must stop on ``DAILY``, not wait.
    """
    body = error_body("RATE_LIMITS", _POLICY_MESSAGES.get(policy, _POLICY_MESSAGES["DAILY"]))
    body["errorType"] = "RATE_LIMIT"
    body["policyName"] = policy
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return Response(429, body, headers=headers)


def _token_key(token: str | None) -> str:
    """Counters are keyed by a digest, so the limiter never holds a raw token."""
    return hashlib.sha256((token or "").encode()).hexdigest()[:24]


class RateLimiter:
    """Per-token burst, search and daily counters (in memory, per emulator process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._burst: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._search: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._daily: dict[str, tuple[str, int]] = {}

    @staticmethod
    def _trim(window: collections.deque[float], now: float, span: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    def admit(
        self, token: str | None, config: dict[str, Any], today: dt.datetime, *, search: bool
    ) -> Response | None:
        """Count one request, or return the 429 that rejects it (rejected ones are not counted)."""
        key = _token_key(token)
        now = time.monotonic()
        span = float(config["burst_window_seconds"])
        override = config.get("retry_after_seconds")
        day = today.date().isoformat()
        with self._lock:
            burst = self._burst[key]
            self._trim(burst, now, span)
            used_day = self._daily.get(key, (day, 0))
            used_today = used_day[1] if used_day[0] == day else 0
            if used_today >= int(config["daily_limit"]):
                wait = None if override is None else _retry(override, 0)
                return rate_limit_response("DAILY", wait)
            if len(burst) >= int(config["burst_limit"]):
                wait = math.ceil(burst[0] + span - now)
                return rate_limit_response("TEN_SECONDLY_ROLLING", _retry(override, wait))
            if search:
                searches = self._search[key]
                self._trim(searches, now, 1.0)
                if len(searches) >= int(config["search_per_second"]):
                    wait = math.ceil(searches[0] + 1.0 - now)
                    return rate_limit_response("SECONDLY", _retry(override, wait))
                searches.append(now)
            burst.append(now)
            self._daily[key] = (day, used_today + 1)
        return None

    def headers(
        self, token: str | None, config: dict[str, Any], today: dt.datetime
    ) -> dict[str, str]:
        """The ``X-HubSpot-RateLimit-*`` headers every response carries."""
        key = _token_key(token)
        now = time.monotonic()
        span = float(config["burst_window_seconds"])
        burst_limit = int(config["burst_limit"])
        secondly = max(1, round(burst_limit / span)) if span > 0 else burst_limit
        with self._lock:
            burst = self._burst.get(key, collections.deque())
            used = sum(1 for t in burst if t > now - span)
            last_second = sum(1 for t in burst if t > now - 1.0)
            day, used_today = self._daily.get(key, (today.date().isoformat(), 0))
            if day != today.date().isoformat():
                used_today = 0
        daily = int(config["daily_limit"])
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(span * 1000)),
            "X-HubSpot-RateLimit-Max": str(burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, burst_limit - used)),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - last_second)),
            "X-HubSpot-RateLimit-Daily": str(daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - used_today)),
        }


def _retry(override: Any, computed: int) -> int:
    """``Retry-After`` in whole seconds (urllib3 only parses integers or HTTP dates)."""
    if override is not None:
        return max(0, math.ceil(float(override)))
    return max(1, computed)
