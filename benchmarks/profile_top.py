"""The top items of a py-spy profile (``--format raw``, as ``sync_e2e.py --pyspy`` records it).

Why: the closing notes and the README report where the hub's own time goes per phase; reading a
flame graph by eye does not give figures. Prints the share of samples per Dagster step (the asset
function on the stack), the functions with the most *inclusive* samples among the project's own
code, and the leaf functions (self time) anywhere.

    uv run python benchmarks/profile_top.py /work/bench/spy/crmhub-e2e-large-xxxx-first.txt [--rate 20]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: py-spy names a frame "function (file.py:line)" without the folder: the project's own files
#: are told by name, leaving out names that Dagster, SQLAlchemy or the SDKs use too
_COMMON = {"__init__.py", "definitions.py", "resources.py", "config.py", "client.py", "base.py"}
_COMMON |= {"errors.py", "settings.py", "retry.py", "http.py", "state.py", "app.py", "records.py"}
OWN_FILES = {
    f.name
    for pkg in ("connectors", "unified_model", "assets", "crmhub")
    for f in (ROOT / pkg).rglob("*.py")
} - _COMMON
#: the functions of assets/*.py: the first of them on a stack names the Dagster step
ASSET_FUNCTIONS = {
    (f.name, m.group(1))
    for f in (ROOT / "assets").glob("*.py")
    for m in re.finditer(r"^\s*def (\w+)\(", f.read_text(), re.M)
}


def _function(frame: str) -> str:
    """``name (path:line)`` → ``module.py:name`` (the line dropped: one entry per function)."""
    m = re.match(r"^(.*) \((.*?):\d+\)$", frame.strip())
    if not m:
        return frame.strip()
    name, path = m.groups()
    return f"{Path(path).name}:{name}"


def summarise(path: Path, rate: float, top: int) -> str:
    inclusive: Counter[str] = Counter()
    own_inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        seen: set[str] = set()
        step = "(outside the steps)"
        for frame in frames:
            fn = _function(frame)
            if fn in seen:
                continue
            seen.add(fn)
            inclusive[fn] += n
            file, _, name = fn.partition(":")
            if file in OWN_FILES:
                own_inclusive[fn] += n
            if (file, name.split(".")[-1]) in ASSET_FUNCTIONS and step == "(outside the steps)":
                step = fn
        steps[step] += n
        if frames:
            leaves[_function(frames[-1])] += n

    def secs(n: int) -> str:
        return f"{n / rate:8.1f} s {100 * n / max(total, 1):5.1f} %"

    out = [f"# {path.name}: {total} samples = {total / rate:.0f} s at {rate:g} Hz", ""]
    out.append("## per asset function (inclusive)")
    out += [f"{secs(n)}  {name}" for name, n in steps.most_common(top)]
    out += ["", "## project functions, inclusive"]
    out += [f"{secs(n)}  {name}" for name, n in own_inclusive.most_common(top)]
    out += ["", "## leaf functions (self time)"]
    out += [f"{secs(n)}  {name}" for name, n in leaves.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--rate", type=float, default=20.0, help="py-spy's sampling rate (Hz)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    for path in args.profiles:
        print(summarise(path, args.rate, args.top))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
