"""Faults a real CRM API throws: each ends in complete tables or a clear failure, losing nothing."""

import threading
import time
from pathlib import Path

import pytest

from crm_assets.emulator import Faults, synthetic_store
from crm_assets.errors import CrmTransportError
from crm_assets.http import CrmClient, CrmSession
from crm_assets.settings import RetrySettings, build_connection

from .conftest import PASSWORD, SPACE_ID, USERNAME, crm_resources, failure_message, materialize, table_count, table_ids

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")
TABLES = ["accounts", "activities", "clients", "contacts", "entities"]


@pytest.fixture
def fast_retries(monkeypatch):
    """Short waits so that retry tests take seconds; the rules under test stay the same."""
    monkeypatch.setenv("CRM_BACKOFF_BASE", "0.05")
    monkeypatch.setenv("CRM_BACKOFF_MAX", "0.2")
    monkeypatch.setenv("CRM_RETRY_AFTER_MIN", "0.5")
    monkeypatch.setenv("CRM_RETRY_AFTER_MAX", "2")


def test_retry_after_zero_still_waits(start_emulator, instance, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CRM_RETRY_AFTER_MIN", "1")
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    emulator.faults = Faults(rate_limit_first=2, rate_limit_retry_after="0")
    database = tmp_path / "warehouse.duckdb"

    started = time.monotonic()
    result = materialize(instance, crm_resources(emulator, database), selection="crm/accounts")
    elapsed = time.monotonic() - started

    assert result.success, failure_message(result)
    assert [request.status for request in emulator.requests] == [429, 429, 200]
    times = [request.recorded for request in emulator.requests]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert min(gaps) >= 1.0, gaps
    assert elapsed >= 2.0
    assert table_count(database, "accounts") == 5
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["crm/retries"].value == 2


def test_long_retry_after_fails_clearly(start_emulator, instance, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CRM_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("CRM_RETRY_AFTER_MAX", "0.5")
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    emulator.faults = Faults(rate_limit_every=1, rate_limit_retry_after="3600")

    started = time.monotonic()
    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"), selection="crm/accounts")

    assert not result.success
    assert time.monotonic() - started < 60
    message = failure_message(result)
    assert "Accounts" in message
    assert "rate limiting (HTTP 429)" in message
    assert "'3600'" in message
    assert "CRM_RETRY_AFTER_MAX" in message


def test_stalled_endpoint_times_out(start_emulator, instance, tmp_path: Path, monkeypatch, fast_retries):
    monkeypatch.setenv("CRM_REQUEST_TIMEOUT", "0.5")
    monkeypatch.setenv("CRM_MAX_ATTEMPTS", "3")
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    emulator.faults = Faults(stall_seconds=3.0)

    started = time.monotonic()
    result = materialize(instance, crm_resources(emulator, tmp_path / "warehouse.duckdb"), selection="crm/clients")

    assert not result.success
    assert time.monotonic() - started < 60
    message = failure_message(result)
    assert "Collection Clients" in message
    assert "timed out after 0.5 s" in message
    assert "3 attempts" in message


PROTOCOL_FAULTS = [
    pytest.param(Faults(malformed_at={2}), "page 2 is invalid: the body is not JSON", id="truncated-json"),
    pytest.param(Faults(html_at={1}), "page 1 is invalid: the body is not JSON (text/html", id="html-page"),
    pytest.param(Faults(missing_page_info_at={2}), "page 2 is invalid: the `page_info` object is missing", id="no-page-info"),
    pytest.param(Faults(missing_data_at={3}), "page 3 is invalid: the `data` list is missing", id="no-data"),
    pytest.param(Faults(has_next_as_string=True), "page 1 is invalid: `page_info.has_next_page` is 'true'", id="string-flag"),
    pytest.param(Faults(repeat_cursor=True), "page 2 is invalid: `end_cursor` repeats", id="repeated-cursor"),
    pytest.param(Faults(missing_cursor_at={1}), "page 1 is invalid: `has_next_page` is true but `end_cursor` is missing", id="no-cursor"),
]


@pytest.mark.parametrize("faults, expected", PROTOCOL_FAULTS)
def test_protocol_fault_fails_loudly(faults, expected, start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=250, collections=COLLECTIONS))
    emulator.faults = faults
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database), selection="crm/accounts")

    assert not result.success
    message = failure_message(result)
    assert "Collection Accounts" in message
    assert expected in message
    assert len(emulator.requests) <= 3
    assert result.get_asset_materialization_events() == []


