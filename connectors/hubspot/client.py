"""The HubSpot SDK client as the hub uses it: counted, rate-limited, budgeted, refreshed.

Why wrap the SDK's transport instead of calling HTTP ourselves: the hub uses the unmodified
``hubspot-api-client`` (its models and paths are the contract), but it must see every request the
SDK sends: to count it per object (the API budget is the business's money), to read HubSpot's
quota and clock headers, to apply the portal-wide client-side rate limit, and to turn HubSpot's
errors into the hub's own (safe to log) errors. ``hubspot.Client.create(api_factory=…)`` lets us
build each API module's ``ApiClient``; we replace its ``rest_client.request`` with a function that
does all of the above around the SDK's own request code.

Retries are *not* done here (urllib3's are switched off so that every attempt is counted and
HubSpot's ``Retry-After`` is honoured once, by tenacity): the transport classifies a failure as
``TransientError`` and the caller decides, through :func:`connectors.retry.retrying`, whether the
call is idempotent enough to repeat. The one exception is a 401 with OAuth credentials: the
transport refreshes the token once and repeats the request, because that is an auth detail, not a
retry policy.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import importlib
import importlib.metadata
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import hubspot
import urllib3
from hubspot.crm.objects.configuration import Configuration as ObjectsConfiguration

from connectors.base import ApiUsage
from connectors.diagnostics import permanent_network_failure
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    CrmRequestError,
    MissingScopeError,
    QuotaExhausted,
    TransientError,
)
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.limiter import PortalLimiter, shared_limiter
from connectors.records import HUBSPOT
from connectors.retry import retrying

log = logging.getLogger(__name__)
T = TypeVar("T")

_SDK_VERSION = importlib.metadata.version("hubspot-api-client")
#: The objects API's request models' configuration (their validation switch only; shared,
#: never mutated). Built without one, each model copies the SDK's default configuration (a
#: logger set-up and a CPU count per record): 12 s of a first writeback of ``large`` (py-spy).
OBJECTS_MODEL_CONFIG = ObjectsConfiguration()
#: Wait when a 429 names a policy but sends no Retry-After.
_POLICY_WAIT = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0}
_TOKEN_PATH = "/oauth/v1/token"


def _is_api_exception(exc: BaseException) -> bool:
    """Every generated SDK package has its own ``ApiException`` class; match them all."""
    return any(c.__name__ == "ApiException" for c in type(exc).__mro__) and hasattr(exc, "status")


def error_info(exc: Any) -> dict[str, Any]:
    """The parts of a HubSpot error body the hub may act on (never the body itself).

    Returns ``category``, ``codes`` (the ``errors[].code`` values), ``property_names``
    (``errors[].context.propertyName``), ``scopes`` (``requiredGranularScopes``), ``policy``
    (``policyName`` of a 429), ``message`` (HubSpot's message: only for per-record write
    results, never for exception text) and ``sub_category``.
    """
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    codes: list[str] = []
    names: list[str] = []
    scopes: list[str] = []
    for item in body.get("errors") or []:
        if not isinstance(item, dict):
            continue
        if item.get("code"):
            codes.append(str(item["code"]))
        context = item.get("context") or {}
        if isinstance(context, dict):
            names.extend(str(n) for n in context.get("propertyName") or [])
            scopes.extend(str(s) for s in context.get("requiredGranularScopes") or [])
            scopes.extend(str(s) for s in context.get("requiredScopes") or [])
    context = body.get("context") or {}
    if isinstance(context, dict):
        scopes.extend(str(s) for s in context.get("requiredGranularScopes") or [])
    return {
        "category": str(body.get("category") or ""),
        "sub_category": str(body.get("subCategory") or ""),
        "codes": codes,
        "property_names": names,
        "scopes": list(dict.fromkeys(scopes)),
        "policy": str(body.get("policyName") or ""),
        "message": str(body.get("message") or ""),
    }


def object_of(path: str) -> str:
    """The ``ApiUsage`` bucket of a request path: the CRM object, or the API family."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 4 and parts[:3] == ["crm", "v3", "objects"]:
        return parts[3]
    if len(parts) >= 3 and parts[0] == "crm" and parts[2] == "associations":
        return "associations"
    if len(parts) >= 3 and parts[0] == "crm" and parts[2] == "properties":
        return "properties"
    if len(parts) >= 3 and parts[0] == "crm" and parts[2] == "owners":
        return "owners"
    if path.startswith("/oauth/"):
        return "oauth"
    return "other"


