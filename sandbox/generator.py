"""Seed data for the sandbox CRMs: one B2B SaaS vendor running Salesforce and HubSpot side by side.

Why this exists: the hub's business logic (identity matching, handover maturity, KPIs, the
cross-CRM signals) is only testable against data that has the shape of a real company's CRMs: the
same customer spelled differently in both systems, cross-CRM ids on only some records, customers at
every lifecycle stage, deal stage histories, email threads with realistic response times, support
tickets whose severities block or allow a handover, marketing emails reaching customers that sales
is negotiating with. ``generate`` writes such a data set straight into ``SandboxState`` (no HTTP)
and records the true customer pairs in the truth table, so that identity resolution can be scored.

How it is built:

- **Per true customer**: a block plan (20 customers per block) fixes the lifecycle mix (35 %
  prospects, 20 % onboarding, 35 % mature, 10 % at risk) and the CRM presence mix (profile shares:
  45 % both, 30 % Salesforce only, 25 % HubSpot only) exactly, plus a few deliberate traps
  (namesakes in other countries, subsidiaries sharing the group's domain). Each customer then gets
  its own ``random.Random`` so the data streams: nothing is held for more than one customer.
- **Determinism**: same (profile, seed, anchor day) gives identical content. The anchor is
  ``state.now()`` truncated to the day; every generated instant lies before it, so the data is
  "current" without ever being in the future of the sandbox clock.
- **Memory**: rows are buffered and written in batches of a few thousand inside
  ``state.transaction()``; ids come from local counters that are saved to the state's counters
  at the end, so the emulators and ``sandbox.mutate`` continue where the generator stopped.

Storage follows ``sandbox.formats``: Salesforce ``data`` holds every non-system catalog field of
the object in Salesforce JSON form (``null`` when empty, derived fields such as ``Name``,
``IsClosed``, ``Probability`` or ``CaseNumber`` filled in); HubSpot ``data`` holds every catalog
property as a string or ``null``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox import names
from sandbox.catalog import (
    HS_ASSOCIATION_TYPES,
    HS_DEAL_STAGES,
    MODULES,
    PROFILES,
    SF_OPPORTUNITY_STAGES,
    Profile,
    hs_template,
    sf_template,
)
from sandbox.catalog import SF_ROW_FIELDS as SF_ROW_FIELDS
from sandbox.formats import sf_make_id
from sandbox.state import HS, SF, SandboxState, fmt_ts

#: Salesforce fields that live in the row's columns, never in ``data``.

SALES = "Sales"
ACCOUNT_MANAGEMENT = "Account Management"

#: First value of the id counters, the same as ``sandbox.formats`` uses for API creates.
SF_COUNTER_START = 100_000
HS_COUNTER_START = 10_000_001
#: Counter of Salesforce case numbers (``state.next_counter(CASE_NUMBER_COUNTER)``).
CASE_NUMBER_COUNTER = "sf:case_number"
CASE_NUMBER_START = 1001

_BLOCK = 20
_BATCH_ROWS = 4000
_DAY_MS = 86_400_000

_SF_OPEN = [s for s in SF_OPPORTUNITY_STAGES if not s[2]]
_SF_WON = next(s for s in SF_OPPORTUNITY_STAGES if s[3])
_SF_LOST = next(s for s in SF_OPPORTUNITY_STAGES if s[2] and not s[3])
_HS_OPEN = [s for s in HS_DEAL_STAGES if not s[3]]
_HS_WON = next(s for s in HS_DEAL_STAGES if s[4])
_HS_LOST = next(s for s in HS_DEAL_STAGES if s[3] and not s[4])
#: Late open Salesforce stages (quote sent, negotiating): where marketing must not interfere.
SF_LATE_STAGES: tuple[str, ...] = ("Proposal/Price Quote", "Negotiation/Review")

_EPOCH = dt.date(1970, 1, 1)
_CLOCK: dict[int, str] = {}  # second of the day -> "HH:MM:SS."
_MILLIS: tuple[str, ...] = tuple(f"{m:03d}" for m in range(1000))
_INDUSTRIES: tuple[str, ...] = tuple(sorted(set(names.DESCRIPTOR_INDUSTRY.values())))
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def sf_billing_address(data: dict[str, Any]) -> dict[str, Any] | None:
    """The compound ``BillingAddress`` Salesforce returns next to its component fields."""
    parts = ("Street", "City", "State", "PostalCode", "Country", "CountryCode")
    if all(data.get(f"Billing{p}") is None for p in parts):
        return None
    return {
        "city": data.get("BillingCity"),
        "country": data.get("BillingCountry"),
        "countryCode": data.get("BillingCountryCode"),
        "geocodeAccuracy": None,
        "latitude": None,
        "longitude": None,
        "postalCode": data.get("BillingPostalCode"),
        "state": data.get("BillingState"),
        "stateCode": None,
        "street": data.get("BillingStreet"),
    }


def sf_stage(stage_name: str) -> tuple[str, int, bool, bool]:
    """(StageName, Probability, IsClosed, IsWon) of a Salesforce opportunity stage."""
    return next(s for s in SF_OPPORTUNITY_STAGES if s[0] == stage_name)


def hs_stage(stage_id: str) -> tuple[str, str, float, bool, bool]:
    """(id, label, probability, is_closed, is_won) of a HubSpot deal stage."""
    return next(s for s in HS_DEAL_STAGES if s[0] == stage_id)


def hs_amount(value: float) -> str:
    """HubSpot number property text for money: ``"5000.00"``."""
    return f"{value:.2f}"


# --------------------------------------------------------------------------------------------
# Ids and the write buffer
# --------------------------------------------------------------------------------------------

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_LOW = 62**5
_HEADS: dict[tuple[str, int], tuple[str, str]] = {}


def fast_sf_id(prefix: str, number: int) -> str:
    """``sandbox.formats.sf_make_id`` for the generator's millions of ids.

    Only the last five base62 digits change between neighbouring ids, so the first ten
    characters and two of the three checksum characters are computed once per 62**5 ids.
    """
    high, low = divmod(number, _LOW)
    head = _HEADS.get((prefix, high))
    if head is None:
        full = sf_make_id(prefix, high * _LOW)
        head = _HEADS[(prefix, high)] = (full[:10], full[15:17])
    digits = ["0"] * 5
    bits = 0
    for pos in range(4, -1, -1):
        low, r = divmod(low, 62)
        ch = _B62[r]
        digits[pos] = ch
        if "A" <= ch <= "Z":
            bits |= 1 << pos
    return f"{head[0]}{''.join(digits)}{head[1]}{_CHECK[bits]}"


class IdBlock:
    """Local id counters, saved to the state's counters once: one meta write instead of millions.

    Starts from the state's current counters, so a generator run and API creates never collide.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._sf: dict[str, int] = {}
        self._hs = int(state.get_meta("counter:hs:object", str(HS_COUNTER_START - 1)))
        self._case = int(
            state.get_meta(f"counter:{CASE_NUMBER_COUNTER}", str(CASE_NUMBER_START - 1))
        )

    def sf(self, prefix: str) -> str:
        last = self._sf.get(prefix)
        if last is None:
            last = int(self.state.get_meta(f"counter:sf:{prefix}", str(SF_COUNTER_START - 1)))
        last += 1
        self._sf[prefix] = last
        return fast_sf_id(prefix, last)

    def hs(self) -> str:
        self._hs += 1
        return str(self._hs)

    def case_number(self) -> str:
        self._case += 1
        return f"{self._case:08d}"

    def save(self) -> None:
        for prefix, last in self._sf.items():
            self.state.set_meta(f"counter:sf:{prefix}", str(last))
        self.state.set_meta("counter:hs:object", str(self._hs))
        self.state.set_meta(f"counter:{CASE_NUMBER_COUNTER}", str(self._case))


class Sink:
    """Buffers records, associations and truth rows; flushes them in one transaction per batch."""

    def __init__(self, state: SandboxState, batch: int = _BATCH_ROWS) -> None:
        self.state = state
        self.batch = batch
        self.rows: list[tuple[str, str, str, str, str, int, str]] = []
        self.assoc: list[tuple[str, str, str, str, int, str, str | None]] = []
        self.truth: list[tuple[str, str | None, str | None]] = []
        #: HubSpot property versions: (object, id, property, value, ts, sourceType, sourceId)
        self.history: list[tuple[str, str, str, str, str, str, str | None]] = []
        self.counts: dict[str, int] = {}

    def record(
        self,
        crm: str,
        obj: str,
        rid: str,
        created: str,
        modified: str,
        data: dict[str, Any],
    ) -> None:
        """Buffer one record; ``created``/``modified`` in the stored form (``fmt_ts``)."""
        self.rows.append((crm, obj, rid, created, modified, 0, _dumps(data)))
        key = f"{crm}/{obj}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def link(
        self, from_obj: str, from_id: str, to_obj: str, to_id: str, primary: bool = False
    ) -> None:
        """Associate two HubSpot records in both directions (plus the "Primary" label if asked)."""
        for a, a_id, b, b_id in (
            (from_obj, from_id, to_obj, to_id),
            (to_obj, to_id, from_obj, from_id),
        ):
            plain, prim = HS_ASSOCIATION_TYPES[(a, b)]
            self.assoc.append((a, a_id, b, b_id, plain, "HUBSPOT_DEFINED", None))
            if primary and prim is not None:
                self.assoc.append((a, a_id, b, b_id, prim, "HUBSPOT_DEFINED", "Primary"))
        self.counts["associations"] = self.counts.get("associations", 0) + 1

    def add_truth(self, key: str, sf_id: str | None, hs_id: str | None) -> None:
        self.truth.append((key, sf_id, hs_id))

    def version(self, obj: str, rid: str, prop: str, value: str, ts: str, source_type: str) -> None:
        """Buffer one version of a HubSpot property (the history ``propertiesWithHistory`` shows)."""
        self.history.append((obj, rid, prop, value, ts, source_type, None))
        key = f"{HS} {obj} owner versions"  # no "/": not a CRM object of its own
        self.counts[key] = self.counts.get(key, 0) + 1

    def maybe_flush(self) -> None:
        if len(self.rows) + len(self.assoc) // 2 >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not (self.rows or self.assoc or self.truth or self.history):
            return
        with self.state.transaction():
            self.state.insert_many(self.rows)
            self.state.executemany("INSERT OR IGNORE INTO assoc VALUES(?,?,?,?,?,?,?)", self.assoc)
            self.state.add_truth(self.truth)
            self.state.add_history_rows(self.history)
        self.counts["truth"] = self.counts.get("truth", 0) + len(self.truth)
        self.rows.clear()
        self.assoc.clear()
        self.truth.clear()
        self.history.clear()


