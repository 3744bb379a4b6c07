"""The connectors, built from the user's own settings, log in, validate their field mapping and
parse the first page of every object kind their CRM serves, read-only; recorded once (against a
real Salesforce org / HubSpot portal, or the sandbox) these exchanges replay offline to the same
results, and no cassette holds a secret.

Modes (``CRMHUB_LIVE_CONTRACT``):

- unset: replay the cassettes in ``CRMHUB_LIVE_CASSETTE_DIR`` (default
  ``tests/connectors/cassettes/live``, recorded against the sandbox) without any server;
- ``record``: record against whatever ``CRMHUB_SF_*`` / ``CRMHUB_HS_*`` point at, into
  ``CRMHUB_LIVE_CASSETTE_DIR/<crm>/`` (a CRM without settings is skipped), then replay each
  cassette at once. A non-local org may not be recorded into the repository's folder: its
  cassettes hold real record values;
- ``sandbox``: start the sandbox, seed ``tiny``, point the variables at it and record (how the
  shipped cassettes are made).

Every scenario is read-only: the recorder refuses any request other than GETs, the OAuth token
endpoints, searches and batch reads before it leaves the machine. See README "Checking your own
CRM configuration (contract cassettes)".
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from connectors.errors import MappingError
from connectors.hubspot.mapping import KIND_SPECS, SPECS
from connectors.records import FieldUpdate
from connectors.salesforce.mapping import KIND_OBJECTS
from crmhub.settings import sandbox_environment
from sandbox.runner import (
    SANDBOX_HS_TOKEN,
    SANDBOX_SF_CLIENT_SECRET,
    SANDBOX_SF_PASSWORD,
    SANDBOX_SF_SECURITY_TOKEN,
    Sandbox,
)
from tests.connectors import live_support as live

#: Sandbox credentials: they open nothing but the local emulators, yet must not be recorded.
SANDBOX_SECRETS = [
    SANDBOX_SF_CLIENT_SECRET,
    SANDBOX_SF_PASSWORD,
    SANDBOX_SF_SECURITY_TOKEN,
    SANDBOX_HS_TOKEN,
]

#: Record class each kind must produce, per CRM.
RECORD_TYPES = {
    "owner": "OwnerRecord",
    "account": "AccountRecord",
    "contact": "ContactRecord",
    "deal": "DealRecord",
    "deal_stage": "DealStageRecord",
    "email": "EmailRecord",
    "ticket": "TicketRecord",
    "activity": "ActivityRecord",
}
#: Records a kind carries besides its own: the account kind also reads when each account got its
#: current owner (Salesforce AccountHistory, HubSpot's owner property history).
EXTRA_RECORD_TYPES = {"account": {"OwnerAssignmentRecord"}}
SF_OBJECTS = tuple(dict.fromkeys(o for objs in KIND_OBJECTS.values() for o in objs))


class ReadOnlyViolation(AssertionError):
    """The check tried to change something in the CRM; the request was never sent."""


def _allowed(method: str, path: str) -> bool:
    """Read-only requests: GETs, logins, searches and batch *reads* (POST only by API design)."""
    if method in ("GET", "HEAD"):
        return True
    if method != "POST":
        return False
    return (
        path.endswith("/oauth2/token")
        or path == "/oauth/v1/token"
        or path.endswith("/search")
        or path.endswith("/batch/read")
    )


def _guard(request: Any) -> Any:
    """vcrpy hook: runs before a request is sent (recording) or matched (replay)."""
    path = urlsplit(request.uri).path
    if not _allowed(request.method, path):
        raise ReadOnlyViolation(
            f"the live contract check must never write to your CRM, but the connector tried "
            f"{request.method} {path}; the request was stopped before it was sent"
        )
    return request


# ---- scenarios ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    crm: str
    name: str
    run: Callable[[Any], dict[str, Any]]
    #: Checks on the result beyond "the replay equals the recording" (clear failure messages).
    check: Callable[[dict[str, Any]], None]

    @property
    def id(self) -> str:
        return f"{self.crm}-{self.name}"


def _sf_describe(connector: Any) -> dict[str, Any]:
    """Describe every object the hub reads; the connector's own validation names unknown fields."""
    unknown: dict[str, str] = {}
    for sf_object in SF_OBJECTS:
        try:
            # The per-object check the first sync runs (mapped and standard fields); the public
            # ``validate()`` only covers objects with mapped fields.
            connector._reader.validate(sf_object)
        except MappingError as exc:
            unknown[sf_object] = str(exc)
    return {"objects": list(SF_OBJECTS), "unknown": unknown}


