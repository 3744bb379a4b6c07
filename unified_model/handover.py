"""Handover status: is a customer ready to move from new sales to account management, and why?

This is the question the hub exists for (see ``/work/shared/DOMAIN.md``). A status alone is not
enough: the account manager must be able to *act* on it, so every decision carries its reasons,
one ``Criterion`` per rule (passed or blocking, with a short plain-language detail), and a one-line
``summary`` such as ``"blocked: 2 open critical tickets; module Billing not in use"`` that the
writeback puts on the Account / Company record.

States and how a customer moves between them:

- ``new_sales``: no closed-won deal (never signed, or the only won deal was reopened or lost).
- ``onboarding``: signed, but the configured rule is not met yet.
- ``ready_for_handover``: the rule is met, but the owner is not an account manager yet.
- ``account_management``: the rule is met and the owner is an account manager; once there, a
  customer stays handed over while it is healthy (the readiness rule is not re-checked: a handed
  over customer whose onboarding flag is cleared does not go back to sales).
- ``at_risk``: a handed-over customer where an at-risk trigger fires (a new critical ticket since
  the handover, usage below a floor or dropped from its peak since the handover, or no won deal
  any more). It returns to ``account_management`` when no trigger fires.

Dates survive transitions: ``ready_since`` is set when the customer first becomes ready and kept
while it stays ready and after the handover; ``handed_over_on`` is set on entering
``account_management`` and kept through ``at_risk``. The usage peak since the handover is kept in
the ``usage_drop`` criterion's ``value`` so that the next evaluation can detect a drop without a
history table.

Everything here is a pure function of its inputs (no database, no HTTP, no clock: ``now`` is a
parameter), deterministic and independent of the order of the input lists. Tombstones
(``deleted=True``) are ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from unified_model.rules import HubRules
from unified_model.tables import (
    Activity,
    Contact,
    Customer,
    Deal,
    Email,
    HandoverState,
    HandoverTransition,
    Owner,
    Ticket,
)

Status = Literal["new_sales", "onboarding", "ready_for_handover", "account_management", "at_risk"]
STATUSES: tuple[Status, ...] = (
    "new_sales",
    "onboarding",
    "ready_for_handover",
    "account_management",
    "at_risk",
)
#: statuses of a customer that has been handed over to account management
HANDED_OVER: frozenset[str] = frozenset({"account_management", "at_risk"})


# --------------------------------------------------------------------------------------------
# Inputs and small shared helpers (also used by kpis and signals)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerFacts:
    """Everything the hub knows about one customer, from both CRMs, as of an evaluation.

    ``owner`` is the owner record of the customer's survived owner (it tells seller from account
    manager by department); ``previous`` is the last stored handover state, needed because the
    status has memory (handed over stays handed over, dates are kept).
    """

    customer: Customer
    deals: list[Deal] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    owner: Owner | None = None
    previous: HandoverState | None = None


class _Row(Protocol):
    deleted: bool
    source: str
    source_id: str


R = TypeVar("R", bound=_Row)


def live(rows: Iterable[R]) -> list[R]:
    """The rows that are not tombstones, in a canonical order (source, source_id).

    Sorting here is what makes every result independent of the order rows were read in.
    """
    return sorted((r for r in rows if not r.deleted), key=lambda r: (r.source, r.source_id))


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime; naive values are taken as UTC (the store's convention)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def require_aware(now: dt.datetime) -> dt.datetime:
    """``now`` must be aware: a naive clock is a caller bug that would shift every window."""
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime (UTC)")
    return now.astimezone(dt.UTC)


def stage_time(deal: Deal, stage: str | None) -> dt.datetime | None:
    """When ``deal`` first entered ``stage``, from ``stage_entered_at`` (ISO text or datetime)."""
    if stage is None:
        return None
    raw: Any = deal.stage_entered_at.get(stage)
    if raw is None:
        return None
    if isinstance(raw, dt.datetime):
        return as_utc(raw)
    try:
        return as_utc(dt.datetime.fromisoformat(str(raw)))
    except ValueError:
        return None


def contract_date(deal: Deal, rules: HubRules) -> dt.date | None:
    """The day a won deal was signed: its close date, else the local day it entered its (won)
    stage, else the local day of its last modification."""
    if deal.close_date is not None:
        return deal.close_date
    when = stage_time(deal, deal.stage) or as_utc(deal.modified_at)
    return None if when is None else when.astimezone(rules.kpis.business_hours.zone).date()


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One rule checked for a customer: ``detail`` is short enough to join into a summary."""

    key: str
    passed: bool
    detail: str
    #: a number the next evaluation needs (the usage peak since handover), else None
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape stored in ``HandoverState.reasons``."""
        out: dict[str, Any] = {"criterion": self.key, "passed": self.passed, "detail": self.detail}
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class HandoverDecision:
    customer_id: str
    status: Status
    #: the rule that decided (``calendar_after_contract`` when maturity fell back for lack of data)
    rule_kind: str
    reasons: list[Criterion]
    ready_since: dt.datetime | None
    handed_over_on: dt.datetime | None
    summary: str
    #: on the run a customer is handed over: the readiness criteria it met (for the transition)
    qualified_by: tuple[Criterion, ...] = ()

    @property
    def blockers(self) -> list[Criterion]:
        return [c for c in self.reasons if not c.passed]

    def reasons_json(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.reasons]

    def as_state(self, evaluated_at: dt.datetime) -> HandoverState:
        """The row to store, which becomes ``previous`` of the next evaluation."""
        return HandoverState(
            customer_id=self.customer_id,
            status=self.status,
            rule_kind=self.rule_kind,
            summary=self.summary,
            reasons=self.reasons_json(),
            ready_since=self.ready_since,
            handed_over_on=self.handed_over_on,
            evaluated_at=evaluated_at,
        )


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate_handover(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> HandoverDecision:
    """Decide the handover status of one customer, with its reasons and kept dates."""
    now = require_aware(now)
    customer = facts.customer
    prev = facts.previous
    prev_status = prev.status if prev is not None else None
    deals = live(facts.deals)
    won = sorted(
        (d for d in deals if d.is_won),
        key=lambda d: (contract_date(d, rules) or dt.date.max, d.source, d.source_id),
    )
    today = now.astimezone(rules.kpis.business_hours.zone).date()

    if not won:
        return _without_won_deal(facts, prev_status, rules, now, deals)

    signed = contract_date(won[0], rules)
    won_c = Criterion(
        "won_deal",
        True,
        f"{plural(len(won), 'closed-won deal')}, first signed {_day(signed)}",
    )
    if prev is not None and prev_status in HANDED_OVER:
        return _evaluate_handed_over(facts, prev, rules, now, won_c)

    rule_kind, criteria = _readiness(facts, rules, now, today, signed)
    reasons = [won_c, *criteria]
    fallback = any(c.key == "rule_fallback" for c in criteria)
    suffix = " (calendar rule: no contracted modules known)" if fallback else ""
    if not all(c.passed for c in reasons):
        if prev_status != "ready_for_handover" and _owner_criterion(facts, rules).passed:
            # Not mature, yet the CRM already shows an account manager as owner: the customer has
            # been handed over (too early, or it fell back before the hub first saw it) and is
            # judged as such: at risk when a trigger fires.
            # On first sight the handover date is unknown; the first signed contract is the best
            # estimate. A customer the hub saw in onboarding was handed over just now.
            if prev is None and signed is not None:
                zone = rules.kpis.business_hours.zone
                handed = dt.datetime.combine(signed, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
            else:
                handed = now
            assumed = HandoverState(
                customer_id=customer.id,
                status="account_management",
                rule_kind=rules.handover.rule,
                reasons=[],
                handed_over_on=handed,
                evaluated_at=now,
            )
            return _evaluate_handed_over(facts, assumed, rules, now, won_c)
        blockers = "; ".join(c.detail for c in reasons if not c.passed)
        return HandoverDecision(
            customer.id,
            "onboarding",
            rule_kind,
            reasons,
            None,
            None,
            f"blocked: {blockers}{suffix}",
        )

    ready_since = now
    if prev is not None and prev_status == "ready_for_handover" and prev.ready_since:
        ready_since = as_utc(prev.ready_since) or now
    owner_c = _owner_criterion(facts, rules)
    reasons.append(owner_c)
    since = _day(ready_since.astimezone(rules.kpis.business_hours.zone).date())
    if not owner_c.passed:
        summary = f"ready for handover since {since}: {owner_c.detail}{suffix}"
        return HandoverDecision(
            customer.id, "ready_for_handover", rule_kind, reasons, ready_since, None, summary
        )
    # Handed over now (or already when first seen): judged from here on as every later run
    # judges a handed-over customer, so the stored reasons are the same on this run and the next
    # (before, they were the readiness criteria once and the at-risk triggers from then on, and
    # changed for every such customer between the first and second sync with no source change).
    # Why it qualified stays in the transition's reasons.
    handed = HandoverState(
        customer_id=customer.id,
        status="account_management",
        rule_kind=rule_kind,
        reasons=[],
        ready_since=ready_since,
        handed_over_on=now,
        evaluated_at=now,
    )
    decision = _evaluate_handed_over(facts, handed, rules, now, won_c)
    return replace(decision, qualified_by=tuple(reasons))


def transition(
    previous: HandoverState | None, decision: HandoverDecision, now: dt.datetime
) -> HandoverTransition | None:
    """The history row for a status change, or None when the status did not change.

    The first evaluation of a customer is a transition from ``None``, so the history shows
    where each customer started.
    """
    now = require_aware(now)
    if previous is not None and previous.status == decision.status:
        return None
    return HandoverTransition(
        customer_id=decision.customer_id,
        from_status=previous.status if previous is not None else None,
        to_status=decision.status,
        at=now,
        reasons=[c.as_dict() for c in decision.qualified_by] or decision.reasons_json(),
    )


def _day(value: dt.date | None) -> str:
    return "on an unknown date" if value is None else value.isoformat()


def _without_won_deal(
    facts: CustomerFacts,
    prev_status: str | None,
    rules: HubRules,
    now: dt.datetime,
    deals: list[Deal],
) -> HandoverDecision:
    """No closed-won deal: new sales, unless the customer had been handed over already.

    A won deal that is reopened or lost after the handover does not silently move the customer
    back to sellers: the account manager keeps it, flagged at risk, and the reason says why.
    """
    cid = facts.customer.id
    prev = facts.previous
    if prev is not None and prev_status in HANDED_OVER:
        c = Criterion("won_deal", False, "no closed-won deal any more (reopened or lost)")
        handed = as_utc(prev.handed_over_on) or as_utc(prev.evaluated_at) or now
        return HandoverDecision(
            cid,
            "at_risk",
            prev.rule_kind,
            [c],
            as_utc(prev.ready_since),
            handed,
            f"at risk: {c.detail}",
        )
    if prev_status not in (None, "new_sales"):
        detail = "no closed-won deal any more (reopened or lost)"
    elif deals:
        detail = f"no closed-won deal yet ({plural(len(deals), 'deal')} in progress or lost)"
    else:
        detail = "no deal yet"
    c = Criterion("won_deal", False, detail)
    return HandoverDecision(
        cid, "new_sales", rules.handover.rule, [c], None, None, f"new sales: {detail}"
    )


def _readiness(
    facts: CustomerFacts,
    rules: HubRules,
    now: dt.datetime,
    today: dt.date,
    signed: dt.date | None,
) -> tuple[str, list[Criterion]]:
    """The configured readiness rule's criteria (maturity falls back to calendar without data)."""
    h = rules.handover
    kind: str = h.rule
    criteria: list[Criterion] = []
    if kind == "maturity" and not _norm_set(facts.customer.contracted_modules):
        days = h.calendar_after_contract.days
        criteria.append(
            Criterion(
                "rule_fallback",
                True,
                f"no contracted modules known: maturity cannot be judged, so the calendar rule "
                f"({days} days after contract) applies",
            )
        )
        kind = "calendar_after_contract"
    if kind == "calendar_after_contract":
        criteria.append(
            _days_since(
                "days_since_contract", "contract", signed, today, h.calendar_after_contract.days
            )
        )
    elif kind == "calendar_after_go_live":
        criteria.append(
            _days_since(
                "days_since_go_live",
                "go-live",
                facts.customer.go_live_date,
                today,
                h.calendar_after_go_live.days,
            )
        )
    else:
        criteria.extend(_maturity(facts, rules, now))
    return kind, criteria


