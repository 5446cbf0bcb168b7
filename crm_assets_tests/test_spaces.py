"""Several CRM spaces as partitions of the same assets, loaded into shared tables."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_dlt import DagsterDltResource

from crm_assets.assets import build_crm_assets
from crm_assets.checks import build_crm_checks
from crm_assets.emulator import synthetic_store
from crm_assets.entities import CRM_ENTITIES
from crm_assets.errors import CrmConfigError
from crm_assets.jobs import build_crm_sync_schedule, crm_sync_job
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_assets.spaces import load_spaces

from .conftest import PASSWORD, SPACE_ID, USERNAME, failure_message

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")


def write_spaces_file(path: Path, urls: dict[str, str]) -> Path:
    entries = [
        f'[[spaces]]\nname = "{name}"\napi_url = "{url}"\nspace_id = "{SPACE_ID}"\n'
        f'username_env = "CRM_{name.upper()}_USERNAME"\npassword_env = "CRM_{name.upper()}_PASSWORD"\n'
        for name, url in urls.items()
    ]
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


@pytest.fixture
def two_spaces(start_emulator, tmp_path: Path, monkeypatch):
    """Two emulators whose records share ids, one spaces file, and the partitioned assets."""
    emea = start_emulator(synthetic_store(records=120, collections=COLLECTIONS))
    apac = start_emulator(synthetic_store(records=80, collections=COLLECTIONS))
    spaces = load_spaces(write_spaces_file(tmp_path / "spaces.toml", {"emea": emea.url, "apac": apac.url}))
    for name in ("EMEA", "APAC"):
        monkeypatch.setenv(f"CRM_{name}_USERNAME", USERNAME)
        monkeypatch.setenv(f"CRM_{name}_PASSWORD", PASSWORD)
    assets = build_crm_assets(CRM_ENTITIES, "duckdb", spaces)
    checks = build_crm_checks(CRM_ENTITIES, "duckdb", spaces)
    database = tmp_path / "warehouse.duckdb"
    resources = {
        "dlt": DagsterDltResource(),
        "crm_api": CrmApiResource(),
        "warehouse": CrmWarehouseResource(duckdb_path=str(database), pipelines_dir=str(tmp_path / "dlt")),
    }
    return {"emea": emea, "apac": apac, "assets": [assets, checks], "resources": resources, "database": database, "spaces": spaces}


def sync_space(setup: dict, instance: dg.DagsterInstance, space: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        setup["assets"], resources=setup["resources"], instance=instance, partition_key=space, raise_on_error=False
    )


def rows_per_space(database: Path, table: str) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return dict(connection.execute(f"select space, count(*) from crm.{table} group by space").fetchall())


def test_spaces_never_overwrite(two_spaces, instance):
    emea = sync_space(two_spaces, instance, "emea")
    apac = sync_space(two_spaces, instance, "apac")

    assert emea.success, failure_message(emea)
    assert apac.success, failure_message(apac)
    for table in ("accounts", "activities", "clients", "contacts", "entities"):
        assert rows_per_space(two_spaces["database"], table) == {"emea": 120, "apac": 80}, table
    with duckdb.connect(str(two_spaces["database"]), read_only=True) as connection:
        (shared,) = connection.execute(
            "select count(*) from (select id from crm.accounts group by id having count(*) = 2)"
        ).fetchone()
    assert shared == 80
    assert all(evaluation.passed for evaluation in apac.get_asset_check_evaluations())


def test_spaces_keep_own_cursors(two_spaces, instance):
    assert sync_space(two_spaces, instance, "emea").success
    assert sync_space(two_spaces, instance, "apac").success
    emea = two_spaces["emea"]
    emea.clear_requests()

    again = sync_space(two_spaces, instance, "emea")

    assert again.success, failure_message(again)
    assert len(emea.list_requests("Accounts")) == 1
    assert emea.list_requests("Accounts")[0].params["filter[modified]"] != "1970-01-01 00:00:00"
    assert rows_per_space(two_spaces["database"], "accounts") == {"emea": 120, "apac": 80}


def test_failing_space_spares_other(two_spaces, instance, monkeypatch):
    monkeypatch.delenv("CRM_APAC_PASSWORD")

    apac = sync_space(two_spaces, instance, "apac")
    emea = sync_space(two_spaces, instance, "emea")

    assert not apac.success
    assert "Space apac: missing environment variable(s) CRM_APAC_PASSWORD" in failure_message(apac)
    assert emea.success, failure_message(emea)
    assert rows_per_space(two_spaces["database"], "accounts") == {"emea": 120}


def test_partitions_and_schedule_per_space(two_spaces):
    assets = two_spaces["assets"][0]
    schedule = build_crm_sync_schedule(two_spaces["spaces"])
    repository = dg.Definitions(
        assets=[assets], jobs=[crm_sync_job], schedules=[schedule], resources=two_spaces["resources"]
    ).get_repository_def()
    context = dg.build_schedule_context(
        repository_def=repository, scheduled_execution_time=datetime(2026, 12, 4, 3, tzinfo=timezone.utc)
    )

    requests = schedule.evaluate_tick(context).run_requests or []

    assert assets.partitions_def.get_partition_keys() == ["emea", "apac"]
    assert sorted(request.partition_key for request in requests) == ["apac", "emea"]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "has no [[spaces]] entries"),
        ('[[spaces]]\nname = "emea"\n', "space 1 lacks api_url, space_id, username_env, password_env"),
        (
            '[[spaces]]\nname = "EMEA West"\napi_url = "u"\nspace_id = "s"\nusername_env = "U"\npassword_env = "P"\n',
            "space name 'EMEA West' is invalid",
        ),
        (
            '[[spaces]]\nname = "a"\napi_url = "u"\nspace_id = "s"\nusername_env = "U"\npassword_env = "P"\n' * 2,
            "names these spaces more than once: a",
        ),
        ("[[spaces]\n", "cannot be read"),
    ],
    ids=["empty", "missing-keys", "bad-name", "repeated", "not-toml"],
)
def test_invalid_spaces_file(content, expected, tmp_path: Path):
    path = tmp_path / "spaces.toml"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(CrmConfigError) as raised:
        load_spaces(path)

    assert expected in str(raised.value)
