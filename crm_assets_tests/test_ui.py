"""The web UI end to end: `dagster dev` on the emulator, GraphQL, one sync run, the asset graph."""

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from crm_assets.emulator import CrmEmulator, synthetic_store

from .conftest import PASSWORD, SPACE_ID, USERNAME
from .ui_support import (
    ASSET_GRAPH_PATH,
    PAGE_TIMEOUT,
    RUN_TIMEOUT,
    SET_NUX_SEEN_MUTATION,
    WORKSPACE_QUERY,
    DagsterUi,
    failure_messages,
    launch_job,
    missing_browser_message,
    node_shows_run,
    png_size,
    run_events,
    running_dagster_ui,
    start_chromium,
    ui_env,
    wait_for_asset_nodes,
    wait_for_run,
)

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")
TABLES = ["accounts", "activities", "clients", "contacts", "entities"]
ASSET_KEYS = [f"crm/{table}" for table in TABLES]
CHECK_NAMES = ["freshness_check", "id_unique_not_null", "known_columns_typed", "no_type_drift", "not_empty"]
JOB_NAMES = ["crm_full_refresh_job", "crm_sync_job"]
SENSOR_NAMES = ["crm_freshness_sensor", "crm_run_failure_sensor"]
VIEWPORT = (1400, 900)
RESOURCE_PATH = "/locations/crm_assets/resources/crm_api"


@pytest.fixture
def start_dagster_ui(start_emulator, tmp_path: Path) -> Iterator[Callable[[CrmEmulator], DagsterUi]]:
    """Start `dagster dev` against an emulator and stop its process group at teardown, pass or fail.

    The fixture depends on `start_emulator`, so pytest stops the UI before the emulator.
    """
    with ExitStack() as stack:

        def start(emulator: CrmEmulator) -> DagsterUi:
            env = ui_env(tmp_path, emulator.url, SPACE_ID, USERNAME, PASSWORD)
            return stack.enter_context(running_dagster_ui(env, tmp_path / "dagster_dev.log"))

        yield start


def load_repository(ui: DagsterUi) -> dict[str, Any]:
    """Return the code location's only repository as the webserver's workspace query reports it."""
    workspace = ui.graphql(WORKSPACE_QUERY)["workspaceOrError"]
    assert workspace["__typename"] == "Workspace", workspace
    entries = workspace["locationEntries"]
    assert [entry["name"] for entry in entries] == ["crm_assets"]
    location = entries[0]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    repositories = location["repositories"]
    assert len(repositories) == 1
    return repositories[0]


def basic_header(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def asset_key(event_asset_key: dict[str, list[str]]) -> str:
    return "/".join(event_asset_key["path"])


@pytest.mark.slow
def test_ui_syncs_and_shows_graph(start_emulator, start_dagster_ui, tmp_path: Path):
    # A missing browser fails the test, rather than skipping it, before the UI starts.
    problem = missing_browser_message()
    if problem:
        pytest.fail(problem, pytrace=False)
    crm_emulator = start_emulator(synthetic_store(records=50, collections=COLLECTIONS))
    dagster_ui = start_dagster_ui(crm_emulator)

    # The definitions that the webserver loaded.
    repository = load_repository(dagster_ui)
    # Dagster adds `__ASSET_JOB`, its implicit job of all assets, to a code location with assets.
    jobs = sorted(job["name"] for job in repository["jobs"] if not job["name"].startswith("__"))
    assert jobs == JOB_NAMES
    schedules = {schedule["name"]: schedule for schedule in repository["schedules"]}
    assert sorted(schedules) == ["crm_sync_schedule"]
    assert schedules["crm_sync_schedule"]["pipelineName"] == "crm_sync_job"
    assert schedules["crm_sync_schedule"]["scheduleState"]["status"] == "STOPPED"
    sensors = {sensor["name"]: sensor for sensor in repository["sensors"]}
    assert sorted(sensors) == SENSOR_NAMES
    for name in SENSOR_NAMES:
        assert sensors[name]["sensorState"]["status"] == "RUNNING", name
    asset_nodes = {asset_key(node["assetKey"]): node for node in repository["assetNodes"]}
    assert sorted(asset_nodes) == ASSET_KEYS
    for key, node in asset_nodes.items():
        assert node["groupName"] == "crm", key
        checks = node["assetChecksOrError"]
        assert checks["__typename"] == "AssetChecks", f"{key}: {checks}"
        assert sorted(check["name"] for check in checks["checks"]) == CHECK_NAMES, key

    # One run of crm_sync_job, launched with the `launchRun` mutation.
    run_id = launch_job(dagster_ui, "crm_sync_job")
    status = wait_for_run(dagster_ui, run_id, RUN_TIMEOUT)
    events = run_events(dagster_ui, run_id)
    assert status == "SUCCESS", (
        f"Run {run_id} ended {status}:\n{failure_messages(events)}\n{dagster_ui.log_tail()}"
    )
    materialized = sorted(
        asset_key(event["assetKey"]) for event in events if event["__typename"] == "MaterializationEvent"
    )
    assert materialized == ASSET_KEYS
    evaluations = [
        event["evaluation"] for event in events if event["__typename"] == "AssetCheckEvaluationEvent"
    ]
    assert len(evaluations) == len(ASSET_KEYS) * len(CHECK_NAMES)
    evaluated = sorted((asset_key(item["assetKey"]), item["checkName"]) for item in evaluations)
    assert evaluated == [(key, check) for key in ASSET_KEYS for check in CHECK_NAMES]
    failed = [
        (asset_key(item["assetKey"]), item["checkName"]) for item in evaluations if not item["success"]
    ]
    assert failed == []
    for collection in COLLECTIONS:
        requests_sent = crm_emulator.list_requests(collection)
        assert requests_sent, f"The run sent no request for {collection} to the emulator."

    # The asset graph of the `crm` group in headless Chromium.
    dagster_ui.graphql(SET_NUX_SEEN_MUTATION)
    screenshot = tmp_path / "asset_graph.png"
    driver = start_chromium(tmp_path / "chromium_profile", *VIEWPORT, tmp_path / "chromedriver.log")
    try:
        driver.get(dagster_ui.base_url + ASSET_GRAPH_PATH)
        graph_nodes = wait_for_asset_nodes(driver, TABLES, run_id, PAGE_TIMEOUT)
        saved = driver.save_screenshot(str(screenshot))
        graph_page = driver.page_source
        # The resource page shows the crm_api configuration: variable names, never values.
        driver.get(dagster_ui.base_url + RESOURCE_PATH)
        WebDriverWait(driver, PAGE_TIMEOUT).until(lambda browser: "CRM_PASSWORD" in browser.page_source)
        resource_page = driver.page_source
    finally:
        driver.quit()
    for text in (graph_page, resource_page, json.dumps(events), (tmp_path / "dagster_dev.log").read_text()):
        assert PASSWORD not in text
        assert basic_header(USERNAME, PASSWORD) not in text
    for name in TABLES:
        assert name in graph_nodes, f"No node {name} in the asset graph, only {sorted(graph_nodes)}."
        node = graph_nodes[name]
        assert node_shows_run(node, run_id), f"Node {name} does not show run {run_id}: {node['text']}"
    assert saved
    assert png_size(screenshot) == VIEWPORT
    assert 10_000 < screenshot.stat().st_size < 5_000_000
