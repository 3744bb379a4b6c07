"""Measure the sandbox data generator at scale: wall and CPU time, record counts, peak memory.

Why: the ``large`` profile (100,000 customers, over a million activity records) must generate in a
few minutes with flat memory on a 2-core machine; this script is how that claim is checked. It
writes the state to a temporary directory (default under /tmp) and deletes it afterwards.

Usage: ``uv run python benchmarks/generate_large.py [--profile large] [--seed 42] [--keep]``
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sandbox.generator import generate
from sandbox.state import SandboxState

ACTIVITY = (
    "salesforce/EmailMessage",
    "hubspot/emails",
    "salesforce/Task",
    "salesforce/OpportunityHistory",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="large")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", default="/tmp", help="parent directory of the temporary state")
    parser.add_argument("--keep", action="store_true", help="keep the database and print its path")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="crmhub-gen-", dir=args.dir))
    state = SandboxState(home / "sandbox.db")
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        counts = generate(state, profile=args.profile, seed=args.seed)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        records = sum(v for k, v in counts.items() if "/" in k)
        activity = sum(counts.get(k, 0) for k in ACTIVITY)
        size_mb = sum(p.stat().st_size for p in home.glob("sandbox.db*")) / 1e6
        for key, value in counts.items():
            print(f"{key:32s} {value:>12,d}")
        print(f"{'records':32s} {records:>12,d}")
        print(f"{'activity (emails+tasks+history)':32s} {activity:>12,d}")
        print(f"wall {wall:.1f} s, cpu {cpu:.1f} s, peak RSS {peak_mb:.0f} MB, db {size_mb:.0f} MB")
        if args.keep:
            print(f"kept: {home / 'sandbox.db'}")
    finally:
        state.close()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
