"""Dagster assets for the CRM collections: one asset per entity-table row, via dagster-dlt."""

import re
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from crm_assets.entities import CRM_ENTITIES, CrmEntity, validate_entities
from crm_assets.errors import CrmApiError, CrmError
from crm_assets.http import CrmSession
from crm_assets.resources import CrmApiResource, CrmWarehouseResource, retry_settings_from_env
from crm_assets.settings import CrmConnection, RetrySettings
from crm_assets.source import SOURCE_NAME, crm_source, empty_table_resources
from dlt.destinations.exceptions import DatabaseUndefinedRelation

GROUP_NAME = "crm"
KEY_PREFIX = "crm"
# Concurrency pool of the sync step: the shipped instance settings allow one step at a time,
# because DuckDB allows one writing process per file.
DUCKDB_POOL = "crm_duckdb"
# Parquet load files are bulk-loaded by DuckDB; dlt's default insert statements take several
# times as long and as much memory for the same rows.
LOADER_FILE_FORMAT = "parquet"

# The asset specs are built from a source that is never run: each run builds the real one
# from the resources, so the code location loads with no address or secret set.
_SPEC_CONNECTION = CrmConnection(
    api_url="http://127.0.0.1", space_id="not-configured", username="", password=""
)


class CrmTranslator(DagsterDltTranslator):
    """Asset key `crm/<table>`, group `crm`, the entity's description, no upstream deps."""

    def __init__(self, entities: tuple[CrmEntity, ...]) -> None:
        self.entities = {entity.table_name: entity for entity in entities}

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        entity = self.entities[data.resource.name]
        return spec.replace_attributes(
            key=dg.AssetKey([KEY_PREFIX, entity.table_name]),
            group_name=GROUP_NAME,
            description=entity.description,
            deps=[],
            kinds={"dlt", "duckdb"},
            tags={"source": "crm-rest-api"},
            owners=["team:data-engineering"],
        )


def _spec_pipeline() -> dlt.Pipeline:
    """A pipeline object that only names the destination for the specs; nothing runs on it."""
    return dlt.pipeline(pipeline_name="crm_specs", destination="duckdb", dataset_name="crm")


def _root_crm_error(error: BaseException) -> CrmError | None:
    """Find the CrmError that dlt wrapped while running a pipeline step."""
    return next((item for item in _exception_chain(error) if isinstance(item, CrmError)), None)


def build_crm_assets(entities: tuple[CrmEntity, ...] = CRM_ENTITIES) -> dg.AssetsDefinition:
    """Build one subsettable multi-asset with one asset per entity."""
    validate_entities(entities)
    spec_source = crm_source(entities, _SPEC_CONNECTION, CrmSession(RetrySettings()))

    @dlt_assets(
        dlt_source=spec_source,
        dlt_pipeline=_spec_pipeline(),
        name=f"{SOURCE_NAME}_sync",
        dagster_dlt_translator=CrmTranslator(entities),
        pool=DUCKDB_POOL,
    )
    def crm_sync(
        context: dg.AssetExecutionContext,
        dlt: DagsterDltResource,
        crm_api: CrmApiResource,
        warehouse: CrmWarehouseResource,
    ) -> Iterator[Any]:
        try:
            connection = crm_api.connection()
        except CrmError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None

        pipeline = warehouse.build_pipeline()
        remaining = [entity for entity in entities if _asset_key(entity) in context.selected_asset_keys]
        failed: dict[str, str] = {}
        loaded: list[str] = []
        context.log.info(
            f"Syncing {len(remaining)} CRM collection(s) from {connection.api_url} "
            f"(space {connection.space_id}) into {warehouse.duckdb_file()}"
        )
        # dlt stops every collection's extraction when one fails. The failed collection is
        # dropped and the others are synced again, so one bad collection blocks no other.
        while remaining:
            session = CrmSession(retry_settings_from_env(), on_retry=_retry_logger(context))
            source = crm_source(tuple(remaining), connection, session)
            try:
                events = list(
                    dlt.run(
                        context=context,
                        dlt_source=source,
                        dlt_pipeline=pipeline,
                        loader_file_format=LOADER_FILE_FORMAT,
                    )
                )
                _create_missing_tables(pipeline, remaining)
                for event in events:
                    yield _with_request_stats(event, entities, session, pipeline)
                break
            except Exception as error:
                collection, message = _explain(error, warehouse)
                context.log.error(message)
                failed[collection] = message
                remaining = [entity for entity in remaining if entity.collection != collection]
                loaded = [entity.collection for entity in remaining]
        if failed:
            raise dg.Failure(
                description=_failure_summary(failed, loaded),
                metadata={"failed_collections": sorted(failed)},
                allow_retries=False,
            )

    return crm_sync


