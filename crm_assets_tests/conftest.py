"""Fixtures: a real emulator on 127.0.0.1, DuckDB files under tmp_path, a real Dagster instance."""

from collections.abc import Callable, Iterator
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crm_assets.assets import crm_assets
from crm_assets.definitions import crm_table_checks
from crm_assets.emulator import CrmEmulator, CrmStore
from crm_assets.resources import PROJECT_DIR, CrmApiResource, CrmWarehouseResource
from dagster import ExecuteInProcessResult
from dagster_dlt import DagsterDltResource

SPACE_ID = "test-space"
USERNAME = "test-token"
PASSWORD = "test-secret:@%€"


@pytest.fixture
def start_emulator() -> Iterator[Callable[[CrmStore], CrmEmulator]]:
    """Start emulators on free loopback ports; every one is stopped after the test."""
    started: list[CrmEmulator] = []

    def start(store: CrmStore) -> CrmEmulator:
        emulator = CrmEmulator(store, space_id=SPACE_ID, username=USERNAME, password=PASSWORD, port=0)
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance with the project's shipped instance settings, under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DIR / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as temp_instance:
        yield temp_instance


def crm_resources(
    emulator: CrmEmulator,
    database: Path,
    page_size: int = 100,
    password: str = PASSWORD,
    space_id: str = SPACE_ID,
) -> dict:
    return {
        "dlt": DagsterDltResource(),
        "crm_api": CrmApiResource(
            api_url=emulator.url, space_id=space_id, username=USERNAME, password=password, page_size=page_size
        ),
        "warehouse": CrmWarehouseResource(duckdb_path=str(database), pipelines_dir=str(database.parent / "dlt")),
    }


def materialize(
    instance: dg.DagsterInstance,
    resources: dict,
    selection: str | None = None,
    assets: dg.AssetsDefinition = crm_assets,
) -> ExecuteInProcessResult:
    checks = [crm_table_checks] if assets is crm_assets else []
    return dg.materialize(
        [assets, *checks], resources=resources, instance=instance, selection=selection, raise_on_error=False
    )


def table_count(database: Path, table: str) -> int:
    with duckdb.connect(str(database), read_only=True) as connection:
        (count,) = connection.execute(f"select count(*) from crm.{table}").fetchone()
    return count


def table_ids(database: Path, table: str) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f"select id from crm.{table} order by id").fetchall()
    return [row[0] for row in rows]


def check_results(result: ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """Return each check evaluation of a run by (table, check name)."""
    evaluations = result.get_asset_check_evaluations()
    return {(evaluation.asset_key.path[-1], evaluation.check_name): evaluation for evaluation in evaluations}


def failure_message(result: ExecuteInProcessResult) -> str:
    """Return the text of every step failure of a run, joined by newlines."""
    failures = [event for event in result.all_events if event.is_step_failure]
    return "\n".join(str(event.step_failure_data.error.message) for event in failures if event.step_failure_data.error)
