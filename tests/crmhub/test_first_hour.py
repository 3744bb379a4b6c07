"""The first hour's commands against a running sandbox, as a person reads them: ``doctor`` passes
on a healthy setup and names the one fix for a bad token, a missing HubSpot scope and an
unresolvable host (exit 1, JSON for CI, no secret printed); ``sync`` stops before extracting with
one line and exit code 2 for a bad token, an unknown mapped field (named by its mapping.yaml key)
and an unresolvable host (failing fast, not retried); and the small commands (customer list and
search, erase, matches review, sandbox mutate/serve, init, --version) answer with the exact line
and exit code the README documents.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crmhub.cli import main
from sandbox.runner import HS_ALL_SCOPES, SANDBOX_HS_TOKEN, SANDBOX_SF_CLIENT_SECRET, Sandbox
from sandbox.state import HS
from tests.crmhub.cli_support import Output, cli

pytestmark = pytest.mark.e2e

NO_CONTACT_WRITE_TOKEN = "pat-sandbox-no-contact-write"
LIMITED_TOKEN = "pat-sandbox-no-tickets-scope"
SECRETS = (
    SANDBOX_SF_CLIENT_SECRET,
    SANDBOX_HS_TOKEN,
    LIMITED_TOKEN,
    NO_CONTACT_WRITE_TOKEN,
    "pat-wrong-token",
)


def one_line(output: Output, *words: str) -> str:
    lines = [line for line in output.err.splitlines() if line.strip()]
    assert len(lines) == 1, output.err
    assert lines[0].startswith("crmhub: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in output.text
    return lines[0]


@dataclass
class Env:
    sandbox: Sandbox
    home: Path

    def ledger_head(self) -> int:
        return self.sandbox.state.ledger_head()

    def requests_since(self, head: int) -> list[dict[str, object]]:
        return self.sandbox.state.ledger(head)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A seeded tiny sandbox the hub reaches through CRMHUB_* variables (both CRMs "configured"),
    plus a token that lacks the ``tickets`` scope."""
    tmp = tmp_path_factory.mktemp("first_hour")
    dagster_home = tmp / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    sandbox = Sandbox(tmp / "home" / "sandbox")
    info = sandbox.start()
    sandbox.seed(profile="tiny", seed=42)
    sandbox.state.add_token(LIMITED_TOKEN, HS, [s for s in HS_ALL_SCOPES if s != "tickets"])
    sandbox.state.add_token(
        NO_CONTACT_WRITE_TOKEN,
        HS,
        [s for s in HS_ALL_SCOPES if s != "crm.objects.contacts.write"],
    )
    from crmhub.settings import sandbox_environment

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("CRMHUB_"):
                mp.delenv(key)
        for key, value in sandbox_environment(info).items():
            mp.setenv(key, value)
        mp.setenv("CRMHUB_HOME", str(tmp / "home"))
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        yield Env(sandbox, tmp / "home")
    sandbox.stop()


def no_secrets(output: Output) -> None:
    for secret in SECRETS:
        assert secret not in output.text


# --------------------------------------------------------------------------------------------
# doctor
# --------------------------------------------------------------------------------------------


def test_doctor_passes_on_a_healthy_setup_and_reports_as_json(env: Env) -> None:
    table = cli("doctor")
    assert table.code == 0, table.text
    assert "0 failed" in table.out
    for row in ("credentials", "read objects", "mapped fields", "write companies", "API budget"):
        assert row in table.out
    report = json.loads(cli("doctor", "--format", "json").out)
    assert report["ok"] is True
    names = {(c["crm"], c["name"]) for c in report["checks"]}
    assert ("salesforce", "credentials") in names and ("hubspot", "credentials") in names
    assert ("hub", "database") in names and ("dagster", "instance") in names
    no_secrets(table)