def test_not_found_space_message(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=1, collections=COLLECTIONS))
    resources = crm_resources(emulator, tmp_path / "warehouse.duckdb", space_id="no-such-space")

    result = materialize(instance, resources, selection="crm/accounts")

    assert not result.success
    message = failure_message(result)
    assert "HTTP 404" in message
    assert f"{emulator.url}/api/v100/rest/spaces/no-such-space/entities/Accounts" in message
    assert "CRM_SPACE_ID" in message


def test_forbidden_collection_spares_others(start_emulator, instance, tmp_path: Path):
    emulator = start_emulator(synthetic_store(records=120, collections=COLLECTIONS))
    emulator.forbidden_collections = {"Activities"}
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database))

    assert not result.success
    message = failure_message(result)
    assert "1 CRM collection(s) failed: Activities. Loaded: Accounts, Clients, Contacts, Entities." in message
    assert "HTTP 403" in message
    materialized = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    assert materialized == {"accounts", "clients", "contacts", "entities"}
    for table in materialized:
        assert table_count(database, table) == 120, table


def test_failed_run_keeps_previous_rows(start_emulator, instance, tmp_path: Path):
    store = synthetic_store(records=250, collections=COLLECTIONS)
    emulator = start_emulator(store)
    database = tmp_path / "warehouse.duckdb"
    resources = crm_resources(emulator, database)
    assert materialize(instance, resources).success
    before = {table: table_ids(database, table) for table in TABLES}

    emulator.faults = Faults(html_at={4})
    failed = materialize(instance, resources)

    assert not failed.success
    for table in TABLES:
        assert table_ids(database, table) == before[table], table


def test_fault_matrix_exact_counts(start_emulator, instance, tmp_path: Path, fast_retries):
    emulator = start_emulator(synthetic_store(records=1000, collections=COLLECTIONS))
    emulator.faults = Faults(rate_limit_every=7, rate_limit_retry_after="1", server_error_every=11)
    database = tmp_path / "warehouse.duckdb"

    result = materialize(instance, crm_resources(emulator, database))

    assert result.success, failure_message(result)
    statuses = [request.status for request in emulator.requests]
    assert statuses.count(429) > 0
    assert statuses.count(500) > 0
    assert statuses.count(200) == 50
    for table in TABLES:
        assert table_count(database, table) == 1000, table
        assert len(set(table_ids(database, table))) == 1000, table
    retries = sum(
        event.materialization.metadata["crm/retries"].value for event in result.get_asset_materialization_events()
    )
    assert retries == statuses.count(429) + statuses.count(500)


def test_closed_session_stops_retrying(start_emulator):
    emulator = start_emulator(synthetic_store(records=5, collections=COLLECTIONS))
    emulator.faults = Faults(server_error_every=1)
    session = CrmSession(RetrySettings(max_attempts=6, backoff_base=5.0))
    client = CrmClient(build_connection(emulator.url, SPACE_ID, USERNAME, PASSWORD), session)
    errors: list[BaseException] = []

    def read_page() -> None:
        try:
            client.page("Accounts", {"first": 5})
        except CrmTransportError as error:
            errors.append(error)

    reader = threading.Thread(target=read_page)
    reader.start()
    time.sleep(0.5)
    session.close()
    reader.join(timeout=2)

    assert not reader.is_alive()
    assert [str(error) for error in errors] == [
        "Collection Accounts: the sync ended while a request waited to be retried after HTTP 500."
    ]
    assert len(emulator.requests) == 1
