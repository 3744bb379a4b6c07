"""Identity resolution: which Salesforce accounts and HubSpot companies are the same customer.

Why: the hub's whole promise is one customer, one record, whichever CRMs know it. Handover
status, KPIs and the "marketing is emailing a customer in negotiation" signal are only right if
Acme in Salesforce and Acme in HubSpot are recognised as one customer, and only safe if Acme and
Acne are not. So matching climbs a ladder of evidence, strongest first, and every match says by
which rung and with what confidence:

1. ``explicit_id`` (1.0): an integration stored the other CRM's id (HubSpot's
   ``salesforceaccountid``, the Salesforce account's HubSpot company id field);
   ``manual`` (1.0): a person confirmed the pair in a match review;
2. ``domain`` (0.97): the same registrable web domain, across or within a CRM (a within-CRM
   duplicate is recorded in ``Resolution.within_crm_duplicates``). A domain whose records lie in
   different countries is a group's website shared by its subsidiaries: it joins records per
   country, and across countries only where the names agree too (else a review);
3. ``contact_domain`` (0.9): an account without a domain whose contacts mostly work at a domain
   another account has (per country, like rung 2);
4. ``fuzzy_name`` (score/100): normalised names similar at or above the threshold, with the
   country (and the city, where both are known, exonyms and transliterations allowed) agreeing,
   the two customers' websites not naming different brands, and the merge not making two
   records of one CRM one customer (names alone never find within-CRM duplicates);
5. anything between the review floor and the threshold, or similar names whose location cannot
   be confirmed, becomes a pending ``MatchReview``: never merged without a person. Only mixed
   evidence is queued, though: a name above the threshold against at most one fact (another
   country or city, another brand's website, a CRM that would hold the customer twice), a name
   below it against none; more than that is two companies, and a person is not asked.

Rules that keep it correct over time:

- Explicit ids override name similarity: a record with an honoured explicit (or manual)
  cross-CRM partner is never matched to the other CRM by name, so a company that was
  fuzzy-merged last run and now names a different Salesforce account moves there, splitting
  the wrong merge. A shared domain can still add records to it (duplicates of its partner).
  Two customers anchored by different explicit pairs are never merged by weaker evidence (a
  pending review is raised instead): the CRMs say they are kept apart on purpose.
- Conflicting explicit ids are settled deterministically: a record's claim about itself beats
  another record's claim about it. ``x → y`` is honoured unless ``y`` names a third record; the
  dropped claim becomes a pending review.
- A person's decisions win: a rejected pair never ends up in one customer (not even through
  other records or an explicit id); a confirmed pair is merged.
- Hub customer ids are stable: a cluster keeps the id most of its members had (oldest on a tie),
  a split leaves the id with the larger part, new clusters get fresh ids from an injectable factory.

It scales to 200k accounts without comparing all pairs: domains group in one pass, fuzzy names
are compared only inside blocks that share one of their rarest shared name tokens and with their
next neighbours in sorted order (which catches typos in every token), oversized blocks are split
by country or skipped (counted in ``stats``), and clusters are kept in a union-find. Everything here is a pure function of its inputs: no database, no HTTP.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from typing import Any, Protocol, TypeVar

import numpy as np
from rapidfuzz import fuzz, process

from connectors.records import HUBSPOT, SALESFORCE
from unified_model.domains import (
    city_key,
    contact_work_domain,
    domains_conflict,
    is_free_mail,
    name_tokens,
    normalize_company_name,
    normalize_country,
    normalize_email,
    registrable_domain,
)
from unified_model.tables import MatchReview, SourceLink

#: (source, source_id) of a CRM record: ("salesforce", "001…") / ("hubspot", "123…").
RecordKey = tuple[str, str]


class AccountLike(Protocol):
    """What resolution reads of an account: a ``SourceAccount`` or a light ``AccountFacts``."""

    @property
    def source(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def website(self) -> str | None: ...
    @property
    def domain(self) -> str | None: ...
    @property
    def city(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def cross_crm_id(self) -> str | None: ...
    @property
    def deleted(self) -> bool: ...
    @property
    def modified_at(self) -> dt.datetime | None: ...


class ContactLike(Protocol):
    """What resolution reads of a contact: a ``Contact`` or a light ``ContactFacts``."""

    @property
    def source(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def email_normalized(self) -> str | None: ...
    @property
    def account_source_ids(self) -> list[str]: ...
    @property
    def deleted(self) -> bool: ...


@dataclass(slots=True)
class AccountFacts:
    """The columns of an account that resolution reads, without an ORM object around them.

    Why: at 145,000 accounts a SQLModel row costs several kilobytes (pydantic state, SQLAlchemy
    instance state, every column); this is the tenth of it. ``customer_id`` is the stored link,
    so the caller writes only the accounts whose customer changed.
    """

    source: str
    source_id: str
    customer_id: str | None
    name: str | None
    website: str | None
    domain: str | None
    city: str | None
    country: str | None
    cross_crm_id: str | None
    modified_at: dt.datetime | None
    deleted: bool = False


@dataclass(slots=True)
class ContactFacts:
    """The columns of a contact that resolution and contact linking read (see ``AccountFacts``)."""

    source: str
    source_id: str
    customer_id: str | None
    email: str | None
    email_normalized: str | None
    account_source_ids: list[str]
    deleted: bool = False
    #: how the last linking placed it (``Contact.linked_via``): None through one of its
    #: accounts (or not linked yet), ``LINKED_BY_DOMAIN``, ``LINKED_NONE``
    linked_via: str | None = None


class ContactSource(Protocol):
    """Contacts that can also be selected by account (a database): ``linked_to(keys)`` yields,
    in the same order as iterating, only the contacts linked to one of the accounts ``keys``
    (same CRM). The resolver uses it where only some accounts' contacts matter."""

    def __iter__(self) -> Iterator[ContactLike]: ...

    def linked_to(self, accounts: Collection[RecordKey]) -> Iterable[ContactLike]: ...


class LinkLike(Protocol):
    """A previous run's link: a ``SourceLink`` or any row with the same attributes."""

    @property
    def source(self) -> str: ...
    @property
    def object_type(self) -> str: ...
    @property
    def source_id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def match_method(self) -> str: ...
    @property
    def matched_at(self) -> dt.datetime | None: ...


MANUAL = "manual"
EXPLICIT_ID = "explicit_id"
DOMAIN = "domain"
CONTACT_DOMAIN = "contact_domain"
FUZZY_NAME = "fuzzy_name"
NEW = "new"

#: How strong each method is, to label a record by the best evidence that joined it.
_METHOD_RANK: dict[str, int] = {
    NEW: 0,
    FUZZY_NAME: 1,
    CONTACT_DOMAIN: 2,
    DOMAIN: 3,
    EXPLICIT_ID: 4,
    MANUAL: 5,
}

#: Placeholder domains people type when the form insists; never evidence of identity.
DEFAULT_IGNORED_DOMAINS: frozenset[str] = frozenset(
    {
        "example.com",
        "example.org",
        "example.net",
        "test.com",
        "none.com",
        "na.com",
        "noemail.com",
        "nodomain.com",
        "domain.com",
        "company.com",
        "unknown.com",
        "linkedin.com",
        "facebook.com",
    }
)

#: Missing evidence rather than evidence against: a near miss without a country is still reviewed.
_COUNTRY_UNKNOWN = "country unknown"

#: A domain shared across countries by more records than this is merged per country only: its
#: cross-country name comparison would be quadratic, and such a domain is no one customer's.
_MAX_SPLIT_DOMAIN_GROUP = 50