def _asset_key(entity: CrmEntity) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX, entity.table_name])


def _retry_logger(context: dg.AssetExecutionContext) -> Callable[[str, str, float, int], None]:
    def log_retry(collection: str, reason: str, wait: float, attempt: int) -> None:
        context.log.warning(f"Collection {collection}: {reason}; retry {attempt} in {wait:.1f} s")

    return log_retry


def _explain(error: Exception, warehouse: CrmWarehouseResource) -> tuple[str, str]:
    """Return the collection at fault and a message for a failed sync attempt, or re-raise."""
    cause = _root_crm_error(error)
    if isinstance(cause, CrmApiError) and cause.status == 401:
        # The credentials are the same for every collection, so trying the others is pointless.
        raise dg.Failure(description=str(cause), allow_retries=False) from None
    if cause is not None and getattr(cause, "collection", None):
        return cause.collection, str(cause)  # type: ignore[attr-defined]
    locked = _duckdb_lock_message(error, warehouse)
    if locked is not None:
        raise dg.Failure(description=locked, allow_retries=False) from None
    raise error


def _duckdb_lock_message(error: BaseException, warehouse: CrmWarehouseResource) -> str | None:
    text = " ".join(str(item) for item in _exception_chain(error))
    if "Could not set lock on file" not in text and "Conflicting lock" not in text:
        return None
    holder = re.search(r"PID (\d+)", text)
    return (
        f"The DuckDB file {warehouse.duckdb_file()} is locked by another process"
        f"{f' (PID {holder.group(1)})' if holder else ''}. DuckDB allows one writing process per "
        "file: close the other program (a notebook or the duckdb CLI, for example) or wait for "
        "the other run to finish, then launch this run again."
    )


def _exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _failure_summary(failed: dict[str, str], loaded: list[str]) -> str:
    outcome = f"Loaded: {', '.join(loaded)}." if loaded else "No collection was loaded."
    lines = [f"{len(failed)} CRM collection(s) failed: {', '.join(sorted(failed))}. {outcome}"]
    lines += [message for _, message in sorted(failed.items())]
    return "\n".join(lines)


def _with_request_stats(event: Any, entities: tuple[CrmEntity, ...], session: CrmSession, pipeline: Any) -> Any:
    table = event.asset_key.path[-1]
    collection = next(entity.collection for entity in entities if entity.table_name == table)
    stats = session.stats_for(collection)
    metadata = {
        **(event.metadata or {}),
        "dagster/row_count": _table_row_count(pipeline, table),
        "crm/pages": stats.pages,
        "crm/retries": stats.retries,
    }
    return event._replace(metadata=metadata)


def _create_missing_tables(pipeline: Any, entities: list[CrmEntity]) -> None:
    with pipeline.sql_client() as client:
        missing = [entity for entity in entities if not _table_exists(client, entity.table_name)]
    if missing:
        pipeline.run(empty_table_resources(tuple(missing)))


def _table_exists(client: Any, table: str) -> bool:
    qualified = client.make_qualified_table_name(table)
    try:
        with client.execute_query(f"select 1 from {qualified} limit 0"):
            return True
    except DatabaseUndefinedRelation:
        return False


def _table_row_count(pipeline: Any, table: str) -> int:
    with pipeline.sql_client() as client:
        qualified = client.make_qualified_table_name(table)
        with client.execute_query(f"select count(*) from {qualified}") as cursor:
            return int(cursor.fetchone()[0])


crm_assets = build_crm_assets()
