"""The one place the Salesforce connector talks HTTP: session, login, accounting, errors, retries.

Why one choke point: every request must be counted (the org's daily quota is shared with every
other integration), must respect the hub's budget share, must survive an expired session, a
dropped connection or a 503, and must never let the SDK's exception text (request URL with SOQL,
raw response body) escape into logs. The rest of the connector only says *what* to call through
:meth:`SalesforceClient.call`; this module decides how.

The client library is the unmodified ``simple_salesforce.Salesforce`` built on a session id the
hub obtained itself (see ``auth.py``), on a ``requests.Session`` that trusts only the configured
CA bundle (``trust_env=False``: the machine's ``REQUESTS_CA_BUNDLE`` would otherwise win) and
takes proxies from the environment explicitly.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)
from simple_salesforce.util import exception_handler

from connectors.base import ApiUsage
from connectors.diagnostics import host_of, permanent_network_failure
from connectors.errors import (
    AuthenticationError,
    CrmRequestError,
    MissingScopeError,
    QuotaExhausted,
    TransientError,
)
from connectors.records import SALESFORCE, Crm
from connectors.retry import retrying
from connectors.salesforce.auth import Authenticator
from connectors.salesforce.config import SalesforceConfig

CRM: Crm = SALESFORCE
log = logging.getLogger(__name__)
T = TypeVar("T")

_LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")
#: Read side: "No such column 'X' on entity 'Account'"; write side: "No such column 'X' on sobject
#: of type Account". The optional "of type" keeps the write form from naming the object "of".
_NO_SUCH_COLUMN_RE = re.compile(
    r"No such column '([\w.]+)' on (?:entity|sobject)(?: of type)? '?(\w+)'?"
)
_CODE_RE = re.compile(r"^[A-Z_]{2,64}$")

#: Per-record / per-request error codes worth retrying.
TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG", "QUERY_TIMEOUT"}
)


class InvalidFieldError(CrmRequestError):
    """Salesforce named a field it does not know (INVALID_FIELD); the reader maps it to config."""

    def __init__(self, message: str, *, field_name: str | None, object_name: str | None) -> None:
        super().__init__(message, crm=CRM, status=400, code="INVALID_FIELD")
        self.field_name = field_name
        self.object_name = object_name


def error_code(content: Any) -> tuple[str | None, str]:
    """The ``errorCode`` and ``message`` of a Salesforce error envelope (list or dict)."""
    first: Any = content[0] if isinstance(content, list) and content else content
    if isinstance(first, dict):
        code = first.get("errorCode") or first.get("statusCode") or first.get("error")
        return (str(code) if code else None), str(first.get("message") or "")
    return None, ""


def safe_code(code: str | None) -> str:
    """An error code fit for a log line (Salesforce codes are UPPER_SNAKE; anything else is not)."""
    return code if code and _CODE_RE.match(code) else "UNKNOWN"


class SalesforceClient:
    """Authenticated, counted, budget-guarded access to one org."""

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.sleep = sleep
        self.usage = ApiUsage(crm=CRM)
        self._object = "other"
        self._last_headers: dict[str, str] = {}
        #: Local monotonic clock when ``usage.server_time`` was last read from a ``Date`` header.
        self._server_time_read: float | None = None
        self.session = self._build_session()
        self._auth = Authenticator(config, self.session)
        self._sf: Salesforce | None = None

    # ---- session ---------------------------------------------------------------------------
    def _build_session(self) -> requests.Session:
        session = requests.Session()
        session.verify = self.config.ca_bundle or True
        session.trust_env = False
        if self.config.proxies is not None:
            session.proxies.update(dict(self.config.proxies))
        else:
            # trust_env=False also drops proxy discovery; put the environment's proxies back
            # explicitly (honouring NO_PROXY) so corporate proxies keep working.
            session.proxies.update(requests.utils.get_environ_proxies(self.config.instance_url))
        session.hooks["response"].append(self._on_response)
        return session

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Count the request and read the org's quota and clock from the headers."""
        self.usage.count(self._object)
        self._last_headers = dict(response.headers)
        limit = response.headers.get("Sforce-Limit-Info")
        if limit:
            m = _LIMIT_RE.search(limit)
            if m:
                self.usage.quota_used = int(m.group(1))
                self.usage.quota_max = int(m.group(2))
        date = response.headers.get("Date")
        if date:
            try:
                parsed = email.utils.parsedate_to_datetime(date)
            except (TypeError, ValueError):
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=dt.UTC)
                self.usage.server_time = parsed.astimezone(dt.UTC)
                self._server_time_read = time.monotonic()

    def org_time_floor(self) -> dt.datetime | None:
        """A time the org's clock has certainly reached: a lower bound of the next query's snapshot.

        Why: the incremental reader stores it as the moment its run started reading, so that
        the next run only re-reads rows that could still have been uncommitted then. The
        ``Date`` of a response already received was stamped (and truncated to the second) before
        that response left the org, so the org's clock at any later request is at least that
        ``Date`` plus the local time elapsed since the response arrived (local monotonic clock;
        it never runs ahead of real time). Logs in first when nothing was received yet (the
        login answer carries a ``Date``); None when no response has been seen at all (a bare
        session id before its first call): the reader then falls back to its older rule.
        """
        if self.usage.server_time is None:
            _ = self.sf
        if self.usage.server_time is None or self._server_time_read is None:
            return None
        elapsed = max(0.0, time.monotonic() - self._server_time_read)
        return self.usage.server_time + dt.timedelta(seconds=elapsed)

    @contextmanager
    def counting_as(self, obj: str) -> Iterator[None]:
        """Attribute the requests made inside the block to one Salesforce object."""
        previous, self._object = self._object, obj
        try:
            yield
        finally:
            self._object = previous

    # ---- login -----------------------------------------------------------------------------
    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client, logging in on first use."""
        if self._sf is None:
            self._login()
        assert self._sf is not None
        return self._sf

    def _login(self) -> None:
        with self.counting_as("auth"):
            token = retrying(
                self._auth.login, attempts=self.config.retry_attempts, sleep=self.sleep
            )
        instance_url = self.config.instance_url or token.instance_url or ""
        self._sf = Salesforce(
            instance_url=instance_url,
            session_id=token.access_token,
            session=self.session,
            version=self.config.api_version,
        )

    @property
    def base_url(self) -> str:
        """``https://host/services/data/vXX.X/`` of the org."""
        return str(self.sf.base_url)

    # ---- budget ----------------------------------------------------------------------------
    def check_budget(self) -> None:
        """Raise :class:`QuotaExhausted` once the org's usage reached the hub's share."""
        used, limit = self.usage.quota_used, self.usage.quota_max
        if used is None or not limit:
            return
        allowed = limit * self.config.budget_share
        if used >= allowed:
            raise QuotaExhausted(
                f"Salesforce API budget reached: the org has used {used} of {limit} daily API "
                f"requests and the hub may use up to {self.config.budget_share:.0%} "
                f"({int(allowed)}). The sync stops here and resumes from its checkpoint; raise "
                "budget_share or wait for the rolling 24-hour quota to recover.",
                crm=CRM,
            )

    # ---- calls -----------------------------------------------------------------------------
    def call(self, obj: str, fn: Callable[[Salesforce], T], *, retry: bool = True) -> T:
        """Run one API operation: budget check, 401 re-login, error translation, retries.

        ``retry`` only for idempotent operations (queries, describes, absolute field updates).
        """

        def attempt() -> T:
            return self._attempt(obj, fn)

        if not retry:
            return attempt()
        return retrying(
            attempt,
            attempts=self.config.retry_attempts,
            sleep=self.sleep,
            on_retry=lambda exc, wait: log.warning("%s Retrying in %.1f s.", exc, wait),
        )

    def _attempt(self, obj: str, fn: Callable[[Salesforce], T]) -> T:
        relogged = False
        while True:
            self.check_budget()
            sf = self.sf
            before = self.usage.calls
            try:
                with self.counting_as(obj):
                    return fn(sf)
            except SalesforceExpiredSession:
                if relogged or not self._auth.can_renew:
                    raise self._auth.expired_session_error() from None
                relogged = True
                self._sf = None  # the next round logs in again
            except SalesforceError as exc:
                raise self.translate(exc) from None
            except SalesforceOperationError as exc:
                raise CrmRequestError(
                    f"A Salesforce Bulk API job for {obj} failed ({type(exc).__name__}); see the "
                    "org's Bulk Data Load Jobs page for the reason.",
                    crm=CRM,
                    code="BULK_JOB_FAILED",
                ) from None
            except requests.RequestException as exc:
                if self.usage.calls == before:  # no response: the hook did not count it
                    self.usage.count(obj)
                permanent = permanent_network_failure(
                    exc,
                    crm=CRM,
                    label="Salesforce",
                    url=self.config.instance_url,
                    variable="CRMHUB_SF_INSTANCE_URL",
                    ca_variable="CRMHUB_SF_CA_BUNDLE",
                )
                if permanent is not None:
                    raise permanent from None
                raise TransientError(
                    f"Salesforce request for {obj} failed in transit ({type(exc).__name__}); "
                    f"check CRMHUB_SF_INSTANCE_URL ({host_of(self.config.instance_url)[0]}) and the "
                    "network.",
                    crm=CRM,
                    maybe_applied=_maybe_sent(exc),
                ) from None

    def raw(
        self,
        obj: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """A request the SDK has no helper for (Bulk 2.0 CSV): same guards as ``call``."""

        def run(sf: Salesforce) -> requests.Response:
            merged = dict(sf.headers)
            merged.update(headers or {})
            response = self.session.request(
                method,
                sf.base_url + path,
                params=params,
                headers=merged,
                data=data,
                timeout=self.config.timeout_seconds,
            )
            if response.status_code >= 300:
                exception_handler(response, path.split("/", 1)[0])
            return response

        return self.call(obj, run, retry=retry)

    # ---- errors ----------------------------------------------------------------------------
    def retry_after(self) -> float | None:
        value = self._last_headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def translate(self, exc: SalesforceError) -> Exception:
        """A safe connector error for an SDK error (never its text: URL and body)."""
        status = int(exc.status)
        code, message = error_code(exc.content)
        shown = safe_code(code)
        where = exc.resource_name or "request"
        if isinstance(exc, SalesforceRefusedRequest) or status == 403:
            if code == "REQUEST_LIMIT_EXCEEDED":
                if "concurrent" in message.lower():
                    return TransientError(
                        "Salesforce refused the request: too many concurrent long-running "
                        "requests in the org (REQUEST_LIMIT_EXCEEDED).",
                        crm=CRM,
                        retry_after=self.retry_after() or 5.0,
                    )
                return QuotaExhausted(
                    "Salesforce's daily API request limit is spent (REQUEST_LIMIT_EXCEEDED). The "
                    "sync stops here and resumes from its checkpoint once the rolling 24-hour "
                    "quota recovers; ask the Salesforce admin to raise the org's API limit if "
                    "this repeats.",
                    crm=CRM,
                )
            return MissingScopeError(
                f"Salesforce refused {where} ({shown}): the integration user lacks a permission. "
                "Grant its profile or permission set 'API Enabled' and read access to the synced "
                "objects (or 'Customize Application' to create the hub's fields).",
                crm=CRM,
                scopes=("API Enabled",),
            )
        if status == 429 or status >= 500 or code in TRANSIENT_CODES:
            return TransientError(
                f"Salesforce answered HTTP {status} ({shown}) for {where}.",
                crm=CRM,
                retry_after=self.retry_after(),
                # a 5xx other than 503 may follow a request the org executed
                maybe_applied=status >= 500 and status != 503,
            )
        if code == "INVALID_FIELD":
            m = _NO_SUCH_COLUMN_RE.search(message)
            field_name = m.group(1) if m else None
            object_name = m.group(2) if m else None
            return InvalidFieldError(
                f"Salesforce does not know the field {field_name or '(unnamed)'} on "
                f"{object_name or where} (INVALID_FIELD).",
                field_name=field_name,
                object_name=object_name,
            )
        return CrmRequestError(
            f"Salesforce rejected {where} with HTTP {status} ({shown}).",
            crm=CRM,
            status=status,
            code=code,
        )

    def close(self) -> None:
        self.session.close()


__all__ = [
    "AuthenticationError",
    "InvalidFieldError",
    "SalesforceClient",
    "error_code",
    "safe_code",
]


def _maybe_sent(exc: requests.RequestException) -> bool:
    """Whether a request that got no answer may have reached Salesforce (and been executed).

    A connection never made (refused, DNS, connect timeout) sent nothing; a read timeout or a
    connection dropped mid-answer may follow a request the org already executed.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        text = f"{type(reason).__name__} {reason}" if reason is not None else str(exc)
        if "NewConnectionError" in text or "NameResolution" in text or "refused" in text.lower():
            return False
    return True
