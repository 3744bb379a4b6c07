"""Errors a connector raises, each saying what went wrong and what to do about it.

Why a hierarchy of our own: the SDKs' exceptions carry the raw response body and, for
simple-salesforce, the request URL (which can hold SOQL with personal data). Those must never reach
logs or Dagster metadata. Every connector error here is built from vetted parts only (status, the
CRM's error code, a field or scope name) and keeps the SDK exception out of its ``str()``.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class: a message safe to log and show to a user."""

    crm: str = ""

    def __init__(self, message: str, *, crm: str = "") -> None:
        super().__init__(message)
        self.crm = crm


class AuthenticationError(ConnectorError):
    """The CRM refused the credentials (wrong, revoked or expired and not refreshable)."""


class MissingScopeError(ConnectorError):
    """The credentials lack a permission/scope the hub needs. Not retryable."""

    def __init__(self, message: str, *, crm: str = "", scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message, crm=crm)
        self.scopes = scopes


class QuotaExhausted(ConnectorError):
    """The daily API quota (or the hub's configured share of it) is spent: stop this source.

    Raised between pages, after the last page's checkpoint was handed out, so the next run resumes.
    """


class MappingError(ConnectorError):
    """The field mapping names a field the CRM does not have (or one the hub may not write)."""


class TransientError(ConnectorError):
    """A failure worth retrying: burst rate limit, 5xx, dropped connection, row lock.

    ``maybe_applied``: the request may have reached the CRM and taken effect although no answer
    came back (a read timeout, a connection dropped after sending, a 5xx from a gateway). A write
    is then checked against the CRM before it is sent again; a 429 or a refused connection is
    known not to have been applied.
    """

    def __init__(
        self,
        message: str,
        *,
        crm: str = "",
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message, crm=crm)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class CrmRequestError(ConnectorError):
    """A request the CRM rejected for a reason retrying will not fix (400, 404…)."""

    def __init__(
        self, message: str, *, crm: str = "", status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, crm=crm)
        self.status = status
        self.code = code
