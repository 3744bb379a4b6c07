"""How the hub is operated: schedules, run limits, freshness thresholds, and the check values.

Why here, below the Dagster graph: the operator's settings (``config/operations.yaml``, with
environment overrides for the schedules) and the numbers the checks compare against them are plain
data and SQL over the hub store. ``assets/`` only wires them into Dagster schedules and checks, so
they are testable without Dagster and the CLI can print the same figures.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from unified_model import tables as t
from unified_model.settings import config_dir

StartMode = Literal["auto", "running", "stopped"]


class OperationsError(ValueError):
    """``operations.yaml`` or an override variable is unusable; the message names key and fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _valid_cron(value: str) -> str:
    parts = value.split()
    if len(parts) != 5:
        raise ValueError(f"'{value}' is not a 5-field cron expression like '*/15 * * * *'")
    return value


class Schedules(_Strict):
    timezone: str = "Europe/Berlin"
    sync_cron: str = "*/15 * * * *"
    reconcile_cron: str = "15 3 * * *"
    start: StartMode = "auto"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone like Europe/Berlin") from None
        return value

    _sync = field_validator("sync_cron")(classmethod(lambda cls, v: _valid_cron(v)))
    _reconcile = field_validator("reconcile_cron")(classmethod(lambda cls, v: _valid_cron(v)))


class Runs(_Strict):
    max_runtime_minutes: int = Field(60, ge=1, le=1440)


class Freshness(_Strict):
    last_read_max_minutes: int = Field(60, ge=1, le=100_000)
    newest_record_max_hours: float = Field(168, ge=1, le=100_000)
    newest_record_max_hours_per_kind: dict[str, float | None] = Field(
        default_factory=lambda: {"owner": None, "deal_stage": 720.0}
    )

    def newest_record_limit(self, kind: str) -> dt.timedelta | None:
        """The allowed age of the newest record of one object kind (None: not checked)."""
        hours = self.newest_record_max_hours_per_kind.get(kind, self.newest_record_max_hours)
        return None if hours is None else dt.timedelta(hours=hours)


class Owners(_Strict):
    extract: tuple[str, ...] = ("team:crm-integration",)
    unify: tuple[str, ...] = ("team:revops",)
    insights: tuple[str, ...] = ("team:revops",)
    writeback: tuple[str, ...] = ("team:crm-integration",)


class Operations(_Strict):
    """The whole ``operations.yaml``; every key has the documented default."""

    schedules: Schedules = Schedules()
    runs: Runs = Runs()
    freshness: Freshness = Freshness()
    owners: Owners = Owners()

    def schedules_running(self, *, on_sandbox: bool) -> bool:
        """Whether the schedules start running: ``auto`` runs them only against the sandbox."""
        if self.schedules.start == "auto":
            return on_sandbox
        return self.schedules.start == "running"


#: Variables that override ``schedules.*`` (for containers, where files are baked in).
ENV_OVERRIDES = {
    "CRMHUB_SYNC_CRON": "sync_cron",
    "CRMHUB_RECONCILE_CRON": "reconcile_cron",
    "CRMHUB_SCHEDULE_TIMEZONE": "timezone",
    "CRMHUB_SCHEDULES": "start",
}


def load_operations(path: Path | None = None) -> Operations:
    """Load ``operations.yaml`` (default: in ``CRMHUB_CONFIG_DIR``), then the env overrides.

    A missing file gives the defaults; anything wrong raises ``OperationsError`` naming the key
    (``schedules.sync_cron``) or the variable and what a valid value looks like.
    """
    path = path or config_dir() / "operations.yaml"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            raise OperationsError(
                f"{path}: not valid YAML; check indentation and quoting"
            ) from None
        if not isinstance(data, dict):
            raise OperationsError(f"{path}: expected a mapping of sections (schedules, runs, ...)")
    schedules = dict(data.get("schedules") or {})
    origin = {key: f"{path}: schedules.{key}" for key in Schedules.model_fields}
    for var, key in ENV_OVERRIDES.items():
        if os.environ.get(var):
            schedules[key] = os.environ[var]
            origin[key] = var
    data = {**data, "schedules": schedules}
    try:
        return Operations.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            where = (
                origin.get(loc[1], f"{path}: {'.'.join(loc)}")
                if loc[:1] == ["schedules"] and len(loc) > 1
                else f"{path}: {'.'.join(loc)}"
            )
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key; see config/operations.yaml for the keys"
            problems.append(f"{where}: {message}")
        raise OperationsError("; ".join(problems)) from None


# --------------------------------------------------------------------------------------------
# check values over the store
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One check's outcome: passed or not, a sentence for the operator, numbers for the UI."""

    passed: bool
    detail: str
    values: dict[str, float | int | str]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def newest_record_at(store: Any, crm: str, kind: str) -> dt.datetime | None:
    """When the newest record of one CRM object kind that the hub holds was last modified."""
    table = t.SOURCE_TABLES[kind].__table__  # type: ignore[attr-defined]
    stmt = sa.select(sa.func.max(table.c.modified_at)).where(table.c.source == crm)
    with store.engine.connect() as conn:
        return _aware(conn.execute(stmt).scalar())


