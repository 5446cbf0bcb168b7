"""Timings of the one run in a benchmark's Dagster instance, read from its event log."""

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster import DagsterEventType

SYNC_STEP_KEY = "crm_sync"
_RUN_MILESTONES = (DagsterEventType.RUN_START, DagsterEventType.RUN_SUCCESS)


@dataclass
class RunTimings:
    """Event times (Unix seconds) and step durations (seconds) of a run, and pages per asset."""

    run_times: dict[str, float] = field(default_factory=dict)
    # STEP_START and STEP_SUCCESS times by step key.
    step_starts: dict[str, float] = field(default_factory=dict)
    step_ends: dict[str, float] = field(default_factory=dict)
    # Step durations as Dagster records them in STEP_SUCCESS, by step key.
    step_seconds: dict[str, float] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)

    @property
    def sync_seconds(self) -> float:
        return self.step_seconds[SYNC_STEP_KEY]


def read_run_timings(dagster_home: Path) -> RunTimings:
    """Read the only run of the instance in `dagster_home`.

    Raises RuntimeError unless there is exactly one run and its sync step succeeded.
    """
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        if len(runs) != 1:
            raise RuntimeError(f"Expected one run in {dagster_home}, found {len(runs)}.")
        entries = instance.all_logs(runs[0].run_id)

    timings = RunTimings()
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type in _RUN_MILESTONES:
            timings.run_times.setdefault(event.event_type.name, entry.timestamp)
        elif event.event_type == DagsterEventType.STEP_START and event.step_key:
            timings.step_starts[event.step_key] = entry.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS and event.step_key:
            timings.step_ends[event.step_key] = entry.timestamp
            timings.step_seconds[event.step_key] = event.step_success_data.duration_ms / 1000
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            pages = materialization.metadata.get("crm/pages")
            if isinstance(pages, dg.IntMetadataValue) and pages.value is not None:
                timings.pages[materialization.asset_key.to_user_string()] = pages.value
    if SYNC_STEP_KEY not in timings.step_seconds:
        raise RuntimeError(
            f"The run in {dagster_home} has no STEP_SUCCESS event for step {SYNC_STEP_KEY!r}."
        )
    return timings
