"""Dagster resources: the CRM connection (secrets from the environment) and the warehouse."""

import os
import re
from pathlib import Path
from typing import Any

import dagster as dg
import dlt
from dlt.common.pipeline import SupportsPipeline
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from pydantic import Field

from crm_assets.arrow_pages import ARROW_ROW_SETTINGS
from crm_assets.settings import MAX_PAGE_SIZE, CrmConnection, RetrySettings, build_connection

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DUCKDB_PATH = PROJECT_DIR / ".local" / "warehouse.duckdb"
PIPELINE_NAME = "crm"
DEFAULT_DESTINATION = "duckdb"
# DuckDB spills work beyond the limit to a temporary folder next to the database file.
# With 128MB, a test merge of 6,000,000 rows of 10 columns into one table took 20 s.
# With 64MB, a merge of 2,000,000 such rows failed with an out-of-memory error.
DEFAULT_DUCKDB_MEMORY_LIMIT = "128MB"
# The units DuckDB's `memory_limit` takes: bytes, or K, M, G, T with an optional `iB` or `B`.
MEMORY_LIMIT_PATTERN = re.compile(r"\d+(\.\d+)?\s*([KMGT](iB|B)?|B)", re.IGNORECASE)
PROGRESS_LOG_SECONDS = 10.0


