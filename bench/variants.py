"""The three measured variants, each run in a fresh child process against one emulator.

(a) `dagster asset materialize` of every CRM asset, (b) the same dlt source in a plain dlt
pipeline, and (c) the minimal copy in `bench.lower_bound`. Every variant writes a fresh
DuckDB file, whose row counts are checked before its numbers are used.
"""

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from bench import emulator as emu
from bench.processes import (
    BenchmarkError,
    ChildResult,
    busy_cpu_seconds,
    log_tail,
    own_cpu_seconds,
    run_child,
)
from crm_assets.entities import CRM_ENTITIES

PROJECT_DIR = Path(__file__).resolve().parent.parent
DAGSTER = str(Path(sys.executable).parent / "dagster")
TABLES = [entity.table_name for entity in CRM_ENTITIES]
WORK_STAGES = ("extract", "normalize", "load", "fetch")
LABELS = {
    "a": "(a) Dagster materialization",
    "b": "(b) plain dlt pipeline",
    "c": "(c) lower bound: requests + DuckDB read_json",
}


@dataclass(frozen=True)
class Limits:
    """Bounds on each variant's child process."""

    timeout_seconds: float
    memory_limit_bytes: int


@dataclass
class VariantResult:
    """Measurements of one variant at one size and latency."""

    key: str
    records: int
    wall_seconds: float
    max_rss_bytes: int
    tree_peak_rss_bytes: int
    emulator_cpu_seconds: float
    # CPU time that processes outside the benchmark used while the variant ran.
    other_cpu_seconds: float
    pages: int
    largest_collection_pages: int
    # Named durations in seconds, in the order they happened.
    stages: dict[str, float] = field(default_factory=dict)
    # Sampled peak RSS of each process of the variant, keyed by "pid command".
    process_peaks: dict[str, int] = field(default_factory=dict)
    # Sampled peak RSS of the process tree during each work stage (extract, fetch, ...).
    stage_peaks: dict[str, int] = field(default_factory=dict)
    # Only (a): the duration of the `crm_sync` step as Dagster recorded it.
    step_seconds: float | None = None
    # Only (a): the durations of the run's other steps (asset checks), by step key.
    other_steps: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return LABELS[self.key]

    @property
    def records_per_second(self) -> float:
        return self.records / self.wall_seconds

    @property
    def other_load(self) -> float:
        """Return the average number of cores that other processes kept busy during the run."""
        return self.other_cpu_seconds / self.wall_seconds

    @property
    def peak_rss_bytes(self) -> int:
        """The larger of the two peak measures, which the memory targets use."""
        return max(self.max_rss_bytes, self.tree_peak_rss_bytes)


def child_env(api_url: str, workspace: Path) -> dict[str, str]:
    """Return the environment of a variant: the connection, its own files, no telemetry."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("CRM_")}
    return {
        **inherited,
        "CRM_API_URL": api_url,
        "CRM_SPACE_ID": emu.SPACE_ID,
        "CRM_USERNAME": emu.USERNAME,
        "CRM_PASSWORD": emu.PASSWORD,
        "CRM_DUCKDB_PATH": str(workspace / "warehouse.duckdb"),
        "CRM_PIPELINES_DIR": str(workspace / "dlt_pipelines"),
        "DAGSTER_HOME": str(workspace / "dagster_home"),
        # dlt 1.31 sends anonymous usage events to dltHub unless this is off
        # (`runtime.dlthub_telemetry` defaults to true), and the benchmark talks to 127.0.0.1 only.
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def run_variant(
    key: str, emulator: emu.Emulator, records: int, workspace: Path, limits: Limits
) -> VariantResult:
    """Run variant `key` in a fresh child, check its row counts and return its numbers."""
    workspace.mkdir(parents=True)
    env = child_env(emulator.url, workspace)
    command = _command(key, workspace, env)

    emulator_before, busy_before, own_before = (
        emulator.cpu_seconds(),
        busy_cpu_seconds(),
        own_cpu_seconds(),
    )
    child = run_child(
        command,
        env,
        workspace / "output.log",
        limits.timeout_seconds,
        limits.memory_limit_bytes,
        cwd=PROJECT_DIR,
    )
    emulator_cpu = emulator.cpu_seconds() - emulator_before
    own_cpu = own_cpu_seconds() - own_before
    other_cpu = busy_cpu_seconds() - busy_before - child.cpu_seconds - emulator_cpu - own_cpu

    if child.returncode != 0:
        raise BenchmarkError(
            f"{LABELS[key]} exited with status {child.returncode}; see {child.log_path}. "
            f"Its last output:\n{log_tail(child.log_path)}"
        )
    verify_rows(Path(env["CRM_DUCKDB_PATH"]), records, LABELS[key])
    result = VariantResult(
        key=key,
        records=records * len(TABLES),
        wall_seconds=child.wall_seconds,
        max_rss_bytes=child.max_rss_bytes,
        tree_peak_rss_bytes=child.tree_peak_rss_bytes,
        emulator_cpu_seconds=emulator_cpu,
        other_cpu_seconds=max(other_cpu, 0.0),
        pages=0,
        largest_collection_pages=0,
        process_peaks=child.process_peaks,
    )
    if key == "a":
        windows = _add_dagster_details(result, child, workspace)
    else:
        windows = _add_child_details(result, workspace / "result.json")
    result.stage_peaks = stage_peaks(child.rss_samples, windows)
    return result


def stage_peaks(
    samples: list[tuple[float, int]], windows: dict[str, tuple[float, float]]
) -> dict[str, int]:
    """Return the largest RSS sample inside each work stage's time window."""
    peaks: dict[str, int] = {}
    for stage, (start, end) in windows.items():
        if stage in WORK_STAGES:
            peaks[stage] = max(
                (rss for moment, rss in samples if start <= moment <= end), default=0
            )
    return peaks


