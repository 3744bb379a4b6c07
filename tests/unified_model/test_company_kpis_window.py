"""``compute_company_kpis`` holds only the rows of its window (the periods it reports, plus the
trailing windows of the first one) and summaries of the older rows; the report must be the one
computed from every row, on SQLite and PostgreSQL.

The report covers two or three months; the generated rows are dated around its edges (its start,
the trailing windows reaching back before it) and long before it, at whole hours so that rows
often share an instant: old deals that make customers, inquiries that waited across the start
(some answered in it, some never), two-way contacts across it, owners seen only in old rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unified_model.test_insights_properties import (
    NOW,
    activities,
    contacts,
    deals,
    emails,
    tickets,
)
from unified_model import tables as t
from unified_model.insights import _lead_inputs_digest, _window_start, compute_company_kpis
from unified_model.rules import HubRules, parse_rules
from unified_model.store import HubStore

RULES = (
    HubRules(),
    parse_rules({"kpis": {"period": "week"}}),
    # a two-way window longer than the trailing activity window: it sets how far back to hold
    parse_rules({"kpis": {"two_way_contact": {"window_days": 40}, "recent_activity_days": 3}}),
)
OWNERS = [
    {"source": "hubspot", "source_id": "o1", "email": "ada@example.com"},
    {"source": "salesforce", "source_id": "o1", "email": "Ada@example.com "},  # the same person
    {"source": "salesforce", "source_id": "o2", "email": "bo@example.com"},
]
MODELS = {
    "deals": t.Deal,
    "tickets": t.Ticket,
    "emails": t.Email,
    "contacts": t.Contact,
    "activities": t.Activity,
}


#: days before NOW (2026-06-15) around which rows are dated: now, the start of a two- and a
#: three-month report (1 May, 1 April), the trailing windows before those, long before
ANCHORS = (0, 45, 52, 75, 78, 82, 105, 115, 150, 400)
when = st.builds(
    lambda days, hours: NOW - dt.timedelta(days=days) + dt.timedelta(hours=hours),
    st.sampled_from(ANCHORS),
    st.integers(-72, 72),
)
maybe_when = st.none() | when | when


def _redate(row: Any, draw: st.DrawFn) -> None:
    """Date a generated row around the report's edges instead of near NOW."""
    for name in ("sent_at", "occurred_at", "created_at", "opened_at"):
        if hasattr(row, name):
            setattr(row, name, draw(maybe_when))
    if isinstance(row, t.Ticket) and row.is_closed and row.opened_at is not None:
        row.closed_at = row.opened_at + dt.timedelta(hours=draw(st.integers(0, 24 * 60)))
    if isinstance(row, t.Deal):
        row.stage_entered_at = {k: draw(when).isoformat() for k in row.stage_entered_at}
        if row.stage and draw(st.booleans()):  # a decision dated by entering "won" / "lost"
            row.stage_entered_at[row.stage] = draw(when).isoformat()
        row.modified_at = draw(maybe_when)
        close = draw(maybe_when)
        row.close_date = None if close is None else close.date()


@st.composite
def portfolio(draw: st.DrawFn) -> dict[str, list[Any]]:
    """Rows of several customers and owners; emails in few threads, some without a customer."""
    rows = {
        "deals": draw(deals()) + draw(deals()),
        "tickets": draw(tickets()),
        "emails": draw(emails()) + draw(emails()) + draw(emails()),
        "contacts": draw(contacts()),
        "activities": draw(activities()) + draw(activities()),
    }
    for name, items in rows.items():
        for i, row in enumerate(items):
            row.source_id = f"{name[0]}{i}"
            pick = [None, "c1", "c2"] if name == "emails" else ["c1", "c2", "c3"]
            row.customer_id = draw(st.sampled_from(pick))
            row.owner_id = draw(st.sampled_from(["o1", "o2", None]))
            _redate(row, draw)
    for em in rows["emails"]:
        em.thread_id = draw(st.sampled_from([None, "th1", "th2"]))
    return rows


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=portfolio(), rules=st.sampled_from(RULES), months=st.sampled_from([2, 3]))
def test_the_window_gives_the_report_of_every_row(
    store: HubStore, rows: dict[str, list[Any]], rules: HubRules, months: int
) -> None:
    with store.engine.begin() as conn:
        for model in (*MODELS.values(), t.Owner):
            conn.execute(t.table_of(model).delete())
    store.upsert_rows(t.Owner, OWNERS, newer_only=False)
    for name, model in MODELS.items():
        store.upsert_rows(model, [r.model_dump() for r in rows[name]], newer_only=False)

    # on SQLite the window's leads are read once for the report and the lead digest
    lead_hash = hashlib.sha256() if store.dialect == "sqlite" else None
    windowed = compute_company_kpis(store, rules, now=NOW, months=months, lead_hash=lead_hash)
    every_row = compute_company_kpis(store, rules, now=NOW, months=months, window=False)

    assert windowed.rows == every_row.rows
    assert windowed.owner_rows == every_row.owner_rows
    if lead_hash is not None:  # the digest a later run compares with, read on its own
        start = _window_start(NOW, rules, months)
        assert lead_hash.hexdigest() == _lead_inputs_digest(store, start)


