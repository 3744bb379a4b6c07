"""Signals neither CRM can compute alone, as pure functions over one customer's facts.

- ``negotiation_flag``: sales is negotiating with the customer right now (an open deal in a late
  stage, usually a Salesforce opportunity), from the moment the deal entered that stage. The
  writeback pushes it to HubSpot as a suppression flag, so nurturing pauses during the deal.
- ``marketing_alert``: marketing (HubSpot) emailed a contact of that customer after the deal
  entered the late stage: the email that should not have gone out, with contact and day.
- ``stale_deals``: open deals nobody has touched for ``kpis.stale_deal_days``.
- ``unlogged_contact``: a customer with deals but not a single logged email, i.e. customer
  conversations happen in private inboxes and response times are invisible.

Tombstones (``deleted=True``) are ignored; results are deterministic and independent of the
order of the input lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from unified_model.handover import (
    CustomerFacts,
    as_utc,
    live,
    plural,
    require_aware,
    stage_time,
)
from unified_model.kpis import whole_days
from unified_model.rules import HubRules
from unified_model.tables import Contact, Deal


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


def late_stage_since(deal: Deal, rules: HubRules) -> dt.datetime | None:
    """When the deal entered its late negotiation (its first late stage), where a record says."""
    times = [
        t
        for stage in deal.stage_entered_at
        if rules.kpis.late_stages.matches(deal.source, stage)
        and (t := stage_time(deal, stage)) is not None
    ]
    if not times and (t := stage_time(deal, deal.stage)) is not None:
        times.append(t)
    return min(times) if times else None


def _seller(deal: Deal, facts: CustomerFacts) -> str:
    owner = facts.owners.get((deal.source, deal.owner_id or ""))
    if owner is not None and not owner.deleted:
        name = " ".join(p for p in (owner.first_name, owner.last_name) if p)
        return name or owner.email or f"owner {deal.owner_id}"
    return f"owner {deal.owner_id}" if deal.owner_id else "unknown"


def _late_deals(
    facts: CustomerFacts, rules: HubRules, now: dt.datetime
) -> list[tuple[dt.datetime | None, Deal]]:
    """Open deals in a late stage now, with when they entered it (earliest first)."""
    out = []
    for d in live(facts.deals):
        if not (_is_open(d) and rules.kpis.late_stages.matches(d.source, d.stage)):
            continue
        # an entry later than ``now`` (the start of the business day) happened today: keep it
        out.append((late_stage_since(d, rules), d))
    return sorted(
        out,
        key=lambda x: (x[0] or dt.datetime.min.replace(tzinfo=dt.UTC), x[1].source, x[1].source_id),
    )


def negotiation_flag(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> Signal:
    """Suppress marketing: a deal is open in a late stage, from the moment it entered it.

    Whether marketing has emailed yet does not matter (that is ``marketing_alert``): marketers
    must stop nurturing before the first email lands in a negotiation, not after. The detail
    names the deal, its stage, its seller and since when, so a marketer knows whom to ask.
    """
    now = require_aware(now)
    late = _late_deals(facts, rules, now)
    if not late:
        return Signal("negotiation", False, "no open deal in a late stage")
    zone = rules.kpis.business_hours.zone
    parts = []
    for since, d in late:
        day = since.astimezone(zone).date().isoformat() if since else "an unknown date"
        parts.append(f"{_deal_label(d)} in {d.stage} since {day}, seller {_seller(d, facts)}")
    detail = "suppress marketing: " + "; ".join(parts)
    return Signal(
        "negotiation", True, detail, tuple(sorted(f"{d.source}:{d.source_id}" for _, d in late))
    )


def suppression_reason(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> str | None:
    """Why the customer's contacts are suppressed from marketing, in a marketer's words.

    Written onto each HubSpot contact of the customer next to the suppression flag, so a marketer
    filtering a list sees which deal, in which stage, whose seller, since when (e.g. "open deal
    'Renewal' in stage Negotiation/Review, seller Ann Smith, since 2026-11-03"). None: no open
    deal in a late stage, nothing to suppress.
    """
    now = require_aware(now)
    late = _late_deals(facts, rules, now)
    if not late:
        return None
    zone = rules.kpis.business_hours.zone
    return "; ".join(
        f"open deal {_deal_label(d)} in stage {d.stage}, seller {_seller(d, facts)}, since "
        + (since.astimezone(zone).date().isoformat() if since else "an unknown date")
        for since, d in late
    )


def marketing_alert(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> Signal:
    """Marketing emailed a contact after a deal entered a late stage (and within the window).

    The alert names the contact, the day of the email, and the deal with its stage and seller.
    A deal whose late-stage entry is undated counts from the start of the window.
    """
    now = require_aware(now)
    window = rules.kpis.marketing_touch_window_days
    since = now - dt.timedelta(days=window)
    late = _late_deals(facts, rules, now)
    if not late:
        return Signal("marketing_alert", False, "no open deal in a late stage")
    zone = rules.kpis.business_hours.zone
    hits: list[tuple[dt.datetime, Contact, Deal]] = []
    for c in live(facts.contacts):
        t = as_utc(c.last_marketing_email_at)
        # no upper bound: ``now`` is the start of the business day, and an email sent since then
        # has been sent all the same (the alert must not wait for tomorrow)
        if t is None or t < since:
            continue
        during = [d for entered, d in late if entered is None or entered <= t]
        if during:
            hits.append((t, c, during[0]))
    if not hits:
        return Signal(
            "marketing_alert", False, f"no marketing email during negotiation in {window} days"
        )
    hits.sort(key=lambda h: (h[0], h[1].source, h[1].source_id))
    parts = [
        f"{c.email or c.source + ' contact ' + c.source_id} on "
        f"{t.astimezone(zone).date().isoformat()} during {_deal_label(d)} ({d.stage}, seller "
        f"{_seller(d, facts)})"
        for t, c, d in hits
    ]
    detail = "marketing emailed " + "; ".join(parts)
    evidence = sorted(
        {f"{c.source}:{c.source_id}" for _, c, _ in hits}
        | {f"{d.source}:{d.source_id}" for _, _, d in hits}
    )
    return Signal("marketing_alert", True, detail, tuple(evidence))


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
