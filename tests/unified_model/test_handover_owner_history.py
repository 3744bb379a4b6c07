"""A customer the hub first sees already handed over is dated by the CRMs' owner history where
it exists (``owner_assigned_at``, basis ``crm_history``, the business day in the summary), and
says "first seen on" where it does not; never the run's day. A later run keeps the date; a
customer stored "first seen" gets the history's date once it arrives."""

from __future__ import annotations

import datetime as dt
from typing import Any

from unified_model.handover import CustomerFacts, evaluate_handover
from unified_model.insights import owner_assigned_at
from unified_model.rules import HubRules, parse_rules
from unified_model.tables import Customer, Deal, Owner, SourceAccount

NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)
#: 23:30 UTC on 3 March is 4 March in Berlin: the business day, not UTC's
HANDED = dt.datetime(2026, 3, 3, 23, 30, tzinfo=dt.UTC)
RULES = HubRules()
AM = Owner(
    source="salesforce",
    source_id="005AM",
    email="ada@example.com",
    first_name="Ada",
    last_name="Meyer",
    department="Account Management",
)


def _facts(**kw: Any) -> CustomerFacts:
    base: dict[str, Any] = {
        "customer": Customer(
            id="HUB-1",
            name="Acme",
            contracted_modules=["Billing"],
            modules_in_use=[],  # not mature: handed over anyway (judged as handed over)
            onboarding_completed=True,
            owner_email="ada@example.com",
        ),
        "deals": [
            Deal(
                source="salesforce",
                source_id="006W",
                customer_id="HUB-1",
                stage="Closed Won",
                is_closed=True,
                is_won=True,
                close_date=dt.date(2026, 1, 10),
            )
        ],
        "owner": AM,
    }
    return CustomerFacts(**{**base, **kw})


def _berlin() -> HubRules:
    return parse_rules({"kpis": {"business_hours": {"timezone": "Europe/Berlin"}}})


def test_first_seen_handed_over_is_dated_by_the_owner_history() -> None:
    rules = _berlin()
    d = evaluate_handover(_facts(owner_assigned_at=HANDED), rules, NOW)
    assert d.status == "account_management"
    assert d.handed_over_on == HANDED and d.status_since == HANDED
    assert d.date_basis["handed_over_on"] == "crm_history"
    assert d.date_basis["status_since"] == "crm_history"
    assert d.summary == "account management since 2026-03-04 (owner change in the CRM history)"
    # the next run judges it the same way: same dates, same text
    again = evaluate_handover(
        _facts(owner_assigned_at=HANDED, previous=d.as_state(NOW)), rules, NOW + dt.timedelta(1)
    )
    assert (again.handed_over_on, again.status_since, again.summary) == (
        d.handed_over_on,
        d.status_since,
        d.summary,
    )


def test_without_history_it_stays_first_seen_never_the_run_day() -> None:
    d = evaluate_handover(_facts(), RULES, NOW)
    assert d.handed_over_on is None and d.status_since is None
    assert d.date_basis["handed_over_on"] == "first_seen"
    assert "first seen on 2026-06-15; handover date not in the CRM history" in d.summary
    # the history arrives on a later run (first read after an upgrade): the date is filled in
    later = evaluate_handover(
        _facts(owner_assigned_at=HANDED, previous=d.as_state(NOW)), RULES, NOW + dt.timedelta(1)
    )
    assert later.handed_over_on == HANDED and later.status_since == HANDED
    assert later.date_basis["handed_over_on"] == "crm_history"


def test_a_history_date_after_the_evaluation_is_not_trusted() -> None:
    d = evaluate_handover(_facts(owner_assigned_at=NOW + dt.timedelta(hours=1)), RULES, NOW)
    assert d.handed_over_on is None and d.date_basis["handed_over_on"] == "first_seen"


def test_owner_assigned_at_counts_only_the_current_survived_owner() -> None:
    c = Customer(id="HUB-1", owner_email="ada@example.com")
    owners = {("salesforce", "005AM"): AM}

    def account(**kw: Any) -> SourceAccount:
        base: dict[str, Any] = {
            "source": "salesforce",
            "source_id": "001A",
            "customer_id": "HUB-1",
            "owner_id": "005AM",
            "owner_assigned_to": "005AM",
            "owner_assigned_at": HANDED,
        }
        return SourceAccount(**{**base, **kw})

    assert owner_assigned_at(c, [account()], owners) == HANDED
    # the history names an earlier owner (the account changed owner since): dates nothing
    assert owner_assigned_at(c, [account(owner_assigned_to="005SE")], owners) is None
    # an owner who is not the customer's survived owner
    assert owner_assigned_at(Customer(id="HUB-1", owner_email="x@y.z"), [account()], owners) is None
    assert owner_assigned_at(c, [account(deleted=True)], owners) is None
