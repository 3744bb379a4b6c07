"""Seed data for the standard objects the hub does not read: activities, products, campaigns.

Why a second pass over the generated data instead of more code in ``Generator._customer``: the
records the hub reads (accounts, contacts, deals, emails, tickets…) must stay exactly as they
are for a given (profile, seed, anchor), because tests and benchmarks pin them. HubSpot ids come
from one portal-wide counter, so interleaving new records with the customer pass would shift
every later id. This pass runs after it, reads the customers back from the state (their
accounts/companies, contacts and deals), and draws from its own random stream per parent record
(``random.Random("extra/…")``), so adding or changing it never changes the existing records.

What it writes, per customer, in both CRMs:

- Salesforce: a role hierarchy (``UserRole``); a product catalogue (``Product2``) with the
  standard and a partner price book (``Pricebook2``, ``PricebookEntry``); opportunity products
  (``OpportunityLineItem``) whose totals add up to the opportunity amount; contact roles
  (``OpportunityContactRole``) with one primary per opportunity; meetings and calls with the
  customer's contacts (``Event``); marketing campaigns (``Campaign``) and their members
  (``CampaignMember``) drawn from contacts and leads.
- HubSpot: calls, meetings, notes and tasks with the company's contacts (associated to the
  contact, the company and sometimes a deal); products; line items on deals (amounts add up to
  the deal amount); quotes on deals that reached the contract stage.

Everything lies before the anchor (the sandbox's "today"), like the rest of the data set.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from typing import Any, Protocol

from sandbox.catalog import (
    MODULES,
    SF_CAMPAIGN_TYPES,
    SF_CONTACT_ROLES,
    hs_template,
    sf_template,
)
from sandbox.salesforce.store import ensure_index, index_name
from sandbox.state import HS, SF, SandboxState, parse_ts


class Generator(Protocol):
    """What this second pass reads of the customer pass (``sandbox.generator.Generator``).

    A protocol, not the class: the generator calls this module, so this module must not
    import the generator (an import circle).
    """

    seed: int
    anchor: dt.datetime
    state: SandboxState
    ids: Any  # sandbox.generator.IdBlock
    sink: Any  # sandbox.generator.Sink
    owners: list[Any]  # sandbox.generator.Owner

    def ts(self, days_ago: float) -> str: ...

    def day(self, days_ago: float) -> str: ...

    def sf_ts(self, days_ago: float) -> str: ...

    def hs_ts(self, days_ago: float) -> str: ...

    @staticmethod
    def work_time(rng: random.Random, day: int) -> float: ...


_CHUNK = 500

#: (module, list price per year) of the vendor's products.
_PRICES: dict[str, int] = {
    "Billing": 12_000,
    "Reporting": 6_000,
    "Payroll": 15_000,
    "Analytics": 9_000,
    "Integrations": 4_800,
}
_ROLES: tuple[tuple[str, str | None], ...] = (
    ("CEO", None),
    ("VP Sales", "CEO"),
    ("VP Customer Success", "CEO"),
    ("Account Executive", "VP Sales"),
    ("Account Manager", "VP Customer Success"),
)
_MEETING_SUBJECTS = (
    "Discovery meeting",
    "Product demo",
    "Onboarding kickoff",
    "Quarterly business review",
    "Renewal discussion",
)
_CALL_SUBJECTS = ("Check-in call", "Pricing call", "Support follow-up", "Renewal call")
_NOTE_BODIES = (
    "Customer asked for a reporting export to their data warehouse.",
    "Champion is moving to a new role; introduce the new admin.",
    "Budget for next year confirmed in principle.",
    "Complained about invoice layout; passed to billing team.",
    "Interested in the payroll module for the Nordic entities.",
)
_TASK_SUBJECTS = ("Send recap", "Prepare QBR deck", "Follow up on invoice", "Book training")


def _chunks(state: Any, crm: str, obj: str) -> Iterator[list[Any]]:
    """Live records of one object, in id order, a chunk at a time (keyset paging)."""
    last = ""
    while True:
        rows = state.execute(
            "SELECT id, created, data FROM records WHERE crm=? AND object=? AND deleted=0 "
            "AND id > ? ORDER BY id LIMIT ?",
            (crm, obj, last, _CHUNK),
        )
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def _by_parent(state: Any, obj: str, field: str, ids: list[str]) -> dict[str, list[Any]]:
    """Salesforce children of the given parents, through the reference's expression index.

    ``INDEXED BY`` and the partial index's own literal terms: left to choose, SQLite ranged
    over every record of the object by the primary key (crm, object) for each chunk of parents
    (3 s a chunk at ``4x``, an hour of seeding; 13 ms through the index). ``ensure_index``
    has made the index (``ExtraObjects.run``).
    """
    marks = ",".join("?" * len(ids))
    rows = state.execute(
        f"SELECT id, created, data, json_extract(data, '$.{field}') AS parent FROM records "
        f"INDEXED BY {index_name(obj, field)} "
        f"WHERE crm = '{SF}' AND object = '{obj}' AND deleted=0 "
        f"AND json_extract(data, '$.{field}') IN ({marks}) ORDER BY id",
        tuple(ids),
    )
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r["parent"], []).append(r)
    return out


def _linked(state: Any, from_obj: str, to_obj: str, ids: list[str]) -> dict[str, list[Any]]:
    """HubSpot records of ``to_obj`` associated with the given records (assoc primary key)."""
    marks = ",".join("?" * len(ids))
    rows = state.execute(
        "SELECT DISTINCT a.from_id AS parent, r.id, r.created, r.data FROM assoc a "
        "JOIN records r ON r.crm=? AND r.object=? AND r.id=a.to_id AND r.deleted=0 "
        f"WHERE a.from_object=? AND a.to_object=? AND a.from_id IN ({marks}) ORDER BY r.id",
        (HS, to_obj, from_obj, to_obj, *ids),
    )
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r["parent"], []).append(r)
    return out


def _days_ago(g: Generator, stored: str) -> float:
    """Days between a stored instant and the anchor."""
    return (g.anchor - parse_ts(stored)).total_seconds() / 86_400


def _split(total: float, parts: int, rng: random.Random) -> list[float]:
    """``total`` split in ``parts`` amounts (to the cent) that add up exactly."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    raw = [round(total * w / sum(weights), 2) for w in weights]
    raw[-1] = round(total - sum(raw[:-1]), 2)
    return raw


