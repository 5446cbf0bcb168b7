"""Variant (b): the project's dlt source run by a plain dlt pipeline, without Dagster.

Run as a child of `bench.run`: `python -m bench.plain_dlt RESULT_JSON`. It reads the
connection from `CRM_API_URL`, `CRM_SPACE_ID`, `CRM_USERNAME` and `CRM_PASSWORD`, and the
destination from `CRM_DUCKDB_PATH` and `CRM_PIPELINES_DIR`, like the Dagster assets do.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

import dlt

from crm_assets.entities import CRM_ENTITIES
from crm_assets.http import CrmSession
from crm_assets.resources import CrmWarehouseResource
from crm_assets.settings import RetrySettings, build_connection, scoped_environ
from crm_assets.source import crm_source

PIPELINE_NAME = "crm_plain"
DATASET_NAME = "crm"


def stage_seconds(trace: Any) -> dict[str, float]:
    """Return the duration in seconds of each step (extract, normalize, load) of a dlt trace."""
    return {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in trace.steps
        if step.started_at is not None and step.finished_at is not None
    }


def stage_windows(trace: Any) -> dict[str, tuple[float, float]]:
    """Return the start and end (Unix seconds) of each step of a dlt trace."""
    return {
        step.step: (step.started_at.timestamp(), step.finished_at.timestamp())
        for step in trace.steps
        if step.started_at is not None and step.finished_at is not None
    }


def main(result_path: Path) -> int:
    connection = build_connection(
        os.environ.get("CRM_API_URL"),
        os.environ.get("CRM_SPACE_ID"),
        os.environ.get("CRM_USERNAME"),
        os.environ.get("CRM_PASSWORD"),
    )
    session = CrmSession(RetrySettings())
    source = crm_source(CRM_ENTITIES, connection, session)
    # The same destination settings as the assets: DuckDB's memory limit and serial loading.
    warehouse = CrmWarehouseResource()
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=os.environ["CRM_PIPELINES_DIR"],
        destination=warehouse.destination_factory(),
        dataset_name=DATASET_NAME,
    )
    with scoped_environ(warehouse.run_settings()):
        pipeline.run(source, loader_file_format="parquet")
    pages = {collection: stats.pages for collection, stats in session.stats.items()}
    trace = pipeline.last_trace
    result = {"stages": stage_seconds(trace), "windows": stage_windows(trace), "pages": pages}
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
