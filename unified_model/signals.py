"""Signals neither CRM can compute alone, as pure functions over one customer's facts.

- ``negotiation_flag``: marketing (HubSpot) emailed a contact of a customer that sales is
  negotiating with right now (an open deal in a late stage, usually a Salesforce opportunity).
  The writeback pushes it to HubSpot as a suppression flag, so nurturing pauses during the deal.
- ``stale_deals``: open deals nobody has touched for ``kpis.stale_deal_days``.
- ``unlogged_contact``: a customer with deals but not a single logged email, i.e. customer
  conversations happen in private inboxes and response times are invisible.

Tombstones (``deleted=True``) are ignored; results are deterministic and independent of the
order of the input lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from unified_model.handover import CustomerFacts, as_utc, live, plural, require_aware
from unified_model.kpis import whole_days
from unified_model.rules import HubRules
from unified_model.tables import Deal


@dataclass(frozen=True)
class Signal:
    """A yes/no signal with a plain-language detail and the records that raised it."""

    name: str
    flagged: bool
    detail: str
    #: "source:source_id" of the records behind the flag, sorted
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class StaleDeal:
    source: str
    source_id: str
    name: str | None
    stage: str | None
    #: the latest change or activity seen (None: the deal has no timestamps at all)
    last_touch_at: dt.datetime | None
    idle_days: int | None


def _deal_label(deal: Deal) -> str:
    return f"'{deal.name}'" if deal.name else f"{deal.source} {deal.source_id}"


def _is_open(deal: Deal) -> bool:
    return not deal.is_closed and not deal.is_won


def negotiation_flag(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> Signal:
    """Flag marketing email sent within the window while a deal is open in a late stage."""
    now = require_aware(now)
    since = now - dt.timedelta(days=rules.kpis.marketing_touch_window_days)
    touched = [
        (t, c)
        for c in live(facts.contacts)
        if (t := as_utc(c.last_marketing_email_at)) is not None and since <= t <= now
    ]
    late = [
        d
        for d in live(facts.deals)
        if _is_open(d) and rules.kpis.late_stages.matches(d.source, d.stage)
    ]
    if not late:
        return Signal("negotiation", False, "no open deal in a late stage")
    if not touched:
        days = rules.kpis.marketing_touch_window_days
        return Signal("negotiation", False, f"no marketing email in the last {days} days")
    last = max(t for t, _ in touched).date().isoformat()
    deals = ", ".join(f"{_deal_label(d)} ({d.stage})" for d in late)
    detail = (
        f"marketing emailed {plural(len(touched), 'contact')} (last {last}) during late "
        f"negotiation: {deals}"
    )
    evidence = sorted(
        [f"{c.source}:{c.source_id}" for _, c in touched]
        + [f"{d.source}:{d.source_id}" for d in late]
    )
    return Signal("negotiation", True, detail, tuple(evidence))


def stale_deals(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> list[StaleDeal]:
    """Open deals with no change, email or activity (on the deal or the customer) for N days.

    Idle for exactly ``kpis.stale_deal_days`` days counts as stale. A deal without any
    timestamp at all is reported too: nothing shows that anybody works on it.
    """
    now = require_aware(now)
    limit = dt.timedelta(days=rules.kpis.stale_deal_days)
    cid = facts.customer.id
    emails = live(facts.emails)
    activities = live(facts.activities)
    customer_touches = [
        t for e in emails if e.customer_id == cid and (t := as_utc(e.sent_at)) is not None
    ] + [t for a in activities if a.customer_id == cid and (t := as_utc(a.occurred_at)) is not None]
    out: list[StaleDeal] = []
    for d in live(facts.deals):
        if not _is_open(d):
            continue
        touches = [t for t in (as_utc(d.modified_at), as_utc(d.created_at)) if t is not None]
        touches += customer_touches
        touches += [
            t for e in emails if d.source_id in e.deal_source_ids and (t := as_utc(e.sent_at))
        ]
        touches += [
            t
            for a in activities
            if a.deal_source_id == d.source_id and (t := as_utc(a.occurred_at)) is not None
        ]
        last = max(touches) if touches else None
        if last is None or now - last >= limit:
            out.append(
                StaleDeal(d.source, d.source_id, d.name, d.stage, last, whole_days(last, now))
            )
    return out


def unlogged_contact(facts: CustomerFacts) -> Signal:
    """Flag a customer that has deals but no logged email at all."""
    deals = live(facts.deals)
    emails = live(facts.emails)
    if not deals:
        return Signal("unlogged_contact", False, "no deals")
    if emails:
        return Signal("unlogged_contact", False, f"{plural(len(emails), 'logged email')}")
    return Signal(
        "unlogged_contact",
        True,
        f"{plural(len(deals), 'deal')} but no logged emails",
        tuple(f"{d.source}:{d.source_id}" for d in deals),
    )
