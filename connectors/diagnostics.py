"""What ``crmhub doctor`` and the sync's preflight learn about a CRM connection, check by check.

Why typed results in the connector layer: only the connector knows how to reach its CRM, which
calls prove a permission without changing anything, and which error means which missing grant.
The CLI only renders :class:`Check` rows (a table, JSON) and decides the exit code. Every
``detail`` and ``fix`` is built from vetted parts (host names, variable names, field and scope
names), never from a credential or an SDK's exception text.

Also here: the classification of network failures that retrying cannot fix. A host name that
does not resolve, or a TLS certificate the configured CA bundle does not trust, fails the same way
on every attempt; retrying them for a minute and a half only hides the cause.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal
from urllib.parse import urlsplit

from connectors.errors import ConnectorError

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of a diagnosis: what was checked, how it went, and the one fix for a failure."""

    crm: str
    name: str
    status: Status
    detail: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class UnreachableError(ConnectorError):
    """The CRM's host cannot be resolved or its TLS certificate is not trusted: not retried."""


def host_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "", port


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """An exception and everything it wraps (``__cause__``, ``__context__``, urllib3's
    ``reason``, requests' first argument), each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
        todo.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))


def permanent_network_failure(
    exc: BaseException, *, crm: str, label: str, url: str, variable: str, ca_variable: str
) -> UnreachableError | None:
    """An :class:`UnreachableError` when ``exc`` is a DNS or TLS-trust failure, else None.

    ``label`` names the CRM for people ("Salesforce"); ``variable`` the setting that holds the URL.
    """
    host, _ = host_of(url)
    for cause in _causes(exc):
        name = type(cause).__name__
        if isinstance(cause, socket.gaierror) or name == "NameResolutionError":
            return UnreachableError(
                f"{label} host {host} does not resolve (DNS); check {variable} and the "
                "network/DNS settings. Not retried.",
                crm=crm,
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            return UnreachableError(
                f"{label} host {host} presented a TLS certificate this machine does not trust; "
                f"set {ca_variable} to your proxy's CA bundle or check {variable}. Not retried.",
                crm=crm,
            )
    return None


def check_host(
    crm: str,
    label: str,
    url: str,
    *,
    variable: str,
    ca_variable: str,
    ca_bundle: str | None,
    timeout: float = 10.0,
) -> Check:
    """DNS, TCP and TLS to the host of ``url``, without sending a request."""
    host, port = host_of(url)
    name = f"reach {host}"
    if not host:
        return Check(crm, "reach host", "fail", f"{variable} is not a URL", f"set {variable}")
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return Check(
            crm,
            name,
            "fail",
            f"{host} does not resolve (DNS)",
            f"check {variable} (and the machine's DNS/proxy settings)",
        )
    try:
        # the first address the resolver gives (IPv4 or IPv6), as (host, port)
        family_address = addresses[0][4]
        raw = socket.create_connection((str(family_address[0]), port), timeout=timeout)
    except OSError as exc:
        return Check(
            crm,
            name,
            "fail",
            f"no connection to {host}:{port} ({type(exc).__name__})",
            f"check {variable}, the firewall and HTTPS_PROXY",
        )
    if urlsplit(url).scheme != "https":
        raw.close()
        return Check(
            crm, name, "warn", f"{host}:{port} answers without TLS", f"use https in {variable}"
        )
    context = (
        ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    )
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            version = tls.version() or "TLS"
    except ssl.SSLCertVerificationError:
        return Check(
            crm,
            name,
            "fail",
            f"the TLS certificate of {host} is not trusted",
            f"set {ca_variable} to the CA bundle of your proxy (or check {variable})",
        )
    except (OSError, ssl.SSLError) as exc:
        return Check(
            crm,
            name,
            "fail",
            f"TLS handshake with {host} failed ({type(exc).__name__})",
            f"check {variable} and the proxy settings",
        )
    finally:
        raw.close()
    return Check(crm, name, "pass", f"{host}:{port} resolves and speaks {version}")


def budget_check(crm: str, used: int | None, most: int | None, share: float) -> Check:
    """The daily API quota left for the hub (its ``budget_share`` of the CRM's limit)."""
    if used is None or not most:
        return Check(crm, "API budget", "warn", "the CRM reported no daily quota figures", "")
    allowed = int(most * share)
    detail = (
        f"{used:,} of {most:,} daily calls used; the hub may use up to {allowed:,} ({share:.0%})"
    )
    if used >= allowed:
        return Check(
            crm,
            "API budget",
            "fail",
            detail,
            "wait for the daily quota to recover or raise budget_share",
        )
    if used >= allowed * 0.8:
        return Check(crm, "API budget", "warn", detail, "a large sync may stop early today")
    return Check(crm, "API budget", "pass", detail)


def error_check(crm: str, name: str, exc: ConnectorError) -> Check:
    """A failed check from a connector error (its message is vetted: no secrets, has the fix)."""
    return Check(crm, name, "fail", type(exc).__name__, str(exc))


def summarise(crm: str, name: str, passed: list[str], what: str) -> Check:
    """One passing row for many items that passed (the table stays short)."""
    shown = ", ".join(passed[:5]) + (f" and {len(passed) - 5} more" if len(passed) > 5 else "")
    return Check(crm, name, "pass", f"{len(passed)} {what}: {shown}")


__all__ = [
    "Check",
    "UnreachableError",
    "budget_check",
    "check_host",
    "error_check",
    "permanent_network_failure",
    "summarise",
]