def test_old_inquiries_and_old_customers_count_in_the_window(store: HubStore) -> None:
    """Directed: an inquiry from long before the window still unanswered, one answered inside
    it, and a customer whose only deal is old; each must reach the report."""
    old = NOW.replace(year=NOW.year - 1)
    store.upsert_rows(t.Owner, OWNERS, newer_only=False)
    store.upsert_rows(
        t.Deal,
        [
            {
                "source": "hubspot",
                "source_id": "d-old",
                "customer_id": "c1",
                "owner_id": "o1",
                "stage": "won",
                "is_closed": True,
                "is_won": True,
                "created_at": old,
                "modified_at": old,
            }
        ],
        newer_only=False,
    )

    def email(sid: str, thread: str, direction: str, sent: Any) -> dict[str, Any]:
        return {
            "source": "hubspot",
            "source_id": sid,
            "customer_id": "c1",
            "owner_id": "o1",
            "thread_id": thread,
            "direction": direction,
            "sent_at": sent,
            "modified_at": sent,
        }

    store.upsert_rows(
        t.Email,
        [
            email("never", "t-never", "inbound", old),
            email("late", "t-late", "inbound", old),
            email("reply", "t-late", "outbound", NOW.replace(day=1, hour=9)),
        ],
        newer_only=False,
    )
    report = compute_company_kpis(store, HubRules(), now=NOW)
    current = report.rows[-1]
    assert current["customers"] == 1
    (ada,) = [r for r in report.owner_rows if r["owner"] == "ada@example.com"]
    assert ada["unanswered_inquiries"] == 1
    assert ada["oldest_unanswered_inquiry_days"] == 365
    # the reply answered an inquiry sent before the window: not a first response of the window
    assert all(r["first_response_median_hours"] is None for r in report.rows)
    assert report == compute_company_kpis(store, HubRules(), now=NOW, window=False)


#: the start of a three-month report at NOW: 1 April, Berlin midnight
START = dt.datetime(2026, 3, 31, 22, tzinfo=dt.UTC)


def _row(sid: str, **values: Any) -> dict[str, Any]:
    return {"source": "hubspot", "source_id": sid, "customer_id": "c1", "owner_id": "o1"} | values


def _seed(store: HubStore, emails: list[dict[str, Any]], activities: list[dict[str, Any]]) -> None:
    """One customer with an owned deal from long ago, and the given emails and activities."""
    old = START - dt.timedelta(days=300)
    store.upsert_rows(t.Owner, OWNERS, newer_only=False)
    store.upsert_rows(
        t.Deal,
        [_row("d1", stage="won", is_closed=True, is_won=True, created_at=old, modified_at=old)],
        newer_only=False,
    )
    store.upsert_rows(t.Email, emails, newer_only=False)
    store.upsert_rows(t.Activity, activities, newer_only=False)


def test_weekly_coverage_reads_the_trailing_window_before_the_start(store: HubStore) -> None:
    """The first week of the report (1 to 6 April) looks back 30 days for the coverage: an
    email and a call 20 days before the start cover the customer in it."""
    before = START - dt.timedelta(days=20)
    _seed(
        store,
        [_row("e1", direction="outbound", sent_at=before, modified_at=before)],
        [_row("a1", kind="call", occurred_at=before, modified_at=before)],
    )
    rules = parse_rules({"kpis": {"period": "week"}})
    report = compute_company_kpis(store, rules, now=NOW, months=3)
    assert report.rows[0]["coverage"] == 1.0
    assert report.rows[-1]["coverage"] == 0.0
    assert report == compute_company_kpis(store, rules, now=NOW, months=3, window=False)


