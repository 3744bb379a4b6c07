"""The run's totals over all customers (status counts, top blockers, negotiation flags) decode
only the rows whose stored JSON can hold a failed criterion or a flag; the figures must be those
of decoding every row, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unified_model import tables as t
from unified_model.insights import InsightStats, _totals
from unified_model.store import HubStore

reason = st.fixed_dictionaries(
    {"criterion": st.sampled_from(["won_deal", "owner", "tickets"]), "passed": st.booleans()},
    optional={"detail": st.sampled_from(["false start", "passed: false", "true"])},
)
metric_values = st.fixed_dictionaries(
    {},
    optional={
        "negotiation_flag": st.booleans(),
        "note": st.sampled_from(["negotiation_flag true", "x"]),
        "other_flag": st.booleans(),
    },
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    customers=st.lists(
        st.tuples(
            st.sampled_from(["onboarding", "account_management"]),
            st.lists(reason, max_size=3),
            metric_values,
        ),
        max_size=12,
    )
)
def test_totals_equal_a_count_over_every_row(
    store: HubStore, customers: list[tuple[str, list[dict[str, Any]], dict[str, Any]]]
) -> None:
    with store.engine.begin() as conn:
        for model in (t.HandoverState, t.CustomerMetrics):
            conn.execute(t.table_of(model).delete())
    store.upsert_rows(
        t.HandoverState,
        [
            {"customer_id": f"c{i}", "status": status, "reasons": reasons}
            for i, (status, reasons, _) in enumerate(customers)
        ],
        newer_only=False,
    )
    store.upsert_rows(
        t.CustomerMetrics,
        [{"customer_id": f"c{i}", "values": values} for i, (_, _, values) in enumerate(customers)],
        newer_only=False,
    )
    stats = InsightStats()
    _totals(store, stats)
    blockers = Counter(
        r["criterion"] for _, reasons, _ in customers for r in reasons if not r["passed"]
    )
    assert stats.blockers == blockers
    assert stats.negotiation_flags == sum(bool(v.get("negotiation_flag")) for _, _, v in customers)
    assert stats.by_status["onboarding"] == sum(s == "onboarding" for s, _, _ in customers)
