"""The Dagster UI as an operator sees it, in headless Chromium: after a sandbox sync (tiny profile)
and a failed run whose alert went to a local webhook, the webserver (loopback, ephemeral port)
shows the asset graph with the Salesforce and HubSpot extract groups told apart, a
materialization's metadata, the checks of an extract asset, both schedules running, and the failed
run with its alert recorded. Screenshots go to test-artifacts/browser/ (git-ignored)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets import alerts
from assets.definitions import build_definitions
from sandbox.runner import Sandbox

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _webhook() -> tuple[str, list[dict[str, Any]], ThreadingHTTPServer]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"json://127.0.0.1:{server.server_address[1]}/hook", received, server


@pytest.fixture
def ui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A materialized sandbox hub, a failed run with its alert, and the webserver over them."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("Chromium is missing: apt-get install -y chromium chromium-driver (.ci/run)")
    for key in list(os.environ):
        if key.startswith(("CRMHUB_", "DAGSTER_")):
            monkeypatch.delenv(key)
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("CRMHUB_HOME", str(home))
    monkeypatch.setenv("CRMHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    url, received, hook = _webhook()
    with Sandbox(home / "sandbox") as sb:
        sb.seed("tiny", seed=9)
        with dg.DagsterInstance.get() as instance:
            # a failed run first: no CRM configured yet, its alert goes to the webhook
            failed = (
                build_definitions()
                .resolve_job_def("sync_job")
                .execute_in_process(instance=instance, raise_on_error=False)
            )
            assert not failed.success
            event = next(
                e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE
            )
            monkeypatch.setenv(alerts.ALERT_URL_ENV, url)
            alerts.run_failure_alert(
                dg.build_run_status_sensor_context(
                    sensor_name="crmhub_run_failure_alert",
                    dagster_event=event,
                    dagster_instance=instance,
                    dagster_run=failed.dagster_run,
                ).for_run_failure()
            )
            assert len(received) == 1
            # then the sandbox serves and a sync materializes everything
            sb.write_discovery()
            ok = (
                build_definitions()
                .resolve_job_def("sync_job")
                .execute_in_process(instance=instance, raise_on_error=False)
            )
            assert ok.success
        port = _free_port()
        web = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster-webserver")),
                "-m",
                "assets.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=open(tmp_path / "webserver.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/server_info", timeout=5):
                        break
                except OSError:
                    if time.monotonic() > deadline or web.poll() is not None:
                        raise AssertionError(
                            (tmp_path / "webserver.log").read_text()[-3000:]
                        ) from None
                    time.sleep(1)
            yield {"base": base, "failed_run": failed.run_id, "ok_run": ok.run_id}
        finally:
            web.terminate()
            web.wait(timeout=60)
            hook.shutdown()
            hook.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="crmhub-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's pictures only
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _page(driver: Any, url: str, *texts: str, shot: str, timeout: float = 120) -> str:
    """Open a page, wait until every text is shown, save a screenshot, return the page text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.get(url)
    _skip_community_prompt(driver)
    try:
        WebDriverWait(driver, timeout, poll_frequency=1).until(
            lambda d: all(t in d.find_element(By.TAG_NAME, "body").text for t in texts)
        )
    except TimeoutException:
        driver.save_screenshot(str(ARTIFACTS / f"{shot}-FAILED.png"))
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{url}: {texts} not all shown; page text: {body[:1500]}") from None
    time.sleep(1)  # let the graph finish laying out before the picture
    driver.save_screenshot(str(ARTIFACTS / f"{shot}.png"))
    return str(driver.find_element(By.TAG_NAME, "body").text)


def _skip_community_prompt(driver: Any) -> None:
    """The UI's first-visit "Join the Dagster community" dialog covers the page: skip it."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        button = WebDriverWait(driver, 8).until(
            ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Skip']"))
        )
    except TimeoutException:
        return
    button.click()


def _graphql(base: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]  # type: ignore[no-any-return]


def test_operator_sees_the_hub_in_the_dagster_ui(ui: dict[str, Any], browser: Any) -> None:
    base = ui["base"]
    # the asset graph: one group per CRM and stage, the CRMs told apart
    _page(
        browser,
        f"{base}/asset-groups",
        "salesforce_extract",
        "hubspot_extract",
        "unify",
        "salesforce_writeback",
        shot="1-asset-graph",
    )
    # a materialization's metadata, the numbers the UI plots
    _page(
        browser,
        f"{base}/assets/salesforce/accounts?view=events",
        "api_calls",
        "records",
        "upserted",
        shot="2-materialization-metadata",
    )
    # the checks of an extract asset
    _page(
        browser,
        f"{base}/assets/hubspot/contacts?view=checks",
        "newest_record_fresh",
        "not_stopped_by_quota",
        "freshness_check",
        shot="3-extract-checks",
    )
    # the KPI table as markdown on the insights asset
    _page(browser, f"{base}/assets/customer_kpis?view=events", "company_kpis", shot="4-kpis")
    # both schedules, running (against the sandbox)
    _page(
        browser,
        f"{base}/automation",
        "sync_schedule",
        "reconcile_schedule",
        "crmhub_run_failure_alert",
        shot="5-automation",
    )
    data = _graphql(
        base,
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { schedules { name "
        "scheduleState { status } } } } } }",
    )
    states = {
        s["name"]: s["scheduleState"]["status"]
        for repo in data["repositoriesOrError"]["nodes"]
        for s in repo["schedules"]
    }
    assert states == {"sync_schedule": "RUNNING", "reconcile_schedule": "RUNNING"}
    # the failed run, with its alert recorded on it (the Runs list filtered on the alert tag)
    text = _page(
        browser,
        f"{base}/runs?q%5B0%5D=tag%3Acrmhub%2Falert%3Dsent",
        ui["failed_run"][:8],
        "crmhub/alert",
        shot="6-failed-run-alert",
    )
    assert ui["ok_run"][:8] not in text  # the successful run sent no alert