def _days_since(key: str, what: str, start: dt.date | None, today: dt.date, need: int) -> Criterion:
    if start is None:
        return Criterion(key, False, f"{what} date unknown")
    days = (today - start).days
    if days >= need:
        return Criterion(
            key, True, f"{days} days since {what} on {start.isoformat()} ({need} required)"
        )
    return Criterion(key, False, f"{max(days, 0)} of {need} days since {what}")


def _maturity(facts: CustomerFacts, rules: HubRules, now: dt.datetime) -> list[Criterion]:
    """Stable use in all agreed areas: no open critical/serious tickets, few user errors,
    onboarding done, every contracted module in use."""
    m = rules.handover.maturity
    tickets = live(facts.tickets)
    open_ = [t for t in tickets if not t.is_closed]
    out: list[Criterion] = []
    for key, word, per_crm in (
        ("open_critical_tickets", "critical", m.critical_priorities),
        ("open_serious_tickets", "serious", m.serious_priorities),
    ):
        n = sum(1 for t in open_ if per_crm.matches(t.source, t.priority))
        text = f"no open {word} tickets" if n == 0 else plural(n, f"open {word} ticket")
        out.append(Criterion(key, n == 0, text))

    since = now - dt.timedelta(days=m.user_error_window_days)
    n_user = 0
    for t in tickets:
        opened = as_utc(t.opened_at)
        if opened is not None and since <= opened <= now:
            n_user += m.user_error_categories.matches(t.source, t.category)
    out.append(
        Criterion(
            "user_errors",
            n_user <= m.user_error_threshold,
            f"{plural(n_user, 'user-error ticket')} in {m.user_error_window_days} days "
            f"(max {m.user_error_threshold})",
        )
    )

    if m.onboarding_required:
        done = facts.customer.onboarding_completed
        if done is None:
            text = "onboarding status unknown"
        else:
            text = "onboarding completed" if done else "onboarding not completed"
        out.append(Criterion("onboarding", done is True, text))

    if m.all_modules_in_use:
        contracted = _norm_map(facts.customer.contracted_modules)
        in_use = _norm_set(facts.customer.modules_in_use)
        missing = sorted(label for key, label in contracted.items() if key not in in_use)
        if not missing:
            text = f"all {plural(len(contracted), 'contracted module')} in use"
        elif len(missing) == 1:
            text = f"module {missing[0]} not in use"
        else:
            text = f"modules {', '.join(missing)} not in use"
        out.append(Criterion("modules_in_use", not missing, text))
    return out