def test_doctor_checks_the_instance_sync_uses_when_dagster_home_is_unset(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without DAGSTER_HOME, sync records runs in ``$CRMHUB_HOME/dagster``: doctor checks that
    one (it used to check, and create, an instance in the repository folder)."""
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "hub"))
    report = json.loads(cli("doctor", "--format", "json").out)
    check = next(c for c in report["checks"] if (c["crm"], c["name"]) == ("dagster", "instance"))
    expected = (tmp_path / "hub" / "dagster").resolve()
    assert check["status"] == "pass" and check["detail"].startswith(f"{expected} (")
    assert (expected / "dagster.yaml").exists()


def test_doctor_names_the_variable_for_a_bad_hubspot_token(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_HS_ACCESS_TOKEN", "pat-wrong-token")
    done = cli("doctor", "--format", "json")
    assert done.code == 1
    failed = [c for c in json.loads(done.out)["checks"] if c["status"] == "fail"]
    assert [(c["crm"], c["name"]) for c in failed] == [("hubspot", "credentials")]
    assert "check CRMHUB_HS_ACCESS_TOKEN" in failed[0]["fix"]
    no_secrets(done)


def test_doctor_names_the_missing_hubspot_scope(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMHUB_HS_ACCESS_TOKEN", LIMITED_TOKEN)
    done = cli("doctor", "--format", "json")
    assert done.code == 1
    failed = [c for c in json.loads(done.out)["checks"] if c["status"] == "fail"]
    assert failed, done.out
    assert all(c["crm"] == "hubspot" for c in failed)
    assert failed[0]["name"] == "read tickets"
    assert failed[0]["detail"] == "missing scope tickets"
    assert failed[0]["fix"].startswith("add tickets to the private app's scopes")
    no_secrets(done)


def test_doctor_names_the_missing_contacts_write_scope(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marketing-suppression fields are written onto HubSpot contacts: a token that can
    write companies but not contacts fails there, before a sync finds out."""
    monkeypatch.setenv("CRMHUB_HS_ACCESS_TOKEN", NO_CONTACT_WRITE_TOKEN)
    done = cli("doctor", "--format", "json")
    assert done.code == 1
    checks = {(c["crm"], c["name"]): c for c in json.loads(done.out)["checks"]}
    failed = [k for k, c in checks.items() if c["status"] == "fail"]
    assert failed == [("hubspot", "write contacts")], done.out
    assert "crm.objects.contacts.write" in checks[("hubspot", "write contacts")]["fix"]
    assert checks[("hubspot", "write companies")]["status"] == "pass"
    assert checks[("hubspot", "hub contact fields missing")]["status"] == "warn"
    no_secrets(done)


def test_doctor_reports_an_unresolvable_host_at_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_SF_INSTANCE_URL", "https://nowhere.invalid")
    started = time.monotonic()
    done = cli("doctor", "--format", "json")
    assert done.code == 1
    failed = [c for c in json.loads(done.out)["checks"] if c["status"] == "fail"]
    assert failed[0] == {
        "crm": "salesforce",
        "name": "reach nowhere.invalid",
        "status": "fail",
        "detail": "nowhere.invalid does not resolve (DNS)",
        "fix": "check CRMHUB_SF_INSTANCE_URL (and the machine's DNS/proxy settings)",
    }
    assert time.monotonic() - started < 30


# --------------------------------------------------------------------------------------------
# sync preflight
# --------------------------------------------------------------------------------------------


def test_sync_with_a_bad_token_stops_before_extracting_with_one_line(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_HS_ACCESS_TOKEN", "pat-wrong-token")
    head = env.ledger_head()
    done = cli("sync")
    assert done.code == 2
    assert one_line(done) == (
        "crmhub: HubSpot: HubSpot rejected the access token (INVALID_AUTHENTICATION); check "
        "CRMHUB_HS_ACCESS_TOKEN (the private app's token may be rotated or the app deleted)"
    )
    no_secrets(done)
    data_calls = [r for r in env.requests_since(head) if "/query" in str(r["path"])]
    assert data_calls == [] and "Extracted" not in done.out


def test_sync_names_the_mapping_key_of_an_unknown_field_before_any_data_call(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "mapping.yaml").write_text("salesforce:\n  read:\n    usage_score: Usage_Scor__c\n")
    monkeypatch.setenv("CRMHUB_CONFIG_DIR", str(folder))
    head = env.ledger_head()
    done = cli("sync")
    assert done.code == 2
    line = one_line(done, "salesforce.read.usage_score", "Account.Usage_Scor__c")
    assert "field_map" not in line
    paths = [str(r["path"]) for r in env.requests_since(head)]
    assert not [p for p in paths if "/query" in p or "/search" in p], paths


def test_sync_with_an_unresolvable_host_fails_fast_naming_host_and_variable(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_SF_INSTANCE_URL", "https://nowhere.invalid")
    started = time.monotonic()
    done = cli("sync")
    assert done.code == 2
    one_line(done, "nowhere.invalid does not resolve", "CRMHUB_SF_INSTANCE_URL")
    assert time.monotonic() - started < 30


def test_connector_gives_up_at_once_on_an_unresolvable_host() -> None:
    """Not the 87 s of retries: DNS failure is not transient."""
    from connectors.diagnostics import UnreachableError
    from connectors.salesforce.client import SalesforceClient
    from connectors.salesforce.config import SalesforceConfig, SessionIdAuth

    client = SalesforceClient(
        SalesforceConfig(instance_url="https://nowhere.invalid", auth=SessionIdAuth("x" * 20)),
        sleep=lambda s: pytest.fail(f"slept {s} s: retried a DNS failure"),
    )
    with pytest.raises(UnreachableError) as caught:
        client.call("Account", lambda sf: sf.query("SELECT Id FROM Account"))
    assert str(caught.value) == (
        "Salesforce host nowhere.invalid does not resolve (DNS); check CRMHUB_SF_INSTANCE_URL "
        "and the network/DNS settings. Not retried."
    )


def test_a_transient_failure_that_persists_says_it_gave_up() -> None:
    from connectors.errors import TransientError
    from connectors.retry import retrying

    def fail() -> None:
        raise TransientError("HubSpot answered HTTP 503 on the companies API", crm="hubspot")

    with pytest.raises(TransientError) as caught:
        retrying(fail, attempts=3, sleep=lambda _: None)
    assert str(caught.value) == (
        "HubSpot answered HTTP 503 on the companies API; gave up after 3 attempts"
    )


# --------------------------------------------------------------------------------------------
# a real sync, then the look-ups
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synced(env: Env) -> Output:
    done = cli("sync")
    assert done.code == 0, done.text
    return done


def test_sync_shows_progress_lines_and_no_dagster_log(env: Env, synced: Output) -> None:
    assert "STEP_START" not in synced.text and "DEBUG" not in synced.text
    assert "salesforce accounts: done, 30 records" in synced.err
    no_secrets(synced)


def test_dry_run_prints_the_exact_diff_as_json(env: Env, synced: Output) -> None:
    cli("sandbox", "mutate", "--share", "0.2", "--seed", "7")
    done = cli("sync", "--dry-run", "--format", "json")
    assert done.code == 0, done.text
    rows = json.loads(done.out)
    assert rows, "the mutation changes something the hub writes"
    assert set(rows[0]) == {"crm", "record", "customer", "field", "old", "new"}
    summary = {
        crm: int(n)
        for crm, n in (
            line.split()[:2]
            for line in done.err.splitlines()
            if line.strip().startswith(("salesforce ", "hubspot ")) and "records changed" in line
        )
    }
    for crm, n in summary.items():
        assert len({r["record"] for r in rows if r["crm"] == crm}) == n


def test_customer_list_and_search(env: Env, synced: Output) -> None:
    listed = cli("customer", "list", "--format", "json")
    assert listed.code == 0
    rows = json.loads(listed.out)
    assert rows and set(rows[0]) == {"id", "name", "domain", "status", "owner"}
    name = next(r["name"] for r in rows if r["name"])
    found = cli("customer", "search", name.split()[0])
    assert found.code == 0 and name in found.out
    missing = cli("customer", "search", "no-such-customer-xyz")
    assert missing.code == 1
    assert missing.out.strip() == "No customers matching 'no-such-customer-xyz'."


def test_erase_validates_the_address_and_asks_for_confirmation(env: Env, synced: Output) -> None:
    for bad in ("", "not an email"):
        done = cli("erase", "--email", bad)
        assert done.code == 2
        one_line(done, f"'{bad}' is not an email address")
    done = cli("erase", "--email", "jane.doe@example.com")  # stdin is not a terminal here
    assert done.code == 2
    one_line(done, "cannot be undone; add --yes to confirm")
    done = cli("erase", "--email", "jane.doe@example.com", "--yes")
    assert done.code == 0 and done.out.startswith("Erased: 0 contacts")


def test_matches_review_of_an_unknown_id_is_one_line(env: Env, synced: Output) -> None:
    done = cli("matches", "review", "--confirm", "999")
    assert done.code == 2
    assert one_line(done) == (
        "crmhub: no match review #999; list them with 'crmhub matches review'"
    )


# --------------------------------------------------------------------------------------------
# small commands
# --------------------------------------------------------------------------------------------


def test_sandbox_mutate_without_a_sandbox_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path))
    done = cli("sandbox", "mutate")
    assert done.code == 2
    one_line(done, "no sandbox data in", "crmhub sandbox seed")
    assert not (tmp_path / "sandbox" / "sandbox.db").exists()


def test_sandbox_serve_on_a_port_in_use_names_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cli("sandbox", "serve", "--sf-port", str(port), "--hs-port", "0")
    assert done.code == 2
    one_line(done, f"port {port}", "--sf-port and --hs-port")


def test_init_writes_a_starter_env_once(tmp_path: Path) -> None:
    first = cli("init", "--dir", str(tmp_path))
    assert first.code == 0
    text = (tmp_path / ".env").read_text()
    assert "# CRMHUB_HS_ACCESS_TOKEN=" in text and "# CRMHUB_SF_INSTANCE_URL=" in text
    (tmp_path / ".env").write_text("CRMHUB_HS_ACCESS_TOKEN=mine\n")
    again = cli("init", "--dir", str(tmp_path))
    assert again.code == 0 and "left as it is" in again.out
    assert (tmp_path / ".env").read_text() == "CRMHUB_HS_ACCESS_TOKEN=mine\n"


def test_version_and_help_text_for_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("crmhub ")
    from crmhub.cli import build_parser

    undocumented: list[str] = []

    def walk(parser: object, path: str) -> None:
        for action in parser._actions:  # type: ignore[attr-defined]
            if action.choices and isinstance(action.choices, dict):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif action.option_strings and not action.help:
                undocumented.append(f"{path} {action.option_strings[0]}")
            elif not action.option_strings and action.dest != "help" and not action.help:
                undocumented.append(f"{path} {action.dest}")

    walk(build_parser(), "crmhub")
    assert undocumented == []


def test_what_a_dry_run_previews_is_what_the_next_real_run_writes(env: Env, synced: Output) -> None:
    """A dry run right after HubSpot edits does not see them yet (HubSpot is read 30 s behind
    its clock, for its search index lag) and says so; once the margin has passed, the preview
    and the real run that follows agree record for record and field for field."""
    cli("sandbox", "mutate", "--share", "0.3", "--seed", "21")
    early = cli("sync", "--dry-run", "--format", "json")
    assert early.code == 0, early.text
    assert "HubSpot was read up to" in early.err and "the next run reads them" in early.err
    env.sandbox.state.advance_clock(60)  # HubSpot's lag margin has passed
    preview = cli("sync", "--dry-run", "--format", "json")
    assert preview.code == 0, preview.text
    previewed = {(r["crm"], r["record"], r["field"], r["new"]) for r in json.loads(preview.out)}
    assert len(previewed) > len(json.loads(early.out)), "the HubSpot edits show up now"
    head = env.ledger_head()
    real = cli("sync")
    assert real.code == 0, real.text
    store_url = f"sqlite:///{env.home / 'hub.db'}"
    from sqlmodel import select

    from unified_model import tables as t
    from unified_model.store import HubStore

    store = HubStore(store_url)
    with store.session() as s:
        run_id = s.exec(select(t.WriteAudit.run_id).order_by(t.WriteAudit.id.desc())).first()
        written = {
            (a.source, a.source_id, key, new)
            for a in s.exec(select(t.WriteAudit).where(t.WriteAudit.run_id == run_id))
            for key, (_, new) in a.field_changes().items()
        }
    store.dispose()
    assert env.requests_since(head)
    strip = {(c, r, f) for c, r, f, _ in previewed}
    assert {(c, r, f) for c, r, f, _ in written} == strip
    assert {w for w in written if w[2] != "last_sync"} == {
        p for p in previewed if p[2] != "last_sync"
    }


def test_reconcile_summary_counts_the_hard_deletes_it_found(env: Env, synced: Output) -> None:
    from unified_model import tables as t
    from unified_model.store import HubStore

    store = HubStore(f"sqlite:///{env.home / 'hub.db'}")
    contacts = [c for c in store.live(t.Contact) if c.source == "salesforce"]
    store.dispose()
    gone = [c.source_id for c in contacts if c.source_id.startswith("003")][:3]
    assert len(gone) == 3
    for rid in gone:
        assert env.sandbox.state.hard_delete("salesforce", "Contact", rid)
    done = cli("sync", "--reconcile")
    assert done.code == 0, done.text
    line = next(x for x in done.out.splitlines() if x.startswith("  salesforce contacts"))
    assert line.endswith(", 3 deletions"), line
    assert int(line.split()[2]) >= 3


def test_database_problems_are_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once the socket is closed
    monkeypatch.setenv("CRMHUB_DATABASE_URL", f"postgresql://crmhub:s3cret@127.0.0.1:{port}/hub")
    done = cli("customer", "show", "anything")
    assert done.code == 2
    line = one_line(done, f"postgresql://crmhub:***@127.0.0.1:{port}/hub", "CRMHUB_DATABASE_URL")
    assert "s3cret" not in done.text
    assert line == (
        f"crmhub: cannot reach the hub database postgresql://crmhub:***@127.0.0.1:{port}/hub; "
        "start the database server or fix the host and port in CRMHUB_DATABASE_URL"
    )


def test_verbose_adds_the_traceback(env: Env, synced: Output) -> None:
    quiet = cli("matches", "review", "--confirm", "999")
    assert "Traceback" not in quiet.err
    loud = cli("matches", "review", "--confirm", "999", "-v")
    assert loud.code == 2
    assert "Traceback (most recent call last)" in loud.err
    assert loud.err.rstrip().splitlines()[-1] == (
        "crmhub: no match review #999; list them with 'crmhub matches review'"
    )


def test_quiet_sync_prints_nothing_when_all_is_well(env: Env, synced: Output) -> None:
    done = cli("sync", "-q")
    assert done.code == 0, done.text
    assert (done.out, done.err) == ("", "")


def test_plain_progress_line_has_rate_and_eta_when_the_total_is_known() -> None:
    from crmhub.progress import _Task, line

    task = _Task(label="salesforce contacts", started=0.0, records=2_000, pages=2, total=10_000)
    assert line(task, elapsed=4.0) == (
        "salesforce contacts: running, 2,000 records, 2 pages, 500/s, 4 s, ETA 16 s (2,000/10,000)"
    )
    task.done = True
    assert line(task, elapsed=20.0) == (
        "salesforce contacts: done, 2,000 records, 2 pages, 100/s, 20 s"
    )


def test_a_rejected_hubspot_token_is_in_no_frame_of_the_traceback(env: Env) -> None:
    """pytest prints the arguments of the frame that raised (the issue: the live contract test
    printed the token seven times): none of the hub's own frames holds it. (The SDK's internal
    frames do, but they are not the raising frame: the connector raises its own error.)"""
    from connectors.errors import AuthenticationError
    from connectors.hubspot.config import HubSpotConfig
    from connectors.hubspot.connector import HubSpotConnector

    info = env.sandbox.info
    token = "pat-wrong-token"
    connector = HubSpotConnector(
        HubSpotConfig(base_url=info.hubspot_url, access_token=token, ca_bundle=info.ca_bundle)
    )
    with pytest.raises(AuthenticationError) as caught:
        connector.validate(["account"])
    connector.close()
    tb = caught.value.__traceback__
    ours = str(Path(__file__).resolve().parents[2] / "connectors")
    frames = 0
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(ours):
            tb = tb.tb_next
            continue
        frames += 1
        for name, value in tb.tb_frame.f_locals.items():
            if name in ("self", "config", "token"):
                continue  # objects whose repr hides the secret / this test's own variable
            assert token not in repr(value), (tb.tb_frame.f_code.co_name, name)
        last = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    assert frames and last == "_send"  # the transport raised it, after its checks above