def _hs_properties(connector: Any) -> dict[str, Any]:
    """Properties of each object type, checked against the mapping by the connector itself."""
    unknown: dict[str, str] = {}
    for kind in SPECS:
        try:
            connector.validate([kind])
        except MappingError as exc:
            unknown[kind] = str(exc)
    return {"kinds": list(SPECS), "unknown": unknown}


def _check_mapping(result: dict[str, Any]) -> None:
    problems = result.get("unknown") or {}
    assert not problems, (
        "the field mapping does not fit this CRM (fix mapping.yaml in CRMHUB_CONFIG_DIR, "
        "default config/):\n"
        + "\n".join(f"- {where}: {message}" for where, message in problems.items())
    )


def _sf_limits(connector: Any) -> dict[str, Any]:
    """``GET limits/`` through the connector's session, and the quota header it budgets by."""
    body = connector._client.call("limits", lambda sf: sf.limits())
    shown = {
        name: sorted(k for k in ("Max", "Remaining") if isinstance(body[name].get(k), int))
        for name in ("DailyApiRequests", "DailyBulkV2QueryJobs")
        if isinstance(body.get(name), dict)
    }
    usage = connector.usage()
    return {"limits": shown, "quota_header": usage.quota_max is not None}


def _check_limits(result: dict[str, Any]) -> None:
    assert result["limits"].get("DailyApiRequests") == ["Max", "Remaining"], (
        "Salesforce's limits resource has no DailyApiRequests Max/Remaining: the integration "
        "user may lack 'View Setup and Configuration'"
    )
    assert result["quota_header"], (
        "no Sforce-Limit-Info header reached the connector (a proxy stripping headers?): the "
        "hub's API budget guard (budget_share) cannot see the org's usage"
    )


def _reader(kind: str) -> Callable[[Any], dict[str, Any]]:
    def run(connector: Any) -> dict[str, Any]:
        try:
            return live.page_summary(live.first_page(connector, kind))
        except MappingError as exc:
            # Recorded like any answer: the replay reproduces the same clear failure.
            return {**live.page_summary(None), "unknown": {kind: str(exc)}}

    return run


def _page_check(crm: str, kind: str) -> Callable[[dict[str, Any]], None]:
    def check(result: dict[str, Any]) -> None:
        _check_mapping(result)
        records = result["records"]
        own = [r for r in records if r[0] == RECORD_TYPES[kind]]
        assert len(own) <= live.PAGE_SIZE, f"{kind}: more rows than the page size"
        wrong = {r[0] for r in records} - {RECORD_TYPES[kind]} - EXTRA_RECORD_TYPES.get(kind, set())
        assert not wrong, f"{crm} {kind} produced {sorted(wrong)}, not {RECORD_TYPES[kind]}"
        assert all(r[1] for r in records), f"{kind}: a record without a source id"
        if records and not (crm == live.HS and kind == "owner"):
            # (HubSpot owners are read whole on every run: their pages need no position.)
            assert result["cursor_keys"], f"{kind}: a page without a cursor to resume from"
        if crm == live.HS and kind in KIND_SPECS and records:
            first = SPECS[KIND_SPECS[kind][0]]  # the first page comes from the kind's first object
            listed = ["GET", f"/crm/v3/objects/{first.object_type}"] in result["requests"]
            # A first sync through the list endpoint gets the associations inline (batch reads
            # only for records whose inline list HubSpot cut); through search, by batch reads.
            wanted = (
                set()
                if listed
                else {f"/{first.object_type}/{to}/batch/read" for to in first.associations}
            )
            sent = {p for _, p in result["requests"] if p.endswith("/batch/read")}
            missing = [w for w in wanted if not any(p.endswith(w) for p in sent)]
            assert not missing, f"{kind}: no associations batch read for {missing}"

    return check


SCENARIOS: list[Scenario] = [
    Scenario(live.SF, "describe", _sf_describe, _check_mapping),
    *(
        Scenario(live.SF, f"read_{kind}", _reader(kind), _page_check(live.SF, kind))
        for kind in KIND_OBJECTS
    ),
    Scenario(live.SF, "limits", _sf_limits, _check_limits),
    Scenario(live.HS, "properties", _hs_properties, _check_mapping),
    *(
        Scenario(live.HS, f"read_{kind}", _reader(kind), _page_check(live.HS, kind))
        for kind in ("owner", *KIND_SPECS)
    ),
]


# ---- running a scenario -----------------------------------------------------------------------
def _run(scenario: Scenario, crm_dir: Path, connector: Any, record_mode: str) -> dict[str, Any]:
    """The scenario inside its cassette; the result plus the requests it made."""
    with live.recorder(crm_dir, _guard).use_cassette(
        f"{scenario.name}.yaml", record_mode=record_mode
    ) as c:
        try:
            result = scenario.run(connector)
        finally:
            connector.close()
        if record_mode == "none":
            assert c.all_played, f"{scenario.id}: the connector skipped recorded requests"
        result["requests"] = live.request_shapes(c)
    return result


