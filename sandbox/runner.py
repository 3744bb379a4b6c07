"""Start and stop the sandbox CRMs, in-process (tests, ``crmhub sync``) or as a server.

The sandbox keeps its state in ``<home>/sandbox.db`` and its TLS files in ``<home>/tls/``. When it
serves on fixed ports (``crmhub sandbox serve``) it writes ``<home>/sandbox.json`` so that
``crmhub sync`` and the Dagster UI can find and reuse the running emulators instead of starting
their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sandbox.control import make_control
from sandbox.http import EmulatorServer
from sandbox.state import HS, SF, SandboxState
from sandbox.tls import ensure_certificates

#: The sandbox's built-in credentials. They open nothing but the local emulators.
SANDBOX_SF_CLIENT_ID = "crmhub-sandbox-client"
SANDBOX_SF_CLIENT_SECRET = "crmhub-sandbox-secret"
SANDBOX_SF_USERNAME = "admin@crmhub-sandbox.example"
SANDBOX_SF_PASSWORD = "sandbox-password"
SANDBOX_SF_SECURITY_TOKEN = "sandboxtoken"
SANDBOX_HS_TOKEN = "pat-sandbox-crmhub-all-scopes"

#: Every scope the hub may need; the sandbox's default HubSpot token has them all.
HS_ALL_SCOPES: tuple[str, ...] = (
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "tickets",
    "sales-email-read",
    "crm.objects.owners.read",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.deals.read",
    "e-commerce",
    "crm.objects.quotes.read",
    "crm.objects.quotes.write",
    "crm.schemas.custom.read",
)

DEFAULT_SF_PORT = 8443
DEFAULT_HS_PORT = 8444


@dataclass(frozen=True)
class SandboxInfo:
    """Where the running sandbox is and how to log in: what the hub's settings need."""

    salesforce_url: str
    hubspot_url: str
    ca_bundle: str
    state_path: str
    sf_client_id: str = SANDBOX_SF_CLIENT_ID
    sf_client_secret: str = SANDBOX_SF_CLIENT_SECRET
    hs_token: str = SANDBOX_HS_TOKEN

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


class Sandbox:
    """Both emulators over one state file. Use as a context manager or call start/stop."""

    def __init__(
        self, home: Path | str, *, sf_port: int = 0, hs_port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.state = SandboxState(self.home / "sandbox.db")
        self._ports = {SF: sf_port, HS: hs_port}
        self._host = host
        self.servers: dict[str, EmulatorServer] = {}
        self.ca_path, self._cert, self._key = ensure_certificates(self.home / "tls")

    def _provision_credentials(self) -> None:
        self.state.add_token(SANDBOX_HS_TOKEN, HS, HS_ALL_SCOPES)
        clients = self.state.get_json("config:salesforce_clients", {})
        clients.setdefault(SANDBOX_SF_CLIENT_ID, SANDBOX_SF_CLIENT_SECRET)
        self.state.set_json("config:salesforce_clients", clients)
        users = self.state.get_json("config:salesforce_users", {})
        users.setdefault(SANDBOX_SF_USERNAME, SANDBOX_SF_PASSWORD + SANDBOX_SF_SECURITY_TOKEN)
        self.state.set_json("config:salesforce_users", users)

    def start(self) -> SandboxInfo:
        from sandbox.hubspot.app import HubSpotApp
        from sandbox.salesforce.app import SalesforceApp

        self._provision_credentials()
        control = make_control(self.state, lambda: self.servers)
        for crm, app_cls in ((SF, SalesforceApp), (HS, HubSpotApp)):
            app = app_cls(self.state)
            srv = EmulatorServer(app, self._host, self._ports[crm], self._cert, self._key, control)
            srv.start()
            self.servers[crm] = srv
        return self.info

    @property
    def info(self) -> SandboxInfo:
        return SandboxInfo(
            salesforce_url=f"https://127.0.0.1:{self.servers[SF].port}",
            hubspot_url=f"https://127.0.0.1:{self.servers[HS].port}",
            ca_bundle=str(self.ca_path),
            state_path=str(self.state.path),
        )

    def seed(self, profile: str = "tiny", seed: int = 42) -> dict[str, Any]:
        """Reset and generate a data set (same as ``POST /__sandbox/seed``)."""
        from sandbox.generator import generate

        return generate(self.state, profile=profile, seed=seed)

    def is_seeded(self) -> bool:
        return self.state.count(SF, "Account") + self.state.count(HS, "companies") > 0

    def write_discovery(self) -> Path:
        path = self.home / "sandbox.json"
        payload = json.loads(self.info.to_json())
        payload["pid"] = os.getpid()
        path.write_text(json.dumps(payload, indent=2))
        return path

    def stop(self) -> None:
        for srv in self.servers.values():
            srv.stop()
        self.servers.clear()
        discovery = self.home / "sandbox.json"
        with contextlib.suppress(Exception):
            if json.loads(discovery.read_text()).get("pid") == os.getpid():
                discovery.unlink()
        self.state.close()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def find_running(home: Path | str) -> SandboxInfo | None:
    """The sandbox a ``crmhub sandbox serve`` left running under ``home``, if it still answers."""
    path = Path(home) / "sandbox.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        data.pop("pid", None)
        info = SandboxInfo(**data)
        host, port = info.hubspot_url.removeprefix("https://").split(":")
        ctx = ssl.create_default_context(cafile=info.ca_bundle)
        with (
            socket.create_connection((host, int(port)), timeout=1) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            pass
        return info
    except (OSError, ValueError, TypeError, KeyError):
        return None
