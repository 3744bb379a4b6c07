"""One HubSpot portal has one rate budget however many OS processes draw from it: two real
processes sharing the SQLite store (the default, a file next to the hub database) or the Redis
store (``CRMHUB_REDIS_URL``) never exceed the burst limit in any rolling window, nor the search
limit in any second, and together take as long as one budget needs; two connectors in separate
processes reading the sandbox portal through the shared store get no 429, where private
per-process limiters run into the portal's limit.

Redis runs on 127.0.0.1:6379 (``.ci/run`` starts it); under ``CI=true`` an unreachable Redis
fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (pytest runs importlib mode)
from test_hubspot_kit import ago, calls, sandbox_fixture, seed  # noqa: F401

from connectors.hubspot.limiter import store_label
from sandbox.control import set_config
from sandbox.runner import Sandbox
from sandbox.state import HS

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CRMHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# A child process: waits for the go file, then takes `n` permits (every other one a search) and
# prints the timestamp the limiter logged for each.
_LIMITER_CHILD = """
import json, sys, time
from pathlib import Path
from connectors.hubspot.limiter import PortalLimiter
store, key, go, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
last = [0.0]
def clock():
    last[0] = time.time()
    return last[0]
limiter = PortalLimiter(6, 0.5, 8, store=store, key=key, clock=clock)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
out = []
for i in range(n):
    search = i % 2 == 0
    limiter.acquire(search=search)
    out.append([last[0], search])
limiter.close()
print(json.dumps(out), flush=True)
"""

# A child process: reads HubSpot companies one per page through a connector with its own limiter
# (3 requests per 0.7 s) in the given store.
_CONNECTOR_CHILD = """
import sys, time
from pathlib import Path
from connectors.errors import TransientError
from connectors.hubspot import HubSpotConfig, HubSpotConnector
url, ca, token, store, go = sys.argv[1:6]
config = HubSpotConfig(base_url=url, ca_bundle=ca, access_token=token, burst_limit=3,
                       burst_window_seconds=0.7, search_per_second=100, rate_limit_store=store,
                       search_page_size=1, list_page_size=1, association_batch_size=1,
                       retry_attempts=1)
connector = HubSpotConnector(config)
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.002)
n = 0
try:
    for page in connector.read("account", None):
        n += len(page.records)
except TransientError:
    n = -1
print(n, flush=True)
"""


def _run_children(code: str, args: list[list[str]], go: Path) -> list[str]:
    """Start one process per argument list, release them together, return their last lines."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *a],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for a in args
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), outs
    return [o.strip().splitlines()[-1] for o in outs]


def _max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


@pytest.fixture
def redis_store() -> Iterator[str]:
    """The local Redis as a store (database 15, the tests'), emptied of rate-limit keys afterwards."""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"Redis at {store_label(REDIS_URL)} is unreachable under CI: {exc}")
        pytest.skip(f"Redis at {store_label(REDIS_URL)} is not running")
    yield REDIS_URL
    for key in client.scan_iter("crmhub:ratelimit:*"):  # database 15 is the tests'
        client.delete(key)
    client.close()


def _two_processes_share(store: str, tmp_path: Path) -> None:
    key = f"test_{uuid.uuid4().hex[:12]}"
    per_child = 15
    lines = _run_children(
        _LIMITER_CHILD, [[store, key, str(tmp_path / "go"), str(per_child)]] * 2, tmp_path / "go"
    )
    stamps = [json.loads(line) for line in lines]
    sent = sorted(t for child in stamps for t, _ in child)
    searches = sorted(t for child in stamps for t, s in child if s)
    assert len(sent) == 2 * per_child
    # Never more than the burst (6 per 0.5 s) in any window, nor 8 searches in any second ...
    assert _max_in_window(sent, 0.5) == 6
    assert _max_in_window(searches, 1.0) <= 8
    # ... and the two processes took turns: 30 requests at 6 per 0.5 s need four full windows,
    # where each process alone (15 requests) would have finished after two.
    assert sent[-1] - sent[0] >= 2.0


