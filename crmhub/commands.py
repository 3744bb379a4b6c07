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
    from unified_model.erasure import erase_email

    result = erase_email(_store(), args.email)
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
    from crmhub.cli import _crm_environment

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
                for r in connector.ensure_fields(wb.specs(), dry_run=args.dry_run):
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


def register(sub: Any) -> None:
    p = sub.add_parser("customer", help="the 360 view of one customer")
    cs = p.add_subparsers(dest="customer_command", required=True)
    q = cs.add_parser("show", help="show a customer by hub id, domain or name")
    q.add_argument("query")
    q.add_argument("--first", action="store_true", help="show the first of several matches")
    q.set_defaults(func=cmd_customer_show)

    p = sub.add_parser("matches", help="possible matches waiting for a person's decision")
    ms = p.add_subparsers(dest="matches_command", required=True)
    q = ms.add_parser("review", help="list pending pairs, or confirm/reject one")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--confirm", type=int, metavar="ID")
    g.add_argument("--reject", type=int, metavar="ID")
    q.set_defaults(func=cmd_matches_review)

    p = sub.add_parser("erase", help="right to be forgotten: remove a person from the hub")
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("kpis", help="company-wide KPIs per period, or per owner")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument(
        "--by",
        choices=["period", "owner"],
        default="period",
        help="period: the company per month; owner: each seller/AM this month",
    )
    p.set_defaults(func=cmd_kpis)

    p = sub.add_parser("fields", help="the hub's own fields in the CRMs")
    fs = p.add_subparsers(dest="fields_command", required=True)
    q = fs.add_parser("ensure", help="create the hub's fields where missing")
    q.add_argument("--dry-run", action="store_true", help="show what would be created")
    q.set_defaults(func=cmd_fields_ensure)

    p = sub.add_parser("writeback", help="what the hub wrote to the CRMs")
    ws = p.add_subparsers(dest="writeback_command", required=True)
    q = ws.add_parser("log", help="recent writes for one customer")
    q.add_argument("customer")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=cmd_writeback_log)


__all__ = ["os", "register"]
