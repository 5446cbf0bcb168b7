"""End-to-end syncs through Dagster into DuckDB, against the emulator on 127.0.0.1."""

import math
from pathlib import Path

import dagster as dg
import pytest

from crm_assets.emulator import CrmStore, synthetic_store
from crm_assets.entities import CRM_ENTITIES

from .conftest import crm_resources, failure_message, materialize, table_count, table_ids

DEFAULT_TABLES = ["accounts", "activities", "clients", "contacts", "entities"]
DEFAULT_COLLECTIONS = [entity.collection for entity in CRM_ENTITIES]


@pytest.mark.parametrize("records", [0, 1, 99, 100, 101, 250], ids=lambda n: f"{n}-records")
def test_row_counts_and_requests(records, start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=records, collections=tuple(DEFAULT_COLLECTIONS)))
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database))

    assert result.success, failure_message(result)
    for entity in CRM_ENTITIES:
        assert table_count(database, entity.table_name) == records, entity.collection
        requests = emulator.list_requests(entity.collection)
        assert len(requests) == max(1, math.ceil(records / 100)), entity.collection
        assert {request.params["first"] for request in requests} == {"100"}


def test_last_page_cursor_ends_listing(start_emulator, instance, tmp_path: Path):
    store = synthetic_store(records=3, collections=tuple(DEFAULT_COLLECTIONS))
    emulator = start_emulator(store)
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database, page_size=2), selection="crm/accounts")

    assert result.success, failure_message(result)
    requests = emulator.list_requests("Accounts")
    assert len(requests) == 2
    assert "after" not in requests[0].params
    assert requests[1].params["after"]
    assert table_count(database, "accounts") == 3


def test_subset_requests_only_its_collection(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=5, collections=tuple(DEFAULT_COLLECTIONS)))
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database), selection="crm/contacts")

    assert result.success, failure_message(result)
    assert {request.collection for request in emulator.requests} == {"Contacts"}
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey(["crm", "contacts"])}


def test_second_sync_is_idempotent(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=150, collections=tuple(DEFAULT_COLLECTIONS)))
    database = tmp_path / "warehouse.duckdb"
    resources = crm_resources(emulator, database)

    first = materialize(instance, resources)
    ids_after_first = {table: table_ids(database, table) for table in DEFAULT_TABLES}
    second = materialize(instance, resources)

    assert first.success, failure_message(first)
    assert second.success, failure_message(second)
    for table in DEFAULT_TABLES:
        assert table_count(database, table) == 150, table
        assert table_ids(database, table) == ids_after_first[table], table


def test_wrong_password_fails_clearly(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=5, collections=tuple(DEFAULT_COLLECTIONS)))
    wrong_password = "not-the-secret-Zq9"

    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb", password=wrong_password))

    assert not result.success
    message = failure_message(result)
    assert "HTTP 401" in message
    assert "CRM_USERNAME" in message
    assert "CRM_PASSWORD" in message
    assert wrong_password not in message


def test_missing_settings_named(instance, tmp_path: Path):
    resources = {
        **crm_resources_without_api(tmp_path),
    }
    result = materialize(instance, resources)

    assert not result.success
    message = failure_message(result)
    for name in ("CRM_API_URL", "CRM_SPACE_ID", "CRM_USERNAME", "CRM_PASSWORD"):
        assert name in message


def crm_resources_without_api(tmp_path: Path) -> dict:
    from dagster_dlt import DagsterDltResource

    from crm_assets.resources import CrmApiResource, CrmWarehouseResource

    return {
        "dlt": DagsterDltResource(),
        "crm_api": CrmApiResource(),
        "warehouse": CrmWarehouseResource(duckdb_path=str(tmp_path / "warehouse.duckdb")),
    }


def test_empty_store_collection_loads_zero_rows(start_emulator, instance, tmp_path: Path):
    store = CrmStore()
    for collection in DEFAULT_COLLECTIONS:
        store.add_collection(collection)
    emulator = start_emulator(store)
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database))

    assert result.success, failure_message(result)
    assert table_count(database, "accounts") == 0