def _norm_map(values: Iterable[str]) -> dict[str, str]:
    """Normalised module name -> first spelling seen (sorted, so deterministic)."""
    out: dict[str, str] = {}
    for v in sorted(v.strip() for v in values if v and v.strip()):
        out.setdefault(v.casefold(), v)
    return out


def _norm_set(values: Iterable[str]) -> set[str]:
    return set(_norm_map(values))


def is_account_manager(
    owner: Owner | None, owner_email: str | None, rules: HubRules
) -> tuple[bool, str]:
    """Whether the customer's owner is an account manager, and a label for the reasons."""
    am = rules.handover.account_managers
    departments = {d.strip().casefold() for d in am.departments}
    emails = {e.strip().casefold() for e in am.emails}
    if owner is not None and owner.deleted:
        owner = None
    email = (owner.email if owner is not None and owner.email else owner_email) or None
    if owner is None and email is None:
        return False, ""
    name = " ".join(p for p in (owner.first_name, owner.last_name) if p) if owner else ""
    label = name or email or "owner"
    dept = (owner.department or "").strip() if owner is not None else ""
    if dept:
        label = f"{label} ({dept})"
    ok = bool(dept and dept.casefold() in departments) or bool(
        email and email.strip().casefold() in emails
    )
    return ok, label


