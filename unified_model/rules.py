"""The hub's business rules as one validated, immutable configuration (``HubRules``).

Why a rules file at all: *when* a customer is handed from new sales to account management, which
ticket priorities count as critical, which deal stage is "the quote", what an hour of a seller
costs: every company answers these differently, and RevOps must be able to change the answers
without touching code. So the answers live in YAML (``config/rules.yaml`` documents every key and
its default) and are loaded here into frozen dataclasses that the pure functions of
``handover``, ``kpis`` and ``signals`` read.

Why so strict: a typo in a rules file (``user_eror_threshold``) would otherwise silently fall back
to a default and change every customer's handover status without anybody noticing. The loader
therefore rejects unknown keys, wrong types, out-of-range numbers and unknown rule kinds with a
``RulesError`` that names the key path (``handover.maturity.user_error_threshold``), says what is
wrong and how to fix it. Keys that are *absent* take the documented default, so a company file
only needs to state what it changes.

CRM-specific values (priorities, categories, stages) are kept per CRM (``salesforce`` /
``hubspot``) because the records keep each CRM's own vocabulary (see ``connectors.records``).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

RuleKind = Literal["calendar_after_contract", "calendar_after_go_live", "maturity"]
RULE_KINDS: tuple[str, ...] = typing.get_args(RuleKind)
Period = Literal["week", "month", "quarter"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = typing.get_args(Weekday)

#: Where the documented default rule file lives (the built-in defaults equal its content).
DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "config" / "rules.yaml"


class RulesError(ValueError):
    """A rules file is unusable. The message lists every problem with its key path and fix."""


def _num(lo: float | None = None, hi: float | None = None, **extra: Any) -> dict[str, Any]:
    """Field metadata: the allowed range of a number (inclusive), checked by the loader."""
    return {"min": lo, "max": hi, **extra}


# --------------------------------------------------------------------------------------------
# The rule dataclasses (defaults here == config/rules.yaml)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerCrm:
    """A list of CRM values per CRM, e.g. the priorities that count as critical.

    Matching is case-insensitive and ignores surrounding blanks, because picklist values are
    typed by admins and ``"High "`` in one org must not silently stop counting as serious.
    """

    salesforce: tuple[str, ...] = ()
    hubspot: tuple[str, ...] = ()

    def values_for(self, source: str | None) -> frozenset[str]:
        """The normalised values that apply to records of ``source`` (empty for unknown CRMs)."""
        return self._normalised.get(source or "", frozenset())

    @functools.cached_property
    def _normalised(self) -> dict[str, frozenset[str]]:
        """Each CRM's values folded once. Why: ``matches`` runs per deal and stage in the KPIs
        (a sixteenth of the step went to building these sets again); the rules are frozen."""
        return {
            "salesforce": frozenset(v.strip().casefold() for v in self.salesforce),
            "hubspot": frozenset(v.strip().casefold() for v in self.hubspot),
        }

    def matches(self, source: str | None, value: str | None) -> bool:
        """Whether a record's CRM value (priority, category, stage) is in this CRM's list."""
        return value is not None and value.strip().casefold() in self.values_for(source)


@dataclass(frozen=True)
class CalendarRule:
    """Hand over a fixed number of days after a date (contract signature or go-live)."""

    days: int = field(default=90, metadata=_num(0, 3650))


@dataclass(frozen=True)
class MaturityRule:
    """Parameters of the preferred rule: the customer has reached stable use in all areas."""

    critical_priorities: PerCrm = PerCrm(salesforce=("Critical",), hubspot=("URGENT",))
    serious_priorities: PerCrm = PerCrm(salesforce=("High",), hubspot=("HIGH",))
    user_error_categories: PerCrm = PerCrm(salesforce=("User Error",), hubspot=("USER_ERROR",))
    #: at most this many user-error tickets opened within the window still counts as "few"
    user_error_threshold: int = field(default=2, metadata=_num(0, 10_000))
    user_error_window_days: int = field(default=30, metadata=_num(1, 3650))
    onboarding_required: bool = True
    all_modules_in_use: bool = True


@dataclass(frozen=True)
class AtRiskTriggers:
    """What sends a handed-over customer back to ``at_risk``. ``null`` disables a usage trigger."""

    new_critical_ticket: bool = True
    usage_score_below: float | None = field(default=40.0, metadata=_num(0, 100))
    usage_drop_points: float | None = field(default=20.0, metadata=_num(0.000001, 100))


@dataclass(frozen=True)
class AccountManagers:
    """Who counts as an account manager: an owner in one of these departments or with one of
    these emails (both compared case-insensitively)."""

    departments: tuple[str, ...] = ("Account Management",)
    emails: tuple[str, ...] = ()


ZoneAnchor = Literal["go_live", "contract"]


@dataclass(frozen=True)
class RelayZone:
    """The relay zone: the baton changes hands inside it, neither before nor after.

    Days count from the ``anchor`` (the customer's go-live date, or the first signed contract) in
    the business time zone. ``earliest_days``: not ready before this day, whatever the criterion
    says. ``latest_days``: handed over by this day at the latest; a customer past it without an
    account manager is ``overdue``. ``stable_days``: the criterion must have held this many days
    in a row (the minimum stable period). ``null`` / 0 switches a bound off.
    """

    anchor: ZoneAnchor = "go_live"
    earliest_days: int | None = field(default=None, metadata=_num(0, 3650))
    latest_days: int | None = field(default=None, metadata=_num(1, 3650))
    stable_days: int = field(default=0, metadata=_num(0, 3650))

    @property
    def active(self) -> bool:
        return bool(self.earliest_days is not None or self.latest_days or self.stable_days)


@dataclass(frozen=True)
class SegmentMatch:
    """Which customers a segment covers: every condition given must hold (AND).

    All values come from fields the CRMs hold: the customer's employees (size), industry, the
    owner's department/team, and the contracted modules (product line: any one listed matches).
    """

    employees_min: int | None = field(default=None, metadata=_num(0, None))
    employees_max: int | None = field(default=None, metadata=_num(0, None))
    industries: tuple[str, ...] = ()
    owner_teams: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return (
            self.employees_min is None
            and self.employees_max is None
            and not (self.industries or self.owner_teams or self.product_lines)
        )


@dataclass(frozen=True)
class Segment:
    """Handover rules for one segment; keys left out take the top-level handover values.

    ``zone`` given here replaces the top-level zone as a whole (keys absent in it are off).
    """

    name: str = ""
    when: SegmentMatch = SegmentMatch()
    rule: RuleKind | None = None
    #: the days of the segment's calendar rule (contract or go-live, whichever ``rule`` is)
    days: int | None = field(default=None, metadata=_num(0, 3650))
    zone: RelayZone | None = None


@dataclass(frozen=True)
class HandoverRules:
    rule: RuleKind = "maturity"
    calendar_after_contract: CalendarRule = CalendarRule(days=90)
    calendar_after_go_live: CalendarRule = CalendarRule(days=60)
    maturity: MaturityRule = MaturityRule()
    zone: RelayZone = RelayZone()
    #: first matching segment wins; customers matching none use the rules above
    segments: tuple[Segment, ...] = ()
    at_risk: AtRiskTriggers = AtRiskTriggers()
    account_managers: AccountManagers = AccountManagers()


@dataclass(frozen=True)
class ActivityCosts:
    """Cost of one logged activity by kind; kinds not listed cost as a ``task``."""

    call: float = field(default=15.0, metadata=_num(0, 1_000_000))
    email: float = field(default=5.0, metadata=_num(0, 1_000_000))
    task: float = field(default=10.0, metadata=_num(0, 1_000_000))


@dataclass(frozen=True)
class CostRules:
    """Cost of sale = per-activity cost + logged activity duration × seller hourly rate."""

    per_activity: ActivityCosts = ActivityCosts()
    per_seller_hour: float = field(default=80.0, metadata=_num(0, 1_000_000))


@dataclass(frozen=True)
class BusinessHours:
    """Business hours for first-response time: local wall-clock hours in ``timezone``."""

    timezone: str = field(default="Europe/Berlin", metadata={"timezone": True})
    start_hour: int = field(default=8, metadata=_num(0, 23))
    end_hour: int = field(default=17, metadata=_num(1, 24))
    weekdays: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")

    # Cached: the KPIs ask for both once per first response and per day it spans (a million
    # emails on ``large``); the fields are frozen, so the answers never change.
    @functools.cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @functools.cached_property
    def weekday_numbers(self) -> frozenset[int]:
        """``datetime.weekday()`` numbers (Monday = 0) of the business days."""
        return frozenset(WEEKDAYS.index(d) for d in self.weekdays)


@dataclass(frozen=True)
class TwoWayContact:
    """A two-way contact is an inbound and an outbound email at most ``window_days`` apart, or
    a conversation: an activity of one of ``activity_kinds`` (a call or meeting held with the
    customer is two-way by nature)."""

    window_days: int = field(default=7, metadata=_num(0, 365))
    activity_kinds: tuple[str, ...] = ("call", "meeting")


@dataclass(frozen=True)
class HealthWeights:
    """Relative weights of the health score components (need not sum to 1; renormalised)."""

    tickets: float = field(default=0.35, metadata=_num(0, 1000))
    usage: float = field(default=0.30, metadata=_num(0, 1000))
    contact_recency: float = field(default=0.20, metadata=_num(0, 1000))
    satisfaction: float = field(default=0.15, metadata=_num(0, 1000))


@dataclass(frozen=True)
class HealthRules:
    weights: HealthWeights = HealthWeights()
    #: contact recency falls linearly from 1 (two-way contact today) to 0 at this many days
    contact_recency_horizon_days: int = field(default=90, metadata=_num(1, 3650))
    #: the ticket component starts at 1 and loses this much per open ticket (floored at 0)
    critical_ticket_penalty: float = field(default=0.5, metadata=_num(0, 1))
    serious_ticket_penalty: float = field(default=0.25, metadata=_num(0, 1))
    other_ticket_penalty: float = field(default=0.1, metadata=_num(0, 1))


@dataclass(frozen=True)
class KpiRules:
    period: Period = "month"
    lead_lifecycle_stages: tuple[str, ...] = ("lead", "marketingqualifiedlead")
    #: HubSpot lifecycle stages after lead: a contact there now was a lead when it was created
    later_lifecycle_stages: tuple[str, ...] = ("salesqualifiedlead", "opportunity", "customer")
    quote_stages: PerCrm = PerCrm(salesforce=("Proposal/Price Quote",), hubspot=("contractsent",))
    late_stages: PerCrm = PerCrm(
        salesforce=("Proposal/Price Quote", "Negotiation/Review"),
        hubspot=("contractsent", "decisionmakerboughtin"),
    )
    stale_deal_days: int = field(default=30, metadata=_num(1, 3650))
    marketing_touch_window_days: int = field(default=14, metadata=_num(0, 3650))
    #: coverage: an activity and a logged email within this many days count as "recent"
    recent_activity_days: int = field(default=30, metadata=_num(1, 3650))
    #: per-customer contacts per month are averaged over this trailing window
    contact_rate_window_days: int = field(default=90, metadata=_num(1, 3650))
    #: activity kinds that count as a customer contact (logged emails always count)
    contact_activity_kinds: tuple[str, ...] = ("call",)
    #: an inbound customer email without any later reply counts as unanswered after this long
    unanswered_after_hours: int = field(default=24, metadata=_num(0, 8760))
    cost: CostRules = CostRules()
    business_hours: BusinessHours = BusinessHours()
    two_way_contact: TwoWayContact = TwoWayContact()
    health: HealthRules = HealthRules()


@dataclass(frozen=True)
class HubRules:
    """All business rules of the hub. ``load_rules(None)`` gives the documented defaults."""

    handover: HandoverRules = HandoverRules()
    kpis: KpiRules = KpiRules()


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------


def load_rules(path: Path | None = None) -> HubRules:
    """Load and validate a rules file; ``None`` gives the built-in defaults.

    The built-in defaults are the dataclass defaults above, which equal ``config/rules.yaml``
    (a test keeps them identical), so the hub runs without any file at all.
    """
    if path is None:
        return HubRules()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"rules file {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RulesError(
            f"rules file {path}: not valid YAML{where}. Fix: check indentation and quoting."
        ) from None
    return parse_rules({} if data is None else data, origin=str(path))


def parse_rules(data: Any, origin: str = "rules") -> HubRules:
    """Validate an already-parsed rules mapping (the YAML document) into ``HubRules``."""
    errors: list[str] = []
    result = _build(HubRules, data, "", errors)
    if not errors:
        errors.extend(_cross_checks(result))
    if errors:
        listing = "\n".join(f"  - {e}" for e in errors)
        raise RulesError(f"{origin}: {len(errors)} problem(s) in the rules:\n{listing}")
    return typing.cast(HubRules, result)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _build(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    """Check ``value`` against type ``tp``; return the converted value or None after an error."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build_dataclass(tp, value, path, errors)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value, path, errors)
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        allowed = ", ".join(args)
        errors.append(f"{path}: unknown value {_describe(value)}. Fix: use one of: {allowed}.")
        return None
    if origin is tuple:
        if not isinstance(value, list | tuple):
            errors.append(f"{path}: expected a list, got {_describe(value)}. Fix: write [a, b].")
            return None
        items = [_build(args[0], v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        return tuple(items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        errors.append(
            f"{path}: expected true or false, got {_describe(value)}. Fix: write true or false."
        )
        return None
    if tp is str:
        if isinstance(value, str) and value.strip():
            return value
        errors.append(
            f"{path}: expected a non-empty text, got {_describe(value)}. Fix: quote a value."
        )
        return None
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        errors.append(f"{path}: expected a whole number, got {_describe(value)}. Fix: e.g. 30.")
        return None
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        errors.append(f"{path}: expected a number, got {_describe(value)}. Fix: e.g. 12.5.")
        return None
    raise TypeError(f"rules schema uses an unsupported type {tp!r} at {path}")  # a hub bug


def _build_dataclass(cls: type, value: Any, path: str, errors: list[str]) -> Any:
    where = path or "the top level"
    if not isinstance(value, Mapping):
        errors.append(
            f"{where}: expected a mapping of keys (key: value lines), got {_describe(value)}."
        )
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in value if k not in fields)
    for key in unknown:
        allowed = ", ".join(fields)
        errors.append(f"{_join(path, key)}: unknown key. Fix: remove it or use one of: {allowed}.")
    kwargs: dict[str, Any] = {}
    ok = True
    for name, f in fields.items():
        if name not in value:
            continue
        sub = _join(path, name)
        before = len(errors)
        built = _build(hints[name], value[name], sub, errors)
        if len(errors) == before:
            _check_meta(f, built, sub, errors)
        if len(errors) != before:
            ok = False
            continue
        kwargs[name] = built
    if unknown or not ok:
        return None
    return cls(**kwargs)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _check_meta(f: dataclasses.Field[Any], value: Any, path: str, errors: list[str]) -> None:
    """Range and special checks declared in a field's metadata."""
    if value is None:
        return
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        errors.append(f"{path}: {value!r} is out of range. Fix: use a value from {lo_s} to {hi_s}.")
    if f.metadata.get("timezone"):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(
                f"{path}: unknown time zone {value!r}. Fix: use an IANA name such as "
                "Europe/Berlin or UTC."
            )


def _cross_checks(rules: HubRules) -> list[str]:
    """Rules that involve more than one key."""
    errors: list[str] = []
    bh = rules.kpis.business_hours
    if bh.start_hour >= bh.end_hour:
        errors.append(
            f"kpis.business_hours.end_hour: {bh.end_hour} is not after start_hour "
            f"{bh.start_hour}. Fix: business hours must end after they start (e.g. 8 to 17)."
        )
    if not bh.weekdays or len(set(bh.weekdays)) != len(bh.weekdays):
        errors.append(
            "kpis.business_hours.weekdays: must list at least one day, each once. "
            "Fix: e.g. [mon, tue, wed, thu, fri]."
        )
    errors.extend(_segment_checks(rules))
    w = rules.kpis.health.weights
    if w.tickets + w.usage + w.contact_recency + w.satisfaction <= 0:
        errors.append(
            "kpis.health.weights: all weights are 0. Fix: give at least one component a "
            "positive weight."
        )
    return errors


def _segment_checks(rules: HubRules) -> list[str]:
    """Zones whose earliest day is after their latest, and nameless, duplicate or catch-nothing
    segments (a segment without conditions would silently take every customer)."""
    errors: list[str] = []
    zones = [("handover.zone", rules.handover.zone)]
    seen: set[str] = set()
    for i, seg in enumerate(rules.handover.segments):
        where = f"handover.segments[{i}]"
        if not seg.name.strip():
            errors.append(f"{where}.name: missing. Fix: give the segment a name, e.g. name: SMB.")
        elif seg.name.strip().casefold() in seen:
            errors.append(
                f"{where}.name: {seg.name!r} is used twice. Fix: give each segment its own name."
            )
        seen.add(seg.name.strip().casefold())
        if seg.when.empty:
            errors.append(
                f"{where}.when: no condition. Fix: set employees_min/employees_max, industries, "
                "owner_teams or product_lines."
            )
        lo, hi = seg.when.employees_min, seg.when.employees_max
        if lo is not None and hi is not None and lo > hi:
            errors.append(
                f"{where}.when.employees_max: {hi} is below employees_min {lo}. Fix: swap them."
            )
        if seg.zone is not None:
            zones.append((f"{where}.zone", seg.zone))
    for where, z in zones:
        if z.earliest_days is not None and z.latest_days and z.earliest_days > z.latest_days:
            errors.append(
                f"{where}.latest_days: {z.latest_days} is before earliest_days "
                f"{z.earliest_days}. Fix: the zone must end after it starts (e.g. 30 to 120)."
            )
    return errors
