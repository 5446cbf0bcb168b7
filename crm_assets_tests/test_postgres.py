"""The same syncs into a real PostgreSQL server started for the test on 127.0.0.1."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster_dlt import DagsterDltResource

from crm_assets.assets import build_crm_assets
from crm_assets.checks import build_crm_checks
from crm_assets.emulator import load_sample_store
from crm_assets.entities import CRM_ENTITIES
from crm_assets.resources import CrmApiResource, CrmWarehouseResource

from .conftest import PASSWORD, SPACE_ID, USERNAME, failure_message
from .postgres_server import running_postgres

EXPECTED_ROWS = {"accounts": 85, "activities": 15_011, "clients": 41, "contacts": 992, "entities": 6}
POSTGRES_ASSETS = build_crm_assets(CRM_ENTITIES, destination="postgres")
POSTGRES_CHECKS = build_crm_checks(CRM_ENTITIES, destination="postgres")


@pytest.fixture
def postgres_url(tmp_path: Path, monkeypatch) -> Iterator[str]:
    with running_postgres(tmp_path / "postgres") as url:
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url)
        yield url


def sync(instance: dg.DagsterInstance, emulator, tmp_path: Path) -> dg.ExecuteInProcessResult:
    resources = {
        "dlt": DagsterDltResource(),
        "crm_api": CrmApiResource(api_url=emulator.url, space_id=SPACE_ID, username=USERNAME, password=PASSWORD),
        "warehouse": CrmWarehouseResource(destination="postgres", pipelines_dir=str(tmp_path / "dlt")),
    }
    return dg.materialize([POSTGRES_ASSETS, POSTGRES_CHECKS], resources=resources, instance=instance, raise_on_error=False)


def postgres_rows(url: str, table: str) -> dict[str, tuple]:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"select id, modified, revision from crm.{table}")
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def test_postgres_sample_sync(postgres_url, start_emulator, instance, tmp_path: Path):
    store = load_sample_store()
    emulator = start_emulator(store)

    first = sync(instance, emulator, tmp_path)
    after_first = {table: postgres_rows(postgres_url, table) for table in EXPECTED_ROWS}
    second = sync(instance, emulator, tmp_path)

    assert first.success, failure_message(first)
    assert second.success, failure_message(second)
    for table, expected in EXPECTED_ROWS.items():
        assert len(after_first[table]) == expected, table
        assert postgres_rows(postgres_url, table) == after_first[table], table
    assert all(evaluation.passed for evaluation in first.get_asset_check_evaluations() if evaluation.check_name != "not_empty")
    kinds = {spec.key.path[-1]: spec.kinds for spec in POSTGRES_ASSETS.specs}
    assert kinds["accounts"] == {"dlt", "postgres"}


def test_postgres_incremental_mirrors(postgres_url, start_emulator, instance, tmp_path: Path):
    store = load_sample_store()
    emulator = start_emulator(store)
    assert sync(instance, emulator, tmp_path).success
    accounts = store.live_records("Accounts")
    store.put("Accounts", {"name": "New account"})
    store.put("Accounts", {"id": accounts[0]["id"], "name": "Renamed"})
    store.delete("Accounts", accounts[1]["id"])
    emulator.clear_requests()

    result = sync(instance, emulator, tmp_path)

    assert result.success, failure_message(result)
    assert len(emulator.list_requests("Accounts")) == 1
    live = {record["id"]: record["revision"] for record in store.live_records("Accounts")}
    assert {key: value[1] for key, value in postgres_rows(postgres_url, "accounts").items()} == live
    checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations() if evaluation.asset_key.path[-1] == "accounts"}
    assert checks == {"id_unique_not_null": True, "no_type_drift": True, "known_columns_typed": True, "not_empty": True}
