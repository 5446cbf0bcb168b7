"""Incremental syncs: only changes are read, deletes are mirrored, full refresh rebuilds."""

import math
import random
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crm_assets.assets import FULL_REFRESH_TAG
from crm_assets.emulator import CrmStore, parse_timestamp, synthetic_store

from .conftest import crm_resources, failure_message, materialize, table_count

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")
INCREMENTAL = {"Accounts": "accounts", "Activities": "activities", "Clients": "clients", "Contacts": "contacts"}


def warehouse_rows(database: Path, table: str) -> dict[str, tuple]:
    """Return id -> (modified, revision, is_deleted) of a warehouse table."""
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f"select id, modified, revision, is_deleted from crm.{table}").fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def live_rows(store: CrmStore, collection: str) -> dict[str, tuple]:
    return {
        record["id"]: (parse_timestamp(record["modified"]), record["revision"], False)
        for record in store.live_records(collection)
    }


def metadata_of(result: dg.ExecuteInProcessResult, table: str) -> dict:
    events = [event for event in result.get_asset_materialization_events() if event.asset_key.path[-1] == table]
    assert len(events) == 1, table
    return {key: value.value for key, value in events[0].materialization.metadata.items()}


def change_records(store: CrmStore, collection: str, count: int) -> list[str]:
    """Rename the first `count` live records, which bumps their `modified`."""
    changed = [record["id"] for record in store.live_records(collection)[:count]]
    for record_id in changed:
        store.put(collection, {"id": record_id, "name": f"changed {record_id[:8]}"})
    return changed


@pytest.fixture
def synced(start_emulator, instance, tmp_path: Path):
    """An emulator with 250 records per collection, synced once into a fresh DuckDB file."""
    store = synthetic_store(records=250, collections=COLLECTIONS)
    emulator = start_emulator(store)
    database = tmp_path / "warehouse.duckdb"
    resources = crm_resources(emulator, database)
    first = materialize(instance, resources)
    assert first.success, failure_message(first)
    emulator.clear_requests()
    return store, emulator, database, resources


def test_no_change_sync_one_request(synced, instance):
    store, emulator, database, resources = synced

    result = materialize(instance, resources)

    assert result.success, failure_message(result)
    for collection, table in INCREMENTAL.items():
        assert len(emulator.list_requests(collection)) == 1, collection
        metadata = metadata_of(result, table)
        assert metadata["rows_loaded"] == 0, table
        assert metadata["crm/sync_mode"] == "incremental"
        assert metadata["crm/cursor_before"] == metadata["crm/cursor_after"]
        assert warehouse_rows(database, table) == live_rows(store, collection)


def test_first_sync_reports_full(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=30, collections=COLLECTIONS))

    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"))

    assert result.success, failure_message(result)
    metadata = metadata_of(result, "contacts")
    assert metadata["crm/sync_mode"] == "full"
    assert metadata["crm/cursor_before"] == ""
    assert metadata["crm/rows_inserted"] == 30
    assert metadata["crm/rows_updated"] == 0
    request = emulator.list_requests("Contacts")[0]
    assert request.params["filter[modified]"] == "1970-01-01 00:00:00"
    assert request.params["filter-op[modified]"] == "gte"
    assert request.params["order-by"] == "modified"
    assert request.params["include-deleted"] == "true"


@pytest.mark.parametrize("changed", [1, 42, 99, 150, 250], ids=lambda k: f"{k}-changed")
def test_changed_records_pages(changed, synced, instance):
    store, emulator, database, resources = synced
    change_records(store, "Accounts", changed)

    result = materialize(instance, resources, selection="crm/accounts")

    assert result.success, failure_message(result)
    assert len(emulator.list_requests("Accounts")) == max(1, math.ceil(changed / 100))
    assert warehouse_rows(database, "accounts") == live_rows(store, "Accounts")
    metadata = metadata_of(result, "accounts")
    assert metadata["crm/rows_updated"] == changed
    assert metadata["crm/rows_inserted"] == 0


def test_change_counts_metadata(synced, instance):
    store, emulator, database, resources = synced
    for number in range(3):
        store.put("Clients", {"first_name": f"New {number}"})
    change_records(store, "Clients", 2)
    store.delete("Clients", store.live_records("Clients")[10]["id"])

    result = materialize(instance, resources, selection="crm/clients")

    assert result.success, failure_message(result)
    metadata = metadata_of(result, "clients")
    assert metadata["crm/rows_inserted"] == 3
    assert metadata["crm/rows_updated"] == 2
    assert metadata["crm/rows_deleted"] == 1
    assert metadata["crm/cursor_after"] > metadata["crm/cursor_before"]
    assert metadata["dagster/row_count"] == 250 + 3 - 1


