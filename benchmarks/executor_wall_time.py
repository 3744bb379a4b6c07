"""Wall time of one full first sync, in-process executor next to the multiprocess one.

Why: scheduled runs use Dagster's multiprocess executor (independent extraction steps of the two
CRMs in parallel, one step per CRM pool), ``crmhub sync`` runs in-process. This prints what each
costs on a fresh hub against a freshly seeded sandbox, so the choice rests on a figure.

    uv run python benchmarks/executor_wall_time.py --profile demo
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent


def sync_job() -> dg.JobDefinition:
    """The code location's sync job (module level: the step processes rebuild it)."""
    from assets.definitions import build_definitions

    return build_definitions().resolve_job_def("sync_job")


def one(mode: str, profile: str, seed: int) -> tuple[float, bool, int]:
    from sandbox.runner import Sandbox

    tmp = Path(tempfile.mkdtemp(prefix=f"crmhub-bench-{mode}-"))
    for key in [k for k in os.environ if k.startswith(("CRMHUB_", "DAGSTER_"))]:
        del os.environ[key]
    os.environ["CRMHUB_HOME"] = str(tmp / "home")
    os.environ["CRMHUB_DATABASE_URL"] = f"sqlite:///{tmp / 'hub.db'}"
    (tmp / "dagster").mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", tmp / "dagster" / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(tmp / "dagster")
    try:
        with Sandbox(tmp / "home" / "sandbox") as sb:
            sb.seed(profile, seed=seed)
            sb.write_discovery()
            with dg.DagsterInstance.get() as instance:
                started = time.perf_counter()
                if mode == "in-process":
                    result = sync_job().execute_in_process(instance=instance, raise_on_error=False)
                else:
                    result = dg.execute_job(
                        dg.reconstructable(sync_job), instance=instance, raise_on_error=False
                    )
                seconds = time.perf_counter() - started
                steps = len([e for e in result.all_events if e.is_step_success])
                for event in result.all_events:
                    if event.is_step_failure:
                        error = event.event_specific_data.error  # type: ignore[union-attr]
                        while error.cause is not None:
                            error = error.cause
                        print(f"  {event.step_key} failed: {error.message.strip()[:300]}")
                return seconds, result.success, steps
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=["tiny", "demo", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--only", choices=["in-process", "multiprocess"], help="measure one executor only"
    )
    args = parser.parse_args()
    print(
        f"profile {args.profile}, seed {args.seed}, {os.cpu_count()} cores, load {os.getloadavg()}"
    )
    for mode in [args.only] if args.only else ["in-process", "multiprocess"]:
        seconds, ok, steps = one(mode, args.profile, args.seed)
        print(f"{mode:<13} {seconds:7.1f} s  success={ok}  steps={steps}", flush=True)


if __name__ == "__main__":
    main()