def _owner_criterion(facts: CustomerFacts, rules: HubRules) -> Criterion:
    ok, label = is_account_manager(facts.owner, facts.customer.owner_email, rules)
    if not label:
        return Criterion("owner_is_account_manager", False, "no owner: assign an account manager")
    if ok:
        return Criterion("owner_is_account_manager", True, f"owner {label} is an account manager")
    return Criterion("owner_is_account_manager", False, f"owner {label} is not an account manager")


def _usage_peak_at_handover(customer: Customer, rules: HubRules) -> Criterion | None:
    """Remember the usage score at handover: the baseline of the usage-drop trigger."""
    if rules.handover.at_risk.usage_drop_points is None or customer.usage_score is None:
        return None
    u = float(customer.usage_score)
    return Criterion("usage_drop", True, f"usage {u:g} at handover", value=u)


def _previous_peak(prev: HandoverState) -> float | None:
    for r in prev.reasons:
        if r.get("criterion") == "usage_drop" and isinstance(r.get("value"), int | float):
            return float(r["value"])
    return None


def _evaluate_handed_over(
    facts: CustomerFacts,
    prev: HandoverState,
    rules: HubRules,
    now: dt.datetime,
    won_c: Criterion,
) -> HandoverDecision:
    """A handed-over customer stays with account management; at risk while a trigger fires."""
    trig = rules.handover.at_risk
    m = rules.handover.maturity
    handed = as_utc(prev.handed_over_on) or as_utc(prev.evaluated_at) or now
    reasons = [won_c]
    if trig.new_critical_ticket:
        new_crit = [
            t
            for t in live(facts.tickets)
            if not t.is_closed
            and m.critical_priorities.matches(t.source, t.priority)
            # an open critical ticket of unknown age cannot be shown to predate the handover
            and ((as_utc(t.opened_at) or now) > handed)
        ]
        n = len(new_crit)
        text = (
            "no new critical tickets since handover"
            if n == 0
            else f"{plural(n, 'new critical ticket')} since handover"
        )
        reasons.append(Criterion("new_critical_tickets", n == 0, text))
    usage = facts.customer.usage_score
    if trig.usage_score_below is not None and usage is not None:
        floor = trig.usage_score_below
        ok = usage >= floor
        text = f"usage {usage:g} {'at or above' if ok else 'below'} {floor:g}"
        reasons.append(Criterion("usage_score", ok, text))
    if trig.usage_drop_points is not None:
        peak = _previous_peak(prev)
        if usage is not None:
            drop = 0.0 if peak is None else peak - usage
            ok = drop < trig.usage_drop_points
            new_peak = float(usage) if peak is None else max(peak, float(usage))
            text = (
                f"usage {usage:g}, peak since handover {new_peak:g}"
                if ok
                else f"usage dropped {drop:g} points from {peak:g}"
            )
            reasons.append(Criterion("usage_drop", ok, text, value=new_peak))
        elif peak is not None:
            reasons.append(
                Criterion("usage_drop", True, f"usage unknown, peak since handover {peak:g}", peak)
            )
    ready_since = as_utc(prev.ready_since)
    blockers = [c.detail for c in reasons if not c.passed]
    if blockers:
        return HandoverDecision(
            facts.customer.id,
            "at_risk",
            prev.rule_kind,
            reasons,
            ready_since,
            handed,
            "at risk: " + "; ".join(blockers),
        )
    zone = rules.kpis.business_hours.zone
    summary = f"account management since {handed.astimezone(zone).date().isoformat()}"
    return HandoverDecision(
        facts.customer.id,
        "account_management",
        prev.rule_kind,
        reasons,
        ready_since,
        handed,
        summary,
    )