def _env_float(name: str, default: float) -> float:
    """Read a number from the environment at run time; an invalid one fails the run."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise dg.Failure(f"{name}={raw!r} is invalid: expected a number (see the README).") from None


def retry_settings_from_env() -> RetrySettings:
    """Read the retry settings from `CRM_*` variables at run time, defaults otherwise."""
    defaults = RetrySettings()
    return RetrySettings(
        max_attempts=int(_env_float("CRM_MAX_ATTEMPTS", defaults.max_attempts)),
        backoff_base=_env_float("CRM_BACKOFF_BASE", defaults.backoff_base),
        backoff_max=_env_float("CRM_BACKOFF_MAX", defaults.backoff_max),
        retry_after_min=_env_float("CRM_RETRY_AFTER_MIN", defaults.retry_after_min),
        retry_after_max=_env_float("CRM_RETRY_AFTER_MAX", defaults.retry_after_max),
        timeout=_env_float("CRM_REQUEST_TIMEOUT", defaults.timeout),
    )


class CrmApiResource(dg.ConfigurableResource):
    """Address and credentials of one CRM space, filled from `CRM_*` variables with `EnvVar`."""

    api_url: str | None = Field(default=None, description="API root, e.g. https://eu-central.api.example.com")
    space_id: str | None = Field(default=None, description="The CRM space to read.")
    username: str | None = Field(default=None, description="The space's API token.")
    password: str | None = Field(default=None, description="The space's API secret.")
    page_size: int | None = Field(
        default=None, description="Records per request, 1 to 100; default CRM_PAGE_SIZE, else 100."
    )

    def connection(self) -> CrmConnection:
        """Validate the settings; raises naming every missing or invalid one."""
        page_size = self.page_size or int(_env_float("CRM_PAGE_SIZE", MAX_PAGE_SIZE))
        return build_connection(self.api_url, self.space_id, self.username, self.password, page_size)


def configured_destination() -> str:
    """Return the dlt destination named by `CRM_DESTINATION` (default `duckdb`)."""
    return (os.environ.get("CRM_DESTINATION") or DEFAULT_DESTINATION).strip().lower()


class CrmWarehouseResource(dg.ConfigurableResource):
    """Destination of the CRM tables: a dlt destination and dataset (DuckDB by default).

    Destinations other than DuckDB take their credentials from dlt's own environment
    variables, e.g. `DESTINATION__POSTGRES__CREDENTIALS`.
    """

    destination: str | None = Field(
        default=None, description="dlt destination name; default CRM_DESTINATION, else duckdb."
    )
    duckdb_path: str | None = Field(
        default=None,
        description="DuckDB file; default CRM_DUCKDB_PATH, else .local/warehouse.duckdb in the project folder.",
    )
    pipelines_dir: str | None = Field(
        default=None, description="dlt working folder; default CRM_PIPELINES_DIR, else dlt_pipelines next to the DuckDB file."
    )
    dataset_name: str = Field(default="crm", description="Schema (dlt dataset) of the CRM tables.")
    duckdb_memory_limit: str | None = Field(
        default=None,
        description=(
            "DuckDB's memory limit while loading, e.g. 512MB; default CRM_DUCKDB_MEMORY_LIMIT, "
            f"else {DEFAULT_DUCKDB_MEMORY_LIMIT}. DuckDB spills larger work to disk."
        ),
    )

    def destination_name(self) -> str:
        return (self.destination or configured_destination()).strip().lower()

    def is_duckdb(self) -> bool:
        return self.destination_name() == "duckdb"

    def duckdb_file(self) -> Path:
        """Return the absolute DuckDB path, the same whatever the working directory."""
        configured = self.duckdb_path or os.environ.get("CRM_DUCKDB_PATH")
        path = Path(configured).expanduser() if configured else DEFAULT_DUCKDB_PATH
        return path if path.is_absolute() else (PROJECT_DIR / path).resolve()

    def working_dir(self) -> Path:
        configured = self.pipelines_dir or os.environ.get("CRM_PIPELINES_DIR")
        return Path(configured).expanduser().resolve() if configured else self.duckdb_file().parent / "dlt_pipelines"

    def location(self) -> str:
        """Describe where the tables land, for logs and messages; never includes credentials."""
        if self.is_duckdb():
            return str(self.duckdb_file())
        return f"{self.destination_name()} dataset {self.dataset_name}"

    def build_pipeline(self, pipeline_name: str = PIPELINE_NAME) -> SupportsPipeline:
        return dlt.pipeline(
            pipeline_name=pipeline_name,
            pipelines_dir=str(self.working_dir()),
            destination=self.destination_factory(),
            dataset_name=self.dataset_name,
            # dlt's progress (rows, rates, memory) goes to the run's stdout every 10 seconds.
            progress=dlt.progress.log(log_period=PROGRESS_LOG_SECONDS),
        )

    def destination_factory(self) -> Any:
        """Return the dlt destination: its name, or for DuckDB a factory with the file and memory limit."""
        if not self.is_duckdb():
            return self.destination_name()
        database = self.duckdb_file()
        if database.stem == self.dataset_name:
            # DuckDB names the catalog after the file, and a catalog named like the schema
            # makes `crm.<table>` ambiguous in every query.
            raise dg.Failure(
                f"CRM_DUCKDB_PATH={database} is invalid: the file name must differ from the "
                f"schema name {self.dataset_name!r}. Rename it, e.g. to {database.with_stem('warehouse')}."
            )
        database.parent.mkdir(parents=True, exist_ok=True)
        credentials = DuckDbCredentials(
            str(database), global_config={"memory_limit": self.memory_limit()}
        )
        return dlt.destinations.duckdb(credentials=credentials)

    def memory_limit(self) -> str:
        """Return DuckDB's memory limit, checked so that a typo fails before the sync starts."""
        value = (
            self.duckdb_memory_limit
            or os.environ.get("CRM_DUCKDB_MEMORY_LIMIT")
            or DEFAULT_DUCKDB_MEMORY_LIMIT
        ).strip()
        if not MEMORY_LIMIT_PATTERN.fullmatch(value):
            raise dg.Failure(
                f"CRM_DUCKDB_MEMORY_LIMIT={value!r} is invalid: use a number and a unit, "
                "e.g. 128MB, 512MiB, 512M or 2GB."
            )
        return value

    def run_settings(self) -> dict[str, str]:
        """Return the dlt settings of a sync, which are set in the environment while it runs."""
        settings = dict(ARROW_ROW_SETTINGS)
        if self.is_duckdb():
            # One DuckDB file takes one writer at a time. In the benchmark, loading the
            # tables one after another took as long as loading them in parallel and
            # lowered the peak memory by about 80 MB.
            settings["LOAD__WORKERS"] = "1"
        return settings
