"""Named crash points: where a test may kill the hub process, to prove nothing is lost.

Why in the product: the guarantees in the README (a kill at any point loses no record and no audit
row, and never writes a field twice) can only be shown by killing a real sync at the worst moments.
``CRMHUB_CRASH_AT=writeback.after_send`` makes the process SIGKILL itself the first time it passes
that point (``name:N``: the N-th time). Unset, a crash point costs one dictionary look-up.

Points: ``extract.after_fetch`` (a page read, nothing stored), ``extract.after_store`` (a page
stored, its cursor not yet), ``writeback.before_send`` (intents committed, nothing sent),
``writeback.after_send`` (a batch sent, its outcome not stored), ``writeback.after_record``
(a batch's outcome stored).
"""

from __future__ import annotations

import os
import signal
import threading

_COUNTS: dict[str, int] = {}
_GUARD = threading.Lock()


def crash_point(name: str) -> None:
    """SIGKILL this process here when ``CRMHUB_CRASH_AT`` names this point (and hit count)."""
    spec = os.environ.get("CRMHUB_CRASH_AT")
    if not spec:
        return
    for item in spec.split(","):
        point, _, nth = item.strip().partition(":")
        if point != name:
            continue
        with _GUARD:
            _COUNTS[name] = _COUNTS.get(name, 0) + 1
            hit = _COUNTS[name]
        if hit == (int(nth) if nth else 1):
            os.kill(os.getpid(), signal.SIGKILL)