def test_two_processes_share_one_budget_through_sqlite(tmp_path: Path) -> None:
    _two_processes_share(f"sqlite:///{tmp_path / 'ratelimit.db'}", tmp_path)


def test_two_processes_share_one_budget_through_redis(redis_store: str, tmp_path: Path) -> None:
    _two_processes_share(redis_store, tmp_path)


def test_two_connector_processes_stay_under_the_portal_limit(sb: Sandbox, tmp_path: Path) -> None:
    """The emulator's burst window runs on real time, so this test waits a few seconds."""
    for i in range(6):
        seed(sb.state, "companies", {"name": str(i)}, rid=str(10 + i), created=ago(sb, 3600))
    set_config(sb.state, HS, {"burst_limit": 3, "burst_window_seconds": 0.5})
    info = sb.info
    base = [info.hubspot_url, info.ca_bundle, info.hs_token]

    head = sb.state.ledger_head()
    store = f"sqlite:///{tmp_path / 'ratelimit.db'}"
    lines = _run_children(
        _CONNECTOR_CHILD, [[*base, store, str(tmp_path / "go")]] * 2, tmp_path / "go"
    )
    assert lines == ["6", "6"]
    statuses = [c[2] for c in calls(sb, head)]
    assert statuses == [200] * 14  # 2 x (properties + 6 searches), never a 429

    # Control: a private limiter per process lets each send the full burst: the portal refuses.
    time.sleep(0.6)
    head = sb.state.ledger_head()
    go = tmp_path / "go2"
    _run_children(_CONNECTOR_CHILD, [[*base, "memory", str(go)]] * 2, go)
    assert 429 in [c[2] for c in calls(sb, head)]


def test_the_sync_resource_shares_the_budget_where_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_store: str
) -> None:
    """`crmhub sync` (the Dagster resources) keeps the log next to the hub database by default
    and in Redis when CRMHUB_REDIS_URL is set; the URL's password never shows in the label."""
    import dagster as dg

    from assets.definitions import build_resources

    monkeypatch.setenv("CRMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMHUB_HS_ACCESS_TOKEN", f"pat-{uuid.uuid4().hex}")
    monkeypatch.delenv("CRMHUB_REDIS_URL", raising=False)
    with dg.build_resources({"hubspot": build_resources()["hubspot"]}) as built:
        connector = built.hubspot.connector()
        limiter = connector.client.limiter
        assert limiter.store == f"sqlite:///{tmp_path / 'home' / 'ratelimit.db'}"
        limiter.acquire(search=True)
        assert (tmp_path / "home" / "ratelimit.db").exists()
        connector.close()

    monkeypatch.setenv("CRMHUB_REDIS_URL", redis_store)
    with dg.build_resources({"hubspot": build_resources()["hubspot"]}) as built:
        connector = built.hubspot.connector()
        assert connector.client.limiter.store == redis_store
        connector.client.limiter.acquire()
        connector.close()
    assert store_label("redis://:s3cret@cache.internal:6379/0") == "redis://cache.internal:6379/0"


def test_a_forked_process_opens_its_own_store_and_still_shares_the_budget(tmp_path: Path) -> None:
    """Store connections are not fork-safe: a forked child builds its own limiter for the same
    portal, and that limiter sees the requests the parent already spent."""
    from connectors.hubspot.limiter import shared_limiter

    store = f"sqlite:///{tmp_path / 'ratelimit.db'}"
    kw = {"burst_limit": 3, "burst_window_seconds": 30.0, "search_per_second": 2.0}
    parent = shared_limiter("https://fork.test", "tok", store=store, **kw)
    for _ in range(3):
        parent.acquire()
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 = own limiter and the burst already spent
        child = shared_limiter("https://fork.test", "tok", store=store, **kw)
        os._exit(0 if child is not parent and child.burst.take(time.time()) > 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