class ExtraObjects:
    """The second generator pass; ``run`` once after the customer pass has been flushed."""

    def __init__(self, g: Generator) -> None:
        self.g = g
        self.state = g.state
        self.sink = g.sink
        self.ids = g.ids
        self.seed = g.seed
        self.sf_products: dict[str, tuple[str, str, float]] = {}  # module -> (product, entry, $)
        self.hs_products: dict[str, tuple[str, float]] = {}  # module -> (product id, price)

    def rng(self, *key: object) -> random.Random:
        return random.Random("/".join(["extra", str(self.seed), *map(str, key)]))

    def run(self) -> None:
        for obj, name in (("Contact", "AccountId"), ("Opportunity", "AccountId")):
            ensure_index(self.state, obj, name, nocase=False)
        self._sf_catalog()
        self._sf_customers()
        self._sf_campaigns()
        self.sink.flush()
        self._hs_catalog()
        self._hs_customers()
        self.sink.flush()

    # ---- helpers ---------------------------------------------------------------------------
    def _sf(self, obj: str, prefix: str, created: float, data: dict[str, Any]) -> str:
        rid = self.ids.sf(prefix)
        user = data.get("OwnerId") or self._admin
        row = sf_template(obj) | {"CreatedById": user, "LastModifiedById": user} | data
        self.sink.record(SF, obj, rid, self.g.ts(created), self.g.ts(created), row)
        return rid

    def _hs(self, ot: str, created: float, props: dict[str, Any]) -> str:
        rid = self.ids.hs()
        data = hs_template(ot) | {k: (None if v is None else str(v)) for k, v in props.items()}
        self.sink.record(HS, ot, rid, self.g.ts(created), self.g.ts(created), data)
        return rid

    @property
    def _admin(self) -> str | None:
        """The first seller with a Salesforce user: creator of the org's catalogue records."""
        return next((o.sf_id for o in self.g.owners if o.sf_id), None)

    # ---- Salesforce ------------------------------------------------------------------------
    def _sf_catalog(self) -> None:
        roles: dict[str, str] = {}
        for name, parent in _ROLES:
            roles[name] = self._sf(
                "UserRole",
                "00E",
                1095.0,
                {
                    "Name": name,
                    "DeveloperName": name.replace(" ", ""),
                    "ParentRoleId": roles.get(parent) if parent else None,
                    "RollupDescription": name,
                    "OpportunityAccessForAccountOwner": "Edit" if "Sales" in name else "Read",
                },
            )
        standard = self._sf(
            "Pricebook2",
            "01s",
            1095.0,
            {"Name": "Standard Price Book", "IsActive": True, "IsStandard": True},
        )
        partner = self._sf(
            "Pricebook2",
            "01s",
            700.0,
            {
                "Name": "Partner Price Book",
                "IsActive": True,
                "IsStandard": False,
                "Description": "Resellers: 20 % off list",
            },
        )
        for module in MODULES:
            price = float(_PRICES[module])
            code = f"CRMH-{module[:3].upper()}"
            product = self._sf(
                "Product2",
                "01t",
                1095.0,
                {
                    "Name": f"{module} module",
                    "ProductCode": code,
                    "Description": f"Annual subscription to the {module} module",
                    "IsActive": True,
                    "Family": module,
                    "QuantityUnitOfMeasure": "Each",
                    "IsArchived": False,
                },
            )
            for book, factor in ((standard, 1.0), (partner, 0.8)):
                entry = self._sf(
                    "PricebookEntry",
                    "01u",
                    700.0,
                    {
                        "Pricebook2Id": book,
                        "Product2Id": product,
                        "UnitPrice": round(price * factor, 2),
                        "IsActive": True,
                        "UseStandardPrice": False,
                        "Name": f"{module} module",
                        "ProductCode": code,
                    },
                )
                if book == standard:
                    self.sf_products[module] = (product, entry, price)

    def _sf_customers(self) -> None:
        for accounts in _chunks(self.state, SF, "Account"):
            ids = [a["id"] for a in accounts]
            contacts = _by_parent(self.state, "Contact", "AccountId", ids)
            opps = _by_parent(self.state, "Opportunity", "AccountId", ids)
            for account in accounts:
                aid = account["id"]
                adata = json.loads(account["data"])
                people = contacts.get(aid, [])
                rng = self.rng("sf", aid)
                for opp in opps.get(aid, []):
                    self._sf_opportunity(rng, opp, people)
                if people:
                    self._sf_events(rng, aid, adata, account["created"], people)
            self.sink.maybe_flush()

    def _sf_opportunity(self, rng: random.Random, opp: Any, people: list[Any]) -> None:
        data = json.loads(opp["data"])
        created = max(0.5, _days_ago(self.g, opp["created"]))
        amount = data.get("Amount")
        if amount:
            modules = rng.sample(MODULES, rng.randint(1, 3))
            for module, share in zip(
                modules, _split(float(amount), len(modules), rng), strict=True
            ):
                product, entry, list_price = self.sf_products[module]
                self._sf(
                    "OpportunityLineItem",
                    "00k",
                    created,
                    {
                        "OpportunityId": opp["id"],
                        "PricebookEntryId": entry,
                        "Product2Id": product,
                        "Name": f"{data.get('Name')} {module} module",
                        "ProductCode": f"CRMH-{module[:3].upper()}",
                        "Quantity": 1.0,
                        "UnitPrice": share,
                        "ListPrice": list_price,
                        "Subtotal": share,
                        "TotalPrice": share,
                        "ServiceDate": data.get("CloseDate"),
                        "CreatedById": data.get("OwnerId"),
                        "LastModifiedById": data.get("OwnerId"),
                    },
                )
        for k, person in enumerate(people[: rng.randint(1, 2)]):
            self._sf(
                "OpportunityContactRole",
                "00K",
                created,
                {
                    "OpportunityId": opp["id"],
                    "ContactId": person["id"],
                    "Role": rng.choice(("Decision Maker", "Economic Buyer"))
                    if k == 0
                    else rng.choice(SF_CONTACT_ROLES),
                    "IsPrimary": k == 0,
                    "CreatedById": data.get("OwnerId"),
                    "LastModifiedById": data.get("OwnerId"),
                },
            )

    def _sf_events(
        self, rng: random.Random, aid: str, adata: dict[str, Any], created: str, people: list[Any]
    ) -> None:
        age = max(2.0, _days_ago(self.g, created))
        owner = adata.get("OwnerId")
        for _ in range(rng.randint(0, 3)):
            day = int(rng.uniform(1, min(age, 365)))
            start = self.g.work_time(rng, day + 1)
            minutes = rng.choice((30, 45, 60, 90))
            meeting = rng.random() < 0.7
            self._sf(
                "Event",
                "00U",
                start + rng.uniform(2, 10),
                {
                    "WhatId": aid,
                    "WhoId": rng.choice(people)["id"],
                    "AccountId": aid,
                    "Subject": rng.choice(_MEETING_SUBJECTS if meeting else _CALL_SUBJECTS),
                    "Type": "Meeting" if meeting else "Call",
                    "Location": rng.choice(("Video call", "Customer office", "Phone"))
                    if meeting
                    else "Phone",
                    "StartDateTime": self.g.sf_ts(start),
                    "EndDateTime": self.g.sf_ts(start - minutes / 1440),
                    "ActivityDateTime": self.g.sf_ts(start),
                    "ActivityDate": self.g.day(start),
                    "DurationInMinutes": minutes,
                    "IsAllDayEvent": False,
                    "ShowAs": "Busy",
                    "OwnerId": owner,
                },
            )

    def _sf_campaigns(self) -> None:
        rng = self.rng("sf", "campaigns")
        accounts = self.state.execute(
            "SELECT COUNT(*) FROM records WHERE crm=? AND object='Account'", (SF,)
        )[0][0]
        n = max(3, min(200, accounts // 10))
        campaigns = []
        for i in range(n):
            start = rng.uniform(30, 700)
            kind = rng.choice(("Webinar", "Email", "Conference", "Trade Show"))
            sent = rng.randint(200, 5000)
            campaigns.append(
                (
                    self._sf(
                        "Campaign",
                        "701",
                        start + 20,
                        {
                            "Name": f"{kind} {self.g.day(start)[:7]} #{i + 1}",
                            "Type": kind if kind in SF_CAMPAIGN_TYPES else "Other",
                            "Status": "Completed" if start > 30 else "In Progress",
                            "StartDate": self.g.day(start),
                            "EndDate": self.g.day(max(0.5, start - rng.uniform(1, 30))),
                            "IsActive": start < 60,
                            "BudgetedCost": float(rng.randint(2, 40) * 1000),
                            "ActualCost": float(rng.randint(2, 40) * 1000),
                            "ExpectedRevenue": float(rng.randint(5, 200) * 1000),
                            "ExpectedResponse": float(rng.randint(1, 10)),
                            "NumberSent": float(sent),
                            "NumberOfLeads": 0,
                            "NumberOfContacts": 0,
                            "NumberOfResponses": 0,
                            "Description": f"{kind} for customers and prospects",
                            "OwnerId": rng.choice(self.g.owners).sf_id or self._admin,
                        },
                    ),
                    start,
                    len(self.sink.rows) - 1,
                )
            )
        totals = {cid: [0, 0, 0] for cid, _, _ in campaigns}
        for obj, field, slot in (("Contact", "ContactId", 1), ("Lead", "LeadId", 0)):
            for rows in _chunks(self.state, SF, obj):
                for row in rows:
                    r = self.rng("sf", "member", row["id"])
                    if r.random() > 0.3:
                        continue
                    cid, start, _ = r.choice(campaigns)
                    responded = r.random() < 0.35
                    self._sf(
                        "CampaignMember",
                        "00v",
                        max(0.5, start - 1),
                        {
                            "CampaignId": cid,
                            field: row["id"],
                            "Status": "Responded" if responded else "Sent",
                            "HasResponded": responded,
                            "FirstRespondedDate": self.g.day(max(0.5, start - r.uniform(1, 20)))
                            if responded
                            else None,
                            "Type": obj,
                        },
                    )
                    totals[cid][slot] += 1
                    totals[cid][2] += responded
                self.sink.maybe_flush()
        # the roll-up counts on Campaign, as the org maintains them
        self.sink.flush()
        for cid, (leads, contacts, responses) in totals.items():
            row = self.state.get(SF, "Campaign", cid)
            if row is None:
                continue
            data = row["data"] | {
                "NumberOfLeads": leads,
                "NumberOfContacts": contacts,
                "NumberOfResponses": responses,
            }
            self.state.execute(
                "UPDATE records SET data=? WHERE crm=? AND object='Campaign' AND id=?",
                (json.dumps(data, separators=(",", ":"), ensure_ascii=False), SF, cid),
            )

    # ---- HubSpot ---------------------------------------------------------------------------
    def _hs_catalog(self) -> None:
        for module in MODULES:
            price = float(_PRICES[module])
            pid = self._hs(
                "products",
                1095.0,
                {
                    "name": f"{module} module",
                    "description": f"Annual subscription to the {module} module",
                    "price": f"{price:.2f}",
                    "hs_sku": f"CRMH-{module[:3].upper()}",
                    "hs_cost_of_goods_sold": f"{price * 0.15:.2f}",
                    "hs_recurring_billing_period": "P12M",
                    "recurringbillingfrequency": "annually",
                    "hs_product_type": "service",
                },
            )
            self.hs_products[module] = (pid, price)

    def _hs_customers(self) -> None:
        for companies in _chunks(self.state, HS, "companies"):
            ids = [c["id"] for c in companies]
            contacts = _linked(self.state, "companies", "contacts", ids)
            deals = _linked(self.state, "companies", "deals", ids)
            for company in companies:
                cid = company["id"]
                cdata = json.loads(company["data"])
                rng = self.rng("hs", cid)
                for deal in deals.get(cid, []):
                    self._hs_deal(rng, deal)
                people = contacts.get(cid, [])
                if people:
                    self._hs_engagements(
                        rng, cid, cdata, company["created"], people, deals.get(cid, [])
                    )
            self.sink.maybe_flush()

    def _hs_deal(self, rng: random.Random, deal: Any) -> None:
        data = json.loads(deal["data"])
        created = max(0.5, _days_ago(self.g, deal["created"]))
        amount = data.get("amount")
        if not amount:
            return
        modules = rng.sample(MODULES, rng.randint(1, 3))
        items = []
        for module, share in zip(modules, _split(float(amount), len(modules), rng), strict=True):
            pid, _ = self.hs_products[module]
            lid = self._hs(
                "line_items",
                created,
                {
                    "name": f"{module} module",
                    "hs_product_id": pid,
                    "quantity": "1",
                    "price": f"{share:.2f}",
                    "discount": None,
                    "amount": f"{share:.2f}",
                    "hs_sku": f"CRMH-{module[:3].upper()}",
                    "hs_recurring_billing_period": "P12M",
                    "recurringbillingfrequency": "annually",
                    "hubspot_owner_id": data.get("hubspot_owner_id"),
                },
            )
            self.sink.link("line_items", lid, "deals", deal["id"])
            items.append(lid)
        if data.get("dealstage") in ("contractsent", "closedwon"):
            qid = self._hs(
                "quotes",
                max(0.5, created - rng.uniform(1, 20)),
                {
                    "hs_title": f"Quote: {data.get('dealname')}",
                    "hs_expiration_date": self.g.day(max(0.5, created - 30)),
                    "hs_status": rng.choice(("APPROVED", "APPROVAL_NOT_NEEDED")),
                    "hs_quote_amount": f"{float(amount):.2f}",
                    "hs_currency": "EUR",
                    "hs_language": "en",
                    "hubspot_owner_id": data.get("hubspot_owner_id"),
                },
            )
            self.sink.link("quotes", qid, "deals", deal["id"])
            for lid in items:
                self.sink.link("quotes", qid, "line_items", lid)

    def _hs_engagements(
        self,
        rng: random.Random,
        cid: str,
        cdata: dict[str, Any],
        created: str,
        people: list[Any],
        deals: list[Any],
    ) -> None:
        g = self.g
        age = max(2.0, _days_ago(g, created))
        owner = cdata.get("hubspot_owner_id")

        def when() -> float:
            return g.work_time(rng, int(rng.uniform(1, min(age, 365))) + 1)

        def attach(ot: str, rid: str) -> None:
            self.sink.link(ot, rid, "contacts", rng.choice(people)["id"])
            self.sink.link(ot, rid, "companies", cid)
            if deals and rng.random() < 0.4:
                self.sink.link(ot, rid, "deals", rng.choice(deals)["id"])

        for _ in range(rng.randint(0, 3)):
            at = when()
            outbound = rng.random() < 0.7
            status = rng.choices(("COMPLETED", "NO_ANSWER", "BUSY"), (80, 15, 5))[0]
            minutes = rng.uniform(2, 45) if status == "COMPLETED" else 0
            rid = self._hs(
                "calls",
                at,
                {
                    "hs_timestamp": g.hs_ts(at),
                    "hs_call_title": rng.choice(_CALL_SUBJECTS),
                    "hs_call_body": "Talked through open questions." if minutes else None,
                    "hs_call_direction": "OUTBOUND" if outbound else "INBOUND",
                    "hs_call_duration": str(int(minutes * 60_000)),
                    "hs_call_status": status,
                    "hs_call_from_number": "+49 30 1234567" if outbound else cdata.get("phone"),
                    "hs_call_to_number": cdata.get("phone") if outbound else "+49 30 1234567",
                    "hubspot_owner_id": owner,
                },
            )
            attach("calls", rid)
        for _ in range(rng.randint(0, 2)):
            at = when()
            minutes = rng.choice((30, 45, 60))
            rid = self._hs(
                "meetings",
                at + 3,
                {
                    "hs_timestamp": g.hs_ts(at),
                    "hs_meeting_title": rng.choice(_MEETING_SUBJECTS),
                    "hs_meeting_body": "Agenda sent in advance.",
                    "hs_meeting_start_time": g.hs_ts(at),
                    "hs_meeting_end_time": g.hs_ts(at - minutes / 1440),
                    "hs_meeting_outcome": rng.choices(
                        ("COMPLETED", "NO_SHOW", "RESCHEDULED", "CANCELED"), (80, 8, 8, 4)
                    )[0],
                    "hs_meeting_location": rng.choice(("Video call", "Customer office")),
                    "hs_activity_type": "Customer meeting",
                    "hubspot_owner_id": owner,
                },
            )
            attach("meetings", rid)
        for _ in range(rng.randint(0, 2)):
            at = when()
            rid = self._hs(
                "notes",
                at,
                {
                    "hs_timestamp": g.hs_ts(at),
                    "hs_note_body": rng.choice(_NOTE_BODIES),
                    "hubspot_owner_id": owner,
                },
            )
            attach("notes", rid)
        for _ in range(rng.randint(0, 1)):
            due = when()
            done = rng.random() < 0.6
            rid = self._hs(
                "tasks",
                due + rng.uniform(1, 7),
                {
                    "hs_timestamp": g.hs_ts(due),
                    "hs_task_subject": rng.choice(_TASK_SUBJECTS),
                    "hs_task_body": None,
                    "hs_task_status": "COMPLETED" if done else "NOT_STARTED",
                    "hs_task_priority": rng.choice(("LOW", "MEDIUM", "HIGH")),
                    "hs_task_type": rng.choice(("CALL", "EMAIL", "TODO")),
                    "hs_task_completion_date": g.hs_ts(max(0.01, due - 0.5)) if done else None,
                    "hubspot_owner_id": owner,
                },
            )
            attach("tasks", rid)


def seed_extra_objects(g: Generator) -> None:
    """Run the second pass of ``g`` (after its customer pass was flushed and ids saved)."""
    ExtraObjects(g).run()
    g.ids.save()