# --------------------------------------------------------------------------------------------
# Owners, plans, identities
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Owner:
    """A seller or account manager of the vendor, as a Salesforce User and/or HubSpot owner."""

    first: str
    last: str
    email: str
    hs_email: str
    department: str
    title: str
    sf_id: str | None
    hs_id: str | None
    user_id: int
    #: how quickly this person answers customer emails (multiplies the median reply time)
    speed: float


@dataclass(frozen=True, slots=True)
class Plan:
    """What one true customer is: lifecycle, where it lives, and which special case it carries."""

    lifecycle: str
    presence: str  # "both" | "sf" | "hs"
    #: a late-stage open Salesforce opportunity (quote sent / negotiating)
    negotiating: bool = False
    #: HubSpot marketing emails reached its contacts in the last days (needs presence "both")
    marketed: bool = False
    twist: str = ""  # "" | "namesake" | "subsidiary"
    ref: int = -1  # the customer the twist copies its name/domain from


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a customer is in the real world: name, legal form, domain, address."""

    core: str
    base: str  # core + descriptor: "Nordwind Logistics"
    legal: str
    legal_name: str  # "Nordwind Logistics AB"
    country: names.Country
    domain: str
    email_domain: str
    web_path: str  # "" or "/se/" for a subsidiary on the group's site
    city: names.City
    street: str
    postcode: str
    phone: str
    industry: str


def _postcode(rng: random.Random, pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(str(rng.randint(0, 9)))
        elif ch == "@":
            out.append(chr(rng.randint(65, 90)))
        else:
            out.append(ch)
    return "".join(out)


def _weighted(rng: random.Random, items: Iterable[tuple[Any, int]]) -> Any:
    pairs = list(items)
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _lognormal(rng: random.Random, median: float, sigma: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, median * math.exp(rng.gauss(0.0, sigma))))


# --------------------------------------------------------------------------------------------
# Per-customer working set
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    """A contact person at a customer; may be a Salesforce Contact, a HubSpot contact, or both."""

    first: str
    last: str
    email: str
    title: str
    phone: str | None
    created: float  # days before the anchor
    sf_id: str | None = None
    hs_id: str | None = None


@dataclass(slots=True)
class Deal:
    """One opportunity/deal with its stage path; ``crm`` tells which CRM holds it."""

    crm: str
    rid: str
    name: str
    kind: str  # "new" | "renewal" | "upsell"
    amount: float
    term: int
    path: list[tuple[str, float]]  # (stage value, days ago entered)
    close_in: float  # close date as days before the anchor (negative = in the future)
    modified: float
    owner: Owner
    contact: Person | None
    is_closed: bool = False
    is_won: bool = False

    @property
    def created(self) -> float:
        return self.path[0][1]

    @property
    def stage(self) -> str:
        return self.path[-1][0]


@dataclass(slots=True)
class Customer:
    """Everything generated for one true customer, kept only while it is being written."""

    i: int
    key: str
    plan: Plan
    idn: Identity
    rng: random.Random
    sf_id: str | None
    hs_id: str | None
    owner: Owner
    hs_owner: Owner | None
    seller: Owner
    created: float
    won: float | None = None  # days ago the first contract was signed
    people: list[Person] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    last_task_day: float | None = None


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class Generator:
    """Writes one profile's data set into a (reset) state. Use ``generate``."""

    def __init__(self, state: SandboxState, profile: Profile, seed: int) -> None:
        self.state = state
        self.profile = profile
        self.seed = seed
        now = state.now()
        self.anchor = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
        self._anchor_ms = int(self.anchor.timestamp()) * 1000
        self._dates: dict[int, str] = {}
        self.ids = IdBlock(state)
        self.sink = Sink(state)
        self.cores = names.company_cores()
        self._space = len(self.cores) * len(names.DESCRIPTORS)
        prng = random.Random(f"perm/{seed}")
        mult = prng.randrange(1, self._space)
        while math.gcd(mult, self._space) != 1:
            mult += 1
        self._mult, self._offset = mult, prng.randrange(self._space)
        self._countries = [(c, c.weight) for c in names.COUNTRIES]
        self._plans: dict[int, list[Plan]] = {}
        self.owners: list[Owner] = []
        self._pool: dict[tuple[str, str], list[Owner]] = {}

    # ---- time -----------------------------------------------------------------------------
    def at(self, days_ago: float) -> dt.datetime:
        """The instant ``days_ago`` days before the anchor, at millisecond precision."""
        return self.anchor - dt.timedelta(milliseconds=round(days_ago * _DAY_MS))

    def _parts(self, days_ago: float) -> tuple[str, str]:
        """(date, time of day) of an instant; integer arithmetic, as strftime is the bottleneck."""
        ms = self._anchor_ms - round(days_ago * _DAY_MS)
        day, rem = divmod(ms, _DAY_MS)
        date = self._dates.get(day)
        if date is None:
            date = self._dates[day] = (_EPOCH + dt.timedelta(days=day)).isoformat()
        sec, milli = divmod(rem, 1000)
        clock = _CLOCK.get(sec)
        if clock is None:
            minute, second = divmod(sec, 60)
            clock = _CLOCK[sec] = f"{minute // 60:02d}:{minute % 60:02d}:{second:02d}."
        return date, clock + _MILLIS[milli]

    def ts(self, days_ago: float) -> str:
        """Stored (canonical ``…Z``) form of the instant ``days_ago`` days before the anchor."""
        date, tod = self._parts(days_ago)
        return f"{date}T{tod}Z"

    def day(self, days_ago: float) -> str:
        """The calendar date of that instant (negative ``days_ago``: in the future)."""
        return self._parts(days_ago)[0]

    def sf_ts(self, days_ago: float) -> str:
        """Salesforce datetime form (``…000+0000``) of that instant."""
        date, tod = self._parts(days_ago)
        return f"{date}T{tod}+0000"

    def hs_ts(self, days_ago: float) -> str:
        """HubSpot datetime form (``…123Z``) of that instant."""
        return self.ts(days_ago)

    @staticmethod
    def work_time(rng: random.Random, day: int) -> float:
        """A business-hours moment on the day ``day`` days before the anchor (day >= 1)."""
        hour = rng.uniform(7.0, 18.5) if rng.random() < 0.93 else rng.uniform(18.5, 23.5)
        return max(day, 1) - hour / 24.0

    # ---- driver ---------------------------------------------------------------------------
    def run(self) -> dict[str, int]:
        self._make_owners()
        for i in range(self.profile.customers):
            self._customer(i, self.plan(i))
            self.sink.maybe_flush()
        self.sink.flush()
        self.ids.save()
        # Standard objects the hub does not read, in a second pass with their own random
        # stream and ids after every customer record: the records above stay as they were.
        from sandbox.extra_objects import seed_extra_objects

        seed_extra_objects(self)
        self.state.set_json(
            "generator",
            {"profile": self.profile.name, "seed": self.seed, "anchor": fmt_ts(self.anchor)},
        )
        return dict(sorted(self.sink.counts.items()))

    # ---- owners ---------------------------------------------------------------------------
    def _make_owners(self) -> None:
        """Sellers and account managers; most exist in both CRMs with the same email."""
        rng = random.Random(f"owners/{self.seed}")
        n = max(2, self.profile.owners)
        n_sellers = max(1, round(n * 0.55))
        admin_id = self.ids.sf("005")
        start = 1100.0
        admin = sf_template("User") | {
            "Username": "admin@crmhub-sandbox.example",
            "Email": "admin@crmhub-sandbox.example",
            "FirstName": "Sandbox",
            "LastName": "Admin",
            "Name": "Sandbox Admin",
            "IsActive": True,
            "Title": "System Administrator",
            "Department": "IT",
            "CreatedById": admin_id,
            "LastModifiedById": admin_id,
        }
        self.sink.record(SF, "User", admin_id, self.ts(start), self.ts(start), admin)
        used: set[str] = set()
        for k in range(n):
            lang = rng.choice(("de", "en", "en", "nordic"))
            first = rng.choice(names.FIRST_NAMES[lang])
            last = rng.choice(names.LAST_NAMES[lang])
            local = f"{names.slug(first)}.{names.slug(last)}"
            while local in used:
                local += str(rng.randint(1, 9))
            used.add(local)
            email = f"{local}@{names.VENDOR_DOMAIN}"
            seller = k < n_sellers
            dept = SALES if seller else ACCOUNT_MANAGEMENT
            title = (
                rng.choice(("Account Executive", "Senior Account Executive", "Sales Manager"))
                if seller
                else rng.choice(
                    ("Account Manager", "Key Account Manager", "Customer Success Manager")
                )
            )
            # A few people work in one CRM only: an SMB seller in HubSpot, a KAM in Salesforce.
            hs_only = n >= 8 and k == n_sellers - 1
            sf_only = n >= 8 and k == n - 1
            # One HubSpot login uses a short alias instead of the full name.
            hs_email = email
            if n >= 8 and k == 1:
                hs_email = f"{names.slug(first)[0]}.{names.slug(last)}@{names.VENDOR_DOMAIN}"
            owner = Owner(
                first=first,
                last=last,
                email=email,
                hs_email=hs_email,
                department=dept,
                title=title,
                sf_id=None if hs_only else self.ids.sf("005"),
                hs_id=None if sf_only else self.ids.hs(),
                user_id=9_100_000 + k,
                speed=rng.uniform(0.4, 3.0),
            )
            self.owners.append(owner)
            joined = rng.uniform(200, start)
            if owner.sf_id:
                data = sf_template("User") | {
                    "Username": email,
                    "Email": email,
                    "FirstName": first,
                    "LastName": last,
                    "Name": f"{first} {last}",
                    "IsActive": True,
                    "Title": title,
                    "Department": dept,
                    "CreatedById": admin_id,
                    "LastModifiedById": admin_id,
                }
                self.sink.record(SF, "User", owner.sf_id, self.ts(joined), self.ts(joined), data)
            if owner.hs_id:
                data = {
                    "email": hs_email,
                    "firstName": first,
                    "lastName": last,
                    "userId": owner.user_id,
                    "teams": [{"id": "1" if seller else "2", "name": dept, "primary": True}],
                }
                self.sink.record(HS, "owners", owner.hs_id, self.ts(joined), self.ts(joined), data)
        for dept in (SALES, ACCOUNT_MANAGEMENT):
            for crm in ("any", SF, HS):
                pool = [
                    o
                    for o in self.owners
                    if o.department == dept
                    and (crm == "any" or (o.sf_id if crm == SF else o.hs_id) is not None)
                ]
                if not pool:  # tiny profiles: fall back to anyone present in that CRM
                    pool = [o for o in self.owners if (o.sf_id if crm == SF else o.hs_id)]
                self._pool[(dept, crm)] = pool

    def _pick_owner(self, rng: random.Random, dept: str) -> tuple[Owner, Owner, Owner]:
        """(person, their Salesforce stand-in, their HubSpot stand-in) for a role."""
        person = rng.choice(self._pool[(dept, "any")])
        sf_owner = person if person.sf_id else rng.choice(self._pool[(dept, SF)])
        hs_owner = person if person.hs_id else rng.choice(self._pool[(dept, HS)])
        return person, sf_owner, hs_owner

    # ---- plans ----------------------------------------------------------------------------
    def plan(self, i: int) -> Plan:
        b = i // _BLOCK
        if b not in self._plans:
            self._plans = {b: self._block_plan(b)}
        return self._plans[b][i % _BLOCK]

    def _block_plan(self, b: int) -> list[Plan]:
        """Exact lifecycle and presence mix per block of 20, shuffled; special cases placed."""
        rng = random.Random(f"plan/{self.seed}/{b}")
        life = ["prospect"] * 7 + ["onboarding"] * 4 + ["mature"] * 7 + ["at_risk"] * 2
        n_both = round(_BLOCK * self.profile.both_share)
        n_sf = round(_BLOCK * self.profile.sf_only_share)
        pres = ["both"] * n_both + ["sf"] * n_sf + ["hs"] * (_BLOCK - n_both - n_sf)
        rng.shuffle(life)
        rng.shuffle(pres)
        carriers = [k for k in range(_BLOCK) if life[k] == "prospect" and pres[k] == "both"]
        if not carriers and "both" in pres:
            p, q = life.index("prospect"), pres.index("both")
            pres[p], pres[q] = pres[q], pres[p]
            carriers = [p]
        neg = [
            life[k] == "prospect" and pres[k] != "hs" and rng.random() < 0.35 for k in range(_BLOCK)
        ]
        mkt = [neg[k] and pres[k] == "both" and rng.random() < 0.5 for k in range(_BLOCK)]
        if carriers:  # every block has one customer that fires the negotiation signal
            neg[carriers[0]] = mkt[carriers[0]] = True
        twist = [""] * _BLOCK
        ref = [-1] * _BLOCK
        free = [k for k in range(1, _BLOCK) if k not in carriers[:1]]
        rng.shuffle(free)
        wanted = []
        if b == 0 or rng.random() < 0.4:
            wanted.append("namesake")
        if b == 0 or rng.random() < 0.2:
            wanted.append("subsidiary")
        for kind, k in zip(wanted, free, strict=False):
            i = b * _BLOCK + k
            twist[k] = kind
            ref[k] = i - 1 - rng.randrange(min(i, 30))
        return [Plan(life[k], pres[k], neg[k], mkt[k], twist[k], ref[k]) for k in range(_BLOCK)]

    # ---- identities -----------------------------------------------------------------------
    def base_identity(self, i: int) -> Identity:
        """The identity customer ``i`` would have without a twist; a pure function of (seed, i)."""
        rng = random.Random(f"id/{self.seed}/{i}")
        k = (self._mult * i + self._offset) % self._space
        round_no = i // self._space
        core = self.cores[k // len(names.DESCRIPTORS)]
        desc = names.DESCRIPTORS[k % len(names.DESCRIPTORS)]
        country: names.Country = _weighted(rng, self._countries)
        tld = country.tld
        if country.code != "US" and rng.random() < 0.22:
            tld = "com"
        elif desc in ("Software", "Data", "Cloud", "Digital", "Labs") and rng.random() < 0.3:
            tld = "io"
        sep = "-" if rng.random() < 0.3 else ""
        label = names.slug(f"{core} {desc}", sep) + (str(round_no + 1) if round_no else "")
        return self._finish_identity(rng, core, desc, country, f"{label}.{tld}", "", None)

    def _finish_identity(
        self,
        rng: random.Random,
        core: str,
        desc: str,
        country: names.Country,
        domain: str,
        web_path: str,
        email_domain: str | None,
    ) -> Identity:
        base = f"{core} {desc}".strip()
        legal = _weighted(rng, country.legal)
        city = rng.choice(country.cities)
        number = rng.randint(1, 180)
        street_name = rng.choice(names.STREETS[country.lang])
        street = (
            f"{number} {street_name}" if country.lang in ("en", "fr") else f"{street_name} {number}"
        )
        phone = f"{country.phone} {rng.randint(10, 99)} {rng.randint(100000, 9999999)}"
        industry = names.DESCRIPTOR_INDUSTRY.get(desc) or rng.choice(_INDUSTRIES)
        return Identity(
            core=core,
            base=base,
            legal=legal,
            legal_name=f"{base} {legal}",
            country=country,
            domain=domain,
            email_domain=email_domain or domain,
            web_path=web_path,
            city=city,
            street=street,
            postcode=_postcode(rng, country.postcode),
            phone=phone,
            industry=industry,
        )

    def identity(self, i: int, plan: Plan) -> Identity:
        """The customer's identity, including the deliberate traps for identity resolution."""
        if not plan.twist:
            return self.base_identity(i)
        ref = self.base_identity(plan.ref)
        rng = random.Random(f"twist/{self.seed}/{i}")
        ref_tld = ref.domain.split(".", 1)[1]
        options = [
            (c, c.weight)
            for c in names.COUNTRIES
            if c.code != ref.country.code and (plan.twist == "subsidiary" or c.tld != ref_tld)
        ]
        country: names.Country = _weighted(rng, options)
        if plan.twist == "namesake":
            # Same name, other country, other domain: a tempting false match.
            label = ref.domain.split(".", 1)[0]
            desc = ref.base[len(ref.core) :].strip()
            return self._finish_identity(
                rng, ref.core, desc, country, f"{label}.{country.tld}", "", None
            )
        # Subsidiary: "Acme Nordic AB" on the group's website, a distinct customer.
        core = f"{ref.core} {names.SUBSIDIARY_WORDS[country.code]}"
        return self._finish_identity(
            rng,
            core,
            "",
            country,
            ref.domain,
            f"/{country.code.lower()}/",
            f"{country.code.lower()}.{ref.domain}",
        )

    # ---- names and websites as people type them -------------------------------------------
    @staticmethod
    def name_variant(rng: random.Random, idn: Identity) -> str:
        """How someone else typed the same company's name into the other CRM."""
        r = rng.random()
        if r < 0.28:
            name = idn.legal_name
        elif r < 0.55:
            name = idn.base
        elif r < 0.61:
            name = idn.base.upper() if rng.random() < 0.5 else idn.legal_name.upper()
        elif r < 0.71:
            legal = idn.legal.replace(".", "").replace(",", "")
            name = f"{idn.base}, {legal}" if legal in ("Inc", "LLC") else f"{idn.base} {legal}"
        elif r < 0.79:
            name = names.transliterate(idn.legal_name)
            if name == idn.legal_name:
                name = idn.base
        elif r < 0.86:
            swaps = {
                "Ltd": "Limited",
                "Limited": "Ltd",
                "Inc.": "Incorporated",
                "Corp.": "Corporation",
                "Corporation": "Corp",
                "Pty Ltd": "Pty. Ltd.",
                "AB": "Aktiebolag",
                "AS": "A/S",
                "GmbH": "G.m.b.H.",
                "K.K.": "Kabushiki Kaisha",
                "B.V.": "BV",
                "S.L.": "SL",
            }
            name = f"{idn.base} {swaps.get(idn.legal, idn.legal)}"
        elif r < 0.93:
            name = idn.base.lower()
        else:
            name = (
                idn.legal_name.replace(" ", "  ", 1) if rng.random() < 0.5 else idn.legal_name + " "
            )
        if "&" in name and rng.random() < 0.6:
            name = name.replace("&", "and") if rng.random() < 0.7 else name.replace(" & ", "+")
        return name

    @staticmethod
    def website(rng: random.Random, idn: Identity) -> str:
        """A website as typed into a CRM: scheme, www. and trailing paths vary."""
        d = idn.domain
        if idn.web_path:
            return f"https://www.{d}{idn.web_path}"
        forms = (
            f"https://www.{d}/",
            f"https://www.{d}",
            f"http://www.{d}",
            f"www.{d}",
            d,
            f"https://{d}/",
            f"http://{d}/en",
            f"https://www.{d}/{idn.country.code.lower()}/",
        )
        return rng.choices(forms, weights=(22, 18, 8, 16, 14, 10, 6, 6))[0]

    # ---- one customer ---------------------------------------------------------------------
    def _customer(self, i: int, plan: Plan) -> None:
        rng = random.Random(f"c/{self.seed}/{i}")
        idn = self.identity(i, plan)
        lc = plan.lifecycle
        in_sf = plan.presence in ("both", "sf")
        in_hs = plan.presence in ("both", "hs")
        enterprise = plan.presence != "hs"
        if lc in ("prospect", "onboarding"):
            dept = SALES
        else:
            dept = ACCOUNT_MANAGEMENT if lc == "at_risk" or rng.random() < 0.85 else SALES
        person, sf_owner, hs_owner = self._pick_owner(rng, dept)
        seller = self._pick_owner(rng, SALES)[0] if dept != SALES else person
        if in_hs and rng.random() < 0.08:
            hs_owner = rng.choice(self._pool[(SALES, HS)])  # marketing/SMB team claimed it
        won: float | None = None
        if lc == "onboarding":
            won = rng.uniform(4, 180)
        elif lc in ("mature", "at_risk"):
            won = rng.uniform(250, 1000)
        cycle = rng.uniform(30, 150) if enterprise else rng.uniform(10, 60)
        if won is not None:
            created = min(1095.0, won + cycle + rng.uniform(0, 120))
        else:
            created = min(1095.0, _lognormal(rng, 120, 1.0, 8, 1095))
        c = Customer(
            i=i,
            key=f"CUST-{i + 1:06d}",
            plan=plan,
            idn=idn,
            rng=rng,
            sf_id=self.ids.sf("001") if in_sf else None,
            hs_id=self.ids.hs() if in_hs else None,
            owner=sf_owner if in_sf else person,
            hs_owner=hs_owner if in_hs else None,
            seller=seller,
            created=created,
            won=won,
        )
        if not in_sf:
            c.owner = person
        self._people(c)
        self._deals(c, cycle)
        self._leads(c)
        self._tickets(c)
        self._emails(c)
        self._tasks(c)
        self._accounts(c)
        self.sink.add_truth(c.key, c.sf_id, c.hs_id)
        self._orphans(c)

    # ---- people ---------------------------------------------------------------------------
    def _people(self, c: Customer) -> None:
        rng, idn, plan = c.rng, c.idn, c.plan
        lang = idn.country.lang
        n = rng.randint(2, 8) if plan.lifecycle != "prospect" else rng.randint(2, 5)
        pattern = rng.choices(
            ("first.last", "flast", "first", "first_last", "f.last"), weights=(50, 15, 10, 10, 15)
        )[0]
        used: set[str] = set()
        for k in range(n):
            first = rng.choice(names.FIRST_NAMES[lang])
            last = rng.choice(names.LAST_NAMES[lang])
            email = self._person_email(rng, c, k, first, last, pattern, used)
            if plan.lifecycle == "prospect":
                p_created = rng.uniform(1, c.created)
            else:
                p_created = (
                    c.created - rng.uniform(0, 0.3) * c.created
                    if k == 0
                    else rng.uniform(1, c.created)
                )
            p = Person(
                first=first,
                last=last,
                email=email,
                title=rng.choice(names.TITLES),
                phone=f"{idn.country.phone} {rng.randint(10, 99)} {rng.randint(100000, 9999999)}"
                if rng.random() < 0.6
                else None,
                created=max(1.0, p_created),
            )
            in_sf = plan.presence == "sf" or (
                plan.presence == "both" and (k == 0 or rng.random() < 0.85)
            )
            in_hs = plan.presence == "hs" or (
                plan.presence == "both" and (k == 0 or rng.random() < 0.8)
            )
            if in_sf:
                p.sf_id = self.ids.sf("003")
            if in_hs:
                p.hs_id = self.ids.hs()
            c.people.append(p)

    def _person_email(
        self,
        rng: random.Random,
        c: Customer,
        k: int,
        first: str,
        last: str,
        pattern: str,
        used: set[str],
    ) -> str:
        f, la = names.slug(first), names.slug(last, "")
        if rng.random() < 0.15:
            # Free mail: globally unique through the customer and slot number.
            return f"{f}{la}{c.i * 16 + k}@{rng.choice(names.FREE_MAIL_DOMAINS)}"
        local = {
            "first.last": f"{f}.{la}",
            "flast": f"{f[:1]}{la}",
            "first": f,
            "first_last": f"{f}_{la}",
            "f.last": f"{f[:1]}.{la}",
        }[pattern]
        base, n = local, 2
        while local in used:
            local, n = f"{base}{n}", n + 1
        used.add(local)
        return f"{local}@{c.idn.email_domain}"

    # ---- deals ----------------------------------------------------------------------------
    def _deal_crm(self, c: Customer, *, enterprise_bias: float) -> str:
        if c.plan.presence == "sf":
            return SF
        if c.plan.presence == "hs":
            return HS
        return SF if c.rng.random() < enterprise_bias else HS

    def _amount(self, c: Customer, crm: str, kind: str) -> float:
        rng = c.rng
        if crm == SF:
            base = _lognormal(rng, 45_000, 0.7, 20_000, 250_000)
        else:
            base = _lognormal(rng, 12_000, 0.6, 5_000, 40_000)
        if kind == "upsell":
            base *= rng.uniform(0.2, 0.45)
        step = 500 if base >= 10_000 else 100
        return float(max(step, round(base / step) * step))

    def _path(
        self, rng: random.Random, crm: str, outcome: str, target: int, start: float, end: float
    ) -> list[tuple[str, float]]:
        """Stages entered from ``start`` to ``end`` (days ago); deals skip stages now and then."""
        open_stages = _SF_OPEN if crm == SF else _HS_OPEN
        first = 0 if target == 0 or rng.random() < 0.8 else 1
        idx = [first] + [k for k in range(first + 1, target) if rng.random() > 0.2]
        if target > first:
            idx.append(target)
        stages = [open_stages[k][0] for k in idx]
        if outcome == "won":
            stages.append(_SF_WON[0] if crm == SF else _HS_WON[0])
        elif outcome == "lost":
            stages.append(_SF_LOST[0] if crm == SF else _HS_LOST[0])
        n = len(stages)
        if n == 1:
            return [(stages[0], start)]
        cuts = sorted((rng.uniform(end, start) for _ in range(n - 2)), reverse=True)
        times = [start, *cuts, end]
        return list(zip(stages, times, strict=True))

    def _new_deal(
        self,
        c: Customer,
        crm: str,
        kind: str,
        outcome: str,
        *,
        created: float,
        end: float,
        target: int | None = None,
        owner: Owner | None = None,
        stale: bool = False,
    ) -> Deal:
        rng = c.rng
        n_open = len(_SF_OPEN if crm == SF else _HS_OPEN)
        if target is None:
            if outcome == "won":
                target = n_open - 1 if rng.random() < 0.7 else n_open - 2
            else:
                target = rng.randrange(n_open)
        path = self._path(rng, crm, outcome, target, created, end)
        term = rng.choices((12, 24, 36), weights=(50, 30, 20))[0]
        amount = self._amount(c, crm, kind)
        modules = rng.sample(MODULES, rng.randint(1, 2))
        year = self.at(created).year
        short = c.idn.base
        label = {"new": " + ".join(modules), "renewal": "Renewal", "upsell": f"Upsell {modules[0]}"}
        name = f"{short} - {label[kind]} {year}"
        if outcome == "open":
            close_in = (
                rng.uniform(-120, -10)
                if not stale
                else (rng.uniform(5, 60) if rng.random() < 0.6 else rng.uniform(-60, -5))
            )
            last_change = path[-1][1]
            modified = last_change if stale else max(0.02, min(last_change, rng.uniform(0.05, 12)))
        else:
            close_in = end
            modified = max(0.02, end - rng.uniform(0, 2))
        if owner is None:
            owner = c.owner if crm == SF else (c.hs_owner or c.owner)
        people = [p for p in c.people if (p.sf_id if crm == SF else p.hs_id)]
        deal = Deal(
            crm=crm,
            rid=self.ids.sf("006") if crm == SF else self.ids.hs(),
            name=name,
            kind=kind,
            amount=amount,
            term=term,
            path=path,
            close_in=close_in,
            modified=modified,
            owner=owner,
            contact=people[0] if people else None,
            is_closed=outcome != "open",
            is_won=outcome == "won",
        )
        c.deals.append(deal)
        return deal

    def _deals(self, c: Customer, cycle: float) -> None:
        rng, lc = c.rng, c.plan.lifecycle
        sf_seller = c.seller if c.seller.sf_id else self._pool[(SALES, SF)][0]
        hs_seller = c.seller if c.seller.hs_id else self._pool[(SALES, HS)][0]
        if lc == "prospect":
            if c.plan.negotiating:
                target = _SF_OPEN.index(sf_stage(rng.choice(SF_LATE_STAGES)))
                start = rng.uniform(30, 160)
                self._new_deal(
                    c, SF, "new", "open", created=start, end=rng.uniform(1, 20), target=target
                )
            if not c.plan.negotiating and rng.random() < 0.72:
                for _ in range(1 if rng.random() < 0.75 else 2):
                    stale = rng.random() < 0.28
                    last = rng.uniform(60, 200) if stale else rng.uniform(1, 40)
                    start = last + rng.uniform(5, 120)
                    crm = self._deal_crm(c, enterprise_bias=0.65)
                    self._new_deal(c, crm, "new", "open", created=start, end=last, stale=stale)
            if rng.random() < 0.3:
                end = rng.uniform(30, 400)
                crm = self._deal_crm(c, enterprise_bias=0.65)
                self._new_deal(c, crm, "new", "lost", created=end + rng.uniform(10, 120), end=end)
            return
        assert c.won is not None
        crm = self._deal_crm(c, enterprise_bias=0.75)
        first = self._new_deal(
            c,
            crm,
            "new",
            "won",
            created=c.won + cycle,
            end=c.won,
            owner=sf_seller if crm == SF else hs_seller,
        )
        if lc == "onboarding":
            if rng.random() < 0.2:
                end = c.won + cycle + rng.uniform(30, 200)
                self._new_deal(
                    c,
                    crm,
                    "new",
                    "lost",
                    created=end + rng.uniform(20, 90),
                    end=end,
                    owner=first.owner,
                )
            return
        # Renewals of the first contract, signed around each anniversary.
        t = c.won - first.term * 30.4
        prev = first
        while t > 15:
            ren = self._new_deal(c, crm, "renewal", "won", created=t + rng.uniform(20, 60), end=t)
            ren.amount = float(round(prev.amount * rng.uniform(1.0, 1.12) / 100) * 100)
            prev = ren
            t -= ren.term * 30.4
        r = rng.random()
        if lc == "at_risk" and r < 0.35:
            last = rng.uniform(60, 150)
            self._new_deal(
                c, crm, "renewal", "open", created=last + rng.uniform(10, 60), end=last, stale=True
            )
        elif r < 0.4:
            outcome = rng.choices(("open", "won", "lost"), weights=(55, 25, 20))[0]
            end = (
                rng.uniform(1, 30) if outcome == "open" else rng.uniform(10, max(11.0, c.won - 20))
            )
            created = end + rng.uniform(10, 90 if outcome == "open" else min(90.0, c.won - end))
            self._new_deal(c, crm, "upsell", outcome, created=created, end=end)

    # ---- leads ----------------------------------------------------------------------------
    def _leads(self, c: Customer) -> None:
        """Salesforce leads: converted ones behind contacts, and new ones from the last months."""
        if not c.sf_id:
            return
        rng = c.rng
        for p in c.people[:2]:
            if p.sf_id and rng.random() < 0.4:
                converted_at = p.created
                self._lead(
                    c,
                    p.first,
                    p.last,
                    p.email,
                    converted_at + rng.uniform(3, 60),
                    converted_at,
                    converted=True,
                )
        n_new = rng.randint(1, 3) if c.plan.lifecycle == "prospect" else rng.randint(0, 2)
        for k in range(n_new):
            lang = c.idn.country.lang
            first = rng.choice(names.FIRST_NAMES[lang])
            last = rng.choice(names.LAST_NAMES[lang])
            email = self._person_email(rng, c, 8 + k, first, last, "first.last", set())
            created = _lognormal(rng, 45, 0.9, 1, 300)
            self._lead(
                c,
                first,
                last,
                email,
                created,
                max(0.02, created - rng.uniform(0, 20)),
                converted=False,
            )

    def _lead(
        self,
        c: Customer,
        first: str,
        last: str,
        email: str,
        created: float,
        modified: float,
        *,
        converted: bool,
    ) -> None:
        rng = c.rng
        status = (
            "Closed - Converted"
            if converted
            else rng.choices(
                ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted"),
                weights=(45, 40, 15),
            )[0]
        )
        data = sf_template("Lead") | {
            "FirstName": first,
            "LastName": last,
            "Name": f"{first} {last}",
            "Company": self.name_variant(rng, c.idn) if rng.random() < 0.6 else c.idn.base,
            "Email": email,
            "Website": self.website(rng, c.idn) if rng.random() < 0.5 else None,
            "Status": status,
            "LeadSource": rng.choice(
                ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
            ),
            "IsConverted": converted,
            "ConvertedAccountId": c.sf_id if converted else None,
            "OwnerId": c.seller.sf_id or c.owner.sf_id,
            "CreatedById": c.seller.sf_id or c.owner.sf_id,
            "LastModifiedById": c.seller.sf_id or c.owner.sf_id,
        }
        rid = self.ids.sf("00Q")
        self.sink.record(SF, "Lead", rid, self.ts(created), self.ts(min(created, modified)), data)

    # ---- tickets --------------------------------------------------------------------------
    _CATEGORY_WEIGHTS: dict[str, tuple[int, int, int, int]] = {
        # Defect, User Error, Question, Feature Request
        "prospect": (0, 10, 80, 10),
        "onboarding": (20, 40, 30, 10),
        "mature": (25, 8, 37, 30),
        "at_risk": (50, 25, 15, 10),
    }
    _HANDLING_HOURS = {"Critical": 8.0, "High": 30.0, "Medium": 80.0, "Low": 160.0}
    _SF_TO_HS_PRIORITY = {"Critical": "URGENT", "High": "HIGH", "Medium": "MEDIUM", "Low": "LOW"}
    _SF_TO_HS_CATEGORY = {
        "Defect": "PRODUCT_ISSUE",
        "User Error": "USER_ERROR",
        "Question": "GENERAL_INQUIRY",
        "Feature Request": "FEATURE_REQUEST",
    }
    _SUBJECTS = {
        "Defect": (
            "{m}: export fails with error 500",
            "{m} report shows wrong totals",
            "Sync to {m} stopped",
            "{m} page does not load",
            "Data missing in {m}",
        ),
        "User Error": (
            "How do I set up {m}?",
            "Cannot find the {m} settings",
            "Imported the wrong file into {m}",
            "Users locked out after role change",
        ),
        "Question": (
            "Question about {m} licences",
            "Invoice question",
            "Training dates for {m}",
            "API limits for {m}",
        ),
        "Feature Request": (
            "Please add filters to {m}",
            "Wish: {m} export to Excel",
            "SSO for {m}",
            "Custom fields in {m}",
        ),
    }

    def _tickets(self, c: Customer) -> None:
        rng, lc = c.rng, c.plan.lifecycle
        if lc == "prospect":
            n = 1 if rng.random() < 0.08 else 0
        elif lc == "onboarding":
            n = rng.randint(2, 6)
        elif lc == "mature":
            n = rng.randint(0, 4)
        else:
            n = rng.randint(3, 7)
        if not n:
            return
        if c.plan.presence == "both":
            crm = HS if rng.random() < 0.6 else SF
        else:
            crm = SF if c.sf_id else HS
        span = c.won if c.won is not None else 60.0
        recent = min(span, 365.0)
        for k in range(n):
            forced_open = False
            if lc == "at_risk" and k == 0:
                ctype, priority, opened, forced_open = (
                    "Defect",
                    rng.choice(("Critical", "High")),
                    rng.uniform(1, 25),
                    True,
                )
            elif lc == "onboarding" and k == 0 and rng.random() < 0.5:
                ctype, priority, opened, forced_open = (
                    "Defect",
                    rng.choice(("Critical", "High")),
                    rng.uniform(1, min(span, 40) + 1),
                    True,
                )
            elif lc == "onboarding" and k in (1, 2):
                ctype, priority, opened = (
                    "User Error",
                    rng.choice(("Medium", "Low")),
                    rng.uniform(1, min(span, 30) + 1),
                )
            else:
                ctype = rng.choices(
                    ("Defect", "User Error", "Question", "Feature Request"),
                    weights=self._CATEGORY_WEIGHTS[lc],
                )[0]
                if ctype == "Defect":
                    priority = rng.choices(
                        ("Critical", "High", "Medium", "Low"), weights=(15, 30, 40, 15)
                    )[0]
                else:
                    priority = rng.choices(("High", "Medium", "Low"), weights=(10, 55, 35))[0]
                opened = rng.uniform(1, recent) if lc != "onboarding" else rng.uniform(1, span + 1)
            handling = _lognormal(rng, self._HANDLING_HOURS[priority], 0.9, 0.3, 2000) / 24.0
            closed_at = opened - handling
            closed = not forced_open and closed_at > 0.05
            if closed and priority in ("Medium", "Low") and rng.random() < 0.1:
                closed = False  # lingering low-priority work
            if lc == "mature" and priority in ("Critical", "High"):
                closed, closed_at = True, max(0.05, closed_at)
            csat = None
            if closed and rng.random() < 0.65:
                pool = {"mature": (5, 5, 4, 4, 4, 3), "at_risk": (4, 3, 2, 2, 1, 1)}.get(
                    lc, (5, 4, 4, 3, 3, 2)
                )
                csat = rng.choice(pool)
            modified = (
                max(0.02, closed_at - rng.uniform(0, 3))
                if closed
                else max(0.02, opened - rng.uniform(0, min(opened, 5)))
            )
            subject = rng.choice(self._SUBJECTS[ctype]).format(m=rng.choice(MODULES))
            people = [p for p in c.people if (p.sf_id if crm == SF else p.hs_id)]
            contact = rng.choice(people) if people else None
            owner = c.owner if crm == SF else (c.hs_owner or c.owner)
            origin = rng.choices(("Email", "Phone", "Web"), weights=(55, 25, 20))[0]
            if crm == SF:
                status = (
                    "Closed"
                    if closed
                    else (
                        "Escalated"
                        if priority == "Critical" and rng.random() < 0.5
                        else rng.choice(("New", "Working"))
                    )
                )
                data = sf_template("Case") | {
                    "CaseNumber": self.ids.case_number(),
                    "AccountId": c.sf_id,
                    "ContactId": contact.sf_id if contact else None,
                    "Subject": subject,
                    "Status": status,
                    "Priority": priority,
                    "Type": ctype,
                    "Origin": origin,
                    "IsClosed": closed,
                    "ClosedDate": self.sf_ts(closed_at) if closed else None,
                    "CSAT__c": float(csat) if csat is not None else None,
                    "OwnerId": owner.sf_id,
                    "CreatedById": owner.sf_id,
                    "LastModifiedById": owner.sf_id,
                }
                self.sink.record(
                    SF, "Case", self.ids.sf("500"), self.ts(opened), self.ts(modified), data
                )
            else:
                category = self._SF_TO_HS_CATEGORY[ctype]
                if ctype == "Question" and rng.random() < 0.3:
                    category = "BILLING_ISSUE"
                stage = "4" if closed else rng.choice(("1", "2", "3"))
                data = hs_template("tickets") | {
                    "subject": subject,
                    "content": f"{subject}. Reported by {contact.first if contact else 'customer'}.",
                    "hs_pipeline": "0",
                    "hs_pipeline_stage": stage,
                    "hs_ticket_priority": self._SF_TO_HS_PRIORITY[priority],
                    "hs_ticket_category": category,
                    "closed_date": self.hs_ts(closed_at) if closed else None,
                    "hs_customer_satisfaction": str(csat) if csat is not None else None,
                    "source_type": {"Email": "EMAIL", "Phone": "PHONE", "Web": "FORM"}[origin],
                    "hubspot_owner_id": owner.hs_id,
                }
                tid = self.ids.hs()
                self.sink.record(HS, "tickets", tid, self.ts(opened), self.ts(modified), data)
                assert c.hs_id is not None
                self.sink.link("tickets", tid, "companies", c.hs_id, primary=True)
                if contact and contact.hs_id:
                    self.sink.link("tickets", tid, "contacts", contact.hs_id)

    # ---- emails ---------------------------------------------------------------------------
    _DEAL_SUBJECTS = (
        "Proposal {co}",
        "Pricing question",
        "Contract draft",
        "Next steps",
        "Demo follow-up",
        "Order form {co}",
        "Security questionnaire",
    )
    _CARE_SUBJECTS = (
        "Invoice question",
        "Training dates",
        "Go-live planning",
        "User access",
        "Quarterly review",
        "Renewal {co}",
        "Question about {m}",
        "New colleague needs access",
    )

    def _emails(self, c: Customer) -> None:
        rng, lc, plan = c.rng, c.plan.lifecycle, c.plan
        has_deals = bool(c.deals)
        if has_deals and rng.random() < 0.1:
            return  # unlogged contact: deals, but nobody logs the emails
        if lc == "prospect":
            n = (
                rng.randint(3, 6)
                if plan.negotiating
                else (rng.randint(1, 4) if has_deals else rng.randint(0, 1))
            )
        elif lc == "onboarding":
            n = rng.randint(2, 6)
        elif lc == "mature":
            n = rng.randint(1, 4)
        else:
            n = rng.randint(2, 5)
        for _ in range(n):
            if plan.presence == "both":
                r = rng.random()
                crms = (SF,) if r < 0.65 else ((HS,) if r < 0.95 else (SF, HS))
            else:
                crms = (SF,) if c.sf_id else (HS,)
            people = [p for p in c.people if all((p.sf_id if x == SF else p.hs_id) for x in crms)]
            if not people:
                continue
            contact = rng.choice(people)
            deals = [d for d in c.deals if d.crm in crms] if len(crms) == 1 else []
            deal = rng.choice(deals) if deals and rng.random() < 0.55 else None
            if deal is not None:
                hi = deal.created
                lo = max(1.0, (deal.path[-1][1] if deal.is_closed else 1.0) - 10)
                subject = rng.choice(self._DEAL_SUBJECTS)
                owner = deal.owner
            else:
                hi = min(c.created, 365.0 if lc != "prospect" else c.created)
                lo = 1.0
                subject = rng.choice(self._CARE_SUBJECTS)
                owner = c.owner if crms[0] == SF else (c.hs_owner or c.owner)
            subject = subject.format(co=c.idn.base, m=rng.choice(MODULES))
            start_day = int(rng.uniform(lo, max(lo, hi)) + 1)
            self._thread(c, crms, contact, owner, deal, subject, start_day)

    def _thread(
        self,
        c: Customer,
        crms: tuple[str, ...],
        contact: Person,
        owner: Owner,
        deal: Deal | None,
        subject: str,
        start_day: int,
    ) -> None:
        """One email thread: alternating messages with skewed reply times, maybe unanswered."""
        rng = c.rng
        inbound = rng.random() < 0.45
        t = self.work_time(rng, start_day)
        n_max = 1 + min(5, int(rng.expovariate(0.8)))
        thread_sf = f"<{rng.getrandbits(64):016x}@mail.{c.idn.email_domain}>"
        thread_hs = str(rng.randint(10**11, 10**12 - 1))
        messages: list[tuple[float, bool]] = []
        for k in range(n_max):
            messages.append((t, inbound))
            if inbound:
                if rng.random() < 0.12:
                    break  # nobody answered
                delay = _lognormal(rng, 3.0 * owner.speed, 1.3, 0.03, 240) / 24.0
            else:
                if rng.random() < 0.35 and k > 0:
                    break
                delay = _lognormal(rng, 20.0, 1.2, 0.2, 400) / 24.0
            t -= delay
            if t < 0.01:
                break
            inbound = not inbound
        owner_sf = owner if owner.sf_id else c.owner
        owner_hs = owner if owner.hs_id else (c.hs_owner or owner)
        for idx, (when, incoming) in enumerate(messages):
            subj = subject if idx == 0 else f"Re: {subject}"
            replied = incoming and idx + 1 < len(messages)
            if SF in crms:
                sender = owner_sf.email
                frm, to = (contact.email, sender) if incoming else (sender, contact.email)
                activity_id = None
                related = deal.rid if deal is not None and deal.crm == SF else c.sf_id
                if not incoming and rng.random() < 0.4:
                    activity_id = self._task(
                        c, "Email", f"Email: {subj}", when, related, contact.sf_id, owner_sf, True
                    )
                data = sf_template("EmailMessage") | {
                    "RelatedToId": related,
                    "ActivityId": activity_id,
                    "ThreadIdentifier": thread_sf,
                    "Subject": subj,
                    "FromAddress": frm,
                    "ToAddress": to,
                    "Incoming": incoming,
                    "MessageDate": self.sf_ts(when),
                    "Status": "3"
                    if not incoming
                    else ("2" if replied else ("0" if when < 5 else "1")),
                    "CreatedById": owner_sf.sf_id,
                    "LastModifiedById": owner_sf.sf_id,
                }
                self.sink.record(
                    SF, "EmailMessage", self.ids.sf("02s"), self.ts(when), self.ts(when), data
                )
            if HS in crms:
                sender = owner_hs.hs_email
                frm, to = (
                    (contact.email.lower(), sender) if incoming else (sender, contact.email.lower())
                )
                data = hs_template("emails") | {
                    "hs_timestamp": self.hs_ts(when),
                    "hs_email_direction": "INCOMING_EMAIL" if incoming else "EMAIL",
                    "hs_email_subject": subj,
                    "hs_email_from_email": frm,
                    "hs_email_to_email": to,
                    "hs_email_thread_id": thread_hs,
                    "hs_email_status": None if incoming else "SENT",
                    "hubspot_owner_id": owner_hs.hs_id,
                }
                eid = self.ids.hs()
                self.sink.record(HS, "emails", eid, self.ts(when), self.ts(when), data)
                assert contact.hs_id is not None and c.hs_id is not None
                self.sink.link("emails", eid, "contacts", contact.hs_id)
                self.sink.link("emails", eid, "companies", c.hs_id)
                if deal is not None and deal.crm == HS:
                    self.sink.link("emails", eid, "deals", deal.rid)

    # ---- tasks (Salesforce activities for cost of sale) -----------------------------------
    def _task(
        self,
        c: Customer,
        subtype: str,
        subject: str,
        when: float,
        what_id: str | None,
        who_id: str | None,
        owner: Owner,
        done: bool,
        duration: int | None = None,
    ) -> str:
        rid = self.ids.sf("00T")
        created = when if done else max(0.02, when + c.rng.uniform(1, 10))
        data = sf_template("Task") | {
            "WhatId": what_id,
            "WhoId": who_id,
            "AccountId": c.sf_id,
            "Subject": subject,
            "TaskSubtype": subtype,
            "ActivityDate": self.day(when),
            "Status": "Completed" if done else "Not Started",
            "CallDurationInSeconds": duration,
            "OwnerId": owner.sf_id,
            "CreatedById": owner.sf_id,
            "LastModifiedById": owner.sf_id,
        }
        self.sink.record(
            SF,
            "Task",
            rid,
            self.ts(created),
            self.ts(max(0.01, min(created, when) if done else created)),
            data,
        )
        if when >= 1.0 and (c.last_task_day is None or when < c.last_task_day):
            c.last_task_day = when
        return rid

    def _tasks(self, c: Customer) -> None:
        if not c.sf_id:
            return
        rng = c.rng
        sf_people = [p for p in c.people if p.sf_id]
        who = sf_people[0].sf_id if sf_people else None
        for d in c.deals:
            if d.crm != SF:
                continue
            hi = d.created
            lo = max(1.0, d.path[-1][1] if d.is_closed else 1.0)
            for _ in range(rng.randint(0, 4)):
                when = self.work_time(rng, int(rng.uniform(lo, max(lo, hi)) + 1))
                dur = int(_lognormal(rng, 900, 0.8, 60, 5400))
                subj = rng.choice(
                    ("Call: discovery", "Call: pricing", "Call: follow-up", "Call: demo")
                )
                self._task(c, "Call", subj, when, d.rid, who, d.owner, True, dur)
            if not d.is_closed:
                for _ in range(rng.randint(0, 2)):
                    due = rng.uniform(-14, 10)
                    subj = rng.choice(("Send proposal", "Follow up on pricing", "Prepare demo"))
                    self._task(
                        c, "Task", subj, due, d.rid, who, d.owner, due > 3 and rng.random() < 0.5
                    )
        if c.plan.lifecycle in ("mature", "at_risk"):
            for _ in range(rng.randint(0, 3)):
                when = self.work_time(rng, int(rng.uniform(1, 180)) + 1)
                dur = int(_lognormal(rng, 1200, 0.6, 120, 3600))
                self._task(
                    c, "Call", "Call: account review", when, c.sf_id, who, c.owner, True, dur
                )

    # ---- accounts, companies, contacts, deals as records ----------------------------------
    def _modules(
        self, c: Customer
    ) -> tuple[list[str], list[str], int | None, float | None, bool | None]:
        """(contracted, in use, usage score, go-live days ago, onboarding completed)."""
        rng, lc = c.rng, c.plan.lifecycle
        if lc == "prospect" or c.won is None or rng.random() < 0.08:
            return [], [], None, None, (False if lc == "prospect" else None)
        k = (
            rng.randint(2, 4)
            if c.plan.presence != "hs"
            else rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
        )
        contracted = sorted(rng.sample(MODULES, k), key=MODULES.index)
        go_live: float | None
        if lc == "onboarding":
            in_use = sorted(rng.sample(contracted, rng.randint(0, k - 1)), key=MODULES.index)
            usage = rng.randint(8, 55)
            go_live = (
                c.won - rng.uniform(10, c.won - 1) if c.won > 25 and rng.random() < 0.7 else None
            )
            done = rng.random() < 0.2
        else:
            in_use = list(contracted)
            if lc == "at_risk" and k > 1 and rng.random() < 0.5:
                in_use.pop(rng.randrange(k))
            usage = rng.randint(65, 98) if lc == "mature" else rng.randint(12, 45)
            go_live = c.won - rng.uniform(20, 90)
            done = True
        return contracted, in_use, usage, go_live, done

    def _accounts(self, c: Customer) -> None:
        rng, idn, plan = c.rng, c.idn, c.plan
        lc = plan.lifecycle
        contracted, in_use, usage, go_live, done = self._modules(c)
        customer = lc != "prospect"
        size = (
            _lognormal(rng, 800, 1.0, 50, 50_000)
            if plan.presence != "hs"
            else _lognormal(rng, 60, 0.8, 5, 500)
        )
        employees = int(size)
        revenue = float(round(employees * rng.uniform(80_000, 250_000), -3))
        last_edit = rng.uniform(0.05, 30) if customer else rng.uniform(0.05, 200)
        modified = min(c.created, last_edit)
        sf_name = idn.legal_name if rng.random() < 0.85 else idn.base
        hs_name = (
            self.name_variant(rng, idn)
            if plan.presence == "both"
            else (idn.base if rng.random() < 0.5 else idn.legal_name)
        )
        if c.sf_id:
            owner = c.owner
            data = sf_template("Account") | {
                "Name": sf_name,
                "Website": self.website(rng, idn) if rng.random() < 0.92 else None,
                "Phone": idn.phone if rng.random() < 0.8 else None,
                "Industry": idn.industry,
                "Type": "Prospect"
                if not customer
                else ("Customer - Channel" if rng.random() < 0.1 else "Customer - Direct"),
                "BillingStreet": idn.street,
                "BillingCity": idn.city.name,
                "BillingState": idn.city.state,
                "BillingPostalCode": idn.postcode,
                "BillingCountry": idn.country.name,
                "BillingCountryCode": idn.country.code,
                "NumberOfEmployees": employees,
                "AnnualRevenue": revenue if rng.random() < 0.7 else None,
                "OwnerId": owner.sf_id,
                "LastActivityDate": self.day(c.last_task_day) if c.last_task_day else None,
                "HubSpot_Company_Id__c": c.hs_id if c.hs_id and rng.random() < 0.2 else None,
                "Go_Live_Date__c": self.day(go_live) if go_live is not None else None,
                "Onboarding_Completed__c": done,
                "Contracted_Modules__c": ";".join(contracted) or None,
                "Modules_In_Use__c": ";".join(in_use) or None,
                "Usage_Score__c": float(usage) if usage is not None else None,
                "CreatedById": c.seller.sf_id or owner.sf_id,
                "LastModifiedById": owner.sf_id,
            }
            data["BillingAddress"] = sf_billing_address(data)
            self.sink.record(SF, "Account", c.sf_id, self.ts(c.created), self.ts(modified), data)
            self._account_history(c, owner, modified)
        if c.hs_id:
            owner_hs = c.hs_owner
            # HubSpot holds the success fields for its own customers; for shared ones only
            # some portals sync them, and then a little behind Salesforce.
            hs_has_success = plan.presence == "hs" or rng.random() < 0.55
            hs_usage = usage
            if usage is not None and plan.presence == "both":
                hs_usage = max(0, min(100, usage + rng.randint(-6, 6)))
            hs_open = sum(1 for d in c.deals if d.crm == HS and not d.is_closed)
            city: str | None = idn.city.name
            if plan.presence == "both" and rng.random() < 0.12:
                alt = idn.city.alt or names.transliterate(idn.city.name)
                city = alt if rng.random() < 0.7 else None
            country = idn.country.name
            if plan.presence == "both" and rng.random() < 0.15:
                country = rng.choice(idn.country.alt_names) if idn.country.alt_names else country
            website = self.website(rng, idn) if rng.random() < 0.9 else None
            r = rng.random()
            domain = idn.domain if r < 0.9 else (f"www.{idn.domain}" if r < 0.95 else None)
            if lc == "prospect":
                stage = (
                    "opportunity"
                    if c.deals
                    else rng.choice(("lead", "marketingqualifiedlead", "salesqualifiedlead"))
                )
            else:
                stage = "evangelist" if lc == "mature" and rng.random() < 0.1 else "customer"
            data = hs_template("companies") | {
                "name": hs_name,
                "domain": domain,
                "website": website,
                "phone": idn.phone if rng.random() < 0.6 else None,
                "industry": names.HS_INDUSTRY[idn.industry] if rng.random() < 0.7 else None,
                "city": city,
                "state": idn.city.state,
                "country": country,
                "zip": idn.postcode if rng.random() < 0.7 else None,
                "address": idn.street if rng.random() < 0.6 else None,
                "numberofemployees": str(employees) if rng.random() < 0.8 else None,
                "annualrevenue": str(int(revenue)) if rng.random() < 0.5 else None,
                "lifecyclestage": stage,
                "salesforceaccountid": c.sf_id if c.sf_id and rng.random() < 0.5 else None,
                "go_live_date": self.day(go_live)
                if go_live is not None and hs_has_success
                else None,
                "onboarding_completed": ("true" if done else "false")
                if done is not None and hs_has_success
                else None,
                "contracted_modules": (";".join(contracted) or None) if hs_has_success else None,
                "modules_in_use": (";".join(in_use) or None) if hs_has_success else None,
                "usage_score": str(hs_usage) if hs_usage is not None and hs_has_success else None,
                "hs_num_open_deals": str(hs_open),
                "hubspot_owner_id": owner_hs.hs_id if owner_hs else None,
            }
            hs_created = c.created - rng.uniform(0, min(30.0, c.created - 1))
            hs_modified = min(hs_created, rng.uniform(0.05, 60))
            self.sink.record(
                HS, "companies", c.hs_id, self.ts(hs_created), self.ts(hs_modified), data
            )
            self._company_owner_history(c, owner_hs, hs_created, hs_modified)
        self._contacts(c)
        self._deal_records(c)

    # ---- owner history --------------------------------------------------------------------
    def _handover_day(self, c: Customer, hrng: random.Random, newest: float) -> float | None:
        """Days ago an account manager took a won customer over: 30-150 days after the first
        contract, never after the record's last modification (an owner change modifies it)."""
        if c.won is None:
            return None
        return max(newest + 0.01, c.won - hrng.uniform(30, 150))

    def _account_history(self, c: Customer, owner: Owner, modified: float) -> None:
        """``AccountHistory`` of an Account an account manager owns: the seller-to-AM owner
        change, two rows (ids, names) as the org writes them. None where history tracking on
        Owner started after the handover, or the change is older than the 24 months the API
        keeps field history: those accounts have no owner history at all."""
        hrng = random.Random(f"owner-history/{self.seed}/{c.i}/sf")
        when = self._handover_day(c, hrng, modified)
        if owner.department != ACCOUNT_MANAGEMENT or when is None or not c.sf_id:
            return
        if hrng.random() >= 0.85 or when > 730:
            return
        seller = c.seller if c.seller.sf_id else hrng.choice(self._pool[(SALES, SF)])
        stamp = self.ts(when)
        for data_type, old, new in (
            ("EntityId", seller.sf_id, owner.sf_id),
            ("Text", f"{seller.first} {seller.last}", f"{owner.first} {owner.last}"),
        ):
            row = {
                "AccountId": c.sf_id,
                "CreatedById": owner.sf_id,
                "Field": "Owner",
                "DataType": data_type,
                "OldValue": old,
                "NewValue": new,
            }
            self.sink.record(SF, "AccountHistory", self.ids.sf("017"), stamp, stamp, row)

    def _company_owner_history(
        self, c: Customer, owner: Owner | None, created: float, modified: float
    ) -> None:
        """Versions of a company's ``hubspot_owner_id``: the owner set when the company was
        created, and for an account manager's customer mostly the seller first and the AM from
        the handover on; some companies were imported already owned by their AM (one version,
        source IMPORT: the history cannot date that handover)."""
        if owner is None or owner.hs_id is None or not c.hs_id:
            return
        hrng = random.Random(f"owner-history/{self.seed}/{c.i}/hs")
        born = self.ts(created)
        when = self._handover_day(c, hrng, modified)
        if owner.department == ACCOUNT_MANAGEMENT and when is not None and when < created:
            if hrng.random() < 0.8:
                seller = c.seller if c.seller.hs_id else hrng.choice(self._pool[(SALES, HS)])
                assert seller.hs_id is not None
                self.sink.version(
                    "companies", c.hs_id, "hubspot_owner_id", seller.hs_id, born, "CRM_UI"
                )
                self.sink.version(
                    "companies", c.hs_id, "hubspot_owner_id", owner.hs_id, self.ts(when), "CRM_UI"
                )
                return
            self.sink.version("companies", c.hs_id, "hubspot_owner_id", owner.hs_id, born, "IMPORT")
            return
        self.sink.version("companies", c.hs_id, "hubspot_owner_id", owner.hs_id, born, "CRM_UI")

    def _contacts(self, c: Customer) -> None:
        rng, plan = c.rng, c.plan
        lc = plan.lifecycle
        for k, p in enumerate(c.people):
            if p.sf_id:
                email = p.email
                if rng.random() < 0.1:
                    local, _, dom = email.partition("@")
                    email = f"{local.title()}@{dom}"
                owner = c.owner
                data = sf_template("Contact") | {
                    "AccountId": c.sf_id,
                    "FirstName": p.first,
                    "LastName": p.last,
                    "Name": f"{p.first} {p.last}",
                    "Email": email,
                    "Phone": p.phone,
                    "Title": p.title,
                    "LeadSource": rng.choice(("Web", "Phone Inquiry", "Partner Referral", "Other")),
                    "OwnerId": owner.sf_id,
                    "CreatedById": owner.sf_id,
                    "LastModifiedById": owner.sf_id,
                }
                modified = min(p.created, rng.uniform(0.05, 400))
                self.sink.record(
                    SF, "Contact", p.sf_id, self.ts(p.created), self.ts(modified), data
                )
            if p.hs_id:
                first, last = p.first, p.last
                r = rng.random()
                if plan.presence == "both" and r < 0.06:
                    first, last = first.lower(), last.lower()
                elif plan.presence == "both" and r < 0.1:
                    last = last.upper()
                if lc == "prospect":
                    if k == 0 and c.deals:
                        stage = "opportunity"
                    else:
                        stage = rng.choices(
                            ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead"),
                            weights=(10, 45, 30, 15),
                        )[0]
                else:
                    stage = "evangelist" if lc == "mature" and rng.random() < 0.08 else "customer"
                send: float | None = None
                if plan.marketed:
                    send = rng.uniform(0.1, 10) if k == 0 or rng.random() < 0.7 else None
                elif rng.random() < 0.6:
                    send = _lognormal(rng, 25, 1.0, 0.1, 400)
                if send is not None and send > p.created:
                    send = p.created - rng.uniform(0, max(0.0, p.created - 0.05))
                created = p.created + (rng.uniform(-3, 20) if p.sf_id else 0.0)
                created = max(0.05, created)
                if send is not None:
                    send = min(send, created)
                modified = min(created, send if send is not None else rng.uniform(0.05, 300))
                data = hs_template("contacts") | {
                    "email": p.email.lower(),
                    "firstname": first,
                    "lastname": last,
                    "phone": p.phone if rng.random() < 0.8 else None,
                    "jobtitle": p.title if rng.random() < 0.7 else None,
                    "company": self.name_variant(rng, c.idn) if rng.random() < 0.5 else None,
                    "website": self.website(rng, c.idn) if rng.random() < 0.3 else None,
                    "lifecyclestage": stage,
                    "hs_lead_status": rng.choice(
                        ("NEW", "OPEN", "IN_PROGRESS", "CONNECTED", "UNQUALIFIED")
                    )
                    if stage in ("lead", "marketingqualifiedlead", "salesqualifiedlead")
                    else None,
                    "hs_email_last_send_date": self.hs_ts(send) if send is not None else None,
                    "hs_email_last_email_name": rng.choice(names.MARKETING_EMAILS)
                    if send is not None
                    else None,
                    "salesforcecontactid": p.sf_id if p.sf_id and rng.random() < 0.35 else None,
                    "hubspot_owner_id": c.hs_owner.hs_id
                    if c.hs_owner and rng.random() < 0.9
                    else None,
                }
                self.sink.record(HS, "contacts", p.hs_id, self.ts(created), self.ts(modified), data)
                assert c.hs_id is not None
                self.sink.link("contacts", p.hs_id, "companies", c.hs_id, primary=True)

    def _deal_records(self, c: Customer) -> None:
        for d in c.deals:
            created, last_change = d.created, d.path[-1][1]
            if d.crm == SF:
                name, prob, closed, won = sf_stage(d.stage)
                data = sf_template("Opportunity") | {
                    "AccountId": c.sf_id,
                    "Name": d.name,
                    "StageName": name,
                    "Amount": d.amount,
                    "Probability": float(prob),
                    "CloseDate": self.day(d.close_in),
                    "IsClosed": closed,
                    "IsWon": won,
                    "Type": {
                        "new": "New Business",
                        "renewal": "Existing Business - Renewal",
                        "upsell": "Existing Business - Upgrade",
                    }[d.kind],
                    "LastStageChangeDate": self.sf_ts(last_change),
                    "Contract_Term_Months__c": float(d.term),
                    "OwnerId": d.owner.sf_id,
                    "CreatedById": d.owner.sf_id,
                    "LastModifiedById": d.owner.sf_id,
                }
                self.sink.record(
                    SF,
                    "Opportunity",
                    d.rid,
                    self.ts(created),
                    self.ts(min(d.modified, last_change)),
                    data,
                )
                for stage, entered in d.path:
                    hist = sf_template("OpportunityHistory") | {
                        "OpportunityId": d.rid,
                        "StageName": stage,
                        "Amount": d.amount,
                        "CloseDate": self.day(d.close_in),
                        "CreatedById": d.owner.sf_id,
                        "LastModifiedById": d.owner.sf_id,
                    }
                    self.sink.record(
                        SF,
                        "OpportunityHistory",
                        self.ids.sf("008"),
                        self.ts(entered),
                        self.ts(entered),
                        hist,
                    )
            else:
                _, _, _, closed, won = hs_stage(d.stage)
                data = hs_template("deals") | {
                    "dealname": d.name,
                    "amount": hs_amount(d.amount),
                    "pipeline": "default",
                    "dealstage": d.stage,
                    "closedate": self.hs_ts(d.close_in)
                    if d.is_closed
                    else f"{self.day(d.close_in)}T00:00:00.000Z",
                    "dealtype": "newbusiness" if d.kind == "new" else "existingbusiness",
                    "hs_is_closed": "true" if closed else "false",
                    "hs_is_closed_won": "true" if won else "false",
                    "contract_term_months": str(d.term),
                    "hubspot_owner_id": d.owner.hs_id,
                }
                for stage, entered in d.path:
                    data[f"hs_v2_date_entered_{stage}"] = self.hs_ts(entered)
                self.sink.record(
                    HS,
                    "deals",
                    d.rid,
                    self.ts(created),
                    self.ts(min(d.modified, last_change)),
                    data,
                )
                assert c.hs_id is not None
                self.sink.link("deals", d.rid, "companies", c.hs_id, primary=True)
                if d.contact is not None and d.contact.hs_id:
                    self.sink.link("deals", d.rid, "contacts", d.contact.hs_id)

    # ---- records that belong to no true customer ------------------------------------------
    def _orphans(self, c: Customer) -> None:
        """Leads from companies that never became customers and free-mail newsletter subscribers."""
        rng = random.Random(f"orphan/{self.seed}/{c.i}")
        lang = rng.choice(("de", "en", "en", "nordic", "fr", "nl"))
        first, last = rng.choice(names.FIRST_NAMES[lang]), rng.choice(names.LAST_NAMES[lang])
        if rng.random() < 0.12:
            company = (
                f"{last} {rng.choice(('Consulting', 'Services', 'Handel', 'Studio', 'Partners'))}"
            )
            email = f"{names.slug(first)}{names.slug(last)}{c.i * 16 + 15}@{rng.choice(names.FREE_MAIL_DOMAINS)}"
            created = _lognormal(rng, 60, 1.0, 1, 700)
            owner = rng.choice(self._pool[(SALES, SF)])
            data = sf_template("Lead") | {
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "Company": company,
                "Email": email,
                "Status": rng.choice(
                    ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
                ),
                "LeadSource": rng.choice(("Web", "Purchased List", "Other")),
                "IsConverted": False,
                "OwnerId": owner.sf_id,
                "CreatedById": owner.sf_id,
                "LastModifiedById": owner.sf_id,
            }
            self.sink.record(
                SF, "Lead", self.ids.sf("00Q"), self.ts(created), self.ts(created), data
            )
        if rng.random() < 0.15:
            created = _lognormal(rng, 90, 1.0, 1, 1000)
            send = min(created, _lognormal(rng, 20, 1.0, 0.1, 400)) if rng.random() < 0.7 else None
            data = hs_template("contacts") | {
                "email": f"{names.slug(first)}.{names.slug(last)}{c.i * 16 + 14}@{rng.choice(names.FREE_MAIL_DOMAINS)}",
                "firstname": first,
                "lastname": last,
                "lifecyclestage": "subscriber",
                "hs_email_last_send_date": self.hs_ts(send) if send is not None else None,
                "hs_email_last_email_name": rng.choice(names.MARKETING_EMAILS)
                if send is not None
                else None,
            }
            modified = min(created, send) if send is not None else created
            self.sink.record(
                HS, "contacts", self.ids.hs(), self.ts(created), self.ts(modified), data
            )


def _record_indexes(state: SandboxState) -> list[tuple[str, str]]:
    """(name, DDL) of every secondary index on ``records``, as the database holds them.

    Why the database's own list and not ``sandbox.state``'s schema: a running sandbox also has
    the emulators' indexes (``sf_live`` and an expression index per external id and parent
    reference, created when the Salesforce emulator starts). Left in place during a load they
    cost a ``json_extract`` and a B-tree insert each per row and made ``large`` seed about 4x
    slower in a serving sandbox than in a bare state (1,012 s against 211 s).
    """
    rows = state.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
        " AND sql IS NOT NULL ORDER BY name"
    )
    return [(str(r[0]), str(r[1])) for r in rows]


