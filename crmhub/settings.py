"""Where crmhub keeps its data and which CRMs it talks to, from environment variables.

Why environment variables: credentials must never live in files that end up in git or in Dagster's
run config; Dagster resources read them through ``dg.EnvVar``. This module only decides *which*
mode the hub runs in (real CRMs or the built-in sandbox) by checking which variables are present;
it never reads a secret's value.

Variables (all optional):

- ``CRMHUB_HOME``: the hub's working folder (default ``.crmhub`` in the current directory):
  the SQLite database, the sandbox's state and certificates, Dagster's run storage.
- ``CRMHUB_DATABASE_URL``: the hub database (default ``sqlite:///$CRMHUB_HOME/hub.db``;
  PostgreSQL: ``postgresql://user@host:5432/db``).
- ``CRMHUB_CONFIG_DIR``: folder with ``rules.yaml`` and ``mapping.yaml`` (default ``config/``).
- Salesforce: ``CRMHUB_SF_INSTANCE_URL`` plus one credential set (``CRMHUB_SF_CLIENT_ID`` +
  ``CRMHUB_SF_CLIENT_SECRET``; or + ``CRMHUB_SF_REFRESH_TOKEN``; or ``CRMHUB_SF_USERNAME`` +
  ``CRMHUB_SF_PASSWORD`` [+ ``CRMHUB_SF_SECURITY_TOKEN``]; or ``CRMHUB_SF_USERNAME`` +
  ``CRMHUB_SF_JWT_KEY_FILE``), ``CRMHUB_SF_TOKEN_URL``, ``CRMHUB_SF_CA_BUNDLE``.
- HubSpot: ``CRMHUB_HS_ACCESS_TOKEN`` (private app) or ``CRMHUB_HS_CLIENT_ID`` +
  ``CRMHUB_HS_CLIENT_SECRET`` + ``CRMHUB_HS_REFRESH_TOKEN``; ``CRMHUB_HS_BASE_URL``,
  ``CRMHUB_HS_CA_BUNDLE``, ``CRMHUB_HS_ARCHIVED_CHECK_SECONDS`` (how often deletes are looked
  for; default 3600).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SF_ENV = (
    "CRMHUB_SF_INSTANCE_URL",
    "CRMHUB_SF_TOKEN_URL",
    "CRMHUB_SF_CLIENT_ID",
    "CRMHUB_SF_CLIENT_SECRET",
    "CRMHUB_SF_REFRESH_TOKEN",
    "CRMHUB_SF_USERNAME",
    "CRMHUB_SF_PASSWORD",
    "CRMHUB_SF_SECURITY_TOKEN",
    "CRMHUB_SF_JWT_KEY_FILE",
    "CRMHUB_SF_SESSION_ID",
    "CRMHUB_SF_CA_BUNDLE",
)
HS_ENV = (
    "CRMHUB_HS_BASE_URL",
    "CRMHUB_HS_ACCESS_TOKEN",
    "CRMHUB_HS_CLIENT_ID",
    "CRMHUB_HS_CLIENT_SECRET",
    "CRMHUB_HS_REFRESH_TOKEN",
    "CRMHUB_HS_CA_BUNDLE",
)


def hub_home() -> Path:
    return Path(os.environ.get("CRMHUB_HOME", ".crmhub")).resolve()


def database_url() -> str:
    url = os.environ.get("CRMHUB_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{hub_home() / 'hub.db'}"


def config_dir() -> Path:
    return Path(os.environ.get("CRMHUB_CONFIG_DIR", PROJECT_ROOT / "config")).resolve()


def sandbox_home() -> Path:
    return hub_home() / "sandbox"


@dataclass(frozen=True)
class Mode:
    """Which CRMs are real: a CRM without credentials is served by the sandbox."""

    salesforce_configured: bool
    hubspot_configured: bool

    @property
    def uses_sandbox(self) -> bool:
        return not (self.salesforce_configured and self.hubspot_configured)

    def describe(self) -> str:
        def one(name: str, real: bool) -> str:
            return f"{name}: {'configured CRM' if real else 'sandbox'}"

        return ", ".join(
            [one("Salesforce", self.salesforce_configured), one("HubSpot", self.hubspot_configured)]
        )


def detect_mode() -> Mode:
    """Which CRMs have credentials configured (presence of variables only; values unread)."""
    sf = "CRMHUB_SF_INSTANCE_URL" in os.environ
    hs = "CRMHUB_HS_ACCESS_TOKEN" in os.environ or "CRMHUB_HS_REFRESH_TOKEN" in os.environ
    return Mode(salesforce_configured=sf, hubspot_configured=hs)


def sandbox_environment(info: object) -> dict[str, str]:
    """Environment variables that point the hub's resources at a running sandbox."""
    return {
        "CRMHUB_SF_INSTANCE_URL": info.salesforce_url,  # type: ignore[attr-defined]
        "CRMHUB_SF_TOKEN_URL": f"{info.salesforce_url}/services/oauth2/token",  # type: ignore[attr-defined]
        "CRMHUB_SF_CLIENT_ID": info.sf_client_id,  # type: ignore[attr-defined]
        "CRMHUB_SF_CLIENT_SECRET": info.sf_client_secret,  # type: ignore[attr-defined]
        "CRMHUB_SF_CA_BUNDLE": info.ca_bundle,  # type: ignore[attr-defined]
        "CRMHUB_HS_BASE_URL": info.hubspot_url,  # type: ignore[attr-defined]
        "CRMHUB_HS_ACCESS_TOKEN": info.hs_token,  # type: ignore[attr-defined]
        "CRMHUB_HS_CA_BUNDLE": info.ca_bundle,  # type: ignore[attr-defined]
    }
