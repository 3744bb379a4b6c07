"""Score identity resolution against the sandbox's ground truth: precision, recall, errors by name.

Why: the hub's promise (one customer, whichever CRMs know it) is only as good as its matching, and
a match rate alone cannot tell a right merge from a wrong one. The sandbox generator records which
Salesforce account and HubSpot company really are the same customer (``SandboxState.truth()``),
so this script runs the real path end to end and compares:

1. seed a sandbox (temporary directory) with a profile (``demo``: 1,000 customers);
2. extract owners, accounts and contacts from both CRMs with the real connectors over HTTPS
   (``unified_model.sync.extract``) into a fresh SQLite ``HubStore``;
3. run ``unified_model.unify.unify`` (the hub code never sees the truth table);
4. score the cross-CRM pairs: a predicted pair is a Salesforce account and a HubSpot company with
   the same hub customer id, a true pair shares a ``customer_key`` in the truth table. Same-CRM
   pairs in one customer are scored separately (the truth's own within-CRM duplicates, if the
   generator made any, are the true ones).

It prints precision/recall, the pairs by match method, the first false positives and false
negatives with names, domains and places (so each error can be understood), and the pending review
count. Exit status 1 when a ``--min-precision``/``--min-recall`` target is missed.

Usage: ``uv run python benchmarks/match_quality.py [--profile demo] [--seed 42] [--show 20]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.records import HUBSPOT, SALESFORCE
from connectors.salesforce import ClientCredentialsAuth, SalesforceConfig, SalesforceConnector
from sandbox.runner import Sandbox, SandboxInfo
from unified_model import tables as t
from unified_model.identity import account_domain
from unified_model.store import HubStore
from unified_model.sync import extract
from unified_model.unify import UnifyStats, unify

KINDS = ("owner", "account", "contact")
Key = tuple[str, str]
Pair = tuple[Key, Key]


def build_connectors(info: SandboxInfo) -> tuple[SalesforceConnector, HubSpotConnector]:
    """Connectors pointed at the sandbox, configured as ``assets/connector_factory.py`` does."""
    sf = SalesforceConnector(
        SalesforceConfig(
            instance_url=info.salesforce_url,
            token_url=f"{info.salesforce_url}/services/oauth2/token",
            auth=ClientCredentialsAuth(info.sf_client_id, info.sf_client_secret),
            ca_bundle=info.ca_bundle,
            bulk_poll_seconds=0.2,
        )
    )
    hs = HubSpotConnector(
        HubSpotConfig(
            base_url=info.hubspot_url, access_token=info.hs_token, ca_bundle=info.ca_bundle
        )
    )
    return sf, hs


def extract_all(
    store: HubStore, connectors: Iterable[Any], kinds: Iterable[str] = KINDS
) -> dict[str, dict[str, Any]]:
    """Run the hub's extraction loop per CRM and kind; per "crm/kind": records, pages, seconds."""
    out: dict[str, dict[str, Any]] = {}
    kinds = tuple(kinds)
    for connector in connectors:
        for kind in kinds:
            start = time.perf_counter()
            stats = extract(store, connector, kind)
            out[f"{connector.crm}/{kind}"] = {
                "records": stats.records,
                "pages": stats.pages,
                "seconds": round(time.perf_counter() - start, 2),
                "stopped": stats.stopped,
            }
    return out


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


@dataclass
class Score:
    """Pairwise comparison of the hub's customers with the truth table."""

    predicted: set[Pair]
    true: set[Pair]
    within_predicted: set[Pair]
    within_true: set[Pair]
    method_of: dict[Pair, str] = field(default_factory=dict)

    @property
    def tp(self) -> set[Pair]:
        return self.predicted & self.true

    @property
    def fp(self) -> set[Pair]:
        return self.predicted - self.true

    @property
    def fn(self) -> set[Pair]:
        return self.true - self.predicted

    @property
    def precision(self) -> float:
        return len(self.tp) / len(self.predicted) if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return len(self.tp) / len(self.true) if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pair_method(a: str, b: str) -> str:
    """One label per pair: both records' method when they agree, else "sf-method/hs-method"."""
    return a if a == b else f"{a}/{b}"