def test_a_two_way_contact_across_the_start_is_seen(store: HubStore) -> None:
    """An email to the customer 20 days before the start and their answer 5 days after it, with
    a two-way window of 40 days: the answer is a two-way contact, though the email it answers
    is outside the report (and no inquiry waiting for a reply, which would be kept anyway)."""
    wrote, answered = START - dt.timedelta(days=20), START + dt.timedelta(days=5)
    _seed(
        store,
        [
            _row("out", direction="outbound", sent_at=wrote, modified_at=wrote),
            _row("in", direction="inbound", sent_at=answered, modified_at=answered),
        ],
        [],
    )
    rules = parse_rules(
        {"kpis": {"two_way_contact": {"window_days": 40}, "recent_activity_days": 3}}
    )
    report = compute_company_kpis(store, rules, now=NOW, months=3)
    april = report.rows[0]
    assert april["median_days_since_two_way_contact"] == 25  # 6 April to 1 May
    assert report == compute_company_kpis(store, rules, now=NOW, months=3, window=False)


def test_a_two_way_contact_long_before_the_start_counts_to_the_day(store: HubStore) -> None:
    """An inquiry 60 days before the start and its answer exactly the two-way window (7 days)
    later: a two-way contact (the window's end is inside), 83 days before 1 May."""
    asked = START - dt.timedelta(days=60)
    answered = asked + dt.timedelta(days=7)
    _seed(
        store,
        [
            _row("in", direction="inbound", sent_at=asked, modified_at=asked),
            _row("out", direction="outbound", sent_at=answered, modified_at=answered),
        ],
        [],
    )
    report = compute_company_kpis(store, HubRules(), now=NOW, months=3)
    assert report.rows[0]["median_days_since_two_way_contact"] == 83
    assert report == compute_company_kpis(store, HubRules(), now=NOW, months=3, window=False)


def test_a_reply_sent_at_the_same_instant_answers_nothing(store: HubStore) -> None:
    """Long ago an inquiry and an outbound email at the same instant: a reply must come after
    the inquiry, so it still waits (and is counted unanswered today)."""
    long_ago = START - dt.timedelta(days=200)
    _seed(
        store,
        [
            _row("in", direction="inbound", thread_id="th", sent_at=long_ago, modified_at=long_ago),
            _row(
                "out", direction="outbound", thread_id="th", sent_at=long_ago, modified_at=long_ago
            ),
        ],
        [],
    )
    report = compute_company_kpis(store, HubRules(), now=NOW, months=3)
    (ada,) = [r for r in report.owner_rows if r["owner"] == "ada@example.com"]
    assert ada["unanswered_inquiries"] == 1
    assert report == compute_company_kpis(store, HubRules(), now=NOW, months=3, window=False)


def test_a_period_holds_its_start_and_not_its_end(store: HubStore) -> None:
    """Periods and trailing windows are half-open: an email sent at the very start of April
    (Berlin midnight) is April's, one sent at the very start of May is May's, and a call and an
    email exactly 30 days before April's end are inside April's coverage window."""
    may = dt.datetime(2026, 4, 30, 22, tzinfo=dt.UTC)
    assert may - dt.timedelta(days=30) == START  # April's coverage window starts at START
    _seed(
        store,
        [
            _row("e1", direction="outbound", sent_at=START, modified_at=START),
            _row("e2", direction="inbound", sent_at=may, modified_at=may),
        ],
        [_row("a1", kind="call", occurred_at=START, modified_at=START)],
    )
    report = compute_company_kpis(store, HubRules(), now=NOW, months=3)
    april, may_row, june = report.rows
    shares = [r["logged_email_share"] for r in (april, may_row, june)]
    assert shares == [1.0, 1.0, 0.0]
    assert (april["coverage"], may_row["coverage"]) == (1.0, 0.0)
    assert report == compute_company_kpis(store, HubRules(), now=NOW, months=3, window=False)