#: the fewest pairs a scoring call spreads over several cores: below it, starting the threads
#: costs more than the scores (most name blocks of ``large`` are a handful of pairs)
PARALLEL_PAIRS = 20_000


def _workers(pairs: int) -> int:
    """How many threads ``process.cdist`` / ``cpdist`` score ``pairs`` pairs with: the cores
    (at most 4) for many pairs, else 1. The threads run in C, outside the GIL."""
    return min(os.cpu_count() or 1, 4) if pairs >= PARALLEL_PAIRS else 1


_SCORERS: dict[str, Callable[..., float]] = {
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
    "ratio": fuzz.ratio,
}


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Tunable thresholds of the matching ladder (read from the hub's configuration).

    ``contact_domain_*``: an account's contacts reveal its domain when at least
    ``contact_domain_min_contacts`` of them share one work-email domain and that domain holds
    more than ``contact_domain_min_share`` of their work emails; by default only accounts
    without a domain of their own use it (a website that differs from the contacts' domain is
    more often a brand or event site than a mistake).
    ``block_tokens``: names are compared within blocks keyed by each of their rarest tokens;
    ``neighbourhood_window``: and with that many following names in sorted order.
    ``max_reviews_per_record``: at most this many pending reviews name one record (its best
    candidates; 0 = no limit), so a common name cannot flood the review queue.
    ``max_block_pairs``: a name block whose cross product exceeds this is split by country, and
    skipped (counted in ``stats``) if still too large: the guard against a quadratic blow-up on a
    name every tenth account shares.
    ``split_shared_domain_by_country``: records whose (known) countries differ join through a
    shared domain only when their names agree at ``fuzzy_threshold`` too; otherwise the pair
    becomes a pending review. A group's website is routinely entered on its national subsidiaries
    ("Acme Nordic AB", Sweden, on acme.com), which are separate customers with their own
    contracts, while the same customer is rarely recorded in two countries under two names.
    ``domain_conflict_blocks_fuzzy``: a name match between customers whose websites name
    different brands ("Alpenway Networks", alpenway-networks.fr / "Alpenbay Networks",
    alpenbaynetworks.fr) becomes a pending review instead of a merge: a website is stronger
    evidence than a similar name. Country sites of one brand (acme.de / acme.com) do not conflict;
    the domain an account's people work at counts as its website when it has none.
    ``review_contradicted_names``: a name match is queued for review only where the evidence is
    mixed: a name at or above ``fuzzy_threshold`` against at most one fact (a differing country
    or city, websites of different brands, a CRM that would hold the customer twice), a name
    below it against none (an unknown country is no fact). Pairs with more against them are two
    companies and are dismissed (counted in ``stats``): at 100k customers they made 68k of 70k
    reviews, none a true match, and a queue nobody can work through hides the few that matter.
    True queues them all again.
    """

    fuzzy_threshold: float = 92.0
    review_floor: float = 80.0
    fuzzy_scorer: str = "token_sort_ratio"
    require_country_for_fuzzy: bool = True
    require_city_if_both_known: bool = True
    fuzzy_within_crm: bool = False
    split_shared_domain_by_country: bool = True
    domain_conflict_blocks_fuzzy: bool = True
    review_contradicted_names: bool = False
    min_name_length: int = 3
    contact_domain_min_contacts: int = 2
    contact_domain_min_share: float = 0.5
    contact_domain_only_without_domain: bool = True
    ignored_domains: frozenset[str] = DEFAULT_IGNORED_DOMAINS
    max_block_pairs: int = 100_000
    block_tokens: int = 2
    neighbourhood_window: int = 6
    max_reviews_per_record: int = 3
    domain_confidence: float = 0.97
    contact_domain_confidence: float = 0.9
    id_prefix: str = "HUB-"
    id_width: int = 7

    def __post_init__(self) -> None:
        if not 0 <= self.review_floor <= self.fuzzy_threshold <= 100:
            raise ValueError(
                "match config: need 0 <= review_floor <= fuzzy_threshold <= 100, got "
                f"review_floor={self.review_floor}, fuzzy_threshold={self.fuzzy_threshold}"
            )
        if self.fuzzy_scorer not in _SCORERS:
            raise ValueError(
                f"match config: fuzzy_scorer {self.fuzzy_scorer!r} unknown, "
                f"use one of {sorted(_SCORERS)}"
            )
        if self.contact_domain_min_contacts < 1:
            raise ValueError("match config: contact_domain_min_contacts must be >= 1")

    def canonical(self) -> str:
        """The settings as text that is the same in every process.

        Why not ``repr``: a frozenset's order follows string hashing, which Python salts per
        process, so two step processes would see two "different" settings."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return json.dumps(
            values,
            sort_keys=True,
            default=lambda v: sorted(v) if isinstance(v, set | frozenset) else repr(v),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MatchConfig:
        """Build from the ``identity`` section of the hub's YAML; unknown keys are errors."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"match config: unknown key(s) {unknown}, known: {sorted(known)}")
        if "ignored_domains" in data:
            data["ignored_domains"] = frozenset(str(d).lower() for d in data["ignored_domains"])
        return cls(**data)


class SequentialIds:
    """The default hub customer id factory: ``HUB-0000001``, ``HUB-0000002``, …

    Deterministic, so that the same inputs give the same ids (tests, re-runs), and continuing
    after the highest id already handed out, so that an id is never reused for another customer.
    """

    def __init__(self, prefix: str = "HUB-", width: int = 7, start: int = 1) -> None:
        self.prefix = prefix
        self.width = width
        self.next_number = start

    @classmethod
    def after(
        cls, existing_ids: Iterable[str], prefix: str = "HUB-", width: int = 7
    ) -> SequentialIds:
        """A factory continuing after the highest ``<prefix><digits>`` among ``existing_ids``."""
        pattern = re.compile(re.escape(prefix) + r"(\d+)$")
        highest = 0
        for cid in existing_ids:
            m = pattern.match(cid or "")
            if m:
                highest = max(highest, int(m.group(1)))
        return cls(prefix, width, highest + 1)

    def __call__(self) -> str:
        cid = f"{self.prefix}{self.next_number:0{self.width}d}"
        self.next_number += 1
        return cid


@dataclass(frozen=True, slots=True)
class Assignment:
    """One CRM record's customer, and the evidence that put it there."""

    customer_id: str
    method: str
    confidence: float
    #: The record whose evidence joined this one (None for a customer of one record).
    matched_with: RecordKey | None = None


@dataclass
class Resolution:
    """The outcome of one resolution run."""

    assignments: dict[RecordKey, Assignment]
    #: Pending reviews: possible matches a person has to decide.
    reviews: list[MatchReview] = field(default_factory=list)
    #: Pairs of records of the same CRM merged into one customer: duplicates to clean up there.
    within_crm_duplicates: list[tuple[RecordKey, RecordKey]] = field(default_factory=list)
    #: Previous customer ids no longer used, with the id that now holds most of their records
    #: (None when none of their records is left), so the caller can migrate or retire them.
    retired_ids: dict[str, str | None] = field(default_factory=dict)
    new_ids: list[str] = field(default_factory=list)
    #: Counts for run metadata: records, customers, per method, comparisons, skipped blocks, …
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def account_assignment(self) -> dict[RecordKey, str]:
        """(source, source_id) → hub customer id, the input ``link_contacts`` expects."""
        return {key: a.customer_id for key, a in self.assignments.items()}

    def customer_id(self, source: str, source_id: str) -> str | None:
        found = self.assignments.get((source, source_id))
        return found.customer_id if found else None

    def clusters(self) -> dict[str, list[RecordKey]]:
        """Hub customer id → its records, sorted."""
        out: dict[str, list[RecordKey]] = defaultdict(list)
        for key in sorted(self.assignments):
            out[self.assignments[key].customer_id].append(key)
        return dict(out)

    def links(
        self, now: dt.datetime | None = None, previous: Iterable[LinkLike] = ()
    ) -> list[SourceLink]:
        """The assignments as ``SourceLink`` rows (object type "account") for the store.

        A link whose customer and method did not change keeps its ``matched_at`` from
        ``previous``, so "when was this match made" (and which id is oldest) survives re-runs.
        """
        return [SourceLink(**row) for row in self.link_rows(now, previous)]

    def link_rows(
        self, now: dt.datetime | None = None, previous: Iterable[LinkLike] = ()
    ) -> Iterator[dict[str, Any]]:
        """``links`` as plain column dicts, in key order (what the store writes, without ORM rows)."""
        before = {
            (p.source, p.source_id): p for p in previous if p.object_type in ("account", None)
        }
        for key, a in sorted(self.assignments.items()):
            old = before.get(key)
            kept = old is not None and (old.customer_id, old.match_method) == (
                a.customer_id,
                a.method,
            )
            yield {
                "source": key[0],
                "object_type": "account",
                "source_id": key[1],
                "customer_id": a.customer_id,
                "match_method": a.method,
                "confidence": a.confidence,
                "matched_at": old.matched_at if kept and old is not None else now,
            }


# --------------------------------------------------------------------------------------------
# Clusters: union-find with the constraints that keep merges honest
# --------------------------------------------------------------------------------------------


class _Clusters:
    """Union-find over record indices, carrying per-cluster constraints.

    ``anchored`` (per root): the cluster holds an explicit/manual cross-CRM pair.
    ``forbidden`` (per root): record indices a member was rejected with by a person.
    """

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n
        self.anchored = [False] * n
        self.forbidden: dict[int, set[int]] = {}
        self.rank = [0] * n
        self.method = [NEW] * n
        self.confidence = [1.0] * n
        self.partner: list[int | None] = [None] * n

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def rejected_between(self, ra: int, rb: int) -> bool:
        """Would merging roots ``ra`` and ``rb`` put a person-rejected pair into one customer?"""
        fa, fb = self.forbidden.get(ra), self.forbidden.get(rb)
        if not fa and not fb:
            return False
        small, other = (fa, rb) if fa and (not fb or len(fa) <= len(fb)) else (fb, ra)
        return any(self.find(x) == other for x in small or ())

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        self.anchored[ra] = self.anchored[ra] or self.anchored[rb]
        fb = self.forbidden.pop(rb, None)
        if fb:
            self.forbidden.setdefault(ra, set()).update(fb)
        return ra

    def label(self, a: int, b: int, method: str, confidence: float) -> None:
        """Record that ``a`` and ``b`` matched by ``method``, keeping each one's best evidence."""
        rank = _METHOD_RANK[method]
        for x, y in ((a, b), (b, a)):
            if (rank, confidence) > (self.rank[x], self.confidence[x]):
                self.rank[x], self.method[x], self.confidence[x] = rank, method, confidence
                self.partner[x] = y


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------


def account_domain(account: AccountLike) -> str | None:
    """The registrable domain of an account: its domain field, else its website."""
    return registrable_domain(account.domain) or registrable_domain(account.website)


_SOURCE_RANK: dict[str, int] = {SALESFORCE: 0, HUBSPOT: 1}


def _source_order(source: str) -> tuple[int, str]:
    return (_SOURCE_RANK.get(source, 2), source)


def _pair_order(a: RecordKey, b: RecordKey) -> tuple[RecordKey, RecordKey]:
    """Canonical order of a pair (Salesforce left), so a review has one identity."""
    ka, kb = (_source_order(a[0]), a[1]), (_source_order(b[0]), b[1])
    return (a, b) if ka <= kb else (b, a)


def _live_by_key(accounts: Iterable[AccountLike]) -> dict[RecordKey, AccountLike]:
    """Live accounts by key; of two rows for one key, the later modified one counts."""
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    out: dict[RecordKey, AccountLike] = {}
    for acc in accounts:
        if acc.deleted or not acc.source or not acc.source_id:
            continue
        key = (acc.source, acc.source_id)
        prev = out.get(key)
        if prev is None or (acc.modified_at or floor) >= (prev.modified_at or floor):
            out[key] = acc
    return out


def _usable_domain(account: AccountLike, config: MatchConfig) -> str | None:
    """The account's domain as matching evidence: None for free mail and ignored domains."""
    domain = account_domain(account)
    if domain is None or domain in config.ignored_domains or is_free_mail(domain):
        return None
    return domain


def _resolver_keys(live: Mapping[RecordKey, AccountLike]) -> list[RecordKey]:
    """The records in the resolver's order (Salesforce first, then by id)."""
    return sorted(live, key=lambda k: (_source_order(k[0]), k[1]))


def resolution_digest(
    accounts: Iterable[AccountLike],
    contacts: ContactSource | Iterable[ContactLike],
    decisions: Iterable[MatchReview],
    config: MatchConfig | None = None,
) -> str | None:
    """A hash of everything ``resolve_customers`` reads, or None when taking it would cost what
    resolving costs (the contact-domain rung reads every contact: see ``contact_domains``).

    Why: resolution is deterministic. With the same live accounts (the columns it compares),
    the same contact evidence (the contacts of accounts without a domain of their own), the
    same decisions and settings, and the ids it wrote last time, it gives the same customers.
    So a run whose changed rows touched none of that (a contact's title, an account's owner or
    revenue, a contact of an account with a website) keeps the last resolution instead of
    comparing 145,000 names again (15 s on ``large``). The hash covers the columns, not their
    change times: a re-read that changed nothing the matching reads is no change.
    """
    config = config or MatchConfig()
    linked_to = getattr(contacts, "linked_to", None)
    if not (config.contact_domain_only_without_domain and callable(linked_to)):
        return None
    live = _live_by_key(accounts)
    keys = _resolver_keys(live)
    h = hashlib.sha256(config.canonical().encode())
    domainless: list[RecordKey] = []
    for key in keys:
        a = live[key]
        fields = (key, a.name, a.website, a.domain, a.city, a.country, a.cross_crm_id)
        h.update(repr(fields).encode())
        if _usable_domain(a, config) is None:
            domainless.append(key)
    h.update(b"|decisions|")
    for pair, status in sorted(_decisions(decisions).items(), key=lambda kv: sorted(kv[0])):
        h.update(repr((sorted(pair), status)).encode())
    h.update(b"|contacts|")
    for c in linked_to(domainless):
        if c.deleted:
            continue
        h.update(
            repr(
                (c.source, c.source_id, c.email, c.email_normalized, list(c.account_source_ids))
            ).encode()
        )
    return h.hexdigest()


def _decisions(reviews: Iterable[MatchReview]) -> dict[frozenset[RecordKey], str]:
    """A person's latest decision per pair: "confirmed" or "rejected"."""
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    latest: dict[frozenset[RecordKey], tuple[dt.datetime, str]] = {}
    for r in reviews:
        status = (r.status or "").strip().lower()
        if status not in ("confirmed", "rejected"):
            continue
        pair = frozenset({(r.left_source, r.left_id), (r.right_source, r.right_id)})
        if len(pair) != 2:
            continue
        when = r.decided_at or floor
        if pair not in latest or when >= latest[pair][0]:
            latest[pair] = (when, status)
    return {pair: status for pair, (_, status) in latest.items()}


class _Resolver:
    """One run of the ladder; holds the indexed inputs so the rungs stay small."""

    def __init__(
        self,
        accounts: dict[RecordKey, AccountLike],
        contacts: Iterable[ContactLike],
        decisions: dict[frozenset[RecordKey], str],
        config: MatchConfig,
        now: dt.datetime | None,
    ) -> None:
        self.config = config
        self.now = now
        self.keys: list[RecordKey] = _resolver_keys(accounts)
        self.accounts = [accounts[k] for k in self.keys]
        self.index = {k: i for i, k in enumerate(self.keys)}
        #: each record's CRM, by index (read in every block comparison: a list, not a method)
        self.sources: list[str] = [k[0] for k in self.keys]
        self.contacts = contacts
        self.decisions = decisions
        self.clusters = _Clusters(len(self.keys))
        #: record has an explicit/manual partner in the other CRM
        self.anchored_node = [False] * len(self.keys)
        #: pending reviews as (pair → (score, reason)); rows are built once at the end, because
        #: constructing SQLModel rows is slow and most candidates are settled before then.
        self.reviews: dict[tuple[RecordKey, RecordKey], tuple[float, str]] = {}
        self.duplicates: list[tuple[RecordKey, RecordKey]] = []
        self.stats: Counter[str] = Counter()
        self.domains: list[str | None] = [self._usable_domain(a) for a in self.accounts]
        self.countries: list[str | None] = [normalize_country(a.country) for a in self.accounts]
        self._names: list[str] | None = None
        self._review_later: list[tuple[int, int, float, str]] = []
        #: The domain the people of an account without a website work at (rung 3's evidence),
        #: which vetoes a name match to another brand's website just as a website would.
        self.contact_sites: dict[int, str] = {}

    # ---- helpers ------------------------------------------------------------------------
    def _usable_domain(self, account: AccountLike) -> str | None:
        return _usable_domain(account, self.config)

    @property
    def names(self) -> list[str]:
        if self._names is None:
            self._names = [normalize_company_name(a.name) for a in self.accounts]
        return self._names

    def _name_score(self, a: int, b: int) -> float:
        scorer = _SCORERS[self.config.fuzzy_scorer]
        return float(scorer(self.names[a], self.names[b])) if self.names[a] else 0.0

    def _review(self, a: int, b: int, score: float, reason: str) -> bool:
        pair = _pair_order(self.keys[a], self.keys[b])
        if pair in self.reviews or frozenset(pair) in self.decisions:
            return False
        self.reviews[pair] = (round(score, 1), reason)
        return True

    def review_rows(self) -> list[MatchReview]:
        return [
            MatchReview(
                left_source=ls,
                left_id=lid,
                right_source=rs,
                right_id=rid,
                score=score,
                reason=reason,
                status="pending",
                created_at=self.now,
            )
            for ((ls, lid), (rs, rid)), (score, reason) in sorted(self.reviews.items())
        ]

    def _merge(self, a: int, b: int, method: str, confidence: float) -> None:
        cl = self.clusters
        if cl.find(a) != cl.find(b):
            cl.union(a, b)
            self.stats[f"merges_{method}"] += 1
            if self.sources[a] == self.sources[b]:
                self.duplicates.append(_pair_order(self.keys[a], self.keys[b]))
        cl.label(a, b, method, confidence)

    def _weak_merge(self, a: int, b: int, method: str, confidence: float, evidence: str) -> bool:
        """Merge by evidence weaker than an explicit id, unless a stronger fact forbids it."""
        cl = self.clusters
        ra, rb = cl.find(a), cl.find(b)
        if ra == rb:
            cl.label(a, b, method, confidence)
            return True
        if cl.rejected_between(ra, rb):
            self.stats["skipped_rejected"] += 1
            return False
        if cl.anchored[ra] and cl.anchored[rb]:
            self.stats["skipped_two_anchored"] += 1
            self._review(
                a,
                b,
                confidence * 100,
                f"{evidence}, but the records belong to customers kept apart by explicit ids",
            )
            return False
        self._merge(a, b, method, confidence)
        return True

    def _group_edges(self, members: list[int]) -> list[tuple[int, int]]:
        """Edges that join a group of records sharing evidence, without all pairs.

        Records of one CRM chain together (within-CRM duplicates), and the first records of
        each CRM join the two chains. Sorted, so the same group always gives the same edges.
        """
        by_source: dict[str, list[int]] = defaultdict(list)
        for i in sorted(members):
            by_source[self.sources[i]].append(i)
        edges: list[tuple[int, int]] = []
        heads: list[int] = []
        for source in sorted(by_source, key=_source_order):
            group = by_source[source]
            heads.append(group[0])
            edges.extend(pairwise(group))
        return [*pairwise(heads), *edges]

    # ---- rung 1: explicit ids and a person's decisions ------------------------------------
    def explicit_and_manual(self) -> None:
        sf_ids: dict[str, int] = {}
        hs_ids: dict[str, int] = {}
        for i, (source, sid) in enumerate(self.keys):
            if source == SALESFORCE:
                sf_ids[sid] = i
                if len(sid) == 18:
                    sf_ids.setdefault(sid[:15], i)  # 15-char ids are the same record
            elif source == HUBSPOT:
                hs_ids[sid] = i

        pointer: dict[int, int] = {}
        for i, acc in enumerate(self.accounts):
            target_id = (acc.cross_crm_id or "").strip()
            if not target_id:
                continue
            source = self.sources[i]
            target: int | None = None
            if source == HUBSPOT:
                target = sf_ids.get(target_id)
                if target is None and len(target_id) == 18:
                    target = sf_ids.get(target_id[:15])
            elif source == SALESFORCE:
                target = hs_ids.get(target_id.removesuffix(".0"))
            if target is None:
                self.stats["explicit_dangling"] += 1
            else:
                pointer[i] = target

        edges: set[tuple[int, int]] = set()
        for x, y in pointer.items():
            z = pointer.get(y)
            if z is None or z == x:
                edges.add((min(x, y), max(x, y)))
            else:
                # y says it is z, x says it is y: a record's claim about itself wins.
                self.stats["explicit_conflicts"] += 1
                self._review(
                    x,
                    y,
                    self._name_score(x, y),
                    f"explicit id conflict: {self.keys[x][0]} record names this "
                    f"{self.keys[y][0]} record, which names another {self.keys[z][0]} record",
                )

        cl = self.clusters
        # A person's rejections hold before anything merges, so nothing can bridge them.
        confirmed: list[tuple[int, int]] = []
        for pair, status in sorted(self.decisions.items(), key=lambda kv: sorted(kv[0])):
            ka, kb = sorted(pair)
            if ka not in self.index or kb not in self.index:
                continue
            a, b = self.index[ka], self.index[kb]
            if status == "rejected":
                cl.forbidden.setdefault(a, set()).add(b)
                cl.forbidden.setdefault(b, set()).add(a)
            else:
                confirmed.append((a, b))

        for a, b in sorted(edges):
            if cl.rejected_between(cl.find(a), cl.find(b)):
                self.stats["skipped_rejected"] += 1
                continue
            self._anchor(a, b)
            self._merge(a, b, EXPLICIT_ID, 1.0)
        for a, b in confirmed:
            if cl.rejected_between(cl.find(a), cl.find(b)):
                self.stats["skipped_rejected"] += 1
                continue
            self._anchor(a, b)
            self._merge(a, b, MANUAL, 1.0)

    def _anchor(self, a: int, b: int) -> None:
        if self.sources[a] != self.sources[b]:
            self.anchored_node[a] = self.anchored_node[b] = True
            self.clusters.anchored[self.clusters.find(a)] = True
            self.clusters.anchored[self.clusters.find(b)] = True

    # ---- rung 2: same registrable domain ------------------------------------------------------
    def same_domain(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, domain in enumerate(self.domains):
            if domain:
                groups[domain].append(i)
        conf = self.config.domain_confidence
        for domain in sorted(groups):
            members = groups[domain]
            if len(members) > 1:  # a domain of one record joins nothing (most of them)
                self._join_shared(members, DOMAIN, conf, f"same domain {domain}")
        return groups

    def _join_shared(
        self, members: list[int], method: str, confidence: float, evidence: str
    ) -> None:
        """Merge records that share a domain; across countries only where the names agree too.

        A domain whose records all lie in one country (or whose countries are unknown) is one
        customer. A domain spanning countries is a group's: its records merge per country, and
        across countries (or from a record of unknown country into one of them) only where the
        names agree at the fuzzy threshold. A country pair whose names disagree gets one pending
        review (a person may know the subsidiary is billed as part of the group).
        """
        cfg = self.config
        parts: dict[str | None, list[int]] = defaultdict(list)
        for i in members:
            parts[self.countries[i]].append(i)
        known = sorted(c for c in parts if c is not None)
        if not cfg.split_shared_domain_by_country or len(known) <= 1:
            for a, b in self._group_edges(members):
                self._weak_merge(a, b, method, confidence, evidence)
            return
        self.stats["shared_domains_split_by_country"] += 1
        for country in known:
            for a, b in self._group_edges(parts[country]):
                self._weak_merge(a, b, method, confidence, evidence)
        if len(members) > _MAX_SPLIT_DOMAIN_GROUP:
            # A domain on hundreds of accounts in many countries (a university, a reseller):
            # per-country merges only, no quadratic name comparison.
            self.stats["shared_domains_not_compared"] += 1
            return
        cl = self.clusters
        pairs = []
        for a, b in combinations(sorted(members), 2):
            ca, cb = self.countries[a], self.countries[b]
            if ca == cb and ca is not None:
                continue
            pairs.append((self._name_score(a, b), self.sources[a] != self.sources[b], a, b))
        # Best-named pairs first, cross-CRM before within-CRM: the merge a person would make.
        pairs.sort(key=lambda p: (-p[0], not p[1], p[2], p[3]))
        reviewed: set[tuple[int, int]] = set()
        reviewed_unplaced: set[int] = set()
        for score, _, a, b in pairs:
            ra, rb = cl.find(a), cl.find(b)
            if ra == rb:
                continue
            if score >= cfg.fuzzy_threshold:
                self._weak_merge(a, b, method, confidence, f"{evidence} and name {score:.0f}")
                continue
            ca, cb = self.countries[a], self.countries[b]
            if ca is None or cb is None:
                # A record without a country whose name matches no one's: its best candidate.
                unplaced = a if ca is None else b
                if unplaced in reviewed_unplaced:
                    continue
                reviewed_unplaced.add(unplaced)
                problem = "country unknown"
            else:
                roots = (min(ra, rb), max(ra, rb))
                if roots in reviewed:
                    continue
                reviewed.add(roots)
                problem = f"countries differ ({ca} / {cb})"
            self._review_later.append(
                (
                    a,
                    b,
                    score,
                    f"{evidence}, but {problem} and names differ ({score:.0f}): "
                    "a subsidiary or sister company?",
                )
            )

    # ---- rung 3: the domain the account's contacts work at ----------------------------------
    def contact_domains(self, domain_groups: dict[str, list[int]]) -> None:
        cfg = self.config
        counts: dict[int, Counter[str]] = defaultdict(Counter)
        contacts = self.contacts
        linked_to = getattr(contacts, "linked_to", None)
        if cfg.contact_domain_only_without_domain and callable(linked_to):
            # Only accounts without a domain of their own use this rung: a source that can
            # select (the database) hands over just their contacts, in the same order, instead
            # of every contact (780,000 on ``large``, a quarter of the resolution's time).
            contacts = linked_to(
                [key for key, domain in zip(self.keys, self.domains, strict=True) if domain is None]
            )
        for contact in contacts:
            if contact.deleted or not contact.account_source_ids:
                continue
            domain = contact_work_domain(contact.email_normalized, contact.email)
            if domain is None or domain in cfg.ignored_domains:
                continue
            for account_id in dict.fromkeys(contact.account_source_ids):
                i = self.index.get((contact.source, account_id))
                if i is not None:
                    counts[i][domain] += 1
        by_domain: dict[str, list[int]] = defaultdict(list)
        for i, counter in counts.items():
            if cfg.contact_domain_only_without_domain and self.domains[i] is not None:
                continue
            ranked = counter.most_common(2)
            top, n = ranked[0]
            runner_up = ranked[1][1] if len(ranked) > 1 else 0
            share = n / sum(counter.values())
            if (
                n >= cfg.contact_domain_min_contacts
                and share > cfg.contact_domain_min_share
                and n > runner_up
                and top != self.domains[i]
            ):
                by_domain[top].append(i)
                if self.domains[i] is None:
                    self.contact_sites[i] = top
        conf = cfg.contact_domain_confidence
        for domain in sorted(by_domain):
            members = sorted(set(by_domain[domain]) | set(domain_groups.get(domain, ())))
            self._join_shared(members, CONTACT_DOMAIN, conf, f"contacts work at {domain}")

    # ---- rung 4/5: fuzzy names within blocks, reviews below the threshold --------------------
    def fuzzy_names(self) -> None:
        cfg = self.config
        names = self.names
        tokens = [
            name_tokens(n, normalized=True) if len(n) >= cfg.min_name_length else [] for n in names
        ]
        df: Counter[str] = Counter(t for ts in tokens for t in ts)
        blocks: dict[str, list[int]] = defaultdict(list)
        for i, ts in enumerate(tokens):
            if not ts:
                continue
            # The rarest *shared* tokens find names with the same telling word ("Kestrel
            # Robotics" and "Kestrel Robotic Systems" share "kestrel"); a token no other name
            # has blocks with nobody. Two of them, because the single rarest is often a coin
            # toss between equally rare words.
            shared = sorted((t for t in ts if df[t] > 1), key=lambda t: (df[t], t))
            for token in shared[: cfg.block_tokens]:
                blocks[token].append(i)
        countries = self.countries

        candidates: dict[tuple[int, int], float] = {}
        for block_key in sorted(blocks):
            members = blocks[block_key]
            if len(members) < 2:
                continue
            for part in self._split_block(members, countries):
                self._compare_block(part, candidates)
        self._sorted_neighbourhood(candidates)

        cities = [city_key(a.city) for a in self.accounts]
        cl = self.clusters
        # Each customer's websites so far: a name match between two customers whose websites
        # name different brands is two companies with similar names, not one.
        sites: dict[int, set[str]] = defaultdict(set)
        if cfg.domain_conflict_blocks_fuzzy:
            for i, domain in enumerate(self.domains):
                if domain:
                    sites[cl.find(i)].add(domain)
            for i, domain in self.contact_sites.items():
                sites[cl.find(i)].add(domain)
        # Each customer's CRMs so far: without ``fuzzy_within_crm`` a name never makes two
        # records of one CRM one customer, not even through a record of the other CRM ("Alpenway
        # Networks" in both CRMs and "Alpenbay Networks" in both are two customers, each paired
        # exactly; the near-miss across them would otherwise chain all four).
        crms: dict[int, set[str]] = defaultdict(set)
        if not cfg.fuzzy_within_crm:
            for i in range(len(self.keys)):
                crms[cl.find(i)].add(self.sources[i])
        # An explicit id already says where a record belongs in the other CRM: a name match to
        # another record there is never taken, whatever comes before it. Set aside before the
        # sort (160,000 of the 270,000 candidates on ``large``: their sorting and look-ups were
        # a tenth of the resolution); the merges and reviews are the same.
        anchored, sources = self.anchored_node, self.sources
        ranked = []
        for (a, b), score in candidates.items():
            if sources[a] != sources[b] and (anchored[a] or anchored[b]):
                if cl.find(a) != cl.find(b):
                    self.stats["skipped_explicit_override"] += 1
                continue
            ranked.append((-score, a, b))
        ranked.sort()
        for negative, a, b in ranked:
            score = -negative
            ra, rb = cl.find(a), cl.find(b)
            if ra == rb:
                continue
            # Facts against the match: a place that differs, websites of different brands, or
            # a CRM that would hold the customer twice. An unknown country is missing evidence.
            location = self._location_problem(a, b, countries, cities)
            site = _site_conflict(sites.get(ra), sites.get(rb))
            common = crms[ra] & crms[rb] if crms else set()
            twice = f"both customers already have a {min(common)} record" if common else None
            problems = [p for p in (location, site, twice) if p]
            against = [p for p in problems if p != _COUNTRY_UNKNOWN]
            strong = score >= cfg.fuzzy_threshold
            if strong and not problems:
                self._weak_merge(a, b, FUZZY_NAME, round(score / 100, 4), f"name {score:.0f}")
                root = cl.find(a)
                if root == cl.find(b):
                    for per_root in (sites, crms):
                        if ra in per_root or rb in per_root:
                            per_root[root] = per_root.pop(ra, set()) | per_root.pop(rb, set())
                continue
            if strong and site:
                self.stats["fuzzy_blocked_by_domains"] += 1
            if strong and common:
                self.stats["fuzzy_blocked_by_same_crm"] += 1
            # A person gets the pairs where the evidence is mixed: a strong name against at most
            # one fact, a near miss against none. More than that is two companies.
            if len(against) > (1 if strong else 0) and not cfg.review_contradicted_names:
                self.stats["contradicted_names_dismissed"] += 1
                continue
            if strong:
                reason = f"similar names ({score:.0f}) but {'; '.join(problems)}"
            else:
                reason = f"similar names ({score:.0f}), below the threshold {cfg.fuzzy_threshold:g}"
                if problems:
                    reason += f"; {'; '.join(problems)}"
            self._review_later.append((a, b, score, reason))

    def _split_block(self, members: list[int], countries: list[str | None]) -> list[list[int]]:
        """The block itself, or its per-country parts when it would cost too many comparisons."""
        cost = self._block_cost(members)
        if cost <= self.config.max_block_pairs:
            return [members]
        by_country: dict[str, list[int]] = defaultdict(list)
        for i in members:
            by_country[countries[i] or ""].append(i)
        parts = []
        for country in sorted(by_country):
            part = by_country[country]
            if self._block_cost(part) <= self.config.max_block_pairs:
                parts.append(part)
            else:
                self.stats["blocks_skipped"] += 1
        return parts

    def _block_cost(self, members: list[int]) -> int:
        if self.config.fuzzy_within_crm:
            return len(members) * (len(members) - 1) // 2
        per_source = Counter(self.sources[i] for i in members)
        return per_source.get(SALESFORCE, 0) * per_source.get(HUBSPOT, 0)

    def _compare_block(self, members: list[int], candidates: dict[tuple[int, int], float]) -> None:
        """Every cross pair of the block scored at once (``process.cdist``): the scores in C,
        on every core for a large block, and only the pairs at or above the review floor come
        back to Python.

        Why not ``process.extract`` per record: a call and a result tuple per record was most
        of the 2.6 s the blocks cost on ``large``, in unify, the one step of the run's critical
        path that leaves the second core idle. The scores are the same (float64, the scorer's
        own), so the same pairs become candidates
        (``tests/unified_model/test_fuzzy_candidates.py``).
        """
        cfg = self.config
        members = sorted(members)
        if cfg.fuzzy_within_crm:
            lefts, rights = members, members
        else:
            lefts = [i for i in members if self.sources[i] == SALESFORCE]
            rights = [i for i in members if self.sources[i] == HUBSPOT]
        if not lefts or not rights:
            return
        names = self.names
        floor = cfg.review_floor
        scores = process.cdist(
            [names[a] for a in lefts],
            [names[b] for b in rights],
            scorer=_SCORERS[cfg.fuzzy_scorer],
            score_cutoff=floor,
            dtype=np.float64,
            workers=_workers(len(lefts) * len(rights)),
        )
        self.stats["fuzzy_comparisons"] += len(lefts) * len(rights)
        # below the floor cdist gives 0: a floor of 0 keeps every pair, as extract did
        rows, cols = np.nonzero(scores >= floor)
        find = self.clusters.find
        for i, j, score in zip(
            rows.tolist(), cols.tolist(), scores[rows, cols].tolist(), strict=True
        ):
            a, b = lefts[i], rights[j]
            if a == b or (cfg.fuzzy_within_crm and b < a):
                continue
            pair = (a, b) if a < b else (b, a)
            if pair in candidates or find(a) == find(b):
                continue
            candidates[pair] = score

    def _sorted_neighbourhood(self, candidates: dict[tuple[int, int], float]) -> None:
        """Compare each name with its next neighbours in sorted order: catches typos in every
        token ("Brightwave Analytics" / "Brightway Analytica"), which token blocks cannot,
        at a cost linear in the number of accounts. The pairs are gathered first and scored
        together (``process.cpdist``, on every core), as the blocks are."""
        cfg = self.config
        window = cfg.neighbourhood_window
        if window <= 0:
            return
        names = self.names
        order = sorted(
            (i for i, n in enumerate(names) if len(n) >= cfg.min_name_length),
            key=lambda i: (names[i], i),
        )
        sources = [self.sources[i] for i in order]
        pairs: list[tuple[int, int]] = []
        for pos, a in enumerate(order):
            for nxt in range(pos + 1, min(pos + 1 + window, len(order))):
                if sources[nxt] == sources[pos] and not cfg.fuzzy_within_crm:
                    continue
                b = order[nxt]
                pair = (a, b) if a < b else (b, a)
                if pair not in candidates:
                    pairs.append(pair)
        self.stats["fuzzy_comparisons"] += len(pairs)
        if not pairs:
            return
        scores = process.cpdist(
            [names[a] for a, _ in pairs],
            [names[b] for _, b in pairs],
            scorer=_SCORERS[cfg.fuzzy_scorer],
            score_cutoff=cfg.review_floor,
            dtype=np.float64,
            workers=_workers(len(pairs)),
        )
        find = self.clusters.find
        hits = np.flatnonzero(scores)  # 0: below the floor (or no likeness at all)
        for k, score in zip(hits.tolist(), scores[hits].tolist(), strict=True):
            a, b = pairs[k]
            if find(a) != find(b):
                candidates[(a, b)] = score

    def _location_problem(
        self, a: int, b: int, countries: list[str | None], cities: list[str | None]
    ) -> str | None:
        """Why the location does not confirm a name match, or None when it does."""
        cfg = self.config
        ca, cb = countries[a], countries[b]
        if cfg.require_country_for_fuzzy:
            if ca is None or cb is None:
                return _COUNTRY_UNKNOWN
            if ca != cb:
                return f"countries differ ({ca} / {cb})"
        elif ca and cb and ca != cb:
            return f"countries differ ({ca} / {cb})"
        if cfg.require_city_if_both_known:
            ta, tb = cities[a], cities[b]
            if ta and tb and ta != tb:
                return f"cities differ ({ta} / {tb})"
        return None

    def run(self) -> None:
        self.explicit_and_manual()
        groups = self.same_domain()
        self.contact_domains(groups)
        self.fuzzy_names()
        cl = self.clusters
        # Best candidates first; a person needs a record's few best candidates, not a flood.
        per_record: Counter[int] = Counter()
        cap = self.config.max_reviews_per_record
        for a, b, score, reason in self._review_later:
            if cl.find(a) == cl.find(b) or cl.rejected_between(cl.find(a), cl.find(b)):
                continue
            if cap and (per_record[a] >= cap or per_record[b] >= cap):
                self.stats["reviews_capped"] += 1
                continue
            if self._review(a, b, score, reason):
                per_record[a] += 1
                per_record[b] += 1
        # A review raised earlier may have been settled by a later merge.
        for pair in list(self.reviews):
            a, b = self.index[pair[0]], self.index[pair[1]]
            if cl.find(a) == cl.find(b):
                del self.reviews[pair]


def _site_conflict(left: set[str] | None, right: set[str] | None) -> str | None:
    """Why two customers' websites say they are different companies, or None.

    Only when both have websites and no website of one is compatible with one of the other
    (same brand on another TLD, or one brand inside the other: see ``domains_conflict``).
    """
    if not left or not right:
        return None
    if any(not domains_conflict(x, y) for x in left for y in right):
        return None
    return f"domains differ ({min(left)} / {min(right)})"


def _id_age_key(cid: str, first_seen: dict[str, dt.datetime | None]) -> tuple[Any, ...]:
    seen = first_seen.get(cid)
    return (seen is None, seen or dt.datetime.min.replace(tzinfo=dt.UTC), len(cid), cid)


def _assign_ids(
    resolver: _Resolver,
    existing_links: Iterable[LinkLike],
    id_factory: Callable[[], str] | None,
) -> tuple[dict[int, str], dict[str, str | None], list[str]]:
    """Give every cluster (root) a hub customer id, keeping the ids of earlier runs.

    Claims (cluster, old id, how many of its records had it) are granted greedily: most
    records first, then the larger share of the cluster (a part that is wholly one old customer
    keeps its id rather than one that is half of it), then the oldest id, then the cluster's first
    record. So a merged cluster keeps the majority's id (the oldest on a tie) and of a split
    cluster the larger part keeps it.
    """
    cl = resolver.clusters
    previous: dict[int, str] = {}
    first_seen: dict[str, dt.datetime | None] = {}
    all_ids: set[str] = set()
    for link in existing_links:
        if not link.customer_id:
            continue
        all_ids.add(link.customer_id)
        if link.object_type not in ("account", None):
            continue
        seen = link.matched_at
        if link.customer_id not in first_seen:
            first_seen[link.customer_id] = seen
        elif seen is not None:
            known = first_seen[link.customer_id]
            first_seen[link.customer_id] = seen if known is None else min(known, seen)
        i = resolver.index.get((link.source, link.source_id))
        if i is not None:
            previous[i] = link.customer_id

    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(resolver.keys)):
        members[cl.find(i)].append(i)
    claims: list[tuple[int, float, tuple[Any, ...], int, str, int]] = []
    for root, items in members.items():
        held = [previous[i] for i in items if i in previous]
        if not held:
            continue
        # most clusters hold one earlier id: counted without a Counter (100,000 on ``large``)
        counts = {held[0]: len(held)} if held.count(held[0]) == len(held) else Counter(held)
        for cid, n in counts.items():
            claims.append(
                (-n, -n / len(items), _id_age_key(cid, first_seen), min(items), cid, root)
            )
    claims.sort()
    ids: dict[int, str] = {}
    taken: set[str] = set()
    for *_, cid, root in claims:
        if root in ids or cid in taken:
            continue
        ids[root] = cid
        taken.add(cid)

    factory = id_factory or SequentialIds.after(
        all_ids, resolver.config.id_prefix, resolver.config.id_width
    )
    new_ids: list[str] = []
    for root in sorted((r for r in members if r not in ids), key=lambda r: min(members[r])):
        for _ in range(10_000):
            cid = factory()
            if cid not in all_ids and cid not in taken:
                break
        else:  # pragma: no cover - a factory that only repeats itself
            raise RuntimeError("customer id factory keeps returning ids already in use")
        ids[root] = cid
        taken.add(cid)
        new_ids.append(cid)

    retired: dict[str, str | None] = {}
    holders: dict[str, Counter[str]] = defaultdict(Counter)
    for i, cid in previous.items():
        holders[cid][ids[cl.find(i)]] += 1
    for cid in sorted(set(first_seen) - taken):
        counter = holders.get(cid)
        retired[cid] = min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counter else None
    return ids, retired, new_ids


def resolve_customers(
    accounts: Iterable[AccountLike],
    contacts: Iterable[ContactLike] = (),
    *,
    existing_links: Iterable[LinkLike] = (),
    decisions: Iterable[MatchReview] = (),
    config: MatchConfig | None = None,
    id_factory: Callable[[], str] | None = None,
    now: dt.datetime | None = None,
) -> Resolution:
    """Cluster all live accounts of both CRMs into customers and give each a stable hub id.

    ``existing_links``: the previous run's ``SourceLink`` rows (only "account" rows are used for
    ids; all are used so that a new id never repeats an old one). ``decisions``: match reviews a
    person confirmed or rejected (others are ignored). ``now`` stamps the pending reviews.
    """
    config = config or MatchConfig()
    live = _live_by_key(accounts)
    resolver = _Resolver(live, contacts, _decisions(decisions), config, now)
    resolver.run()
    ids, retired, new_ids = _assign_ids(resolver, existing_links, id_factory)

    cl = resolver.clusters
    assignments: dict[RecordKey, Assignment] = {}
    for i, key in enumerate(resolver.keys):
        partner = cl.partner[i]
        assignments[key] = Assignment(
            customer_id=ids[cl.find(i)],
            method=cl.method[i],
            confidence=cl.confidence[i],
            matched_with=resolver.keys[partner] if partner is not None else None,
        )
    stats = Counter(resolver.stats)
    stats["records"] = len(assignments)
    stats["customers"] = len(set(ids.values()))
    stats["reviews"] = len(resolver.reviews)
    for a in assignments.values():
        stats[f"method_{a.method}"] += 1
    return Resolution(
        assignments=assignments,
        reviews=resolver.review_rows(),
        within_crm_duplicates=sorted(resolver.duplicates),
        retired_ids=retired,
        new_ids=new_ids,
        stats=dict(sorted(stats.items())),
    )


# --------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------


def link_contacts(
    contacts: Iterable[ContactLike],
    account_assignment: Mapping[RecordKey, str] | Resolution,
    *,
    accounts: Iterable[AccountLike] = (),
) -> dict[RecordKey, str]:
    """Each contact's hub customer: that of its first known account, else of its work domain.

    A contact without an account (a Salesforce lead, an unassociated HubSpot contact) belongs to
    a customer when its work-email domain points at exactly one customer, learnt from the
    accounts' domains (pass ``accounts``) and the emails of contacts that do have an account.
    Free-mail addresses and ambiguous domains leave the contact unassigned (absent from the
    result) rather than guessing. ``iter_contact_customers`` is the streaming form.
    """
    listed = contacts if isinstance(contacts, Collection) else list(contacts)
    return {
        (contact.source, contact.source_id): cid
        for contact, cid in iter_contact_customers(listed, account_assignment, accounts=accounts)
        if cid is not None
    }


_C = TypeVar("_C", bound=ContactLike)
_AMBIGUOUS = ""  # a domain whose people work for more than one customer


#: ``Contact.linked_via`` of a contact placed by its work domain, or left without a customer
#: (None: placed through one of its accounts, the common case, so most rows keep a NULL)
LINKED_BY_DOMAIN = "domain"
LINKED_NONE = "none"


def iter_contact_customers(
    contacts: Iterable[_C],
    account_assignment: Mapping[RecordKey, str] | Resolution,
    *,
    accounts: Iterable[AccountLike] = (),
) -> Iterator[tuple[_C, str | None]]:
    """Every live contact once, with its hub customer (None: unassigned); see ``link_contacts``."""
    for contact, cid, _ in iter_contact_links(contacts, account_assignment, accounts=accounts):
        yield contact, cid


def iter_contact_links(
    contacts: Iterable[_C],
    account_assignment: Mapping[RecordKey, str] | Resolution,
    *,
    accounts: Iterable[AccountLike] = (),
) -> Iterator[tuple[_C, str | None, str | None]]:
    """Every live contact once, with its hub customer and how it was found (``linked_via``).

    Why a generator that holds back the contacts without an account: a domain learnt from
    *any* contact with an account can place a contact without one, so those need the whole
    first pass. Only they are held until then (about one in six on ``large``), not the 780,000
    contacts (gigabytes), and the contacts are read once: a second pass over all of them to find
    the few without an account was a tenth of unify on ``large``.
    """
    assignment = _assignment_of(account_assignment)
    votes = _DomainVotes()
    votes.learn_accounts(accounts, assignment)
    yield from _place(contacts, assignment, votes)


def relink_contacts(
    changed: Iterable[ContactFacts],
    held: Iterable[ContactFacts],
    votes: Iterable[tuple[str | None, str, int]],
    account_assignment: Mapping[RecordKey, str] | Resolution,
    *,
    accounts: Iterable[AccountLike] = (),
) -> Iterator[tuple[ContactFacts, str | None, str | None]]:
    """``iter_contact_links`` for the contacts whose link may have changed, from the stored
    links of the others: what a full pass would give them, without reading every contact.

    - ``changed``: the live contacts whose customer may differ from the stored one (changed
      since the last linking, or linked to an account whose customer changed), with their
      stored ``customer_id`` and ``linked_via``;
    - ``held``: the other live contacts the last linking placed by domain or left alone;
    - ``votes``: (work domain, stored customer, contacts) over the live contacts the last
      linking placed through an account, ``changed`` included.

    Why it is the full pass's answer: a contact outside ``changed`` has the same accounts,
    email and account customers as at the last linking, so its link through an account and
    its vote for its domain stand; ``changed`` takes back its stored vote (counted in ``votes``
    the same way) and casts its new one. The held contacts then look their domain up again.
    """
    assignment = _assignment_of(account_assignment)
    tally = _DomainVotes()
    tally.learn_accounts(accounts, assignment)
    for domain, voted, n in votes:
        tally.add(domain, voted, n)
    again = [c for c in changed if not c.deleted]
    for contact in again:  # its stored vote, as ``votes`` counted it
        if contact.linked_via is None and contact.customer_id:
            tally.add(_work_domain(contact), contact.customer_id, -1)
    yield from _place(again, assignment, tally, then=held)


def _place(
    contacts: Iterable[_C],
    assignment: Mapping[RecordKey, str],
    votes: _DomainVotes,
    then: Iterable[_C] = (),
) -> Iterator[tuple[_C, str | None, str | None]]:
    """The live ``contacts`` through their accounts (each one voting for its work domain),
    then those without an account, and ``then``, by the domains' votes."""
    held: list[_C] = []
    for contact in contacts:
        if contact.deleted:
            continue
        cid = _via_account(contact, assignment)
        if cid is not None:
            votes.add(_work_domain(contact), cid)
            yield contact, cid, None
        else:
            held.append(contact)
    domain_customer = votes.customers()
    for contact in (*held, *then):
        if contact.deleted:
            continue
        found = domain_customer.get(_work_domain(contact) or "") or None
        yield contact, found, (LINKED_BY_DOMAIN if found else LINKED_NONE)


def _work_domain(contact: ContactLike) -> str | None:
    return contact_work_domain(contact.email_normalized, contact.email)


def _assignment_of(
    account_assignment: Mapping[RecordKey, str] | Resolution,
) -> Mapping[RecordKey, str]:
    return (
        account_assignment.account_assignment
        if isinstance(account_assignment, Resolution)
        else account_assignment
    )


def _via_account(contact: ContactLike, assignment: Mapping[RecordKey, str]) -> str | None:
    """The customer of the contact's first account (in its own order) that has one."""
    return next(
        (
            assignment[(contact.source, aid)]
            for aid in contact.account_source_ids or ()
            if (contact.source, aid) in assignment
        ),
        None,
    )


class _DomainVotes:
    """Which customer each work domain points at: the customers of the live accounts with that
    domain and of the contacts placed through an account with an address there. One customer:
    the domain places contacts without an account; several: it places none (``_AMBIGUOUS``)."""

    def __init__(self) -> None:
        self._votes: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, domain: str | None, cid: str, n: int = 1) -> None:
        if domain:
            self._votes[domain][cid] += n

    def learn_accounts(
        self, accounts: Iterable[AccountLike], assignment: Mapping[RecordKey, str]
    ) -> None:
        for acc in accounts:
            if acc.deleted:
                continue
            cid = assignment.get((acc.source, acc.source_id))
            domain = account_domain(acc)
            if cid and domain and not is_free_mail(domain):
                self.add(domain, cid)

    def customers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for domain, votes in self._votes.items():
            cids = [cid for cid, n in votes.items() if n > 0]
            if cids:
                out[domain] = cids[0] if len(cids) == 1 else _AMBIGUOUS
        return out


def person_key_for_email(normalized_email: str) -> str:
    """An opaque, stable key for one person's email (a hash: keys travel, addresses need not)."""
    return "person:" + hashlib.sha256(normalized_email.encode("utf-8")).hexdigest()[:24]


def dedupe_contacts(contacts: Iterable[ContactLike]) -> dict[RecordKey, str]:
    """A person key per contact: contacts with the same normalised email are one person.

    Across CRMs (the HubSpot contact and the Salesforce contact of Jane) and within one (a lead
    and a contact). A contact without a usable email is its own person (``source:source_id``).
    """
    result: dict[RecordKey, str] = {}
    for contact in contacts:
        if contact.deleted:
            continue
        email = normalize_email(contact.email_normalized or contact.email)
        key = (contact.source, contact.source_id)
        result[key] = (
            person_key_for_email(email) if email else f"{contact.source}:{contact.source_id}"
        )
    return result
