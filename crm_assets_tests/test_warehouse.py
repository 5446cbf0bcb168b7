"""One DuckDB file, several writers: queued runs, a held lock, a run killed while loading."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from crm_assets.emulator import CrmEmulator, Faults, synthetic_store
from crm_assets.resources import PROJECT_DIR, CrmWarehouseResource

from .conftest import PASSWORD, SPACE_ID, USERNAME, crm_resources, failure_message, materialize, table_count, table_ids

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")
TABLES = ["accounts", "activities", "clients", "contacts", "entities"]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def cli_env(emulator: CrmEmulator, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "cli_dagster_home"
    if not home.exists():
        home.mkdir()
        shutil.copyfile(PROJECT_DIR / "deploy" / "dagster.yaml", home / "dagster.yaml")
        # Create the instance's storage first, as a deployed instance has it: two runs that
        # start together on an empty folder would both try to create the SQLite schema.
        subprocess.run(
            [DAGSTER, "instance", "migrate"],
            env={**os.environ, "DAGSTER_HOME": str(home)},
            check=True,
            capture_output=True,
            timeout=120,
        )
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("CRM_")},
        "DAGSTER_HOME": str(home),
        "CRM_API_URL": emulator.url,
        "CRM_SPACE_ID": SPACE_ID,
        "CRM_USERNAME": USERNAME,
        "CRM_PASSWORD": PASSWORD,
        "CRM_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "CRM_PIPELINES_DIR": str(tmp_path / "dlt"),
    }


def start_cli_run(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [DAGSTER, "asset", "materialize", "-m", "crm_assets.definitions", "--select", "*"]
    with log.open("wb") as output:
        return subprocess.Popen(
            command, env=env, cwd=PROJECT_DIR, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def assert_complete(database: Path, records: int) -> None:
    for table in TABLES:
        ids = table_ids(database, table)
        assert len(ids) == records, table
        assert len(set(ids)) == records, table


def test_second_run_waits_its_turn(start_emulator, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=300, collections=COLLECTIONS))
    emulator.faults = Faults(latency_seconds=0.1)
    env = cli_env(emulator, tmp_path)

    first = start_cli_run(env, tmp_path / "first.log")
    time.sleep(0.5)
    second = start_cli_run(env, tmp_path / "second.log")

    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert second.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    logs = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
    assert "Step blocked by limit for pool crm_duckdb" in logs
    assert_complete(tmp_path / "warehouse.duckdb", 300)


def test_locked_file_fails_clearly(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    database = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(database)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(database)!r}); print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        result = materialize(instance, crm_resources(emulator, database))
    finally:
        holder.kill()
        holder.wait()

    assert not result.success
    message = failure_message(result)
    assert f"The DuckDB file {database} is locked by another process (PID {holder.pid})" in message
    assert "credentials" not in message.lower()


def wait_for_load_stage(pipelines_dir: Path, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until dlt has normalized packages waiting to load, i.e. the load stage began."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        normalized = pipelines_dir / "crm" / "load" / "normalized"
        if normalized.exists() and any(normalized.iterdir()):
            return True
        time.sleep(0.005)
    return False


def test_killed_run_then_rerun_complete(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=3000, collections=COLLECTIONS))
    env = cli_env(emulator, tmp_path)
    database = tmp_path / "warehouse.duckdb"
    killed = start_cli_run(env, tmp_path / "killed.log")

    reached_load = wait_for_load_stage(tmp_path / "dlt", killed, timeout=240)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    # The rerun uses another Dagster instance: the killed run keeps its slot in the
    # `crm_duckdb` pool of its instance until run monitoring marks it failed.
    rerun = materialize(instance, crm_resources(emulator, database))

    assert reached_load, (tmp_path / "killed.log").read_text()[-3000:]
    assert killed.returncode == -signal.SIGKILL
    assert rerun.success, failure_message(rerun)
    assert_complete(database, 3000)


def warehouse_with_limit(database: Path, limit: str) -> CrmWarehouseResource:
    return CrmWarehouseResource(
        duckdb_path=str(database), pipelines_dir=str(database.parent / "dlt"), duckdb_memory_limit=limit
    )


def test_memory_limit_too_small_fails_clearly(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=300, collections=COLLECTIONS))
    database = tmp_path / "warehouse.duckdb"
    resources = {**crm_resources(emulator, database), "warehouse": warehouse_with_limit(database, "1MB")}

    result = materialize(instance, resources)

    assert not result.success
    message = failure_message(result)
    assert f"DuckDB ran out of memory while loading into {database} (CRM_DUCKDB_MEMORY_LIMIT=1MB)" in message
    assert "Raise CRM_DUCKDB_MEMORY_LIMIT" in message


@pytest.mark.parametrize("value", ["lots", "512", "1 PB", "-5MB"])
def test_memory_limit_typo_rejected(start_emulator, instance, tmp_path: Path, value: str):
    emulator = start_emulator(synthetic_store(records=3, collections=COLLECTIONS))
    database = tmp_path / "warehouse.duckdb"
    resources = {**crm_resources(emulator, database), "warehouse": warehouse_with_limit(database, value)}

    result = materialize(instance, resources)

    assert not result.success
    assert f"CRM_DUCKDB_MEMORY_LIMIT={value!r} is invalid: use a number and a unit" in failure_message(result)