def newest_record_freshness(
    store: Any, crm: str, kind: str, limit: dt.timedelta | None, now: dt.datetime
) -> Verdict:
    """Is the newest record read of this kind recent enough? (Reads work but bring nothing?)"""
    newest = newest_record_at(store, crm, kind)
    if newest is None:
        return Verdict(True, f"no {kind} records in {crm} yet", {})
    age_hours = round((now - newest).total_seconds() / 3600, 2)
    values: dict[str, float | int | str] = {"newest_record_age_hours": age_hours}
    if limit is None:
        return Verdict(True, f"newest {kind} is {age_hours} h old (no limit set)", values)
    limit_hours = round(limit.total_seconds() / 3600, 2)
    values["limit_hours"] = limit_hours
    if age_hours <= limit_hours:
        return Verdict(True, f"newest {kind} is {age_hours} h old (limit {limit_hours} h)", values)
    return Verdict(
        False,
        f"newest {kind} read from {crm} is {age_hours} h old, above {limit_hours} h: check that "
        "the integration user still sees these records (permissions, deactivated user, field-"
        f"level security), or raise freshness.newest_record_max_hours_per_kind.{kind}",
        values,
    )


def quota_verdict(crm: str, kind: str, stopped: str | None, notes: Sequence[str]) -> Verdict:
    """Did the CRM's API budget end this read early? (The checkpoint is kept; it resumes.)"""
    if not stopped:
        return Verdict(True, f"{crm} {kind} read to the end", {"stopped_early": 0})
    return Verdict(
        False,
        f"{crm} {kind}: stopped early, the API budget is spent ({'; '.join(notes) or stopped}); "
        "the next run resumes from the checkpoint. If this repeats, sync less often or lower the "
        "hub's budget share so the CRM's other integrations keep theirs",
        {"stopped_early": 1},
    )


@dataclass(frozen=True)
class FailedWrite:
    customer: str
    source_id: str
    fields: str
    outcome: str
    reason: str


def write_problems(store: Any, run_id: str, crm: str, limit: int = 50) -> list[FailedWrite]:
    """The records of one writeback run that failed or were refused, with customer names."""
    audit = t.WriteAudit.__table__  # type: ignore[attr-defined]
    cust = t.Customer.__table__  # type: ignore[attr-defined]
    stmt = (
        sa.select(
            audit.c.source_id,
            cust.c.name,
            audit.c.customer_id,
            audit.c.outcome,
            audit.c.reason,
            sa.func.min(audit.c.field_key).label("first_field"),
            sa.func.count().label("fields"),
        )
        .select_from(audit.outerjoin(cust, cust.c.id == audit.c.customer_id))
        .where(
            audit.c.run_id == run_id,
            audit.c.source == crm,
            audit.c.outcome.in_(("failed", "skipped")),
        )
        .group_by(
            audit.c.source_id, cust.c.name, audit.c.customer_id, audit.c.outcome, audit.c.reason
        )
        .order_by(audit.c.outcome, cust.c.name, audit.c.source_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        FailedWrite(
            customer=row.name or row.customer_id or "-",
            source_id=row.source_id,
            fields=f"{row.first_field}" + (f" +{row.fields - 1}" if row.fields > 1 else ""),
            outcome="refused (record gone)" if row.outcome == "skipped" else "failed",
            reason=row.reason or "-",
        )
        for row in rows
    ]


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "/").split())[:160]


def write_problems_markdown(problems: Sequence[FailedWrite]) -> str:
    """The failed-record table of a writeback, as markdown for the Dagster UI."""
    if not problems:
        return "Every record was written."
    lines = ["| customer | record | fields | outcome | reason |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {_cell(p.customer)} | {p.source_id} | {p.fields} | {p.outcome} | {_cell(p.reason)} |"
        for p in problems
    ]
    return "\n".join(lines)


def writeback_verdicts(
    crm: str, *, failed: int, skipped: int, provisioning_notes: Sequence[str]
) -> dict[str, Verdict]:
    """The three writeback checks: failed writes, refused records, missing hub fields."""
    return {
        "no_failed_writes": Verdict(
            failed == 0,
            f"{crm} accepted every write"
            if failed == 0
            else f"{failed} records were not written to {crm} (see the failed-record table); "
            "the next run sends them again. A validation rule or a locked record is the usual "
            "cause: fix it in the CRM, or exclude the field",
            {"records_failed": failed},
        ),
        "no_refused_records": Verdict(
            skipped == 0,
            "no write hit a deleted record"
            if skipped == 0
            else f"{skipped} records were deleted in {crm} meanwhile; the hub marked them deleted "
            "and will not write them again (nothing to do unless the deletes were a mistake)",
            {"records_refused": skipped},
        ),
        "hub_fields_provisioned": Verdict(
            not provisioning_notes,
            f"the hub's fields exist in {crm}"
            if not provisioning_notes
            else "; ".join(provisioning_notes)
            + f". Fix: give the integration user field-create rights in {crm}, or create the "
            "fields by hand, then run `crmhub fields ensure`",
            {"fields_missing": len(provisioning_notes)},
        ),
    }
