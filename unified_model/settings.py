"""Where crmhub keeps its data and which CRMs it talks to, from environment variables.

This module sits below the Dagster graph (``assets/``) and the CLI (``crmhub/``), which both
import it: the graph must not import the CLI package (DESIGN.md, "settings below the graph").

Why environment variables: credentials must never live in files that end up in git or in Dagster's
run config; Dagster resources read them through ``dg.EnvVar``. This module only decides *which*
mode the hub runs in (real CRMs or the built-in sandbox) by checking which variables are present;
it never reads a secret's value.

Variables (all optional):

- ``CRMHUB_HOME``: the hub's working folder (default ``.crmhub`` in the current directory):
  the SQLite database, the sandbox's state and certificates, and the Dagster instance
  (``DAGSTER_HOME`` defaults to ``$CRMHUB_HOME/dagster``, see ``ensure_dagster_home``).
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
  for; default 21600), ``CRMHUB_HS_BURST_LIMIT`` (the hub's share of the portal's requests per
  10 s, default 100: every tier allows it; Professional and Enterprise portals allow 190),
  ``CRMHUB_HS_WRITE_CONCURRENCY`` (batch updates a writeback keeps in flight, default 4).
- ``CRMHUB_MAX_CONCURRENT_STEPS``: step processes the multiprocess executor runs at once
  (default 4; see ``max_concurrent_steps``).
- ``CRMHUB_HUB_WORKERS``: processes a full handover evaluation uses (default: the cores, at
  most 4; see ``hub_workers``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
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


# --------------------------------------------------------------------------------------------
# the Dagster instance
# --------------------------------------------------------------------------------------------


def dagster_home() -> Path:
    """Where Dagster keeps run history, event logs, schedules and compute logs.

    ``DAGSTER_HOME`` when set, else ``$CRMHUB_HOME/dagster``: one hub, one run history, wherever
    the command is run from.
    """
    explicit = os.environ.get("DAGSTER_HOME")
    return Path(explicit).resolve() if explicit else hub_home() / "dagster"


def ensure_dagster_home() -> Path:
    """Create the Dagster home with the project's ``dagster.yaml`` and set ``DAGSTER_HOME``.

    The repo's ``dagster.yaml`` is the template (run queue, retries, run monitoring, concurrency);
    it is copied only when the folder has none, so an operator's own instance file (PostgreSQL
    storage, say) is never overwritten.
    """
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


# --------------------------------------------------------------------------------------------
# finding a running sandbox (``crmhub sandbox serve`` writes sandbox.json)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningSandbox:
    """What the sandbox's discovery file says: enough for ``sandbox_environment``."""

    salesforce_url: str
    hubspot_url: str
    ca_bundle: str
    sf_client_id: str
    sf_client_secret: str
    hs_token: str


SANDBOX_HINT = (
    "no CRM credentials are set and no sandbox is running: start one with "
    "`uv run crmhub sandbox serve` (same CRMHUB_HOME), or set the CRMHUB_SF_* / CRMHUB_HS_* "
    "variables for your CRMs"
)