def _replay(scenario: Scenario, crm_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    build = live.replay_salesforce if scenario.crm == live.SF else live.replay_hubspot
    return _run(scenario, crm_dir, build(crm_dir, manifest), "none")


def _first_request_is_login(scenario: Scenario, manifest: dict[str, Any], result: dict) -> None:
    """Every cassette starts with the configured login flow (a bare token needs none)."""
    if manifest["auth"] in ("SessionIdAuth", "access_token"):
        return
    assert result["requests"][:1] == [["POST", manifest.get("token_path", "/oauth/v1/token")]], (
        f"{scenario.id}: the first request is not the {manifest['auth']} login"
    )


@pytest.fixture(scope="module")
def live_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The mode, the cassette folder and (``sandbox`` mode) a seeded sandbox in the environment."""
    mode = live.mode()
    root = live.cassette_root()
    if mode != "sandbox":
        yield {"mode": mode, "root": root}
        return
    with (
        Sandbox(tmp_path_factory.mktemp("live-sandbox")) as sb,
        pytest.MonkeyPatch.context() as mp,
    ):
        sb.seed("tiny")
        for name in (*live.SECRET_ENV, "CRMHUB_SF_USERNAME", "CRMHUB_SF_JWT_KEY_FILE"):
            mp.delenv(name, raising=False)
        for name, value in sandbox_environment(sb.info).items():
            mp.setenv(name, value)
        yield {"mode": "record", "root": root}


@pytest.fixture(scope="module")
def recordings(live_setup: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per CRM being recorded: its folder's manifest (set up once per module run)."""
    return {}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_contract(
    scenario: Scenario, live_setup: dict[str, Any], recordings: dict[str, dict[str, Any]]
) -> None:
    root: Path = live_setup["root"]
    crm_dir = root / scenario.crm
    if live_setup["mode"] == "replay":
        manifest = live.load_manifest(crm_dir)
        expected = (manifest or {}).get("scenarios", {}).get(scenario.name)
        if expected is None or not (crm_dir / f"{scenario.name}.yaml").exists():
            if live.is_repo_root(root):
                pytest.fail(
                    f"the shipped live cassette {scenario.id} is missing; re-create them with "
                    "CRMHUB_LIVE_CONTRACT=sandbox uv run pytest tests/connectors/test_live_contract.py"
                )
            pytest.skip(f"{crm_dir} holds no recording of {scenario.name}")
        assert manifest is not None
        result = _replay(scenario, crm_dir, manifest)
        assert result == expected, (
            f"{scenario.id}: the connector no longer reads the recorded exchange the way it did "
            "when it was recorded; re-record if the connector changed on purpose"
        )
    else:
        result, manifest = _record(scenario, root, crm_dir, recordings)
    _first_request_is_login(scenario, manifest, result)
    scenario.check(result)


def _record(
    scenario: Scenario, root: Path, crm_dir: Path, recordings: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    crm = scenario.crm
    if not live.configured(crm):
        names = (
            "CRMHUB_SF_INSTANCE_URL and its credentials"
            if crm == live.SF
            else "CRMHUB_HS_ACCESS_TOKEN (or the OAuth triple)"
        )
        pytest.skip(f"{crm} is not configured: set {names} to record it")
    if live.is_repo_root(root) and not live.is_local(live.target_url(crm)):
        pytest.fail(
            f"refusing to record a real {crm} into the repository ({root}): recordings hold real "
            f"record values. Set {live.DIR_ENV} to a folder outside the repository."
        )
    connector, mapping_file = (live.live_salesforce if crm == live.SF else live.live_hubspot)()
    if crm not in recordings:
        recordings[crm] = live.start_recording(crm, crm_dir, connector, mapping_file)
    manifest = recordings[crm]
    # A scenario that fails while recording must not leave an older recording behind.
    manifest["scenarios"].pop(scenario.name, None)
    live.save_manifest(crm_dir, manifest)
    (crm_dir / f"{scenario.name}.yaml").unlink(missing_ok=True)
    recorded = _run(scenario, crm_dir, connector, "all")
    manifest["scenarios"][scenario.name] = recorded
    live.save_manifest(crm_dir, manifest)
    replayed = _replay(scenario, crm_dir, manifest)
    assert replayed == recorded, f"{scenario.id}: the fresh cassette does not replay the same"
    return recorded, manifest


# ---- secrets ------------------------------------------------------------------------------------
def _cassette_files() -> list[Path]:
    roots = {live.cassette_root(), live.REPO_DIR}
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def test_no_secret_in_any_live_cassette() -> None:
    files = _cassette_files()
    shipped = [
        p
        for p in files
        if p.suffix == ".yaml" and p.name != "mapping.yaml" and live.REPO_DIR in p.parents
    ]
    assert len(shipped) >= len(SCENARIOS), "the shipped live cassettes are missing"
    secrets = [*SANDBOX_SECRETS, *live.environment_secrets(), *sorted(live.ISSUED)]
    for path in files:
        text = path.read_text(errors="replace")
        assert live.leaks(text, secrets) == [], f"{path} holds a secret"
        if path.suffix != ".yaml" or path.name == "mapping.yaml":
            continue
        for interaction in (yaml.safe_load(text) or {}).get("interactions", []):
            sent = {k.lower() for k in interaction["request"]["headers"]}
            got = {k.lower() for k in interaction["response"]["headers"]}
            assert not sent & {"authorization", "cookie"}, f"{path}: a credential header"
            assert not got & {"set-cookie", "set-cookie2"}, f"{path}: a cookie"


def test_the_scrubbers_remove_what_they_must() -> None:
    """The filters themselves, on a token exchange of each kind (independent of any recording)."""
    with tempfile.TemporaryDirectory() as tmp:
        recorder = live.recorder(Path(tmp))
        filtered_form = set(recorder.filter_post_data_parameters)
    assert filtered_form >= {"client_secret", "password", "refresh_token", "assertion"}
    response = {
        "headers": {"Set-Cookie": ["BrowserId=abc"], "Content-Type": ["application/json"]},
        "body": {
            "string": b'{"access_token": "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAIrrbbHMuol7GQxnMeYMN7cj8EoWr78nh5TtNvNNy6V8JPp7aRJ", '
            b'"refresh_token": "5Aep861TSESvWeug_xvFHRBTTbf", "signature": "sig-x1y2z3", "token_type": "Bearer"}'
        },
    }
    scrubbed = live.scrub_response(response)
    text = scrubbed["body"]["string"].decode()
    assert "00Dxx" not in text and "5Aep" not in text and "sig-x1y2z3" not in text
    assert text.count("REDACTED") == 3 and '"token_type": "Bearer"' in text
    assert "Set-Cookie" not in scrubbed["headers"]
    assert {"5Aep861TSESvWeug_xvFHRBTTbf", "sig-x1y2z3"} <= live.ISSUED  # searched for by the scan
    # The scan finds what it looks for, by value and by shape.
    assert live.leaks("Authorization: Bearer " + SANDBOX_HS_TOKEN, [SANDBOX_HS_TOKEN])
    assert live.leaks("x 00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX y", [])
    assert live.leaks("pat-na1-0123abcd-1111-2222-3333-444455556666", [])
    assert live.leaks("Basic Y3JtaHViLXNhbmRib3g6c2VjcmV0", [])
    assert not live.leaks("Basic Reporting; Billing", [])
    assert _allowed("POST", "/crm/v3/objects/deals/search")
    assert not _allowed("PATCH", "/services/data/v59.0/composite/sobjects")
    assert not _allowed("POST", "/crm/v3/objects/companies/batch/update")
    assert not _allowed("POST", "/services/data/v59.0/tooling/sobjects/CustomField")


def test_mode_and_folder_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(live.MODE_ENV, raising=False)
    monkeypatch.delenv(live.DIR_ENV, raising=False)
    assert live.mode() == "replay" and live.cassette_root() == live.REPO_DIR
    monkeypatch.setenv(live.MODE_ENV, "record")
    monkeypatch.setenv(live.DIR_ENV, os.fspath(Path("/tmp/my-org")))
    assert live.mode() == "record" and live.cassette_root() == Path("/tmp/my-org").resolve()
    monkeypatch.setenv(live.MODE_ENV, "recrod")
    with pytest.raises(live.LiveCheckError, match="not a mode"):
        live.mode()
    assert live.is_local("https://127.0.0.1:8443") and live.is_local("https://localhost:1")
    assert not live.is_local("https://acme.my.salesforce.com")


def test_a_write_is_stopped_before_it_leaves_the_machine(tmp_path: Path) -> None:
    """The read-only guard, on a real write of the connector (nothing listens at REPLAY_URL)."""
    connector = live.replay_hubspot(tmp_path, {"auth": "access_token", "page_size": 5})
    with (
        live.recorder(tmp_path, _guard).use_cassette("write.yaml", record_mode="all"),
        pytest.raises(ReadOnlyViolation, match="POST /crm/v3/objects/companies/batch/update"),
    ):
        connector.write([FieldUpdate("101", {"health_score": "1"})])
    connector.close()
    assert not (tmp_path / "write.yaml").exists()