def score(
    accounts: list[t.SourceAccount], links: list[t.SourceLink], truth: list[dict[str, Any]]
) -> Score:
    """Cross-CRM and within-CRM pairs, predicted (same hub customer) and true (same key)."""
    method = {(lk.source, lk.source_id): lk.match_method for lk in links}
    clusters: dict[str, list[Key]] = defaultdict(list)
    for acc in accounts:
        if acc.customer_id and not acc.deleted:
            clusters[acc.customer_id].append((acc.source, acc.source_id))
    predicted: set[Pair] = set()
    within_predicted: set[Pair] = set()
    method_of: dict[Pair, str] = {}
    for members in clusters.values():
        sfs = sorted(k for k in members if k[0] == SALESFORCE)
        hss = sorted(k for k in members if k[0] == HUBSPOT)
        for a in sfs:
            for b in hss:
                predicted.add((a, b))
                method_of[(a, b)] = _pair_method(method.get(a, "?"), method.get(b, "?"))
        for group in (sfs, hss):
            for a, b in combinations(group, 2):
                within_predicted.add((a, b))
                method_of[(a, b)] = _pair_method(method.get(a, "?"), method.get(b, "?"))

    by_key: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in truth:
        if row.get("sf_account_id"):
            by_key[row["customer_key"]][SALESFORCE].add(row["sf_account_id"])
        if row.get("hs_company_id"):
            by_key[row["customer_key"]][HUBSPOT].add(str(row["hs_company_id"]))
    true: set[Pair] = set()
    within_true: set[Pair] = set()
    for per_crm in by_key.values():
        sfs = sorted((SALESFORCE, i) for i in per_crm[SALESFORCE])
        hss = sorted((HUBSPOT, i) for i in per_crm[HUBSPOT])
        true.update((a, b) for a in sfs for b in hss)
        for group in (sfs, hss):
            within_true.update(combinations(group, 2))
    return Score(predicted, true, within_predicted, within_true, method_of)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _describe(acc: t.SourceAccount | None) -> str:
    if acc is None:
        return "(not extracted)"
    place = ", ".join(p for p in (acc.city, acc.country) if p) or "no place"
    explicit = f" x-id={acc.cross_crm_id}" if acc.cross_crm_id else ""
    return f"{acc.name!r} [{account_domain(acc) or 'no domain'}] ({place}){explicit}"


def _reason_kind(reason: str) -> str:
    """A review reason without its particulars (scores, domains, countries), for counting."""
    text = re.sub(r"\(\s*[^)]*\)", "(…)", reason or "")
    text = re.sub(r"same domain \S+", "same domain …", text)
    text = re.sub(r"contacts work at \S+", "contacts work at …", text)
    return re.sub(r"\b\d+(\.\d+)?\b", "…", text)


