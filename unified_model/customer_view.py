"""The 360-degree view of one customer, as an account manager reads it before a first meeting.

Golden fields with the CRM record each value came from, the linked records in each CRM, deals,
the last emails in and out, open tickets, handover status with its reasons, and the KPIs.
Also the writeback log of a customer (what the hub wrote, when, and how it went).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from unified_model import tables as t
from unified_model.domains import registrable_domain
from unified_model.store import HubStore

GOLDEN_FIELDS = (
    "name",
    "domain",
    "website",
    "industry",
    "city",
    "country",
    "employees",
    "annual_revenue",
    "owner_email",
    "go_live_date",
    "onboarding_completed",
    "contracted_modules",
    "modules_in_use",
    "usage_score",
    "nps_score",
)


def find_customers(store: HubStore, query: str) -> list[t.Customer]:
    """Customers by hub id, by domain (any form of a URL) or by a part of the name."""
    q = query.strip()
    with store.session() as s:
        exact = s.get(t.Customer, q)
        if exact is not None:
            return [exact]
        domain = registrable_domain(q) if "." in q else None
        if domain:
            found = list(s.exec(select(t.Customer).where(t.Customer.domain == domain)))
            if found:
                return found
        return list(
            s.exec(
                select(t.Customer)
                .where(sa.func.lower(t.Customer.name).contains(q.casefold()))
                .order_by(t.Customer.name)
            )
        )


def _fmt(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "–"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def render_customer(store: HubStore, customer_id: str, *, now: dt.datetime, emails: int = 5) -> str:
    """The customer's 360 view as terminal text."""
    with store.session() as s:
        c = s.get(t.Customer, customer_id)
        if c is None:
            return f"No customer {customer_id}."
        accounts = list(
            s.exec(select(t.SourceAccount).where(t.SourceAccount.customer_id == customer_id))
        )
        links = {
            (lk.source, lk.source_id): lk
            for lk in s.exec(select(t.SourceLink).where(t.SourceLink.customer_id == customer_id))
        }
        deals = list(
            s.exec(
                select(t.Deal).where(
                    t.Deal.customer_id == customer_id, col(t.Deal.deleted).is_(False)
                )
            )
        )
        tickets = list(
            s.exec(
                select(t.Ticket).where(
                    t.Ticket.customer_id == customer_id, col(t.Ticket.deleted).is_(False)
                )
            )
        )
        mails = list(
            s.exec(
                select(t.Email)
                .where(t.Email.customer_id == customer_id, col(t.Email.deleted).is_(False))
                .order_by(col(t.Email.sent_at).desc())
                .limit(200)
            )
        )  # type: ignore[union-attr]
        contacts = list(
            s.exec(
                select(t.Contact).where(
                    t.Contact.customer_id == customer_id, col(t.Contact.deleted).is_(False)
                )
            )
        )
        handover = s.get(t.HandoverState, customer_id)
        metrics = s.get(t.CustomerMetrics, customer_id)
    out = [f"{c.name or '(no name)'}  [{c.id}]", "=" * 60, "Golden record (value ← source):"]
    for f in GOLDEN_FIELDS:
        src = (c.field_sources or {}).get(f, "")
        out.append(f"  {f:<22} {_fmt(getattr(c, f, None)):<36} {('← ' + src) if src else ''}")
    out.append("")
    out.append("Records in the CRMs:")
    for a in sorted(accounts, key=lambda a: (a.source, a.source_id)):
        link = links.get((a.source, a.source_id))
        how = f"{link.match_method} ({link.confidence:.2f})" if link else "–"
        state = " [deleted]" if a.deleted else ""
        out.append(f"  {a.source:<10} {a.source_id:<20} {a.name or '':<30} matched by {how}{state}")
    out.append("")
    # dates as the business's days, as computed with the rules' time zone (never UTC dates)
    mv = (metrics.values if metrics else {}) or {}
    status = handover.status if handover else "not evaluated yet"
    label = mv.get("handover_status_label")
    out.append(f"Handover status: {status} ({label})" if label else f"Handover status: {status}")
    if handover:
        if handover.summary:
            out.append(f"  {handover.summary}")
        for r in handover.reasons or []:
            mark = "✓" if r.get("passed") else "✗"
            out.append(f"  {mark} {r.get('detail', r.get('criterion'))}")
        since = mv.get("handover_status_since")
        seen = mv.get("handover_first_seen_on")
        out.append(
            f"  status since {since}" if since else f"  status since before {seen} (first seen)"
        )
        if mv.get("handover_ready_since"):
            out.append(f"  ready since {mv['handover_ready_since']}")
        if mv.get("handover_handed_over_on"):
            source = mv.get("handover_handed_over_from")
            from_ = f" ({source})" if source else ""
            out.append(f"  handed over on {mv['handover_handed_over_on']}{from_}")
        elif handover.status in ("account_management", "at_risk"):
            out.append(
                f"  handed over before {seen} (first seen; the CRMs' owner history has no date)"
            )
        if mv.get("handover_next_step"):
            out.append(f"  next step: {mv['handover_next_step']}")
    out.append("")
    out.append(f"Deals ({len(deals)}):")
    for d in sorted(deals, key=lambda d: d.close_date or dt.date.min, reverse=True)[:10]:
        state = "won" if d.is_won else ("lost" if d.is_closed else "open")
        out.append(
            f"  {d.source:<10} {(d.name or '')[:36]:<36} {d.stage or '':<22} {state:<5} "
            f"{_fmt(d.amount):>12}  close {_fmt(d.close_date)}"
        )
    open_tickets = [tk for tk in tickets if not tk.is_closed]
    out.append(f"Open tickets ({len(open_tickets)} of {len(tickets)}):")
    for tk in sorted(open_tickets, key=lambda x: x.opened_at or now)[:10]:
        out.append(
            f"  {tk.source:<10} {tk.priority or '':<9} {tk.category or '':<16} "
            f"{(tk.subject or '')[:40]}  opened {_fmt(tk.opened_at)}"
        )
    out.append(
        f"Contacts ({len(contacts)}): "
        + ", ".join(sorted({(x.email or "").lower() for x in contacts if x.email})[:8])
    )
    for direction in ("inbound", "outbound"):
        recent = [m for m in mails if m.direction == direction][:emails]
        out.append(f"Last emails {'in' if direction == 'inbound' else 'out'}:")
        for m in recent:
            out.append(f"  {_fmt(m.sent_at)}  {(m.subject or '')[:60]}")
    if metrics and metrics.values:
        out.append("")
        out.append("KPIs:")
        for k, v in sorted(metrics.values.items()):
            out.append(f"  {k:<32} {_fmt(v)}")
    return "\n".join(out)


def writeback_log(store: HubStore, customer_id: str, *, limit: int = 50) -> list[str]:
    """Recent record writes for a customer, newest first, one line per field written."""
    with store.session() as s:
        rows = list(
            s.exec(
                select(t.WriteAudit)
                .where(t.WriteAudit.customer_id == customer_id)
                .order_by(col(t.WriteAudit.id).desc())
                .limit(limit)  # type: ignore[union-attr]
            )
        )
    if not rows:
        return [f"No writes recorded for {customer_id}."]
    lines = []
    for r in rows:
        reason = f"  ({r.reason})" if r.reason else ""
        for key, (old, new) in sorted(r.field_changes().items()):
            lines.append(
                f"{_fmt(r.at)}  {r.source:<10} {r.source_id:<20} {key:<28} "
                f"{old or '–'} → {new or '–'}  {r.outcome}{reason}"
            )
    return lines
