"""Alerts: a failed sync, or a sync that ended with failing checks, reaches the operator's channel.

Why apprise: operators use Slack, Microsoft Teams, e-mail or their own webhook; apprise speaks all
of them through one URL (``slack://…``, ``workflows://…`` for Teams, ``mailtos://…``, ``json://…``
for a generic webhook), so the hub has no HTTP code of its own for it. The channel is the
``CRMHUB_ALERT_URL`` environment variable (several URLs separated by spaces or commas): it
usually holds a token, so it is read only when an alert is sent and never shown or logged.
"""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

ALERT_URL_ENV = "CRMHUB_ALERT_URL"
#: Optional base URL of the Dagster UI, so an alert links to the run.
UI_URL_ENV = "CRMHUB_UI_URL"
#: Run tag recording the alert on the run itself (sent / logged / failed): the Runs page shows
#: which failed runs the operator was told about.
ALERT_TAG = "crmhub/alert"
NO_CHANNEL = (
    f"crmhub alerts: no channel configured, alert only logged here (set {ALERT_URL_ENV}, e.g. "
    "slack://TokenA/TokenB/TokenC/#ops, workflows://... for Teams, mailtos://... or json://host/path)"
)


@dataclass
class Alert:
    """What went wrong in one run, in the operator's words."""

    title: str
    job_name: str
    run_id: str
    problems: list[str] = field(default_factory=list)

    def body(self) -> str:
        lines = [f"Job {self.job_name}, run {self.run_id}."]
        lines += [f"- {p}" for p in self.problems[:20]]
        if len(self.problems) > 20:
            lines.append(f"- … and {len(self.problems) - 20} more")
        ui = os.environ.get(UI_URL_ENV, "").rstrip("/")
        if ui:
            lines.append(f"{ui}/runs/{self.run_id}")
        return "\n".join(lines)


def _urls() -> list[str]:
    raw = os.environ.get(ALERT_URL_ENV, "")
    return [u for u in raw.replace(",", " ").split() if u]


def send(alert: Alert, log: object) -> bool:
    """Post the alert to every configured channel; log one line when none is configured.

    Returns whether every channel accepted it. A channel that refuses is logged (by its scheme
    only: the URL holds the token) and the sensor tick still succeeds, so one broken channel does
    not stop the others or hide the run in the UI.
    """
    import apprise

    urls = _urls()
    if not urls:
        log.warning(f"{NO_CHANNEL}: {alert.title} — {alert.body()}")  # type: ignore[attr-defined]
        return False
    notifier = apprise.Apprise()
    bad = [u.split("://", 1)[0] for u in urls if not notifier.add(u)]
    if bad:
        log.error(f"crmhub alerts: {ALERT_URL_ENV} has URLs apprise cannot use: {bad}")  # type: ignore[attr-defined]
    ok = bool(len(notifier)) and bool(notifier.notify(title=alert.title, body=alert.body()))
    if ok:
        log.info(f"crmhub alerts: sent '{alert.title}' to {len(notifier)} channel(s)")  # type: ignore[attr-defined]
    else:
        log.error(f"crmhub alerts: a channel did not accept '{alert.title}'")  # type: ignore[attr-defined]
    return ok and not bad


def _record(instance: dg.DagsterInstance, run_id: str, sent: bool) -> None:
    outcome = "sent" if sent else ("failed" if _urls() else "logged")
    instance.add_run_tags(run_id, {ALERT_TAG: outcome})


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per asset check that failed in a run: asset, check, severity, its description."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    lines = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        if evaluation.passed:  # type: ignore[union-attr]
            continue
        key = evaluation.asset_check_key  # type: ignore[union-attr]
        severity = evaluation.severity.value  # type: ignore[union-attr]
        lines.append(
            f"check {key.asset_key.to_user_string()}:{key.name} failed ({severity}): "
            f"{evaluation.description or ''}".rstrip(": ")  # type: ignore[union-attr]
        )
    return lines


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per failed step: the step and the first line of its error (the hub's message)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    lines = []
    for record in records:
        event = record.event_log_entry.dagster_event
        error = getattr(event.event_specific_data, "error", None)  # type: ignore[union-attr]
        message = _root_message(error) if error else "failed"
        lines.append(f"step {event.step_key} failed: {message}")  # type: ignore[union-attr]
    return lines


def _root_message(error: object) -> str:
    """The innermost cause's message: Dagster wraps the hub's own error in its own."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    text = " ".join(str(getattr(error, "message", error)).split())
    return re.sub(r"^[\w.]+\.(\w+): ", r"\1: ", text)[:300]


def _lines(items: Iterable[str]) -> list[str]:
    return [i for i in items if i]


@dg.run_failure_sensor(
    name="crmhub_run_failure_alert",
    description="Posts a failed hub run (which steps, why, failed checks) to CRMHUB_ALERT_URL.",
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    problems = _lines(failed_steps(context.instance, run.run_id))
    problems += failed_checks(context.instance, run.run_id)
    if not problems and context.failure_event.message:
        problems.append(" ".join(context.failure_event.message.split())[:300])
    sent = send(
        Alert(f"crmhub: {run.job_name} failed", run.job_name, run.run_id, problems), context.log
    )
    _record(context.instance, run.run_id, sent)


@dg.run_status_sensor(
    name="crmhub_failed_checks_alert",
    run_status=dg.DagsterRunStatus.SUCCESS,
    description="Posts a hub run that succeeded but ended with failing checks to CRMHUB_ALERT_URL.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def failed_checks_alert(context: dg.RunStatusSensorContext) -> dg.SkipReason | None:
    run = context.dagster_run
    problems = failed_checks(context.instance, run.run_id)
    if not problems:
        return dg.SkipReason(f"run {run.run_id}: every check passed")
    sent = send(
        Alert(
            f"crmhub: {run.job_name} finished with failing checks",
            run.job_name,
            run.run_id,
            problems,
        ),
        context.log,
    )
    _record(context.instance, run.run_id, sent)
    return None


alert_sensors = [run_failure_alert, failed_checks_alert]
