"""The bundled sample data, loaded end to end through Dagster."""

from pathlib import Path

import dagster as dg

from crm_assets.assets import build_crm_assets
from crm_assets.emulator import load_sample_store
from crm_assets.entities import CRM_ENTITIES, CrmEntity

from .conftest import crm_resources, failure_message, materialize, table_count

EXPECTED_ROWS = {
    "accounts": 85,
    "activities": 15_011,
    "clients": 41,
    "contacts": 992,
    "entities": 6,
    "opportunities": 8_800,
}
OPPORTUNITIES = CrmEntity(
    collection="Opportunities",
    description="Deals in the sales pipeline, with stage, value and owner.",
    columns={"name": "text", "deal_stage": "text", "close_value": "double"},
)


def test_sample_dataset_counts(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(load_sample_store())
    database = tmp_path / "warehouse.duckdb"
    assets = build_crm_assets((*CRM_ENTITIES, OPPORTUNITIES))

    result = materialize(instance, crm_resources(emulator, database), assets=assets)

    assert result.success, failure_message(result)
    for table, expected in EXPECTED_ROWS.items():
        assert table_count(database, table) == expected, table
    row_counts = {
        event.asset_key.path[-1]: event.materialization.metadata["dagster/row_count"].value
        for event in result.get_asset_materialization_events()
    }
    assert row_counts == EXPECTED_ROWS
    assert len(emulator.list_requests("Opportunities")) == 88


def test_sample_subset_new_row_only(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(load_sample_store())
    database = tmp_path / "warehouse.duckdb"
    assets = build_crm_assets((*CRM_ENTITIES, OPPORTUNITIES))

    result = materialize(instance, crm_resources(emulator, database), selection="crm/opportunities", assets=assets)

    assert result.success, failure_message(result)
    assert {request.collection for request in emulator.requests} == {"Opportunities"}
    assert table_count(database, "opportunities") == 8_800
    assert {event.asset_key for event in result.get_asset_materialization_events()} == {
        dg.AssetKey(["crm", "opportunities"])
    }
