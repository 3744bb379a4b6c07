"""The hub's look-up and housekeeping commands: customers, match reviews, erasure, KPIs, fields.

They read the hub database directly (no CRM calls) except ``fields ensure``, which provisions the
hub's own fields in the CRMs.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from crmhub import settings


def _store() -> Any:
    """The hub database, checked (and migrated) once; problems become one line (exit 2)."""
    from unified_model.database import open_store

    return open_store(settings.database_url())


def cmd_customer_show(args: argparse.Namespace) -> int:
    from unified_model.customer_view import find_customers, render_customer

    store = _store()
    matches = find_customers(store, args.query)
    if not matches:
        print(f"No customer matches '{args.query}' (try a hub id, a domain or part of a name).")
        return 1
    if len(matches) > 1 and not args.first:
        print(f"{len(matches)} customers match '{args.query}':")
        for c in matches[:20]:
            print(f"  {c.id}  {c.name or '-'}  {c.domain or '-'}")
        print("Narrow the query, or add --first to show the first.")
        return 1
    print(render_customer(store, matches[0].id, now=dt.datetime.now(dt.UTC)))
    return 0


def cmd_customer_list(args: argparse.Namespace) -> int:
    """Customers with name, domain, handover status and owner: the way into ``customer show``."""
    import sqlalchemy as sa
    from sqlmodel import select

    from unified_model import tables as t

    store = _store()
    with store.session() as s:
        query = select(t.Customer, t.HandoverState.status).join(
            t.HandoverState, t.HandoverState.customer_id == t.Customer.id, isouter=True
        )
        text = getattr(args, "query", None)
        if text:
            like = f"%{text.strip().casefold()}%"
            query = query.where(
                sa.or_(
                    sa.func.lower(t.Customer.name).like(like),
                    sa.func.lower(t.Customer.domain).like(like),
                    sa.func.lower(t.Customer.owner_name).like(like),
                    sa.func.lower(t.Customer.id).like(like),
                )
            )
        if args.status:
            query = query.where(t.HandoverState.status == args.status)
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "domain": c.domain,
                "status": status,
                "owner": c.owner_name or c.owner_email,
            }
            for c, status in s.exec(query.order_by(t.Customer.name).limit(args.limit))
        ]
    store.dispose()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=["id", "name", "domain", "status", "owner"])
        writer.writeheader()
        writer.writerows(rows)
    elif not rows:
        hint = f" matching '{text}'" if text else " (run `crmhub sync` first)"
        print(f"No customers{hint}.")
        return 1
    else:
        width = max(len(r["name"] or "-") for r in rows)
        dwidth = max(len(r["domain"] or "-") for r in rows)
        for r in rows:
            print(
                f"{r['id']:<12} {(r['name'] or '-'):<{width}}  {(r['domain'] or '-'):<{dwidth}}  "
                f"{(r['status'] or '-'):<20} {r['owner'] or '-'}"
            )
        print(
            f"{len(rows)} customer{'s' if len(rows) != 1 else ''}"
            + (f" (first {args.limit}; --limit N for more)" if len(rows) == args.limit else "")
        )
    return 0


def cmd_matches_review(args: argparse.Namespace) -> int:
    from unified_model.reviews import decide, pending_reviews

    store = _store()
    if args.confirm or args.reject:
        review_id = args.confirm or args.reject
        status = "confirmed" if args.confirm else "rejected"
        decide(store, review_id, status, now=dt.datetime.now(dt.UTC))
        print(f"Review {review_id} {status}; the next sync applies it.")
        return 0
    rows = pending_reviews(store)
    if not rows:
        print("No pending match reviews.")
        return 0
    print(
        f"{len(rows)} possible matches need a decision "
        "(crmhub matches review --confirm ID | --reject ID):"
    )
    for r in rows:
        print(
            f"  #{r['id']:<5} score {r['score']:.0f}  {r['left']}  <->  {r['right']}  {r['reason']}"
        )
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    import re

    from crmhub.errors import UsageError
    from unified_model.erasure import erase_email

    address = (args.email or "").strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
        raise UsageError(
            f"'{args.email}' is not an email address; give the person's address, e.g. "
            "crmhub erase --email jane.doe@example.com"
        )
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"erasing {address} cannot be undone; add --yes to confirm (no terminal to ask)"
            )
        answer = input(f"Erase every trace of {address} from the hub? This cannot be undone [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing erased.")
            return 1
    result = erase_email(_store(), address)
    print(
        f"Erased: {result['contacts']} contacts, {result['emails']} emails. Audit entry "
        f"{result['pseudonym']}; future syncs will not bring this address back."
    )
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    from unified_model.insights import compute_company_kpis
    from unified_model.rules import load_rules

    store = _store()
    rules_path = settings.config_dir() / "rules.yaml"
    rules = load_rules(rules_path if rules_path.exists() else None)
    report = compute_company_kpis(store, rules, now=dt.datetime.now(dt.UTC))
    by_owner = getattr(args, "by", "period") == "owner"
    rows = report.owner_rows if by_owner else report.company_rows()
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
    elif args.format == "csv":
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
    else:
        print(report.owner_text() if by_owner else report.company_text())
    return 0


def cmd_fields_ensure(args: argparse.Namespace) -> int:
    from crmhub.runtime import _crm_environment

    with _crm_environment("demo", 42) as where:
        print(f"crmhub fields ensure — {where}")
        from assets.definitions import build_resources

        resources: dict[str, Any] = build_resources()
        # resolved: the config folder may come from CRMHUB_CONFIG_DIR (an EnvVar until resolved)
        hub_config = resources["hub_config"].process_config_and_initialize()
        wb = hub_config.writeback()
        failures = 0
        for crm in ("salesforce", "hubspot"):
            # the _cm form: the CRM resources close their connectors on teardown (the plain
            # process_config_and_initialize refuses resources with a teardown)
            with resources[crm].process_config_and_initialize_cm() as resource:
                connector = resource.connector(hub_config.mapping(crm), wb)
                results = list(connector.ensure_fields(wb.specs(), dry_run=args.dry_run))
                contacts = getattr(connector, "contacts", None)
                if contacts is not None and wb.hubspot_contact_fields:
                    # the contact properties marketers filter lists on (marketing suppression)
                    results += contacts.ensure_fields(wb.contact_specs(), dry_run=args.dry_run)
                for r in results:
                    detail = f": {r.detail}" if r.detail else ""
                    print(f"  {crm:<10} {r.crm_name:<40} {r.action}{detail}")
                    failures += r.action == "not_writable"
        return 1 if failures else 0


def cmd_writeback_log(args: argparse.Namespace) -> int:
    from unified_model.customer_view import find_customers, writeback_log

    store = _store()
    matches = find_customers(store, args.customer)
    if not matches:
        print(f"No customer matches '{args.customer}'.")
        return 1
    for line in writeback_log(store, matches[0].id, limit=args.limit):
        print(line)
    return 0


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The look-up commands; ``common`` adds -v/-q to each."""

    def add(parent: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=help_text)
        common(p)
        return p

    statuses = ["new_sales", "onboarding", "ready_for_handover", "account_management", "at_risk"]
    p = add(sub, "customer", "find customers and show one's 360 view")
    cs = p.add_subparsers(dest="customer_command", required=True, metavar="SUBCOMMAND")
    for name, text in (
        ("list", "list customers: id, name, domain, handover status, owner"),
        ("search", "customers whose name, domain, owner or id contains TEXT"),
    ):
        q = add(cs, name, text)
        if name == "search":
            q.add_argument("query", metavar="TEXT", help="part of a name, domain, owner or id")
        q.add_argument("--status", choices=statuses, help="only customers with this status")
        q.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
        q.add_argument(
            "--format", choices=["table", "csv", "json"], default="table", help="output format"
        )
        q.set_defaults(func=cmd_customer_list)
    q = add(cs, "show", "show a customer by hub id, domain or name")
    q.add_argument("query", help="hub id (HUB-…), a domain or URL, or part of the name")
    q.add_argument("--first", action="store_true", help="show the first of several matches")
    q.set_defaults(func=cmd_customer_show)

    p = add(sub, "matches", "possible matches waiting for a person's decision")
    ms = p.add_subparsers(dest="matches_command", required=True, metavar="SUBCOMMAND")
    q = add(ms, "review", "list pending pairs, or confirm/reject one")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--confirm", type=int, metavar="ID", help="these two records are one customer")
    g.add_argument("--reject", type=int, metavar="ID", help="these two records are different")
    q.set_defaults(func=cmd_matches_review)

    p = add(sub, "erase", "right to be forgotten: remove a person from the hub")
    p.add_argument("--email", required=True, help="the person's email address")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_erase)

    p = add(sub, "kpis", "company-wide KPIs per period, or per owner")
    p.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="output format"
    )
    p.add_argument(
        "--by",
        choices=["period", "owner"],
        default="period",
        help="period: the company per month; owner: each seller/AM this month",
    )
    p.set_defaults(func=cmd_kpis)

    p = add(sub, "fields", "the hub's own fields in the CRMs")
    fs = p.add_subparsers(dest="fields_command", required=True, metavar="SUBCOMMAND")
    q = add(fs, "ensure", "create the hub's fields where missing")
    q.add_argument("--dry-run", action="store_true", help="show what would be created")
    q.set_defaults(func=cmd_fields_ensure)

    p = add(sub, "writeback", "what the hub wrote to the CRMs")
    ws = p.add_subparsers(dest="writeback_command", required=True, metavar="SUBCOMMAND")
    q = add(ws, "log", "recent writes for one customer")
    q.add_argument("customer", help="hub id, domain or part of the name")
    q.add_argument("--limit", type=int, default=50, help="at most this many lines (default: 50)")
    q.set_defaults(func=cmd_writeback_log)


__all__ = ["os", "register"]
