"""Helpers of the web UI test: `dagster dev` on 127.0.0.1, its GraphQL API and headless Chromium.

`python -m crm_assets_tests.ui_support` regenerates the README screenshot
docs/images/asset-graph.png with the same setup as crm_assets_tests/test_ui.py: the CRM
emulator, `dagster dev`, one run of crm_sync_job, then the asset graph of the `crm` group.
"""

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from dotenv import dotenv_values
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from crm_assets.emulator import CrmEmulator, synthetic_store
from crm_assets.resources import PROJECT_DIR

DAGSTER = str(Path(sys.executable).parent / "dagster")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LOCATION_NAME = "crm_assets"
# The repository name Dagster gives the `Definitions` object of a code location.
REPOSITORY_NAME = "__repository__"
# The lineage tab of the `crm` asset group, the page that the group's "Lineage" link opens.
ASSET_GRAPH_PATH = f"/locations/{LOCATION_NAME}/asset-groups/crm/lineage"
README_SCREENSHOT = PROJECT_DIR / "docs" / "images" / "asset-graph.png"
# 1200 x 1320 px fits the five asset nodes, stacked top to bottom at 100 % zoom, with
# their status rows readable. The PNG was 128 KB with Dagster 1.13.27.
README_VIEWPORT = (1200, 1320)

UI_START_TIMEOUT = 180.0
UI_STOP_TIMEOUT = 30.0
GRAPHQL_TIMEOUT = 30.0
RUN_TIMEOUT = 300.0
PAGE_TIMEOUT = 60.0
FINISHED_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
# How an asset node of the graph shows that all five of its checks passed.
ALL_CHECKS_PASSED_TEXT = "5 / 5 Passed"

# Chromium flags: headless, no sandbox (the tests run as root), and no connection of its
# own to any host. The resolver rule makes every host name except 127.0.0.1 unresolvable,
# so a link or script of the UI that names an outside host cannot load.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

# `dagster dev` turns SIGTERM into SIGINT, and Python leaves SIGINT ignored when it starts
# with SIGINT ignored, as a background job of a non-interactive shell does. This launcher
# restores the default handling of both signals, then replaces itself with `dagster dev`
# under the same process id.
RESET_SIGNALS_AND_EXEC = (
    "import os, signal, sys; "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)

# The one code location with its jobs, schedules, sensors, assets and asset checks.
WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message }
          ... on RepositoryLocation {
            repositories {
              name
              jobs { name }
              schedules { name pipelineName scheduleState { status } }
              sensors { name sensorType sensorState { status } }
              assetNodes {
                assetKey { path }
                groupName
                assetChecksOrError {
                  __typename
                  ... on AssetChecks { checks { name } }
                }
              }
            }
          }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""

# One page of a run's event log: materializations, check evaluations and failures.
RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!, $afterCursor: String) {
  logsForRun(runId: $runId, afterCursor: $afterCursor, limit: 500) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MaterializationEvent { assetKey { path } }
        ... on AssetCheckEvaluationEvent {
          evaluation { assetKey { path } checkName success severity }
        }
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
      }
    }
    ... on Error { message }
  }
}
"""

# Marks the first-visit "Join the Dagster community" dialog as seen for this instance, so
# that it does not cover the page in a screenshot.
SET_NUX_SEEN_MUTATION = "mutation SetNuxSeen { setNuxSeen }"

# In Dagster 1.13 each asset node of the lineage graph is an SVG foreignObject whose label
# carries the asset name in `data-tooltip`. The script returns one entry per rendered node.
ASSET_NODES_SCRIPT = """
return Array.from(document.querySelectorAll('svg foreignObject')).map((node) => {
  const label = node.querySelector('[data-tooltip]');
  return {
    name: label ? label.getAttribute('data-tooltip') : '',
    text: node.textContent,
    links: Array.from(node.querySelectorAll('a[href]')).map((link) => link.getAttribute('href')),
  };
});
"""


class GraphQLError(RuntimeError):
    """Error list or failure result returned by the webserver for a GraphQL request."""


@dataclass
class DagsterUi:
    """A running `dagster dev`: its process, port and combined output log."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one GraphQL request and return its `data`.

        Raises GraphQLError if the response lists errors, and requests.HTTPError on an HTTP error status.
        """
        response = requests.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=GRAPHQL_TIMEOUT,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            messages = "; ".join(error.get("message", str(error)) for error in body["errors"])
            raise GraphQLError(f"GraphQL request failed: {messages}")
        return body["data"]

    def log_tail(self, characters: int = 4000) -> str:
        """Return the end of the `dagster dev` output, for failure messages."""
        if not self.log_path.exists():
            return "(no output)"
        return self.log_path.read_text(errors="replace")[-characters:]


def missing_browser_message() -> str | None:
    """Return why the browser test cannot run, or None when Chromium and chromedriver exist."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return None
    return (
        f"Missing {' and '.join(missing)}, which the web UI test needs. Run `.ci/run` as root, or "
        "install Debian's packages: apt-get install -y --no-install-recommends chromium chromium-driver"
    )


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_project_env_file() -> None:
    """Raise RuntimeError if the project's .env file would override the UI's settings.

    `dagster dev` loads `.env` from its working folder over the environment it was given,
    so a developer's CRM_API_URL there would send the run to that CRM, not the emulator.
    """
    env_file = PROJECT_DIR / ".env"
    if not env_file.exists():
        return
    names = dotenv_values(env_file)
    overridden = sorted(name for name in names if name.startswith("CRM_") or name == "DAGSTER_HOME")
    if overridden:
        raise RuntimeError(
            f"{env_file} sets {', '.join(overridden)}, which `dagster dev` would use instead of the "
            "test settings. Move the file away while the web UI test runs."
        )