def generate(state: SandboxState, profile: str = "tiny", seed: int = 42) -> dict[str, int]:
    """Reset the sandbox and generate one profile's data set; returns counts per ``crm/object``.

    Same (profile, seed, anchor day) gives identical content. Besides ``crm/object`` keys the
    result holds ``associations`` (HubSpot association pairs) and ``truth`` (true customers).
    The sandbox clock (``clock_offset``) is kept. The secondary indexes on ``records`` (the
    state's and the emulators') are dropped while loading and rebuilt at the end: building each
    once by sorting is much faster than millions of random B-tree inserts (large profile).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    # The sandbox clock is not data: a clock pinned or advanced by a test survives the reset,
    # so that the data set is anchored on the day the caller's sandbox says it is.
    clock = state.get_meta("clock_offset", "")
    state.reset()
    if clock:
        state.set_meta("clock_offset", clock)
    indexes = _record_indexes(state)
    for name, _ in indexes:
        state.execute(f"DROP INDEX IF EXISTS {name}")
    try:
        return Generator(state, PROFILES[profile], seed).run()
    finally:
        # The load may create some itself (the extra objects' reference lookups): keep those.
        present = {name for name, _ in _record_indexes(state)}
        for name, ddl in indexes:
            if name not in present:
                state.execute(ddl)
