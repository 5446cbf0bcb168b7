"""Timings of the one run in a benchmark's Dagster instance, read from its event log."""

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster import DagsterEventType

STEP_KEY = "crm_sync"
_MILESTONES = (
    DagsterEventType.RUN_START,
    DagsterEventType.STEP_WORKER_STARTING,
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.RUN_SUCCESS,
)


@dataclass
class RunTimings:
    """Event times (Unix seconds) of the run, the step's own duration and pages per asset."""

    step_seconds: float
    event_times: dict[str, float] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)


def read_run_timings(dagster_home: Path) -> RunTimings:
    """Read the only run of the instance in `dagster_home`. Raises if it did not succeed."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        if len(runs) != 1:
            raise RuntimeError(f"Expected one run in {dagster_home}, found {len(runs)}.")
        entries = instance.all_logs(runs[0].run_id)

    step_seconds: float | None = None
    timings = RunTimings(step_seconds=0.0)
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type in _MILESTONES:
            timings.event_times.setdefault(event.event_type.name, entry.timestamp)
        if event.event_type == DagsterEventType.STEP_SUCCESS and event.step_key == STEP_KEY:
            step_seconds = event.step_success_data.duration_ms / 1000
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            pages = materialization.metadata.get("crm/pages")
            if isinstance(pages, dg.IntMetadataValue) and pages.value is not None:
                timings.pages[materialization.asset_key.to_user_string()] = pages.value
    if step_seconds is None:
        raise RuntimeError(f"The run in {dagster_home} has no STEP_SUCCESS event for step {STEP_KEY!r}.")
    timings.step_seconds = step_seconds
    return timings
