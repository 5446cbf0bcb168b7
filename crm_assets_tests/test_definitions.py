"""The code location: what it lists, with no CRM variable set."""

import os
from datetime import datetime, timezone
import subprocess
import sys
from pathlib import Path

import dagster as dg

from crm_assets.assets import build_crm_assets
from crm_assets.definitions import defs
from crm_assets.entities import CRM_ENTITIES, CrmEntity
from crm_assets.jobs import build_crm_sync_schedule
from crm_assets.resources import PROJECT_DIR, CrmWarehouseResource

EXPECTED_KEYS = {
    dg.AssetKey(["crm", "accounts"]),
    dg.AssetKey(["crm", "activities"]),
    dg.AssetKey(["crm", "clients"]),
    dg.AssetKey(["crm", "contacts"]),
    dg.AssetKey(["crm", "entities"]),
}


def env_without_crm() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("CRM_")}


def test_asset_list_without_environment():
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "asset", "list", "-m", "crm_assets.definitions"],
        env=env_without_crm(),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["crm/accounts", "crm/activities", "crm/clients", "crm/contacts", "crm/entities"]


def test_materialize_names_missing_variables(tmp_path: Path):
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "crm_assets.definitions", "--select", "*"],
        env={**env_without_crm(), "DAGSTER_HOME": str(tmp_path)},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode != 0
    for name in ("CRM_API_URL", "CRM_SPACE_ID", "CRM_USERNAME", "CRM_PASSWORD"):
        assert f'You have attempted to fetch the environment variable "{name}" which is not set' in result.stderr


def test_asset_keys_exact():
    assert set(defs.resolve_asset_graph().get_all_asset_keys()) == EXPECTED_KEYS


def test_asset_specs_from_entity_table():
    specs = {spec.key: spec for spec in build_crm_assets().specs}

    for entity in CRM_ENTITIES:
        spec = specs[dg.AssetKey(["crm", entity.table_name])]
        assert spec.description == entity.description
        assert spec.group_name == "crm"
        assert list(spec.deps) == []
        assert spec.kinds == {"dlt", "duckdb"}


def test_new_entity_row_adds_asset():
    opportunities = CrmEntity(collection="Opportunities", description="Deals in the sales pipeline.")

    assets = build_crm_assets((*CRM_ENTITIES, opportunities))

    assert set(assets.keys) == EXPECTED_KEYS | {dg.AssetKey(["crm", "opportunities"])}


def test_unknown_collection_rejected():
    typo = CrmEntity(collection="Acounts", description="Misspelled.")

    try:
        build_crm_assets((typo,))
    except ValueError as error:
        assert "Acounts" in str(error)
        assert "Accounts" in str(error)
    else:
        raise AssertionError("an unknown collection name was accepted")


def test_table_name_snake_case():
    assert CrmEntity(collection="OpptyProductRelations", description="x").table_name == "oppty_product_relations"


def test_schedule_requests_job_run():
    schedule = build_crm_sync_schedule()
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 4, 3, tzinfo=timezone.utc))

    run_requests = schedule.evaluate_tick(context).run_requests

    assert run_requests is not None
    assert len(run_requests) == 1
    assert run_requests[0].partition_key is None
    assert schedule.job_name == "crm_sync_job"
    assert schedule.cron_schedule == "0 3 * * *"


def test_schedule_cron_from_environment(monkeypatch):
    monkeypatch.setenv("CRM_SCHEDULE_CRON", "30 6 * * 1-5")
    monkeypatch.setenv("CRM_SCHEDULE_TIMEZONE", "Europe/Berlin")

    schedule = build_crm_sync_schedule()

    assert schedule.cron_schedule == "30 6 * * 1-5"
    assert schedule.execution_timezone == "Europe/Berlin"


def test_job_selects_every_crm_asset():
    job = defs.resolve_job_def("crm_sync_job")

    assert set(job.asset_layer.selected_asset_keys) == EXPECTED_KEYS


def test_duckdb_path_independent_of_cwd(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CRM_DUCKDB_PATH", "relative/warehouse.duckdb")
    monkeypatch.chdir(tmp_path)

    assert CrmWarehouseResource().duckdb_file() == PROJECT_DIR / "relative" / "warehouse.duckdb"


def test_duckdb_default_path(monkeypatch):
    monkeypatch.delenv("CRM_DUCKDB_PATH", raising=False)

    assert CrmWarehouseResource().duckdb_file() == PROJECT_DIR / ".local" / "warehouse.duckdb"


def test_password_hidden_in_resource_config():
    resource = defs.resources["crm_api"]

    assert isinstance(resource.password, dg.EnvVar)


def test_dlt_telemetry_off_by_default():
    from dlt.common.configuration.resolve import resolve_configuration
    from dlt.common.configuration.specs import RuntimeConfiguration

    assert resolve_configuration(RuntimeConfiguration()).dlthub_telemetry is False