def report(
    score_: Score,
    accounts: dict[Key, t.SourceAccount],
    links: dict[Key, t.SourceLink],
    reviews: list[t.MatchReview],
    truth_key: dict[Key, str],
    show: int,
) -> list[str]:
    """The human-readable report lines."""
    lines: list[str] = []
    s = score_
    lines.append(
        f"cross-CRM pairs: predicted {len(s.predicted)}, true {len(s.true)}, "
        f"tp {len(s.tp)}, fp {len(s.fp)}, fn {len(s.fn)}"
    )
    lines.append(f"precision {s.precision:.4f}  recall {s.recall:.4f}  f1 {s.f1:.4f}")
    within_fp = s.within_predicted - s.within_true
    lines.append(
        f"within-CRM pairs: true duplicates in the truth {len(s.within_true)}, "
        f"merged by the hub {len(s.within_predicted)} "
        f"(correct {len(s.within_predicted & s.within_true)}, wrong {len(within_fp)})"
    )

    lines.append("cross-CRM pairs by match method (tp / fp):")
    tp_m = Counter(s.method_of[p] for p in s.tp)
    fp_m = Counter(s.method_of[p] for p in s.fp)
    for m in sorted(set(tp_m) | set(fp_m), key=lambda m: -(tp_m[m] + fp_m[m])):
        lines.append(f"  {m:28s} {tp_m[m]:6d} / {fp_m[m]:d}")
    rec_methods = Counter(lk.match_method for lk in links.values())
    lines.append("records by method: " + json.dumps(dict(sorted(rec_methods.items()))))

    pending = [r for r in reviews if r.status == "pending"]
    review_pairs = {((r.left_source, r.left_id), (r.right_source, r.right_id)) for r in pending}
    true_in_review = sum(1 for p in s.fn if p in review_pairs)
    lines.append(
        f"pending reviews: {len(pending)} (of which true pairs: "
        f"{sum(1 for p in review_pairs if p in s.true)}; "
        f"false negatives waiting in review: {true_in_review})"
    )

    kinds = Counter(_reason_kind(r.reason) for r in pending)
    for kind, n in kinds.most_common():
        lines.append(f"  {n:5d}  {kind}")

    def pair_lines(pairs: set[Pair], title: str) -> None:
        lines.append(f"{title}: {len(pairs)} (first {min(show, len(pairs))})")
        for a, b in sorted(pairs)[:show]:
            la, lb = links.get(a), links.get(b)
            note = "in review" if (a, b) in review_pairs else "no review"
            lines.append(
                f"  {a[1]} {truth_key.get(a, '?')} {la.match_method if la else '?'}"
                f" {la.customer_id if la else '?'}: {_describe(accounts.get(a))}"
            )
            lines.append(
                f"  {b[1]} {truth_key.get(b, '?')} {lb.match_method if lb else '?'}"
                f" {lb.customer_id if lb else '?'}: {_describe(accounts.get(b))}"
                f"  <- {s.method_of.get((a, b), note)}"
            )

    pair_lines(s.fp, "false positives (merged, not the same customer)")
    pair_lines(s.fn, "false negatives (same customer, not merged)")
    if within_fp:
        pair_lines(within_fp, "wrong within-CRM merges")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dir", default="/tmp", help="parent directory of the temporary state")
    parser.add_argument("--show", type=int, default=20, help="errors listed per kind")
    parser.add_argument("--min-precision", type=float, default=0.99)
    parser.add_argument("--min-recall", type=float, default=0.95)
    parser.add_argument(
        "--ignore-explicit-ids",
        action="store_true",
        help="blank the cross-CRM id fields before unify: score the domain/name rungs alone, "
        "as for CRMs that were never connected by an integration",
    )
    parser.add_argument(
        "--ignore-websites",
        action="store_true",
        help="blank the accounts' website and domain fields before unify: stress the contact "
        "domain and name rungs, as for CRMs whose forms never asked for a website",
    )
    parser.add_argument(
        "--ignore-contacts",
        action="store_true",
        help="drop the extracted contacts before unify (with the two flags above: names and "
        "places are all the ladder has left)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the sandbox and hub databases")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="crmhub-match-", dir=args.dir))
    try:
        with Sandbox(home / "sandbox") as sb:
            start = time.perf_counter()
            counts = sb.seed(args.profile, seed=args.seed)
            seed_s = time.perf_counter() - start
            store = HubStore(f"sqlite:///{home / 'hub.db'}")
            store.migrate()
            sf, hs = build_connectors(sb.info)
            try:
                start = time.perf_counter()
                extracted = extract_all(store, (sf, hs))
                extract_s = time.perf_counter() - start
            finally:
                sf.close()
                hs.close()
            blank: dict[str, None] = {}
            if args.ignore_explicit_ids:
                blank["cross_crm_id"] = None
            if args.ignore_websites:
                blank.update(website=None, domain=None)
            with store.engine.begin() as conn:
                if blank:
                    table = t.SourceAccount.__table__  # type: ignore[attr-defined]
                    conn.execute(table.update().values(**blank))
                if args.ignore_contacts:
                    conn.execute(t.Contact.__table__.delete())  # type: ignore[attr-defined]
            now: dt.datetime = sb.state.now()
            start = time.perf_counter()
            stats: UnifyStats = unify(store, now=now)
            unify_s = time.perf_counter() - start
            truth = sb.state.truth()

        accounts = [a for a in store.all(t.SourceAccount) if not a.deleted]
        links = [lk for lk in store.all(t.SourceLink) if lk.object_type == "account"]
        reviews = store.all(t.MatchReview)
        result = score(accounts, links, truth)
        truth_key: dict[Key, str] = {}
        for row in truth:
            if row.get("sf_account_id"):
                truth_key[(SALESFORCE, row["sf_account_id"])] = row["customer_key"]
            if row.get("hs_company_id"):
                truth_key[(HUBSPOT, str(row["hs_company_id"]))] = row["customer_key"]

        print(
            f"profile {args.profile} seed {args.seed}"
            + (" (explicit ids ignored)" if args.ignore_explicit_ids else "")
            + (" (websites ignored)" if args.ignore_websites else "")
            + (" (contacts ignored)" if args.ignore_contacts else "")
            + f": {len(truth)} true customers, "
            f"{counts.get('salesforce/Account', 0)} SF accounts, "
            f"{counts.get('hubspot/companies', 0)} HubSpot companies"
        )
        print(
            f"seed {seed_s:.1f} s, extract {extract_s:.1f} s, unify {unify_s:.1f} s; "
            + ", ".join(f"{k} {v['records']}" for k, v in extracted.items())
        )
        print(
            f"hub customers {stats.customers} (in both {stats.matched_across}, SF only "
            f"{stats.salesforce_only}, HubSpot only {stats.hubspot_only})"
        )
        for line in report(
            result,
            {(a.source, a.source_id): a for a in accounts},
            {(lk.source, lk.source_id): lk for lk in links},
            reviews,
            truth_key,
            args.show,
        ):
            print(line)
        ok = result.precision >= args.min_precision and result.recall >= args.min_recall
        print(
            f"targets precision >= {args.min_precision}, recall >= {args.min_recall}: "
            + ("met" if ok else "MISSED")
        )
        if args.json_out:
            Path(args.json_out).write_text(
                json.dumps(
                    {
                        "profile": args.profile,
                        "seed": args.seed,
                        "precision": result.precision,
                        "recall": result.recall,
                        "tp": len(result.tp),
                        "fp": len(result.fp),
                        "fn": len(result.fn),
                        "pending_reviews": stats.pending_reviews,
                        "by_method": stats.by_method,
                        "extract_seconds": extract_s,
                        "unify_seconds": unify_s,
                    },
                    indent=2,
                )
            )
        store.dispose()
        if args.keep:
            print(f"kept: {home}")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