def _answers(url: str) -> bool:
    host, _, port = url.removeprefix("https://").partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def running_sandbox(home: Path | None = None) -> RunningSandbox | None:
    """The sandbox that ``crmhub sandbox serve`` left running under ``CRMHUB_HOME``, if any.

    Why here and not ``sandbox.runner.find_running``: the Dagster code location (``dg dev``)
    must find it too, and the graph may not import the sandbox package. The file is read as
    plain JSON and both ports must accept a connection.
    """
    path = (home or sandbox_home()) / "sandbox.json"
    try:
        data = json.loads(path.read_text())
        info = RunningSandbox(
            salesforce_url=data["salesforce_url"],
            hubspot_url=data["hubspot_url"],
            ca_bundle=data["ca_bundle"],
            sf_client_id=data["sf_client_id"],
            sf_client_secret=data["sf_client_secret"],
            hs_token=data["hs_token"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _answers(info.salesforce_url) and _answers(info.hubspot_url):
        return info
    return None


def use_running_sandbox() -> str:
    """Point a CRM without credentials at the running sandbox (sets ``CRMHUB_*`` variables).

    Returns one line for the log: which CRMs go to the sandbox, or how to start one. Only
    variables that are not set are filled in, so a configured CRM is never redirected.
    """
    mode = detect_mode()
    if not mode.uses_sandbox:
        return mode.describe()
    info = running_sandbox()
    if info is None:
        return f"crmhub: {SANDBOX_HINT}"
    for key, value in sandbox_environment(info).items():
        crm_configured = (
            mode.salesforce_configured if key.startswith("CRMHUB_SF_") else mode.hubspot_configured
        )
        if not crm_configured:
            os.environ.setdefault(key, value)
    os.environ["CRMHUB_SANDBOX"] = "1"
    return f"{mode.describe()} (the sandbox at {info.salesforce_url}, {info.hubspot_url})"


def on_sandbox() -> bool:
    """Whether this process talks to the sandbox (set by ``use_running_sandbox`` / ``crmhub``)."""
    return os.environ.get("CRMHUB_SANDBOX", "") == "1"


class SettingsError(ValueError):
    """A ``CRMHUB_*`` setting has a value the hub cannot use; the message names the variable
    and the fix (the CLI shows it as one line and exits 2)."""

    exit_code = 2


#: default of ``CRMHUB_MAX_CONCURRENT_STEPS``
DEFAULT_MAX_CONCURRENT_STEPS = 4


def max_concurrent_steps() -> int:
    """How many step processes the multiprocess executor runs at once.

    Why 4 and not Dagster's default (one per core): most steps wait on a CRM (HTTP, the shared
    rate budget) or on the database, and starting a step process costs about a second of CPU,
    so on two cores two slots left one CRM's short incremental steps queued behind each other
    and the four unify checks, the two writebacks and the company KPIs waiting for a slot. The
    CRM pools (``dagster.yaml``) still cap each CRM's concurrent steps, and the HubSpot budget
    is shared by every process.
    """
    return _positive_int("CRMHUB_MAX_CONCURRENT_STEPS", DEFAULT_MAX_CONCURRENT_STEPS, "e.g. 4")


#: default of ``CRMHUB_CRM_STEPS``: the ``concurrency.pools.default_limit`` of ``dagster.yaml``
DEFAULT_CRM_STEPS = 2


def crm_steps() -> int:
    """How many steps of one CRM a run's executor starts at once (``CRMHUB_CRM_STEPS``).

    Why a run-level limit beside the instance's CRM pools: a step held back by a pool is
    re-checked on Dagster's back-off (1 s, growing to 15 s), so on ``large`` each HubSpot step
    that waited for the pool started 6 to 14 s after a slot freed (about 50 s of a first
    sync's critical path). The executor's own tag limit holds the same steps and starts the
    next one the moment one ends; the pool then always has a slot for the run (one run per hub
    at a time) and still caps what several runs on one instance do together. Keep the two
    equal: a pool below this setting brings the back-off back, one above it is not used.
    """
    return _positive_int("CRMHUB_CRM_STEPS", DEFAULT_CRM_STEPS, "e.g. 2 (the CRM pool's limit)")


def hub_workers() -> int:
    """How many processes a full handover evaluation uses (``CRMHUB_HUB_WORKERS``).

    Default: the machine's cores, at most 4. Why: evaluating every customer (a first sync,
    the first sync of a business day, a rules change) is per-customer Python, one core's work
    for minutes on a large org, while the other cores idle once the company KPIs are done. 1
    keeps it in the step's own process.
    """
    cores = max(1, min(4, os.cpu_count() or 1))
    return _positive_int("CRMHUB_HUB_WORKERS", cores, "e.g. 2 (1: no worker processes)")


def _positive_int(name: str, default: int, example: str) -> int:
    """A whole-number setting of 1 or more; unset is ``default``, anything else one clear error."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(
            f"{name}={raw!r} is not a positive whole number; set it to {example} or unset it"
        )
    return value


#: the variable naming the scheduled jobs' executor (``assets.definitions.scheduled_executor``)
EXECUTOR_ENV = "CRMHUB_EXECUTOR"
#: number settings read by the HubSpot resource at run time: variable -> smallest value
NUMBER_SETTINGS = {
    "CRMHUB_HS_ARCHIVED_CHECK_SECONDS": 0,
    "CRMHUB_HS_BURST_LIMIT": 1,
    "CRMHUB_HS_WRITE_CONCURRENCY": 1,
}


def whole_number(name: str, minimum: int = 0) -> int | None:
    """A whole-number setting of at least ``minimum``; None when unset.

    Its form is checked where a mistake is one line naming the variable: left to the run,
    ``abc`` ended the sync as "unexpected DagsterInvalidConfigError". (Number settings are
    limits and intervals, never secrets.)
    """
    if name not in os.environ:
        return None
    raw = os.environ[name].strip()
    if not raw.isdigit() or int(raw) < minimum:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number of {minimum} or more; "
            "set it to a number or unset it"
        )
    return int(raw)


def executor_kind() -> str:
    """The scheduled jobs' executor named by ``CRMHUB_EXECUTOR`` (default multiprocess)."""
    kind = os.environ.get(EXECUTOR_ENV, "multiprocess")
    if kind not in ("multiprocess", "celery", "k8s"):
        raise SettingsError(f"{EXECUTOR_ENV}={kind}: use multiprocess, celery or k8s")
    return kind


def check_settings() -> None:
    """Read every ``CRMHUB_*`` setting the code location reads as it loads, building nothing.

    Why: ``crmhub sync`` starts (and on a first run seeds) the sandbox before it loads the
    code location, whose resources point at the sandbox; a mistyped number or executor name
    then ended the run with its one line only after the sandbox had started. Read here first
    (and here, not in the graph's module, which builds the definitions as it is imported),
    the same line comes before anything starts. Raises ``SettingsError``.
    """
    for name, minimum in NUMBER_SETTINGS.items():
        whole_number(name, minimum)
    executor_kind()
    max_concurrent_steps()
    crm_steps()
    hub_workers()
