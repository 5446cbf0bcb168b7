"""Local runners: `demo` loads the sample data once, `dev` starts the web UI on the emulator.

Both start the emulator on a free loopback port with demo credentials, point the `CRM_*`
variables at it, and use a project-local Dagster instance in `.local/dagster_home`.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from crm_assets.resources import PROJECT_DIR, CrmWarehouseResource

DEMO_CREDENTIALS = {"CRM_SPACE_ID": "demo-space", "CRM_USERNAME": "demo-token", "CRM_PASSWORD": "demo-secret"}
EMULATOR_START_TIMEOUT = 60.0
# The dagster command of the environment that runs this module, not whichever one is on PATH.
DAGSTER = str(Path(sys.executable).parent / "dagster")


def dagster_home() -> Path:
    """Create the project-local Dagster instance folder with the shipped instance settings."""
    home = PROJECT_DIR / ".local" / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_DIR / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return home


@contextmanager
def running_emulator(dataset: str = "sample") -> Iterator[str]:
    """Start the emulator as a child process and yield its URL; stop it on exit."""
    with tempfile.TemporaryDirectory() as folder:
        ready_file = Path(folder) / "url"
        command = [
            sys.executable, "-m", "crm_assets.emulator", "--port", "0", "--dataset", dataset,
            "--space-id", DEMO_CREDENTIALS["CRM_SPACE_ID"], "--username", DEMO_CREDENTIALS["CRM_USERNAME"],
            "--ready-file", str(ready_file),
        ]
        env = {**os.environ, "CRM_EMULATOR_PASSWORD": DEMO_CREDENTIALS["CRM_PASSWORD"]}
        process = subprocess.Popen(command, env=env)
        try:
            yield _wait_for_url(process, ready_file)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_for_url(process: subprocess.Popen[bytes], ready_file: Path) -> str:
    deadline = time.monotonic() + EMULATOR_START_TIMEOUT
    while time.monotonic() < deadline:
        if ready_file.exists():
            return ready_file.read_text().strip()
        if process.poll() is not None:
            raise SystemExit(f"The CRM emulator exited with status {process.returncode} before it was ready.")
        time.sleep(0.1)
    raise SystemExit(f"The CRM emulator did not start within {EMULATOR_START_TIMEOUT:g} s.")


def local_env(api_url: str) -> dict[str, str]:
    return {**os.environ, **DEMO_CREDENTIALS, "CRM_API_URL": api_url, "DAGSTER_HOME": str(dagster_home())}


def print_row_counts(database: Path) -> None:
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'crm' and table_name not like '\\_dlt%' escape '\\' order by 1"
        ).fetchall()
        print(f"\nRows per table in {database}:")
        for (table,) in tables:
            (count,) = connection.execute(f'select count(*) from crm."{table}"').fetchone() or (0,)
            print(f"  crm.{table:<24} {count:>8,}")


def run_demo() -> int:
    with running_emulator() as api_url:
        command = [DAGSTER, "asset", "materialize", "-m", "crm_assets.definitions", "--select", "*"]
        result = subprocess.run(command, env=local_env(api_url), cwd=PROJECT_DIR)
    if result.returncode != 0:
        print("The demo materialization failed; the run log above names the cause.", file=sys.stderr)
        return result.returncode
    print_row_counts(CrmWarehouseResource().duckdb_file())
    return 0


def run_dev(port: int) -> int:
    with running_emulator() as api_url:
        print(f"CRM emulator at {api_url}; Dagster UI at http://127.0.0.1:{port}")
        command = [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
        try:
            return subprocess.run(command, env=local_env(api_url), cwd=PROJECT_DIR).returncode
        except KeyboardInterrupt:
            return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["demo", "dev"])
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port for `dev` (default 3000).")
    arguments = parser.parse_args()
    return run_demo() if arguments.command == "demo" else run_dev(arguments.port)


if __name__ == "__main__":
    raise SystemExit(main())
