"""Progress of a running sync on the user's terminal: per CRM object, records, pages, rate, time.

Why here and how it gets the figures: a first sync of a large org runs for an hour; silence looks
like a hang. The graph must not import the CLI, so the figures travel by two standard channels
that exist anyway: the extract loop logs one record per stored page on the ``crmhub.progress``
Python logger (``unified_model.sync``), and Dagster hands every step event to the loggers of the
run, where the CLI installs its own (:func:`dagster_logger`) instead of Dagster's console logger
(whose stack traces flooded the terminal). On a terminal the figures drive a rich progress
display; elsewhere (CI, a log file) a plain line per object at most every ``interval`` seconds.
``--quiet`` shows nothing; ``-v`` adds Dagster's own console log with full detail.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

PROGRESS_LOGGER = "crmhub.progress"


@dataclass
class _Task:
    label: str
    started: float
    records: int = 0
    pages: int = 0
    total: int | None = None
    done: bool = False
    failed: bool = False
    last_line: float = 0.0
    rich_id: Any = None


@dataclass
class SyncProgress:
    """Collects step and page events and shows them (rich on a TTY, plain lines elsewhere)."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    enabled: bool = True
    interval: float = 10.0
    tty: bool | None = None
    tasks: dict[str, _Task] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tty is None:
            self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._rich: Any = None
        self._handler = _PageHandler(self)

    # ---- lifetime ------------------------------------------------------------------------------
    def __enter__(self) -> SyncProgress:
        if not self.enabled:
            return self
        logger = logging.getLogger(PROGRESS_LOGGER)
        logger.addHandler(self._handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._rich = Progress(
                TextColumn("{task.description:<24}"),
                BarColumn(bar_width=20),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._rich.start()
        return self

    def __exit__(self, *_: Any) -> None:
        if not self.enabled:
            return
        logger = logging.getLogger(PROGRESS_LOGGER)
        logger.removeHandler(self._handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    # ---- events ------------------------------------------------------------------------------
    def step_started(self, step: str) -> None:
        task = self._task(step)
        task.started = time.monotonic()
        task.last_line = task.started  # plain output: the first line after ``interval`` s
        self._show(task)

    def step_finished(self, step: str, *, failed: bool = False) -> None:
        task = self._task(step)
        task.done, task.failed = True, failed
        quick = time.monotonic() - task.started < 1.0 and not task.records
        self._show(task, force=failed or not quick)

    def step_records(self, step: str, records: int) -> None:
        """A step's record count from its materialization (multiprocess runs: no pages)."""
        self._task(step).records = records

    def page(self, crm: str, kind: str, records: int, pages: int, total: int | None) -> None:
        task = self._task(step_key(crm, kind))
        task.records, task.pages = records, pages
        if total is not None:
            task.total = total
        self._show(task)

    # ---- display -----------------------------------------------------------------------------
    def _task(self, step: str) -> _Task:
        task = self.tasks.get(step)
        if task is None:
            task = _Task(label=step.replace("__", " "), started=time.monotonic())
            self.tasks[step] = task
        return task

    def _show(self, task: _Task, *, force: bool = False) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - task.started, 1e-6)
        if self._rich is not None:
            self._show_rich(task, elapsed)
            return
        now = time.monotonic()
        if not force and (now - task.last_line < self.interval or task.done):
            return
        task.last_line = now
        print(f"  {line(task, elapsed)}", file=self.stream, flush=True)

    def _show_rich(self, task: _Task, elapsed: float) -> None:
        progress = self._rich
        detail = _figures(task, elapsed)
        if task.total and not task.done:
            detail = f"{detail} of ~{task.total:,}"
        status = " failed" if task.failed else ""
        if task.rich_id is None:
            task.rich_id = progress.add_task(task.label, total=task.total, detail=detail)
        total = task.total if task.total is not None else (task.records if task.done else None)
        progress.update(
            task.rich_id,
            completed=task.records,
            total=total,
            detail=detail + status,
        )
        if task.done and total is None:
            progress.update(task.rich_id, total=1, completed=1)


def step_key(crm: str, kind: str) -> str:
    """The Dagster step of an extract asset (``salesforce__accounts``), as assets/extract.py
    names its assets ([crm, plural of kind])."""
    plural = {"activity": "activities", "deal_stage": "deal_stages"}.get(kind, f"{kind}s")
    return f"{crm}__{plural}"


def _figures(task: _Task, elapsed: float) -> str:
    if not task.records and not task.pages:
        return ""
    rate = task.records / elapsed
    pages = f", {task.pages:,} pages" if task.pages else ""  # none from multiprocess steps
    return f"{task.records:,} records{pages}, {rate:,.0f}/s"


def line(task: _Task, elapsed: float) -> str:
    """A plain progress line (CI logs): object, state, figures, elapsed and ETA when known."""
    state = "failed" if task.failed else "done" if task.done else "running"
    parts = [f"{task.label}: {state}"]
    figures = _figures(task, elapsed)
    if figures:
        parts.append(figures)
    parts.append(f"{elapsed:,.0f} s")
    if task.total and not task.done and task.records:
        remaining = max(task.total - task.records, 0) / max(task.records / elapsed, 1e-6)
        parts.append(f"ETA {remaining:,.0f} s ({task.records:,}/{task.total:,})")
    return ", ".join(parts)


class _PageHandler(logging.Handler):
    def __init__(self, progress: SyncProgress) -> None:
        super().__init__(logging.DEBUG)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        data = getattr(record, "progress", None)
        if isinstance(data, dict):
            self.progress.page(
                str(data["crm"]),
                str(data["kind"]),
                int(data["records"]),
                int(data["pages"]),
                data.get("total"),
            )


class _StepHandler(logging.Handler):
    """Receives Dagster's structured log records and forwards step starts and ends."""

    def __init__(self, progress: SyncProgress) -> None:
        super().__init__(logging.DEBUG)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event") if isinstance(meta, dict) else None
        step = meta.get("step_key") if isinstance(meta, dict) else None
        if event is None or not step:
            return
        kind = getattr(event, "event_type_value", "")
        if kind == "STEP_START":
            self.progress.step_started(step)
        elif kind == "STEP_SUCCESS":
            self.progress.step_finished(step)
        elif kind == "STEP_FAILURE":
            self.progress.step_finished(step, failed=True)


def dagster_logger(progress: SyncProgress) -> Any:
    """A Dagster logger definition that feeds ``progress`` (installed by the CLI per run)."""
    import dagster as dg

    @dg.logger(description="crmhub CLI progress: step starts and ends")
    def crmhub_progress(_: Any) -> logging.Logger:
        logger = logging.getLogger("crmhub.progress.steps")
        logger.handlers = [_StepHandler(progress)]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        return logger

    return crmhub_progress


def run_loggers(progress: SyncProgress, *, verbose: bool = False) -> dict[str, Any]:
    """The Dagster loggers of a CLI run: progress always, Dagster's console log only with -v."""
    import dagster as dg

    loggers: dict[str, Any] = {"crmhub_progress": dagster_logger(progress)}
    if verbose:
        loggers["console"] = dg.colored_console_logger
    return loggers


def loggers_config(verbose: bool = False, *, steps_in_processes: bool = False) -> dict[str, Any]:
    """Run config naming the loggers to start (unnamed ones would include Dagster's console).

    ``steps_in_processes``: the multiprocess executor rebuilds the job in each step process,
    where the CLI's progress logger does not exist; Dagster's console logger stays (quiet
    unless ``-v``) and the progress is read from the run's event log (:func:`watch_run`).
    """
    if steps_in_processes:
        return {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}
    config: dict[str, Any] = {"crmhub_progress": {}}
    if verbose:
        config["console"] = {"config": {"log_level": "INFO"}}
    return config


@contextlib.contextmanager
def watch_run(
    progress: SyncProgress, instance: Any, run_id: str, *, every: float = 1.0
) -> Iterator[None]:
    """Feed ``progress`` from the run's event log while the block runs (multiprocess runs).

    Why the event log: the steps run in other processes, so neither the CLI's Dagster logger
    nor the page records of the extract loop reach this one; step starts and ends, and the
    records of each materialization, are in the run's event log, read here once a second.
    """
    import threading

    from dagster import DagsterEventType

    if not progress.enabled:
        yield
        return
    kinds = {
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
        DagsterEventType.ASSET_MATERIALIZATION,
    }
    stop = threading.Event()
    seen = 0

    def poll() -> None:
        nonlocal seen
        try:
            logs = instance.all_logs(run_id, of_type=kinds)
        except Exception:  # the storage is busy or not there yet: next time
            return
        for entry in logs[seen:]:
            event, step = entry.dagster_event, entry.step_key
            if event is None or not step:
                continue
            kind = event.event_type
            if kind == DagsterEventType.STEP_START:
                progress.step_started(step)
            elif kind == DagsterEventType.STEP_SUCCESS:
                progress.step_finished(step)
            elif kind == DagsterEventType.STEP_FAILURE:
                progress.step_finished(step, failed=True)
            elif "__" in step:  # an extract step's records (crm__objects)
                records = event.event_specific_data.materialization.metadata.get("records")
                if records is not None:
                    progress.step_records(step, int(records.value))
        seen = len(logs)

    def loop() -> None:
        while not stop.wait(every):
            poll()

    thread = threading.Thread(target=loop, name="crmhub-watch-run", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()  # the last events


@contextlib.contextmanager
def working(text: str, *, stream: TextIO | None = None) -> Iterator[None]:
    """A spinner with elapsed time on a terminal for work without page figures (seeding the
    sandbox, mutating it); elsewhere nothing (the caller prints its own result line)."""
    out = stream or sys.stderr
    if not getattr(out, "isatty", lambda: False)():
        yield
        return
    from rich.console import Console

    started = time.monotonic()
    console = Console(file=out)
    with console.status(text) as status:
        yield
        status.update(f"{text} ({time.monotonic() - started:.0f} s)")