def ui_env(folder: Path, api_url: str, space_id: str, username: str, password: str) -> dict[str, str]:
    """Return the environment of `dagster dev`: an instance, a warehouse and dlt folder under `folder`."""
    home = folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_DIR / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("CRM_")},
        "DAGSTER_HOME": str(home),
        "CRM_API_URL": api_url,
        "CRM_SPACE_ID": space_id,
        "CRM_USERNAME": username,
        "CRM_PASSWORD": password,
        "CRM_DUCKDB_PATH": str(folder / "warehouse.duckdb"),
        "CRM_PIPELINES_DIR": str(folder / "dlt_pipelines"),
    }


@contextmanager
def running_dagster_ui(env: dict[str, str], log_path: Path) -> Iterator[DagsterUi]:
    """Start `dagster dev` on 127.0.0.1 and a free port, wait until the code location is loaded.

    The process and its children (webserver, daemon, code server, run workers) share a new
    session, so leaving the block stops them all, also when the block raises.
    """
    check_project_env_file()
    port = free_port()
    command = [
        sys.executable, "-c", RESET_SIGNALS_AND_EXEC,
        DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    ui = DagsterUi(process=process, port=port, log_path=log_path)
    try:
        wait_until_loaded(ui, UI_START_TIMEOUT)
        yield ui
    finally:
        stop_process_group(process, UI_STOP_TIMEOUT)


def wait_until_loaded(ui: DagsterUi, timeout: float) -> None:
    """Poll /server_info, then the workspace, until the code location is loaded.

    Raises RuntimeError if `dagster dev` exits, the code location fails to load, or the
    timeout (seconds) passes.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            raise RuntimeError(
                f"`dagster dev` exited with status {ui.process.returncode} before the UI was ready. "
                f"Output:\n{ui.log_tail()}"
            )
        if _location_loaded(ui):
            return
        time.sleep(1.0)
    raise RuntimeError(
        f"The Dagster UI at {ui.base_url} did not load the code location within {timeout:g} s. "
        f"Output:\n{ui.log_tail()}"
    )


def _location_loaded(ui: DagsterUi) -> bool:
    try:
        requests.get(f"{ui.base_url}/server_info", timeout=5).raise_for_status()
        workspace = ui.graphql(WORKSPACE_QUERY)["workspaceOrError"]
    except (requests.ConnectionError, requests.Timeout, requests.HTTPError):
        return False
    if workspace["__typename"] != "Workspace":
        return False
    for entry in workspace["locationEntries"]:
        if entry["name"] != LOCATION_NAME or entry["loadStatus"] != "LOADED":
            continue
        location = entry["locationOrLoadError"]
        if location and location["__typename"] == "PythonError":
            raise RuntimeError(f"The code location {LOCATION_NAME} failed to load: {location['message']}")
        return location is not None
    return False


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Send SIGTERM to the process group of `process`, then SIGKILL to what is left after `timeout` s."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(group):
        process.poll()
        time.sleep(0.2)
    if _group_alive(group):
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=timeout)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def launch_job(ui: DagsterUi, job_name: str) -> str:
    """Launch a job of the code location with the `launchRun` mutation and return the run id."""
    selector = {
        "repositoryLocationName": LOCATION_NAME,
        "repositoryName": REPOSITORY_NAME,
        "jobName": job_name,
    }
    result = ui.graphql(LAUNCH_RUN_MUTATION, {"executionParams": {"selector": selector}})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise GraphQLError(f"Launching {job_name} failed with {result['__typename']}: {result}")
    return result["run"]["runId"]


def wait_for_run(ui: DagsterUi, run_id: str, timeout: float) -> str:
    """Poll the run's status until it finishes or `timeout` s pass, and return the last status."""
    deadline = time.monotonic() + timeout
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        run = ui.graphql(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        if run["__typename"] != "Run":
            raise GraphQLError(f"Run {run_id} not found: {run}")
        status = run["status"]
        if status in FINISHED_RUN_STATUSES:
            return status
        time.sleep(1.0)
    return status


def run_events(ui: DagsterUi, run_id: str) -> list[dict[str, Any]]:
    """Return every event of the run's event log, oldest first, following the cursor."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = ui.graphql(RUN_EVENTS_QUERY, {"runId": run_id, "afterCursor": cursor})["logsForRun"]
        if page["__typename"] != "EventConnection":
            raise GraphQLError(f"Reading the event log of run {run_id} failed: {page}")
        events.extend(page["events"])
        if not page["hasMore"]:
            return events
        cursor = page["cursor"]


def failure_messages(events: list[dict[str, Any]]) -> str:
    """Return the step and run failure messages among `events`, one per line."""
    lines = []
    for event in events:
        if event["__typename"] == "ExecutionStepFailureEvent" and event.get("error"):
            lines.append(f"{event['stepKey']}: {event['error']['message']}")
        elif event["__typename"] == "RunFailureEvent":
            lines.append(event["message"])
    return "\n".join(lines) or "(no failure event)"


def start_chromium(profile_dir: Path, width: int, height: int, log_path: Path) -> webdriver.Chrome:
    """Start Debian's headless Chromium through chromedriver with a viewport of width x height px."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    # An explicit driver path keeps Selenium from running Selenium Manager, which downloads drivers.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER), log_output=str(log_path)), options=options)
    # In headless mode the window size includes the browser's own bars, so the page gets
    # less height than requested. The device metrics override sets the page viewport itself.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def asset_nodes(driver: webdriver.Chrome) -> dict[str, dict[str, Any]]:
    """Return the rendered asset nodes of the lineage graph by asset name."""
    return {node["name"]: node for node in driver.execute_script(ASSET_NODES_SCRIPT)}


def node_shows_run(node: dict[str, Any] | None, run_id: str) -> bool:
    """Return whether an asset node links to `run_id` and shows all of its checks as passed."""
    if node is None:
        return False
    links_to_run = any(link.startswith(f"/runs/{run_id}") for link in node["links"])
    return links_to_run and ALL_CHECKS_PASSED_TEXT in node["text"]


def wait_for_asset_nodes(
    driver: webdriver.Chrome, names: list[str], run_id: str, timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll the graph until every named node shows `run_id` or `timeout` s pass, and return the last nodes."""
    deadline = time.monotonic() + timeout
    nodes: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        nodes = asset_nodes(driver)
        if all(node_shows_run(nodes.get(name), run_id) for name in names):
            return nodes
        time.sleep(0.5)
    return nodes


def png_size(path: Path) -> tuple[int, int]:
    """Return (width, height) of a PNG file. Raises ValueError if the file is not a PNG."""
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file.")
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def capture_readme_screenshot(output: Path, width: int, height: int) -> int:
    """Sync the emulator's data through the UI, save the `crm` asset graph and return its size in bytes."""
    asset_names = ["accounts", "activities", "clients", "contacts", "entities"]
    credentials = {"space_id": "demo-space", "username": "demo-token", "password": "demo-secret"}
    emulator = CrmEmulator(synthetic_store(records=50), port=0, **credentials)
    with emulator, tempfile.TemporaryDirectory(prefix="crm-ui-") as folder_name:
        folder = Path(folder_name)
        env = ui_env(folder, emulator.url, **credentials)
        with running_dagster_ui(env, folder / "dagster_dev.log") as ui:
            ui.graphql(SET_NUX_SEEN_MUTATION)
            run_id = launch_job(ui, "crm_sync_job")
            status = wait_for_run(ui, run_id, RUN_TIMEOUT)
            if status != "SUCCESS":
                failures = failure_messages(run_events(ui, run_id))
                raise RuntimeError(f"Run {run_id} of crm_sync_job ended {status}:\n{failures}")
            driver = start_chromium(folder / "chromium_profile", width, height, folder / "chromedriver.log")
            try:
                driver.get(ui.base_url + ASSET_GRAPH_PATH)
                nodes = wait_for_asset_nodes(driver, asset_names, run_id, PAGE_TIMEOUT)
                missing = [name for name in asset_names if not node_shows_run(nodes.get(name), run_id)]
                if missing:
                    names = ", ".join(missing)
                    raise RuntimeError(f"The asset graph did not show run {run_id} for {names}.")
                output.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(output))
            finally:
                driver.quit()
    return output.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=README_SCREENSHOT, help="PNG file to write.")
    width, height = README_VIEWPORT
    parser.add_argument("--width", type=int, default=width, help="Viewport width in CSS pixels.")
    parser.add_argument("--height", type=int, default=height, help="Viewport height in CSS pixels.")
    arguments = parser.parse_args()
    problem = missing_browser_message()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    size = capture_readme_screenshot(arguments.output, arguments.width, arguments.height)
    print(f"Saved {arguments.output} ({size:,} bytes).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
