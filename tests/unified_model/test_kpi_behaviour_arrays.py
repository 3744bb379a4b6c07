"""The company's behaviour figures over arrays (``_Behaviour``) equal the per-customer loop
(``KpiData._behaviour_of``) on every boundary: times exactly at, just before and just after the
period's start and end, the recent window's start and the two-way cut-off; first deals created
at the end; customers with and without an owner, emails, activities or two-way contacts.
"""

from __future__ import annotations

import datetime as dt
import random
from types import SimpleNamespace

import pytest

from unified_model.kpis import KpiData, _Behaviour

US = dt.timedelta(microseconds=1)
S = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
E = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
RECENT = E - dt.timedelta(days=90)
AS_OF = E - US


def _instants(rng: random.Random) -> dt.datetime:
    edge = rng.choice([S, E, RECENT, AS_OF, S - dt.timedelta(days=400)])
    return edge + rng.choice([-US, dt.timedelta(0), US, dt.timedelta(hours=rng.randint(-900, 900))])


def _times(rng: random.Random) -> list[dt.datetime]:
    return sorted(_instants(rng) for _ in range(rng.choice([0, 0, 1, 2, 5])))


@pytest.mark.parametrize("seed", range(40))
def test_arrays_give_the_loops_figures(seed: int) -> None:
    rng = random.Random(seed)
    cids = [f"HUB-{i:04d}" for i in range(300)]
    since = {
        cid: rng.choice([None, E - US, E, E + US, S, S - dt.timedelta(days=30)]) for cid in cids
    }
    data = SimpleNamespace(
        has_owner={cid for cid in cids if rng.random() < 0.6},
        sent_times={cid: ts for cid in cids if (ts := _times(rng))},
        activity_times={cid: ts for cid in cids if (ts := _times(rng))},
        two_way={cid: ts for cid in cids if (ts := _times(rng))},
    )
    group = SimpleNamespace(customer_since=since)

    n, with_email, covered, gaps = _Behaviour(data, group).period(S, E, RECENT, AS_OF)  # type: ignore[arg-type]
    want = KpiData._behaviour_of(data, group, S, E, RECENT, AS_OF)  # type: ignore[arg-type]

    assert (n, with_email, covered) == want[:3]
    assert sorted(gaps) == sorted(want[3])
    assert all(type(g) is float for g in gaps)
    assert 0 < n < len(cids) and with_email and covered and gaps  # the cases occur