def delete_then_sync_twice(synced, instance) -> str:
    """Soft-delete one contact, sync twice, and return its id; both syncs must succeed."""
    store, emulator, database, resources = synced
    deleted = store.live_records("Contacts")[5]["id"]
    store.delete("Contacts", deleted)
    for _ in range(2):
        result = materialize(instance, resources)
        assert result.success, failure_message(result)
    return deleted


def test_deleted_record_removed(synced, instance):
    database = synced[2]

    deleted = delete_then_sync_twice(synced, instance)

    assert deleted not in warehouse_rows(database, "contacts")
    assert table_count(database, "contacts") == 249


def test_flag_policy_keeps_deleted(synced, instance, monkeypatch):
    database = synced[2]
    monkeypatch.setenv("CRM_DELETE_POLICY", "flag")

    deleted = delete_then_sync_twice(synced, instance)

    assert warehouse_rows(database, "contacts")[deleted][2] is True
    assert table_count(database, "contacts") == 250


def test_invalid_delete_policy(synced, instance, monkeypatch):
    monkeypatch.setenv("CRM_DELETE_POLICY", "purge")
    store, emulator, database, resources = synced

    result = materialize(instance, resources)

    assert not result.success
    assert "CRM_DELETE_POLICY='purge' is invalid" in failure_message(result)


def test_newest_version_wins(start_emulator, instance, tmp_path: Path):
    store = CrmStore()
    for collection in COLLECTIONS:
        store.add_collection(collection)
    base = {"created": "2024-05-01 09:00:00.000000+00:00", "is_deleted": False, "is_delete_protected": False}
    store.put_raw("Accounts", {**base, "id": "A", "name": "old", "modified": "2024-05-01 10:00:00.000000+00:00", "revision": 1})
    for number in range(4):
        store.put_raw(
            "Accounts",
            {**base, "id": f"B{number}", "name": "b", "modified": f"2024-05-01 10:0{number + 1}:00.000000+00:00", "revision": 1},
        )
    store.put_raw("Accounts", {**base, "id": "A", "name": "new", "modified": "2024-05-01 10:05:00.000000+00:00", "revision": 2})
    emulator = start_emulator(store)
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database, page_size=2), selection="crm/accounts")

    assert result.success, failure_message(result)
    assert len(emulator.list_requests("Accounts")) == 3
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute("select name, revision from crm.accounts where id = 'A'").fetchall()
    assert rows == [("new", 2)]
    assert table_count(database, "accounts") == 5


def test_state_survives_lost_workdir(synced, instance, tmp_path: Path):
    store, emulator, database, resources = synced
    shutil.rmtree(tmp_path / "dlt")
    change_records(store, "Activities", 7)

    result = materialize(instance, resources, selection="crm/activities")

    assert result.success, failure_message(result)
    requests = emulator.list_requests("Activities")
    assert len(requests) == 1
    assert requests[0].params["filter[modified]"] != "1970-01-01 00:00:00"
    assert metadata_of(result, "activities")["rows_loaded"] == 7
    assert warehouse_rows(database, "activities") == live_rows(store, "Activities")


def test_full_refresh_rebuilds_table(synced, instance):
    store, emulator, database, resources = synced
    with duckdb.connect(str(database)) as connection:
        connection.execute("delete from crm.accounts where id in (select id from crm.accounts limit 10)")
        connection.execute("update crm.accounts set revision = -1")
        connection.execute("insert into crm.accounts (id, revision, _dlt_load_id, _dlt_id) values ('stray', 1, 'x', 'y')")

    result = dg.materialize(
        [__import__("crm_assets.assets", fromlist=["crm_assets"]).crm_assets],
        resources=resources,
        instance=instance,
        selection="crm/accounts",
        tags={FULL_REFRESH_TAG: "true"},
        raise_on_error=False,
    )

    assert result.success, failure_message(result)
    assert warehouse_rows(database, "accounts") == live_rows(store, "Accounts")
    assert metadata_of(result, "accounts")["crm/sync_mode"] == "full"
    assert emulator.list_requests("Accounts")[0].params["filter[modified]"] == "1970-01-01 00:00:00"


def test_random_changes_mirror_emulator(synced, instance):
    store, emulator, database, resources = synced
    generator = random.Random(20261204)

    for _ in range(4):
        for collection in INCREMENTAL:
            live = store.live_records(collection)
            for _ in range(generator.randint(0, 30)):
                store.put(collection, {"name": f"n{generator.random():.6f}"})
            for record in generator.sample(live, generator.randint(0, 20)):
                store.put(collection, {"id": record["id"], "name": "updated"})
            for record in generator.sample(live, generator.randint(0, 10)):
                store.delete(collection, record["id"])
        result = materialize(instance, resources)

        assert result.success, failure_message(result)
        for collection, table in INCREMENTAL.items():
            assert warehouse_rows(database, table) == live_rows(store, collection), collection
