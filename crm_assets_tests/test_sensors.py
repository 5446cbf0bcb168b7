"""The run-failure sensor: one summary per failed CRM run, posted to a webhook on 127.0.0.1."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from crm_assets.definitions import defs
from crm_assets.emulator import synthetic_store
from crm_assets.sensors import crm_run_failure_sensor

from .conftest import PASSWORD, crm_resources, materialize

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")


class AlertReceiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (the name http.server requires)
        length = int(self.headers["Content-Length"])
        self.received.append({"content_type": self.headers["Content-Type"], "body": self.rfile.read(length)})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    AlertReceiver.received = []
    server = HTTPServer(("127.0.0.1", 0), AlertReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", AlertReceiver.received
    server.shutdown()
    server.server_close()


def evaluate_failure_sensor(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="crm_run_failure_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    ).for_run_failure()
    crm_run_failure_sensor(context)


def test_failed_run_posts_summary(receiver, start_emulator, instance, tmp_path: Path, monkeypatch):
    url, received = receiver
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", url)
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    emulator.forbidden_collections = {"Activities"}
    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"))
    assert not result.success

    evaluate_failure_sensor(instance, result)

    assert len(received) == 1
    assert received[0]["content_type"] == "application/json"
    body = json.loads(received[0]["body"])
    assert set(body) == {"text"}
    assert body["text"] == (
        f"CRM sync failed (run {result.run_id}): "
        "1 CRM collection(s) failed: Activities. Loaded: Accounts, Clients, Contacts, Entities."
    )
    assert PASSWORD not in received[0]["body"].decode()


def test_no_webhook_no_post(receiver, start_emulator, instance, tmp_path: Path, monkeypatch):
    url, received = receiver
    monkeypatch.delenv("CRM_ALERT_WEBHOOK_URL", raising=False)
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    emulator.forbidden_collections = {"Accounts"}
    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"), selection="crm/accounts")
    assert not result.success

    evaluate_failure_sensor(instance, result)

    assert received == []


def test_unreachable_webhook_does_not_raise(start_emulator, instance, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/unreachable")
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    emulator.forbidden_collections = {"Accounts"}
    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"), selection="crm/accounts")

    evaluate_failure_sensor(instance, result)


def test_sensors_and_schedule_listed():
    repository = defs.get_repository_def()

    assert {sensor.name for sensor in repository.sensor_defs} == {"crm_freshness_sensor", "crm_run_failure_sensor"}
    assert {schedule.name for schedule in repository.schedule_defs} == {"crm_sync_schedule"}
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {"id_unique_not_null", "no_type_drift", "known_columns_typed", "not_empty", "freshness_check"}
