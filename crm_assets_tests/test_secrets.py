"""The password and its Basic header appear nowhere: output, event log, metadata, files."""

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from crm_assets.emulator import CrmEmulator, synthetic_store
from crm_assets.resources import PROJECT_DIR

SPECIAL_PASSWORD = "p@ss:wörd€ #%${HOME}x"
USERNAME = "token@with%chars€"
COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")


def basic_header(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def run_materialize(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT_DIR / "deploy" / "dagster.yaml", home / "dagster.yaml")
    base = {name: value for name, value in os.environ.items() if not name.startswith("CRM_")}
    dagster = Path(sys.executable).parent / "dagster"
    return subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "crm_assets.definitions", "--select", "*"],
        env={
            **base,
            **env,
            "DAGSTER_HOME": str(home),
            "CRM_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
            "CRM_MAX_ATTEMPTS": "1",
        },
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stored_forms(secret: str) -> list[bytes]:
    """The byte forms a secret takes in files: UTF-8, JSON-escaped (Dagster's event log) and URL-encoded."""
    forms = {secret.encode(), json.dumps(secret)[1:-1].encode(), quote(secret, safe="").encode()}
    return sorted(forms)


def leaked_in_files(folder: Path, secrets: list[str]) -> list[str]:
    """Return the files under `folder` whose bytes contain any secret in any stored form."""
    encoded = [form for secret in secrets for form in stored_forms(secret)]
    return [
        str(path)
        for path in folder.rglob("*")
        if path.is_file() and any(secret in path.read_bytes() for secret in encoded)
    ]


@pytest.fixture
def emulator():
    with CrmEmulator(
        synthetic_store(records=120, collections=COLLECTIONS),
        space_id="space-1",
        username=USERNAME,
        password=SPECIAL_PASSWORD,
        port=0,
    ) as running:
        yield running


def test_special_password_byte_for_byte(emulator, tmp_path: Path):
    result = run_materialize(
        tmp_path,
        {"CRM_API_URL": emulator.url, "CRM_SPACE_ID": "space-1", "CRM_USERNAME": USERNAME, "CRM_PASSWORD": SPECIAL_PASSWORD},
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert {request.status for request in emulator.requests} == {200}
    secrets = [SPECIAL_PASSWORD, basic_header(USERNAME, SPECIAL_PASSWORD)]
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
    assert leaked_in_files(tmp_path, secrets) == []


@pytest.mark.parametrize(
    "case, settings, expected",
    [
        ("wrong-password", {"CRM_PASSWORD": "wrong-Secret-123"}, "HTTP 401"),
        ("forbidden", {"CRM_PASSWORD": SPECIAL_PASSWORD}, "HTTP 403"),
        ("credentials-in-url", {"CRM_PASSWORD": SPECIAL_PASSWORD, "url_userinfo": "1"}, "must not contain credentials"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_failures_never_leak_secrets(case, settings, expected, emulator, tmp_path: Path):
    password = settings["CRM_PASSWORD"]
    api_url = emulator.url
    if "url_userinfo" in settings:
        api_url = api_url.replace("http://", f"http://{USERNAME}:{password}@")
    if case == "forbidden":
        emulator.forbidden_collections = {"Activities"}

    result = run_materialize(
        tmp_path, {"CRM_API_URL": api_url, "CRM_SPACE_ID": "space-1", "CRM_USERNAME": USERNAME, "CRM_PASSWORD": password}
    )

    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    secrets = [password, basic_header(USERNAME, password)]
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr
    assert leaked_in_files(tmp_path, secrets) == []


def test_dotenv_password_without_interpolation(tmp_path: Path):
    from dagster._core.secrets.env_file import get_env_var_dict

    (tmp_path / ".env").write_text("CRM_PASSWORD='p@ss:wörd€ #%$HOME x'\n", encoding="utf-8")

    assert get_env_var_dict(str(tmp_path))["CRM_PASSWORD"] == "p@ss:wörd€ #%$HOME x"