class TokenSource:
    """The bearer token to send: a private app's fixed token, or an OAuth token kept fresh.

    Why refresh ahead of expiry: HubSpot's OAuth access tokens live 30 minutes and HubSpot says
    a 401 is "not a valid indicator that a new token is needed", so the connector refreshes from
    ``expires_in`` (minus a margin) and uses a 401 only as a second chance.
    """

    def __init__(
        self,
        config: HubSpotConfig,
        token_api: Callable[[], Any],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._token_api = token_api
        self._clock = clock
        self._token: str | None = config.access_token
        self._refresh_token = config.refresh_token
        self._expires_at: float | None = None
        self._lock = threading.Lock()

    @property
    def can_refresh(self) -> bool:
        return self._config.uses_oauth

    def current(self) -> str:
        with self._lock:
            if self.can_refresh and (
                self._token is None
                or (self._expires_at is not None and self._clock() >= self._expires_at)
            ):
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        cfg = self._config
        try:
            answer = self._token_api().create(
                grant_type="refresh_token",
                client_id=cfg.client_id,
                client_secret=cfg.client_secret,
                refresh_token=self._refresh_token,
            )
        except ConnectorError:
            raise
        except Exception as exc:
            if _is_api_exception(exc):
                raise AuthenticationError(
                    f"HubSpot refused to refresh the OAuth access token (HTTP {exc.status}); "  # type: ignore[attr-defined]
                    "check CRMHUB_HS_CLIENT_ID, CRMHUB_HS_CLIENT_SECRET and "
                    "CRMHUB_HS_REFRESH_TOKEN (the app may have been uninstalled)",
                    crm=HUBSPOT,
                ) from None
            raise
        if answer is None or not getattr(answer, "access_token", None):
            raise AuthenticationError(
                "HubSpot's OAuth token endpoint answered without an access token; check "
                "CRMHUB_HS_BASE_URL points at the HubSpot API",
                crm=HUBSPOT,
            )
        self._token = str(answer.access_token)
        if getattr(answer, "refresh_token", None):
            self._refresh_token = str(answer.refresh_token)
        expires_in = getattr(answer, "expires_in", None)
        if expires_in:
            margin = min(cfg.token_refresh_margin_seconds, float(expires_in) / 2)
            self._expires_at = self._clock() + float(expires_in) - margin
        log.info("HubSpot OAuth access token refreshed")


class HubSpotClient:
    """One portal session: the SDK's API modules (built once), the transport, the budget."""

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        limiter: PortalLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.usage = ApiUsage(crm=HUBSPOT)
        self.sleep = sleep
        credential = config.access_token or config.refresh_token or ""
        self.limiter = limiter or shared_limiter(
            config.base_url,
            credential,
            burst_limit=config.burst_limit,
            burst_window_seconds=config.burst_window_seconds,
            search_per_second=config.search_per_second,
            store=config.rate_limit_store,
        )
        self._sdk = hubspot.Client.create(
            access_token=config.access_token,
            host=config.base_url.rstrip("/"),
            ssl_ca_cert=config.ca_bundle,
            retry=None,
            api_factory=self._api_factory,
        )
        self._apis: dict[str, Any] = {}
        self.tokens = TokenSource(config, lambda: self.api("tokens"), clock=clock)

    # ---- SDK wiring -----------------------------------------------------------------------
    def api(self, name: str) -> Any:
        """An SDK API module, built once (each SDK property access builds a new pool)."""
        found = self._apis.get(name)
        if found is None:
            sdk = self._sdk
            builders: dict[str, Callable[[], Any]] = {
                "search": lambda: sdk.crm.objects.search_api,
                "objects": lambda: sdk.crm.objects.basic_api,
                "batch": lambda: sdk.crm.objects.batch_api,
                "associations": lambda: sdk.crm.associations.v4.batch_api,
                "properties": lambda: sdk.crm.properties.core_api,
                "groups": lambda: sdk.crm.properties.groups_api,
                "owners": lambda: sdk.crm.owners.owners_api,
                "tokens": lambda: sdk.oauth.tokens_api,
            }
            found = builders[name]()
            self._apis[name] = found
        return found

    def _api_factory(self, package: Any, api_name: str, options: dict[str, Any]) -> Any:
        """Build an SDK API module like the SDK's default factory, then wrap its transport."""
        configuration = package.Configuration()
        for key, value in options.items():
            if key == "retry":
                continue
            if key == "api_key":
                configuration.api_key["developer_hapikey"] = value
            else:
                setattr(configuration, key, value)
        # urllib3 must not retry on its own: every attempt is counted and paced here, and
        # tenacity (connectors.retry) decides what is safe to repeat.
        configuration.retries = False
        api_client = package.ApiClient(configuration=configuration)
        api_client.user_agent = f"hubspot-api-client-python; {_SDK_VERSION}"
        # The SDK parses every timestamp of every record with dateutil's generic parser (a
        # third of a large read's client time); HubSpot sends ISO 8601, which the standard
        # library parses ~20x faster. Anything else still goes to the SDK's own parser.
        for name, convert in (("datetime", _iso_datetime), ("date", _iso_date)):
            attribute = f"_ApiClient__deserialize_{name}"
            original_parse = getattr(api_client, attribute, None)
            if original_parse is not None:
                setattr(api_client, attribute, functools.partial(convert, original_parse))
        exc_type = importlib.import_module(package.__name__ + ".exceptions").ApiException
        original = api_client.rest_client.request

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            # the SDK's headers carry the configured token: this frame must not keep it
            kwargs["headers"] = _without_auth(kwargs.get("headers"))
            return self._send(original, exc_type, method, url, *args, **kwargs)

        api_client.rest_client.request = request
        return getattr(package, api_name)(api_client=api_client)

    # ---- transport --------------------------------------------------------------------------
    def _send(
        self,
        original: Callable[..., Any],
        exc_type: type[Exception],
        method: str,
        url: str,
        query_params: Any = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _preload_content: bool = True,
        _request_timeout: Any = None,
    ) -> Any:
        path = urllib.parse.urlsplit(url).path
        obj = object_of(path)
        is_token = path == _TOKEN_PATH
        # Without the SDK's own Authorization (set from the configured token): the transport
        # adds the current one per attempt, and this frame's locals stay free of secrets.
        headers = _without_auth(headers)
        if not is_token:
            self.check_budget()
            self.limiter.acquire(search=method.upper() == "POST" and path.endswith("/search"))
        refreshed = False
        while True:
            self.usage.count(obj)
            try:
                response = original(
                    method,
                    url,
                    query_params=query_params,
                    # the token goes straight into the call, never into a local of this frame:
                    # test runners and crash reporters print a failing frame's variables
                    headers={**headers, **self._authorization(is_token)},
                    body=body,
                    post_params=post_params,
                    _preload_content=_preload_content,
                    _request_timeout=_request_timeout or self.config.request_timeout_seconds,
                )
            except exc_type as exc:
                status = int(getattr(exc, "status", 0) or 0)
                self._observe(getattr(exc, "headers", None))
                if status == 401 and not is_token and self.tokens.can_refresh and not refreshed:
                    refreshed = True
                    self.tokens.refresh()
                    continue
                raise self._classify(exc, status, obj, is_token) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                permanent = permanent_network_failure(
                    exc,
                    crm=HUBSPOT,
                    label="HubSpot",
                    url=url,
                    variable="CRMHUB_HS_BASE_URL",
                    ca_variable="CRMHUB_HS_CA_BUNDLE",
                )
                if permanent is not None:
                    raise permanent from None
                raise TransientError(
                    f"the connection to HubSpot failed ({type(exc).__name__}) while calling the "
                    f"{obj} API; if it persists check the network and CRMHUB_HS_BASE_URL "
                    f"({urllib.parse.urlsplit(url).hostname})",
                    crm=HUBSPOT,
                    maybe_applied=_maybe_sent(exc),
                ) from None
            self._observe(getattr(response, "getheaders", lambda: None)())
            return response

    def _authorization(self, is_token: bool) -> dict[str, str]:
        return {} if is_token else {"Authorization": f"Bearer {self.tokens.current()}"}

    def _classify(self, exc: Exception, status: int, obj: str, is_token: bool) -> Exception:
        """A HubSpot error as the hub's error, or the SDK exception for the caller to judge."""
        info = error_info(exc)
        retry_after = _retry_after(getattr(exc, "headers", None))
        if is_token:
            if status == 429 or status >= 500:
                return TransientError(
                    f"HubSpot's OAuth token endpoint is unavailable (HTTP {status})",
                    crm=HUBSPOT,
                    retry_after=retry_after,
                )
            return exc
        if status == 401:
            hint = (
                "check CRMHUB_HS_CLIENT_ID, CRMHUB_HS_CLIENT_SECRET and CRMHUB_HS_REFRESH_TOKEN"
                if self.tokens.can_refresh
                else "check CRMHUB_HS_ACCESS_TOKEN (the private app's token may be rotated or "
                "the app deleted)"
            )
            return AuthenticationError(
                f"HubSpot rejected the access token ({info['category'] or 'HTTP 401'}); {hint}",
                crm=HUBSPOT,
            )
        if status == 403 and (info["category"] == "MISSING_SCOPES" or info["scopes"]):
            scopes = tuple(info["scopes"])
            named = ", ".join(scopes) if scopes else "a scope HubSpot did not name"
            return MissingScopeError(
                f"the HubSpot app lacks a scope the {obj} API needs: {named}; add it to the "
                "private app (or re-authorise the OAuth app with it) and update the token",
                crm=HUBSPOT,
                scopes=scopes,
            )
        if status == 429:
            policy = info["policy"]
            if policy == "DAILY":
                return QuotaExhausted(
                    "HubSpot's daily API limit for this portal is reached (429 DAILY); the sync "
                    "stops with its checkpoint kept and resumes on the next run",
                    crm=HUBSPOT,
                )
            wait = retry_after if retry_after is not None else _POLICY_WAIT.get(policy, 10.0)
            return TransientError(
                f"HubSpot rate limit {policy or 'burst'} hit on the {obj} API; waiting {wait:g} s",
                crm=HUBSPOT,
                retry_after=wait,
            )
        if status == 423:
            return TransientError(
                f"HubSpot locked the {obj} records for a concurrent write (423)",
                crm=HUBSPOT,
                retry_after=retry_after if retry_after is not None else 2.0,
            )
        if status >= 500:
            return TransientError(
                f"HubSpot answered HTTP {status} on the {obj} API",
                crm=HUBSPOT,
                retry_after=retry_after,
                # 503: HubSpot did not take the request; other 5xx (gateways) may follow one
                # it executed
                maybe_applied=status != 503,
            )
        if status == 0:
            return ConnectorError(
                "the TLS connection to HubSpot could not be verified; check CRMHUB_HS_CA_BUNDLE "
                "(a corporate proxy needs its CA bundle) and CRMHUB_HS_BASE_URL",
                crm=HUBSPOT,
            )
        return exc

    def _observe(self, raw_headers: Any) -> None:
        """Read the quota figures and the portal's clock from a response's headers."""
        headers = _headers(raw_headers)
        if not headers:
            return
        daily = headers.get("x-hubspot-ratelimit-daily")
        remaining = headers.get("x-hubspot-ratelimit-daily-remaining")
        try:
            if daily is not None:
                self.usage.quota_max = int(daily)
                if remaining is not None:
                    self.usage.quota_used = max(0, int(daily) - int(remaining))
        except ValueError:
            pass
        date = headers.get("date")
        if date:
            try:
                parsed = email.utils.parsedate_to_datetime(date)
            except (TypeError, ValueError):
                return
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            self.usage.server_time = parsed.astimezone(dt.UTC)

    # ---- budget and calls ---------------------------------------------------------------
    def check_budget(self) -> None:
        """Raise ``QuotaExhausted`` once the hub's share of today's quota is used."""
        used, most = self.usage.quota_used, self.usage.quota_max
        share = self.config.budget_share
        if used is not None and most and used >= most * share:
            raise QuotaExhausted(
                f"the hub's share of HubSpot's daily API quota is used ({used} of {most} calls "
                f"today, budget_share={share:g}); the sync stops with its checkpoint kept and "
                "resumes on the next run (raise budget_share to allow more)",
                crm=HUBSPOT,
            )

    def call(self, what: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        """Run one SDK call: transient failures retried (if ``retry``), SDK errors translated.

        ``what`` names the operation in error messages ("search deals"): never a URL or body.
        SDK exceptions that reach here are 4xx answers the transport left to the caller.
        """

        def attempt() -> T:
            try:
                return fn()
            except ConnectorError:
                raise
            except Exception as exc:
                if _is_api_exception(exc):
                    raise request_error(exc, what) from None
                raise

        if not retry:
            return attempt()
        return retrying(
            attempt,
            attempts=self.config.retry_attempts,
            sleep=self.sleep,
            on_retry=lambda exc, wait: log.warning(
                "HubSpot %s: %s (retry in %.1f s)", what, exc, wait
            ),
        )

    def close(self) -> None:
        for api in self._apis.values():
            pool = getattr(getattr(api.api_client, "rest_client", None), "pool_manager", None)
            if pool is not None:
                pool.clear()
        self._apis.clear()


def _maybe_sent(exc: BaseException) -> bool:
    """Whether a failed request may have reached HubSpot (and so may have been applied).

    A connection that was never made (refused, DNS, connect timeout) sent nothing; a read timeout
    or a connection dropped mid-answer may follow a request HubSpot already executed.
    """
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return not isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def request_error(exc: Any, what: str) -> CrmRequestError:
    """A 4xx the caller did not handle, as a safe error naming status, category and codes."""
    status = int(getattr(exc, "status", 0) or 0)
    info = error_info(exc)
    detail = info["category"] or "error"
    if info["codes"]:
        detail += " (" + ", ".join(dict.fromkeys(info["codes"])) + ")"
    if info["property_names"]:
        detail += " on " + ", ".join(dict.fromkeys(info["property_names"]))
    error = CrmRequestError(
        f"HubSpot rejected {what}: HTTP {status} {detail}",
        crm=HUBSPOT,
        status=status,
        code=info["category"] or None,
    )
    # Kept off the message (it may quote record values): per-record write results use it.
    error.hubspot_message = info["message"]  # type: ignore[attr-defined]
    error.hubspot_codes = tuple(info["codes"])  # type: ignore[attr-defined]
    return error


def _headers(raw: Any) -> dict[str, str]:
    """Response headers as a lower-cased dict, whatever shape the transport hands over
    (urllib3's ``HTTPHeaderDict``, or a list of pairs from a recording layer such as vcrpy)."""
    if not raw:
        return {}
    items = raw.items() if hasattr(raw, "items") else raw
    out: dict[str, str] = {}
    for name, value in items:
        out.setdefault(str(name).lower(), str(value))
    return out


def _iso_datetime(fallback: Callable[[str], Any], value: str) -> Any:
    """``2026-05-01T07:25:37.123Z`` → an aware datetime; other forms go to ``fallback``."""
    try:
        return dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return fallback(value)


def _iso_date(fallback: Callable[[str], Any], value: str) -> Any:
    """``2026-05-01`` → a date; other forms go to ``fallback``."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return fallback(value)


def _retry_after(raw_headers: Any) -> float | None:
    raw = _headers(raw_headers).get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _without_auth(headers: dict[str, str] | None) -> dict[str, str]:
    """Request headers without ``Authorization`` (the transport adds the current token)."""
    return {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
