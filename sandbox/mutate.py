"""Simulate the people working in both CRMs between two hub syncs.

Why: incremental sync, delete detection, change-driven writeback and the handover transitions can
only be tested against CRMs that change. ``mutate`` edits a share of the records of chosen objects
the way users do (deals move stage or change amount, tickets get closed, accounts get new usage
figures, marketing emails go out), creates a few records (new contacts, deals, tickets, email
replies, calls) and soft-deletes a few. Every change goes through ``SandboxState.update`` /
``insert`` / ``soft_delete`` and so bumps ``modified`` to the sandbox clock's ``now``: exactly what
an incremental reader keyed on ``SystemModstamp`` / ``hs_lastmodifieddate`` must pick up.

Changes keep each CRM's derived fields consistent, as the real systems do: a Salesforce stage move
updates ``Probability``/``IsClosed``/``IsWon``/``LastStageChangeDate`` and appends an
``OpportunityHistory`` row; a HubSpot stage move sets ``hs_v2_date_entered_<stage>``; closing a case
sets ``IsClosed``/``ClosedDate``; deleting an Account takes its contacts, opportunities, cases and
activities with it (Salesforce's cascade), while HubSpot archives only the record itself.

Deterministic for a given state and ``seed`` (timestamps aside: they are the sandbox's ``now``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from sandbox import names
from sandbox.catalog import HS_ASSOCIATION_TYPES, HS_DEAL_STAGES, MODULES, SF_OPPORTUNITY_STAGES
from sandbox.formats import hs_datetime, hs_new_id, sf_datetime, sf_new_id
from sandbox.generator import (
    CASE_NUMBER_COUNTER,
    CASE_NUMBER_START,
    hs_amount,
    hs_stage,
    hs_template,
    sf_billing_address,
    sf_stage,
    sf_template,
)
from sandbox.hubspot.common import record_history
from sandbox.salesforce.store import record_owner_change
from sandbox.state import HS, SF, SandboxState

#: ``sourceType`` of a HubSpot version a user made in the portal (what the mutator simulates).
_UI_SOURCE = "CRM_UI"

#: Objects users edit, create and delete, with the CRM that holds each (names are unique).
MUTABLE_OBJECTS: dict[str, str] = {
    "Account": SF,
    "Contact": SF,
    "Lead": SF,
    "Opportunity": SF,
    "Case": SF,
    "Task": SF,
    "EmailMessage": SF,
    "User": SF,
    "companies": HS,
    "contacts": HS,
    "deals": HS,
    "tickets": HS,
    "emails": HS,
    "owners": HS,
}
#: What ``mutate`` touches when no objects are named: the day-to-day work of sales and service.
DEFAULT_OBJECTS: tuple[str, ...] = (
    "Account",
    "Contact",
    "Lead",
    "Opportunity",
    "Case",
    "Task",
    "EmailMessage",
    "companies",
    "contacts",
    "deals",
    "tickets",
    "emails",
)
#: Objects that get new records (users and owners are provisioned by admins, not simulated).
CREATABLE = frozenset(DEFAULT_OBJECTS)
DELETABLE = frozenset(DEFAULT_OBJECTS)

_SF_OPEN = [s[0] for s in SF_OPPORTUNITY_STAGES if not s[2]]
_HS_OPEN = [s[0] for s in HS_DEAL_STAGES if not s[3]]
_HS_LIFECYCLE_ORDER = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)


def reassign_owner(state: SandboxState, crm: str, obj: str, rid: str, owner_id: str) -> None:
    """Give one record a new owner as a user would, at the sandbox clock's ``now``, with the
    history the CRM writes for it (``AccountHistory`` rows; the company owner's new version).
    Tests hand customers over with it; the sandbox control API exposes it as ``reassign``."""
    m = _Mutator(state, 0)
    with state.transaction():
        m.reassign(crm, obj, rid, owner_id)


def mutate(
    state: SandboxState,
    seed: int = 1,
    share: float = 0.01,
    objects: list[str] | None = None,
    creates: int | None = None,
    deletes: int | None = None,
) -> dict[str, int]:
    """Edit ``share`` of each object's records, create ``creates`` and soft-delete ``deletes``.

    ``objects`` are CRM object names (``"Opportunity"``, ``"deals"``, …; default
    ``DEFAULT_OBJECTS``). The share is taken of the records a user can edit (converted leads are
    read-only), at least one record per object when ``share > 0``. ``creates`` defaults to a
    quarter of the edits, ``deletes`` to one in twenty (at least one of each when anything was
    edited). Returns counts keyed ``"<crm>/<object>/<updated|created|deleted>"`` (including the
    ``OpportunityHistory`` rows of stage moves and Salesforce's cascaded deletes) plus the totals
    ``updated``, ``created`` and ``deleted`` of the operations asked for.
    """
    chosen = list(objects) if objects else list(DEFAULT_OBJECTS)
    unknown = [o for o in chosen if o not in MUTABLE_OBJECTS]
    if unknown:
        raise ValueError(f"cannot mutate {unknown}; known objects: {sorted(MUTABLE_OBJECTS)}")
    if not 0.0 <= float(share) <= 1.0:
        raise ValueError("share must be between 0 and 1")
    m = _Mutator(state, int(seed))
    with state.transaction():
        edits = sum(m.edit_share(obj, float(share)) for obj in chosen)
        n_create = creates if creates is not None else (max(1, edits // 4) if edits else 0)
        n_delete = deletes if deletes is not None else (max(1, edits // 20) if edits else 0)
        can_create = [o for o in chosen if o in CREATABLE]
        for _ in range(n_create if can_create else 0):
            m.create(m.rng.choice(can_create))
        can_delete = [o for o in chosen if o in DELETABLE]
        for _ in range(n_delete if can_delete else 0):
            m.delete(m.rng.choice(can_delete))
        m.cascade()
    return m.result()


class _Mutator:
    """One mutation run: a random stream, the sandbox's ``now`` and the change counters."""

    def __init__(self, state: SandboxState, seed: int) -> None:
        self.state = state
        self.rng = random.Random(f"mutate/{seed}")
        self.now = state.now()
        self.sf_now = sf_datetime(self.now)
        self.hs_now = hs_datetime(self.now)
        self.today = self.now.date()
        self.counts: dict[str, int] = {}
        self._owners: dict[str, list[str]] = {}
        self._pending: dict[str, list[str]] = {p: [] for p in self._CHILDREN}
        #: Live ids per object in id order, loaded once and kept current by the mutator's own
        #: inserts and deletes: a random pick is then O(1), not a COUNT and an OFFSET scan of
        #: the table (on ``large``, 30,000 picks over tables of up to 500,000 rows).
        self._live: dict[tuple[str, str], list[str]] = {}
        #: Salesforce Contact ids by AccountId (live, in id order), built on first use.
        self._contacts_by_account: dict[str, list[str]] | None = None
        #: Every HubSpot contact email (deleted contacts too), built on first use.
        self._hs_emails: set[str] | None = None
        #: the operations asked for (edits, creates, deletes), without cascades and history rows
        self.totals = {"updated": 0, "created": 0, "deleted": 0}

    def result(self) -> dict[str, int]:
        return dict(sorted(self.counts.items())) | self.totals

    def _count(self, crm: str, obj: str, action: str, n: int = 1) -> None:
        key = f"{crm}/{obj}/{action}"
        self.counts[key] = self.counts.get(key, 0) + n

    # ---- record access --------------------------------------------------------------------
    def _ids(self, crm: str, obj: str, where: str = "", params: tuple[Any, ...] = ()) -> list[str]:
        """Ids of the live records of an object (optionally filtered), in id order."""
        sql = "SELECT id FROM records WHERE crm=? AND object=? AND deleted=0"
        rows = self.state.execute(
            f"{sql} {('AND ' + where) if where else ''} ORDER BY id", (crm, obj, *params)
        )
        return [str(r[0]) for r in rows]

    def _live_ids(self, crm: str, obj: str) -> list[str]:
        """The live ids of an object in id order (SQLite's binary order = Python's for ASCII)."""
        key = (crm, obj)
        if key not in self._live:
            self._live[key] = self._ids(crm, obj)
        return self._live[key]

    def _random(self, crm: str, obj: str) -> dict[str, Any] | None:
        """A random live record of an object (``{"id", "data", …}``), or None if there is none.

        The same pick as ``ORDER BY id LIMIT 1 OFFSET randrange(count)`` over the live rows.
        """
        ids = self._live_ids(crm, obj)
        if not ids:
            return None
        return self.state.get(crm, obj, ids[self.rng.randrange(len(ids))])

    def _added(self, crm: str, obj: str, rid: str, values: dict[str, Any]) -> None:
        """Keep the id caches current after an insert."""
        ids = self._live.get((crm, obj))
        if ids is not None:
            bisect.insort(ids, rid)
        if crm == SF and obj == "Contact" and self._contacts_by_account is not None:
            account = values.get("AccountId")
            if account is not None:
                bisect.insort(self._contacts_by_account.setdefault(str(account), []), rid)

    def _removed(self, crm: str, obj: str, rid: str, data: dict[str, Any] | None = None) -> None:
        """Keep the id caches current after a soft delete (``data``: the record's fields)."""
        _discard(self._live.get((crm, obj)), rid)
        if crm == SF and obj == "Contact" and self._contacts_by_account is not None:
            if data is None:  # unknown account: rebuild on next use
                self._contacts_by_account = None
            else:
                _discard(self._contacts_by_account.get(str(data.get("AccountId"))), rid)

    def _account_contacts(self, account_id: str) -> list[str]:
        """Live Salesforce Contact ids of an Account in id order (one scan for the whole run)."""
        if self._contacts_by_account is None:
            by_account: dict[str, list[str]] = {}
            for row in self.state.execute(
                "SELECT id, json_extract(data, '$.AccountId') FROM records "
                "WHERE crm=? AND object='Contact' AND deleted=0 ORDER BY id",
                (SF,),
            ):
                if row[1] is not None:
                    by_account.setdefault(str(row[1]), []).append(str(row[0]))
            self._contacts_by_account = by_account
        return self._contacts_by_account.get(account_id, [])

    def _sf_insert(self, obj: str, prefix: str, values: dict[str, Any]) -> str:
        rid = sf_new_id(self.state, prefix)
        self.state.insert(SF, obj, rid, sf_template(obj) | values, created=self.now)
        self._added(SF, obj, rid, values)
        return rid

    def _hs_insert(self, obj: str, values: dict[str, Any]) -> str:
        rid = hs_new_id(self.state)
        self.state.insert(HS, obj, rid, hs_template(obj) | values, created=self.now)
        record_history(self.state, obj, rid, values, self.now, _UI_SOURCE)
        self._added(HS, obj, rid, values)
        return rid

    def _link(self, a: str, a_id: str, b: str, b_id: str, primary: bool = False) -> None:
        for x, x_id, y, y_id in ((a, a_id, b, b_id), (b, b_id, a, a_id)):
            plain, prim = HS_ASSOCIATION_TYPES[(x, y)]
            self.state.associate(x, x_id, y, y_id, plain)
            if primary and prim is not None:
                self.state.associate(x, x_id, y, y_id, prim, label="Primary")

    def _owner_ids(self, crm: str) -> list[str]:
        """Users who own customer records (not the admin), cached for the run."""
        if crm not in self._owners:
            where = "json_extract(data, '$.Department') IS NOT 'IT'" if crm == SF else ""
            self._owners[crm] = self._ids(crm, "User" if crm == SF else "owners", where)
        return self._owners[crm]

    # ---- edits ----------------------------------------------------------------------------
    _EDITABLE_WHERE: dict[str, str] = {
        "Lead": "json_extract(data, '$.IsConverted') = 0",
    }

    def edit_share(self, obj: str, share: float) -> int:
        """Edit ``share`` of the object's editable records; returns how many were edited."""
        crm = MUTABLE_OBJECTS[obj]
        where = self._EDITABLE_WHERE.get(obj, "")
        ids = self._ids(crm, obj, where)
        if not where:  # the same list the random picks use: read the table once
            self._live.setdefault((crm, obj), list(ids))
        if not ids or share <= 0:
            return 0
        k = min(len(ids), max(1, round(share * len(ids))))
        edit: Callable[[dict[str, Any]], dict[str, Any]] = getattr(self, f"_edit_{obj}")
        for rid in sorted(self.rng.sample(ids, k)):
            record = self.state.get(crm, obj, rid)
            assert record is not None
            for _ in range(8):  # a random edit can land on the current value; users change things
                changes = edit(record)
                if any(record["data"].get(key) != value for key, value in changes.items()):
                    break
            if crm == SF and "LastModifiedById" in record["data"]:
                owner = record["data"].get("OwnerId") or record["data"].get("LastModifiedById")
                changes.setdefault("LastModifiedById", owner)
            self._owner_history(crm, obj, record, changes)
            self.state.update(crm, obj, rid, changes, modified=self.now)
        self._count(crm, obj, "updated", k)
        self.totals["updated"] += k
        return k

    def _owner_history(
        self, crm: str, obj: str, record: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        """The history the CRM itself writes for an edit: an ``AccountHistory`` pair when an
        Account changes owner, a HubSpot version of a tracked property (the company owner)."""
        if crm == SF and obj == "Account" and "OwnerId" in changes:
            record_owner_change(
                self.state,
                record["id"],
                record["data"].get("OwnerId"),
                changes["OwnerId"],
                self.now,
                changes.get("LastModifiedById") or changes["OwnerId"],
            )
        elif crm == HS:
            record_history(
                self.state, obj, record["id"], changes, self.now, _UI_SOURCE, current=record["data"]
            )

    def reassign(self, crm: str, obj: str, rid: str, owner_id: str) -> None:
        """A user hands a record to another owner (a handover): the change and its history."""
        record = self.state.get(crm, obj, rid)
        if record is None:
            raise KeyError(f"{crm} {obj} {rid} does not exist")
        key = "OwnerId" if crm == SF else "hubspot_owner_id"
        changes: dict[str, Any] = {key: owner_id}
        if crm == SF:
            changes["LastModifiedById"] = owner_id
        self._owner_history(crm, obj, record, changes)
        self.state.update(crm, obj, rid, changes, modified=self.now)
        self._count(crm, obj, "updated")

    def _edit_Account(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        options: list[Callable[[], dict[str, Any]]] = [
            lambda: {"Phone": _phone(rng, d.get("Phone"))},
            lambda: {
                "NumberOfEmployees": max(
                    1, int((d.get("NumberOfEmployees") or 50) * rng.uniform(0.9, 1.25))
                )
            },
            lambda: _address_change(rng, d),
        ]
        if d.get("Usage_Score__c") is not None:
            options += [lambda: {"Usage_Score__c": _usage(rng, d["Usage_Score__c"])}] * 3
        unused = _unused_modules(d.get("Contracted_Modules__c"), d.get("Modules_In_Use__c"))
        if unused:

            def use_module() -> dict[str, Any]:
                in_use = [*_split(d.get("Modules_In_Use__c")), rng.choice(unused)]
                changes: dict[str, Any] = {"Modules_In_Use__c": _join(in_use)}
                if len(unused) == 1 and rng.random() < 0.6:
                    changes["Onboarding_Completed__c"] = True
                return changes

            options += [use_module] * 2
        if d.get("Website"):
            options.append(lambda: {"Website": _website_edit(rng, d["Website"])})
        return rng.choice(options)()

    def _edit_companies(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        options: list[Callable[[], dict[str, Any]]] = [
            lambda: {"phone": _phone(rng, d.get("phone"))},
            lambda: {
                "numberofemployees": str(
                    max(1, int(int(d.get("numberofemployees") or 50) * rng.uniform(0.9, 1.25)))
                )
            },
        ]
        if d.get("usage_score") is not None:
            options += [lambda: {"usage_score": str(int(_usage(rng, float(d["usage_score"]))))}] * 3
        unused = _unused_modules(d.get("contracted_modules"), d.get("modules_in_use"))
        if unused:
            options.append(
                lambda: {
                    "modules_in_use": _join([*_split(d.get("modules_in_use")), rng.choice(unused)])
                }
            )
        stage = d.get("lifecyclestage")
        if stage in _HS_LIFECYCLE_ORDER[:4]:
            nxt = _HS_LIFECYCLE_ORDER[_HS_LIFECYCLE_ORDER.index(stage) + 1]
            options.append(lambda: {"lifecyclestage": nxt})
        if not d.get("domain") and d.get("website"):
            options.append(lambda: {"domain": _host(d["website"])})
        return rng.choice(options)()

    def _edit_Contact(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        r = rng.random()
        if r < 0.45:
            return {"Title": _other(rng, names.TITLES, d.get("Title"))}
        if r < 0.85 or not d.get("Email"):
            return {"Phone": _phone(rng, d.get("Phone"))}
        local, _, domain = str(d["Email"]).partition("@")
        return {"Email": f"{local.split('.')[0]}@{domain}"}  # switched to a short address

    def _edit_contacts(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        r = rng.random()
        if r < 0.5:  # a marketing email went out to this person
            return {
                "hs_email_last_send_date": self.hs_now,
                "hs_email_last_email_name": rng.choice(names.MARKETING_EMAILS),
            }
        stage = d.get("lifecyclestage")
        if r < 0.7 and stage in _HS_LIFECYCLE_ORDER[:4]:
            return {"lifecyclestage": _HS_LIFECYCLE_ORDER[_HS_LIFECYCLE_ORDER.index(stage) + 1]}
        if r < 0.85:
            return {"jobtitle": _other(rng, names.TITLES, d.get("jobtitle"))}
        return {"phone": _phone(rng, d.get("phone"))}

    def _edit_Lead(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        status = d.get("Status")
        if status == "Open - Not Contacted":
            return {"Status": "Working - Contacted"}
        if status == "Working - Contacted" and rng.random() < 0.3:
            return {"Status": "Closed - Not Converted"}
        return {
            "LeadSource": _other(
                rng, ("Web", "Phone Inquiry", "Partner Referral", "Other"), d.get("LeadSource")
            )
        }

    def _edit_Opportunity(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        amount = float(d.get("Amount") or 10_000.0)
        if d.get("IsClosed"):
            if rng.random() < 0.6:
                return {"Amount": _money(amount * rng.choice((0.95, 0.97, 1.03, 1.05)))}
            term = float(d.get("Contract_Term_Months__c") or 12.0)
            return {"Contract_Term_Months__c": 24.0 if term != 24.0 else 36.0}
        r = rng.random()
        if r < 0.5:
            return self._move_sf_stage(rec)
        if r < 0.8:
            return {"Amount": _money(amount * rng.uniform(0.8, 1.25))}
        close = max(self.today, dt.date.fromisoformat(d.get("CloseDate") or self.today.isoformat()))
        return {"CloseDate": (close + dt.timedelta(days=rng.randint(14, 60))).isoformat()}

    def _move_sf_stage(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        pos = _SF_OPEN.index(d["StageName"]) if d.get("StageName") in _SF_OPEN else 0
        if pos >= len(_SF_OPEN) - 2 and rng.random() < 0.5:
            stage = "Closed Won" if rng.random() < 0.6 else "Closed Lost"
        elif pos < len(_SF_OPEN) - 1:
            stage = _SF_OPEN[min(len(_SF_OPEN) - 1, pos + rng.randint(1, 2))]
        else:
            stage = "Closed Won"
        name, prob, closed, won = sf_stage(stage)
        changes: dict[str, Any] = {
            "StageName": name,
            "Probability": float(prob),
            "IsClosed": closed,
            "IsWon": won,
            "LastStageChangeDate": self.sf_now,
        }
        if closed:
            changes["CloseDate"] = self.today.isoformat()
        self._sf_insert(
            "OpportunityHistory",
            "008",
            {
                "OpportunityId": rec["id"],
                "StageName": name,
                "Amount": d.get("Amount"),
                "CloseDate": changes.get("CloseDate", d.get("CloseDate")),
                "CreatedById": d.get("OwnerId"),
                "LastModifiedById": d.get("OwnerId"),
            },
        )
        self._count(SF, "OpportunityHistory", "created")
        return changes

    def _edit_deals(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        amount = float(d.get("amount") or 10_000.0)
        if d.get("hs_is_closed") == "true":
            return {"amount": hs_amount(_money(amount * rng.choice((0.95, 1.05))))}
        r = rng.random()
        if r < 0.5:
            pos = _HS_OPEN.index(d["dealstage"]) if d.get("dealstage") in _HS_OPEN else 0
            if pos >= len(_HS_OPEN) - 2 and rng.random() < 0.5:
                stage = "closedwon" if rng.random() < 0.6 else "closedlost"
            elif pos < len(_HS_OPEN) - 1:
                stage = _HS_OPEN[min(len(_HS_OPEN) - 1, pos + rng.randint(1, 2))]
            else:
                stage = "closedwon"
            _, _, _, closed, won = hs_stage(stage)
            changes = {
                "dealstage": stage,
                "hs_is_closed": "true" if closed else "false",
                "hs_is_closed_won": "true" if won else "false",
                f"hs_v2_date_entered_{stage}": self.hs_now,
            }
            if closed:
                changes["closedate"] = self.hs_now
            return changes
        if r < 0.8:
            return {"amount": hs_amount(_money(amount * rng.uniform(0.8, 1.25)))}
        push = self.today + dt.timedelta(days=rng.randint(14, 90))
        return {"closedate": f"{push.isoformat()}T00:00:00.000Z"}

    def _edit_Case(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        status = d.get("Status")
        if status == "New":
            return {"Status": "Escalated" if d.get("Priority") == "Critical" else "Working"}
        if status in ("Working", "Escalated"):
            changes: dict[str, Any] = {
                "Status": "Closed",
                "IsClosed": True,
                "ClosedDate": self.sf_now,
            }
            if rng.random() < 0.6:
                changes["CSAT__c"] = float(rng.choice((2, 3, 4, 4, 5, 5)))
            return changes
        if d.get("CSAT__c") is None:
            return {"CSAT__c": float(rng.choice((1, 3, 4, 5, 5)))}
        return {"Status": "Working", "IsClosed": False, "ClosedDate": None}  # reopened

    def _edit_tickets(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        stage = d.get("hs_pipeline_stage")
        if stage == "1":
            return {"hs_pipeline_stage": rng.choice(("2", "3"))}
        if stage in ("2", "3"):
            changes: dict[str, Any] = {"hs_pipeline_stage": "4", "closed_date": self.hs_now}
            if rng.random() < 0.6:
                changes["hs_customer_satisfaction"] = str(rng.choice((2, 3, 4, 4, 5, 5)))
            return changes
        if d.get("hs_customer_satisfaction") is None:
            return {"hs_customer_satisfaction": str(rng.choice((1, 3, 4, 5, 5)))}
        return {"hs_pipeline_stage": "3", "closed_date": None}  # reopened

    def _edit_Task(self, rec: dict[str, Any]) -> dict[str, Any]:
        d, rng = rec["data"], self.rng
        if d.get("Status") != "Completed":
            return {"Status": "Completed", "ActivityDate": self.today.isoformat()}
        if d.get("TaskSubtype") == "Call":
            return {"CallDurationInSeconds": int(rng.uniform(60, 3600))}
        return {"Subject": f"{d.get('Subject') or 'Task'} (updated)"}

    def _edit_EmailMessage(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Read, replied or forwarded (EmailMessage Status 1, 2, 4); outbound: forwarded/sent."""
        d = rec["data"]
        if d.get("Incoming"):
            nxt = {"0": "1", "1": "2", "2": "4"}.get(d.get("Status") or "0", "1")
            return {"Status": nxt}
        return {"Status": "4" if d.get("Status") != "4" else "3"}

    def _edit_emails(self, rec: dict[str, Any]) -> dict[str, Any]:
        owners = self._owner_ids(HS)
        return {"hubspot_owner_id": _other(self.rng, owners, rec["data"].get("hubspot_owner_id"))}

    def _edit_User(self, rec: dict[str, Any]) -> dict[str, Any]:
        titles = (
            "Account Executive",
            "Senior Account Executive",
            "Account Manager",
            "Key Account Manager",
        )
        return {"Title": _other(self.rng, titles, rec["data"].get("Title"))}

    def _edit_owners(self, rec: dict[str, Any]) -> dict[str, Any]:
        lang = self.rng.choice(("de", "en"))
        return {"lastName": _other(self.rng, names.LAST_NAMES[lang], rec["data"].get("lastName"))}

    # ---- creates --------------------------------------------------------------------------
    def create(self, obj: str) -> None:
        crm = MUTABLE_OBJECTS[obj]
        if getattr(self, f"_create_{obj}")():
            self._count(crm, obj, "created")
            self.totals["created"] += 1

    def _person(self, domain: str | None) -> tuple[str, str, str]:
        rng = self.rng
        lang = rng.choice(("de", "en", "nordic", "fr", "nl"))
        first, last = rng.choice(names.FIRST_NAMES[lang]), rng.choice(names.LAST_NAMES[lang])
        tag = rng.randint(100, 999_999)
        if domain and rng.random() < 0.85:
            email = f"{names.slug(first)}.{names.slug(last)}{tag % 100 if tag % 3 == 0 else ''}@{domain}"
        else:
            email = (
                f"{names.slug(first)}{names.slug(last)}{tag}@{rng.choice(names.FREE_MAIL_DOMAINS)}"
            )
        return first, last, email

    def _unique_hs_email(self, email: str) -> str:
        """``email``, or ``local2@domain``, ``local3@…``: unused by any contact (deleted too)."""
        if self._hs_emails is None:
            self._hs_emails = {
                str(r[0])
                for r in self.state.execute(
                    "SELECT json_extract(data, '$.email') FROM records "
                    "WHERE crm=? AND object='contacts'",
                    (HS,),
                )
                if r[0] is not None
            }
        local, _, domain = email.partition("@")
        candidate, n = email, 2
        while candidate in self._hs_emails:
            candidate, n = f"{local}{n}@{domain}", n + 1
        self._hs_emails.add(candidate)
        return candidate

    def _company_name(self) -> tuple[str, str, names.Country]:
        rng = self.rng
        country = rng.choices(names.COUNTRIES, weights=[c.weight for c in names.COUNTRIES])[0]
        core = rng.choice(names.company_cores())
        desc = rng.choice(names.DESCRIPTORS)
        base = f"{core} {desc}".strip()
        legal = rng.choices([x[0] for x in country.legal], weights=[x[1] for x in country.legal])[0]
        domain = f"{names.slug(base, '-')}-{rng.randint(2, 99)}.{country.tld}"
        return f"{base} {legal}", domain, country

    def _create_Account(self) -> bool:
        owners = self._owner_ids(SF)
        if not owners:
            return False
        name, domain, country = self._company_name()
        city = self.rng.choice(country.cities)
        owner = self.rng.choice(owners)
        data: dict[str, Any] = {
            "Name": name,
            "Website": f"https://www.{domain}/",
            "Type": "Prospect",
            "BillingCity": city.name,
            "BillingState": city.state,
            "BillingCountry": country.name,
            "BillingCountryCode": country.code,
            "Onboarding_Completed__c": False,
            "OwnerId": owner,
            "CreatedById": owner,
            "LastModifiedById": owner,
        }
        data["BillingAddress"] = sf_billing_address(data)
        self._sf_insert("Account", "001", data)
        return True

    def _create_companies(self) -> bool:
        name, domain, country = self._company_name()
        owners = self._owner_ids(HS)
        self._hs_insert(
            "companies",
            {
                "name": name,
                "domain": domain,
                "website": f"https://{domain}",
                "country": country.name,
                "city": self.rng.choice(country.cities).name,
                "lifecyclestage": "lead",
                "hs_num_open_deals": "0",
                "hubspot_owner_id": self.rng.choice(owners) if owners else None,
            },
        )
        return True

    def _create_Contact(self) -> bool:
        acct = self._random(SF, "Account")
        if acct is None:
            return False
        d = acct["data"]
        first, last, email = self._person(_host(d.get("Website")))
        self._sf_insert(
            "Contact",
            "003",
            {
                "AccountId": acct["id"],
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "Email": email,
                "Title": self.rng.choice(names.TITLES),
                "LeadSource": "Web",
                "OwnerId": d.get("OwnerId"),
                "CreatedById": d.get("OwnerId"),
                "LastModifiedById": d.get("OwnerId"),
            },
        )
        return True

    def _create_contacts(self) -> bool:
        company = self._random(HS, "companies")
        domain = (
            _host(company["data"].get("domain") or company["data"].get("website"))
            if company
            else None
        )
        first, last, email = self._person(domain)
        cid = self._hs_insert(
            "contacts",
            {
                "email": self._unique_hs_email(email.lower()),
                "firstname": first,
                "lastname": last,
                "jobtitle": self.rng.choice(names.TITLES),
                "lifecyclestage": "lead",
                "hs_lead_status": "NEW",
                "hubspot_owner_id": company["data"].get("hubspot_owner_id") if company else None,
            },
        )
        if company is not None:
            self._link("contacts", cid, "companies", company["id"], primary=True)
        return True

    def _create_Lead(self) -> bool:
        owners = self._owner_ids(SF)
        if not owners:
            return False
        name, domain, _ = self._company_name()
        first, last, email = self._person(domain)
        owner = self.rng.choice(owners)
        self._sf_insert(
            "Lead",
            "00Q",
            {
                "FirstName": first,
                "LastName": last,
                "Name": f"{first} {last}",
                "Company": name,
                "Email": email,
                "Website": domain if self.rng.random() < 0.5 else None,
                "Status": "Open - Not Contacted",
                "LeadSource": self.rng.choice(("Web", "Partner Referral", "Other")),
                "IsConverted": False,
                "OwnerId": owner,
                "CreatedById": owner,
                "LastModifiedById": owner,
            },
        )
        return True

    def _create_Opportunity(self) -> bool:
        acct = self._random(SF, "Account")
        if acct is None:
            return False
        owner = acct["data"].get("OwnerId")
        amount = _money(self.rng.uniform(20_000, 120_000))
        close = (self.today + dt.timedelta(days=self.rng.randint(45, 150))).isoformat()
        name, prob, closed, won = sf_stage(_SF_OPEN[0])
        oid = self._sf_insert(
            "Opportunity",
            "006",
            {
                "AccountId": acct["id"],
                "Name": f"{acct['data'].get('Name')} - {self.rng.choice(MODULES)} {self.today.year}",
                "StageName": name,
                "Amount": amount,
                "Probability": float(prob),
                "CloseDate": close,
                "IsClosed": closed,
                "IsWon": won,
                "Type": "New Business"
                if acct["data"].get("Type") == "Prospect"
                else "Existing Business - Upgrade",
                "LastStageChangeDate": self.sf_now,
                "Contract_Term_Months__c": float(self.rng.choice((12, 24, 36))),
                "OwnerId": owner,
                "CreatedById": owner,
                "LastModifiedById": owner,
            },
        )
        self._sf_insert(
            "OpportunityHistory",
            "008",
            {
                "OpportunityId": oid,
                "StageName": name,
                "Amount": amount,
                "CloseDate": close,
                "CreatedById": owner,
                "LastModifiedById": owner,
            },
        )
        self._count(SF, "OpportunityHistory", "created")
        return True

    def _create_deals(self) -> bool:
        company = self._random(HS, "companies")
        if company is None:
            return False
        stage = _HS_OPEN[0]
        close = self.today + dt.timedelta(days=self.rng.randint(30, 120))
        did = self._hs_insert(
            "deals",
            {
                "dealname": f"{company['data'].get('name')} - {self.rng.choice(MODULES)}",
                "amount": hs_amount(_money(self.rng.uniform(5_000, 40_000))),
                "pipeline": "default",
                "dealstage": stage,
                "closedate": f"{close.isoformat()}T00:00:00.000Z",
                "dealtype": "newbusiness",
                "hs_is_closed": "false",
                "hs_is_closed_won": "false",
                f"hs_v2_date_entered_{stage}": self.hs_now,
                "contract_term_months": str(self.rng.choice((12, 24))),
                "hubspot_owner_id": company["data"].get("hubspot_owner_id"),
            },
        )
        self._link("deals", did, "companies", company["id"], primary=True)
        for contact in self.state.associations("companies", company["id"], "contacts")[:1]:
            self._link("deals", did, "contacts", contact["to_id"])
        return True

    def _create_Case(self) -> bool:
        acct = self._random(SF, "Account")
        if acct is None:
            return False
        rng = self.rng
        ctype = rng.choice(("Defect", "User Error", "Question", "Feature Request"))
        priority = rng.choice(("Critical", "High", "Medium", "Low"))
        contacts = self._account_contacts(acct["id"])
        owner = acct["data"].get("OwnerId")
        self._sf_insert(
            "Case",
            "500",
            {
                "CaseNumber": self._case_number(),
                "AccountId": acct["id"],
                "ContactId": rng.choice(contacts) if contacts else None,
                "Subject": f"{rng.choice(MODULES)}: {ctype.lower()} reported",
                "Status": "New",
                "Priority": priority,
                "Type": ctype,
                "Origin": rng.choice(("Email", "Phone", "Web")),
                "IsClosed": False,
                "OwnerId": owner,
                "CreatedById": owner,
                "LastModifiedById": owner,
            },
        )
        return True

    def _case_number(self) -> str:
        """Next CaseNumber from the counter the Salesforce emulator uses as well."""
        key = f"counter:{CASE_NUMBER_COUNTER}"
        if self.state.get_meta(key, "") == "":
            rows = self.state.execute(
                "SELECT MAX(CAST(json_extract(data, '$.CaseNumber') AS INTEGER)) FROM records "
                "WHERE crm=? AND object='Case'",
                (SF,),
            )
            self.state.set_meta(key, str(int(rows[0][0] or CASE_NUMBER_START - 1)))
        return f"{self.state.next_counter(CASE_NUMBER_COUNTER):08d}"

    def _create_tickets(self) -> bool:
        company = self._random(HS, "companies")
        if company is None:
            return False
        rng = self.rng
        category = rng.choice(("PRODUCT_ISSUE", "USER_ERROR", "GENERAL_INQUIRY", "FEATURE_REQUEST"))
        subject = f"{rng.choice(MODULES)}: {category.replace('_', ' ').lower()}"
        tid = self._hs_insert(
            "tickets",
            {
                "subject": subject,
                "content": f"{subject} (reported today)",
                "hs_pipeline": "0",
                "hs_pipeline_stage": "1",
                "hs_ticket_priority": rng.choice(("URGENT", "HIGH", "MEDIUM", "LOW")),
                "hs_ticket_category": category,
                "source_type": rng.choice(("EMAIL", "PHONE", "FORM", "CHAT")),
                "hubspot_owner_id": company["data"].get("hubspot_owner_id"),
            },
        )
        self._link("tickets", tid, "companies", company["id"], primary=True)
        for contact in self.state.associations("companies", company["id"], "contacts")[:1]:
            self._link("tickets", tid, "contacts", contact["to_id"])
        return True

    def _create_EmailMessage(self) -> bool:
        """Continue a random thread: the other side answers now."""
        prev = self._random(SF, "EmailMessage")
        if prev is None:
            return False
        d = prev["data"]
        incoming = not d.get("Incoming")
        subject = str(d.get("Subject") or "")
        self._sf_insert(
            "EmailMessage",
            "02s",
            {
                "RelatedToId": d.get("RelatedToId"),
                "ThreadIdentifier": d.get("ThreadIdentifier"),
                "Subject": subject if subject.startswith("Re: ") else f"Re: {subject}",
                "FromAddress": d.get("ToAddress"),
                "ToAddress": d.get("FromAddress"),
                "Incoming": incoming,
                "MessageDate": self.sf_now,
                "Status": "0" if incoming else "3",
                "CreatedById": d.get("CreatedById"),
                "LastModifiedById": d.get("CreatedById"),
            },
        )
        return True

    def _create_emails(self) -> bool:
        prev = self._random(HS, "emails")
        if prev is None:
            return False
        d = prev["data"]
        incoming = d.get("hs_email_direction") != "INCOMING_EMAIL"
        subject = str(d.get("hs_email_subject") or "")
        eid = self._hs_insert(
            "emails",
            {
                "hs_timestamp": self.hs_now,
                "hs_email_direction": "INCOMING_EMAIL" if incoming else "EMAIL",
                "hs_email_subject": subject if subject.startswith("Re: ") else f"Re: {subject}",
                "hs_email_from_email": d.get("hs_email_to_email"),
                "hs_email_to_email": d.get("hs_email_from_email"),
                "hs_email_thread_id": d.get("hs_email_thread_id"),
                "hs_email_status": None if incoming else "SENT",
                "hubspot_owner_id": d.get("hubspot_owner_id"),
            },
        )
        for to_obj in ("contacts", "companies", "deals"):
            for a in self.state.associations("emails", prev["id"], to_obj):
                if a["type_id"] == HS_ASSOCIATION_TYPES[("emails", to_obj)][0]:
                    self._link("emails", eid, to_obj, a["to_id"])
        return True

    def _create_Task(self) -> bool:
        opp = self._random(SF, "Opportunity")
        if opp is None:
            return False
        owner = opp["data"].get("OwnerId")
        self._sf_insert(
            "Task",
            "00T",
            {
                "WhatId": opp["id"],
                "AccountId": opp["data"].get("AccountId"),
                "Subject": self.rng.choice(("Call: follow-up", "Call: pricing", "Call: check-in")),
                "TaskSubtype": "Call",
                "ActivityDate": self.today.isoformat(),
                "Status": "Completed",
                "CallDurationInSeconds": int(self.rng.uniform(120, 2700)),
                "OwnerId": owner,
                "CreatedById": owner,
                "LastModifiedById": owner,
            },
        )
        return True

    # ---- deletes --------------------------------------------------------------------------
    #: Salesforce's cascade: what goes to the recycle bin with an Account / an Opportunity.
    _CHILDREN: dict[str, tuple[tuple[str, str], ...]] = {
        "Account": (
            ("Contact", "AccountId"),
            ("Opportunity", "AccountId"),
            ("Case", "AccountId"),
            ("Task", "AccountId"),
            ("EmailMessage", "RelatedToId"),
            ("Event", "AccountId"),
        ),
        "Opportunity": (
            ("OpportunityHistory", "OpportunityId"),
            ("Task", "WhatId"),
            ("EmailMessage", "RelatedToId"),
            ("OpportunityLineItem", "OpportunityId"),
            ("OpportunityContactRole", "OpportunityId"),
        ),
        "Contact": (
            ("CampaignMember", "ContactId"),
            ("OpportunityContactRole", "ContactId"),
        ),
        "Lead": (("CampaignMember", "LeadId"),),
    }

    def delete(self, obj: str) -> None:
        crm = MUTABLE_OBJECTS[obj]
        rec = self._random(crm, obj)
        if rec is None or not self.state.soft_delete(crm, obj, rec["id"]):
            return
        self._removed(crm, obj, rec["id"], rec["data"])
        self._count(crm, obj, "deleted")
        self.totals["deleted"] += 1
        if crm == SF and obj in self._CHILDREN:
            self._pending[obj].append(rec["id"])

    def cascade(self) -> None:
        """Soft-delete the children of the deleted Accounts, then of all deleted Opportunities,
        Contacts and Leads (their line items, contact roles and campaign memberships).

        Batched (one scan per child object) because the references live inside the JSON data.
        """
        for parent in self._CHILDREN:
            parents = self._pending[parent]
            for child, ref in self._CHILDREN[parent]:
                for start in range(0, len(parents), 500):
                    chunk = parents[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    where = f"json_extract(data, '$.{ref}') IN ({marks})"
                    for cid in self._ids(SF, child, where, tuple(chunk)):
                        if self.state.soft_delete(SF, child, cid):
                            self._removed(SF, child, cid)
                            self._count(SF, child, "deleted")
                            if child in self._pending:
                                self._pending[child].append(cid)
            parents.clear()


# ---- small value helpers --------------------------------------------------------------------


def _discard(ids: list[str] | None, rid: str) -> None:
    """Remove ``rid`` from a sorted id list (if the list is there and holds it)."""
    if ids is not None:
        i = bisect.bisect_left(ids, rid)
        if i < len(ids) and ids[i] == rid:
            del ids[i]


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(";") if v]


def _join(values: list[str]) -> str | None:
    ordered = [m for m in MODULES if m in set(values)]
    return ";".join(ordered) or None


def _unused_modules(contracted: str | None, in_use: str | None) -> list[str]:
    used = set(_split(in_use))
    return [m for m in _split(contracted) if m not in used]


def _usage(rng: random.Random, current: float) -> float:
    return float(max(0, min(100, int(current) + rng.choice((-15, -10, -6, -3, 2, 4, 7, 10)))))


def _money(value: float) -> float:
    step = 500 if value >= 10_000 else 100
    return float(max(step, round(value / step) * step))


def _phone(rng: random.Random, current: str | None) -> str:
    prefix = current.split(" ")[0] if current and current.startswith("+") else "+49"
    return f"{prefix} {rng.randint(10, 99)} {rng.randint(100000, 9999999)}"


def _other(rng: random.Random, options: tuple[str, ...] | list[str], current: Any) -> Any:
    """A random option different from the current value (when there is one)."""
    choices = [o for o in options if o != current] or list(options)
    return rng.choice(choices)


def _host(website: str | None) -> str | None:
    """The bare host of a website as typed into a CRM (``https://www.acme.de/en`` -> ``acme.de``)."""
    if not website:
        return None
    host = website.strip().lower().split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.") or None


def _website_edit(rng: random.Random, website: str) -> str:
    host = _host(website) or website
    forms = [f"https://www.{host}/", f"https://{host}", f"www.{host}", host]
    return _other(rng, forms, website)


def _address_change(rng: random.Random, d: dict[str, Any]) -> dict[str, Any]:
    """The customer moved down the road: new house number, compound address kept in step."""
    street = str(d.get("BillingStreet") or "Hauptstraße 1")
    words = street.split(" ")
    number = str(rng.randint(1, 240))
    words = [number if w.isdigit() else w for w in words]
    if not any(w == number for w in words):
        words.append(number)
    changes: dict[str, Any] = {"BillingStreet": " ".join(words)}
    merged = d | changes
    changes["BillingAddress"] = sf_billing_address(merged)
    return changes
