"""Asset checks after each materialization: ids, type drift, typed columns, empty tables."""

from pathlib import Path

import dagster as dg
import duckdb

from crm_assets.checks import COLUMNS_CHECK, DRIFT_CHECK, EMPTY_CHECK, ID_CHECK
from crm_assets.emulator import CrmStore, synthetic_store

from .conftest import check_results, crm_resources, failure_message, materialize

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")
TABLES = ["accounts", "activities", "clients", "contacts", "entities"]
CHECKS = [ID_CHECK, DRIFT_CHECK, COLUMNS_CHECK, EMPTY_CHECK]


def store_with_accounts(*records: dict) -> CrmStore:
    store = CrmStore()
    for collection in COLLECTIONS:
        store.add_collection(collection)
    for record in records:
        store.put("Accounts", record)
    return store


def test_every_check_passes_after_sync(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=20, collections=COLLECTIONS))

    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"))

    assert result.success, failure_message(result)
    evaluations = check_results(result)
    assert set(evaluations) == {(table, check) for table in TABLES for check in CHECKS}
    failed = sorted(key for key, evaluation in evaluations.items() if not evaluation.passed)
    assert failed == []


def test_type_drift_fails_naming_field(start_emulator, instance, tmp_path: Path):
    store = store_with_accounts({"id": "acc-1", "name": "A", "annual_revenue": 5, "external_id": 10})
    emulator = start_emulator(store)
    database = tmp_path / "warehouse.duckdb"
    resources = crm_resources(emulator, database)
    first = materialize(instance, resources, selection="crm/accounts")
    store.put("Accounts", {"id": "acc-1", "annual_revenue": 3.7, "external_id": "A-10"})

    second = materialize(instance, resources, selection="crm/accounts")

    assert check_results(first)[("accounts", DRIFT_CHECK)].passed
    drift = check_results(second)[("accounts", DRIFT_CHECK)]
    assert not drift.passed
    assert drift.metadata["drifted_fields"].value == "external_id"
    assert "external_id" in drift.description
    with duckdb.connect(str(database), read_only=True) as connection:
        (revenue,) = connection.execute("select annual_revenue from crm.accounts where id = 'acc-1'").fetchone()
    assert revenue == 3.7


def test_always_null_field_is_typed_column(start_emulator, instance, tmp_path: Path):
    store = store_with_accounts(*({"name": f"A{number}", "phone1": None} for number in range(3)))
    emulator = start_emulator(store)
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database), selection="crm/accounts")

    assert result.success, failure_message(result)
    assert check_results(result)[("accounts", COLUMNS_CHECK)].passed
    with duckdb.connect(str(database), read_only=True) as connection:
        columns = dict(connection.execute("select column_name, data_type from information_schema.columns where table_schema = 'crm' and table_name = 'accounts'").fetchall())
    assert columns["phone1"] == "VARCHAR"
    assert columns["annual_revenue"] == "DOUBLE"
    assert columns["modified"] == "TIMESTAMP WITH TIME ZONE"


def test_empty_table_warns(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(store_with_accounts())

    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"), selection="crm/accounts")

    assert result.success, failure_message(result)
    empty = check_results(result)[("accounts", EMPTY_CHECK)]
    assert not empty.passed
    assert empty.severity == dg.AssetCheckSeverity.WARN
    assert check_results(result)[("accounts", ID_CHECK)].passed
    assert check_results(result)[("accounts", COLUMNS_CHECK)].passed