def _add_child_details(result: VariantResult, result_path: Path) -> dict[str, tuple[float, float]]:
    """Read the stages and pages that (b) or (c) wrote, and return its stage windows."""
    details = json.loads(result_path.read_text(encoding="utf-8"))
    result.stages = details["stages"]
    result.pages = sum(details["pages"].values())
    result.largest_collection_pages = max(details["pages"].values())
    return {name: (start, end) for name, (start, end) in details["windows"].items()}


def _command(key: str, workspace: Path, env: dict[str, str]) -> list[str]:
    if key == "a":
        home = Path(env["DAGSTER_HOME"])
        home.mkdir()
        shutil.copyfile(PROJECT_DIR / "deploy" / "dagster.yaml", home / "dagster.yaml")
        return [DAGSTER, "asset", "materialize", "-m", "crm_assets.definitions", "--select", "*"]
    module = {"b": "bench.plain_dlt", "c": "bench.lower_bound"}[key]
    return [sys.executable, "-m", module, str(workspace / "result.json")]


def _add_dagster_details(
    result: VariantResult, child: ChildResult, workspace: Path
) -> dict[str, tuple[float, float]]:
    """Split (a)'s wall time with the run's event log and dlt's trace; return the stage windows."""
    from dlt.pipeline.trace import load_trace

    from bench.dagster_events import SYNC_STEP_KEY, read_run_timings
    from bench.plain_dlt import stage_seconds, stage_windows

    timings = read_run_timings(workspace / "dagster_home")
    run_times = timings.run_times
    sync_start, sync_end = timings.step_starts[SYNC_STEP_KEY], timings.step_ends[SYNC_STEP_KEY]
    result.step_seconds = timings.sync_seconds
    result.other_steps = {
        key: seconds for key, seconds in timings.step_seconds.items() if key != SYNC_STEP_KEY
    }
    result.pages = sum(timings.pages.values())
    result.largest_collection_pages = max(timings.pages.values(), default=0)
    result.stages = {
        "launch to RUN_START": run_times["RUN_START"] - child.started_at,
        "RUN_START to sync STEP_START": sync_start - run_times["RUN_START"],
        "step crm_sync": timings.sync_seconds,
        "sync STEP_SUCCESS to RUN_SUCCESS": run_times["RUN_SUCCESS"] - sync_end,
        "RUN_SUCCESS to process exit": child.started_at
        + child.wall_seconds
        - run_times["RUN_SUCCESS"],
    }
    trace = load_trace(str(workspace / "dlt_pipelines" / "crm"))
    if trace is None:
        raise BenchmarkError(f"{LABELS['a']} left no dlt trace in {workspace / 'dlt_pipelines'}.")
    result.stages.update({f"dlt {name}": seconds for name, seconds in stage_seconds(trace).items()})
    result.stages["STEP_START to dlt run start"] = trace.started_at.timestamp() - sync_start
    result.stages["dlt run end to STEP_SUCCESS"] = sync_end - trace.finished_at.timestamp()
    return stage_windows(trace)


def verify_rows(database: Path, records: int, label: str) -> None:
    """Raise BenchmarkError unless every CRM table in `database` has exactly `records` rows."""
    counts: dict[str, int | None] = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        for table in TABLES:
            try:
                row = connection.execute(f'select count(*) from crm."{table}"').fetchone()
            except duckdb.CatalogException:
                counts[table] = None
                continue
            counts[table] = int(row[0]) if row else 0
    wrong = {table: count for table, count in counts.items() if count != records}
    if wrong:
        raise BenchmarkError(
            f"{label} loaded the wrong number of rows into {database}: expected {records:,} in "
            f"each of {len(TABLES)} tables, got {wrong} (None: table missing)."
        )
