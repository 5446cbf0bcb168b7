"""Dagster assets for the CRM collections: one asset per entity-table row, via dagster-dlt."""

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from crm_assets.entities import CRM_ENTITIES, CrmEntity, validate_entities
from crm_assets.errors import CrmError
from crm_assets.failures import duckdb_lock_message, failed_collection, failure_summary
from crm_assets.http import CrmSession
from crm_assets.resources import (
    CrmApiResource,
    PIPELINE_NAME,
    CrmWarehouseResource,
    configured_destination,
    retry_settings_from_env,
)
from crm_assets.settings import CrmConnection, RetrySettings, scoped_environ
from crm_assets.spaces import SpaceConfig, configured_spaces
from crm_assets.source import DELETE_POLICIES, SOURCE_NAME, SyncMode, crm_source
from crm_assets.warehouse_stats import change_counts, create_missing_tables, incremental_cursors, table_row_count

GROUP_NAME = "crm"
KEY_PREFIX = "crm"
# Concurrency pool of the sync step: the shipped instance settings allow one step at a time,
# because DuckDB allows one writing process per file.
DUCKDB_POOL = "crm_duckdb"
# Parquet load files are bulk-loaded by DuckDB; dlt's default insert statements take several
# times as long and as much memory for the same rows.
LOADER_FILE_FORMAT = "parquet"
# Run tag that makes a run re-read its collections completely and rebuild their tables.
FULL_REFRESH_TAG = "crm/full_refresh"

# The asset specs are built from a source that is never run: each run builds the real one
# from the resources, so the code location loads with no address or secret set.
_SPEC_CONNECTION = CrmConnection(
    api_url="http://127.0.0.1", space_id="not-configured", username="", password=""
)


class CrmTranslator(DagsterDltTranslator):
    """Asset key `crm/<table>`, group `crm`, the entity's description, no upstream deps."""

    def __init__(self, entities: tuple[CrmEntity, ...], destination: str) -> None:
        self.entities = {entity.table_name: entity for entity in entities}
        self.destination = destination

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        entity = self.entities[data.resource.name]
        return spec.replace_attributes(
            key=asset_key(entity),
            group_name=GROUP_NAME,
            description=entity.description,
            deps=[],
            kinds={"dlt", self.destination},
            tags={"source": "crm-rest-api"},
            owners=["team:data-engineering"],
        )


def asset_key(entity: CrmEntity) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX, entity.table_name])


def _spec_pipeline(destination: str) -> dlt.Pipeline:
    """Build a pipeline object that only names the destination for the specs; nothing runs on it.

    dlt creates a working folder for every pipeline object, so this one gets a folder of its
    own under the system's temporary directory, apart from the real pipelines.
    """
    folder = Path(tempfile.gettempdir()) / f"crm_assets_specs_{destination}"
    return dlt.pipeline(
        pipeline_name="crm_specs", pipelines_dir=str(folder), destination=destination, dataset_name="crm"
    )


def destination_pool(destination: str) -> str | None:
    """Return the concurrency pool for a destination: only DuckDB needs one writer at a time."""
    return DUCKDB_POOL if destination == "duckdb" else None


def sync_mode(context: dg.AssetExecutionContext, space: str | None) -> SyncMode:
    """Read the run's mode: the full-refresh tag, and `CRM_DELETE_POLICY` (remove or flag)."""
    policy = os.environ.get("CRM_DELETE_POLICY") or "remove"
    if policy not in DELETE_POLICIES:
        raise dg.Failure(
            f"CRM_DELETE_POLICY={policy!r} is invalid: use 'remove' (delete the row) or "
            "'flag' (keep it with is_deleted = true)."
        )
    full_refresh = context.run.tags.get(FULL_REFRESH_TAG, "").lower() == "true"
    return SyncMode(full_refresh=full_refresh, delete_policy=policy, space=space)


def build_crm_assets(
    entities: tuple[CrmEntity, ...] = CRM_ENTITIES,
    destination: str | None = None,
    spaces: tuple[SpaceConfig, ...] | None = None,
) -> dg.AssetsDefinition:
    """Build one subsettable multi-asset with one asset per entity.

    The destination (default: `CRM_DESTINATION`, read when the code location loads) sets the
    asset kinds and whether the sync step runs in the one-writer DuckDB pool. With spaces
    (default: the `CRM_SPACES_FILE` ones), each space is a static partition.
    """
    validate_entities(entities)
    destination = destination or configured_destination()
    spaces = spaces if spaces is not None else configured_spaces()
    spaces_by_name = {space.name: space for space in spaces or ()}
    spec_mode = SyncMode(space=next(iter(spaces_by_name), None))
    spec_source = crm_source(entities, _SPEC_CONNECTION, CrmSession(RetrySettings()), spec_mode)
    partitions = dg.StaticPartitionsDefinition(list(spaces_by_name)) if spaces_by_name else None

    @dlt_assets(
        dlt_source=spec_source,
        dlt_pipeline=_spec_pipeline(destination),
        name=f"{SOURCE_NAME}_sync",
        dagster_dlt_translator=CrmTranslator(entities, destination),
        pool=destination_pool(destination),
        partitions_def=partitions,
    )
    def crm_sync(
        context: dg.AssetExecutionContext,
        dlt: DagsterDltResource,
        crm_api: CrmApiResource,
        warehouse: CrmWarehouseResource,
    ) -> Iterator[Any]:
        space = spaces_by_name[context.partition_key] if context.has_partition_key else None
        try:
            connection = space.connection() if space else crm_api.connection()
        except CrmError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        selected = [entity for entity in entities if asset_key(entity) in context.selected_asset_keys]
        yield from sync_collections(context, dlt, connection, warehouse, selected, space)

    return crm_sync


def sync_collections(
    context: dg.AssetExecutionContext,
    dlt: DagsterDltResource,
    connection: CrmConnection,
    warehouse: CrmWarehouseResource,
    entities: list[CrmEntity],
    space: SpaceConfig | None = None,
) -> Iterator[Any]:
    """Sync the entities; a collection that fails is reported and the others still load.

    dlt stops every collection's extraction when one fails, so the failed collection is
    dropped and the others are synced again.
    """
    mode = sync_mode(context, space.name if space else None)
    # One pipeline per space, so that each space keeps its own incremental cursors.
    pipeline = warehouse.build_pipeline(f"crm_{space.name}" if space else PIPELINE_NAME)
    restore_state(pipeline, warehouse)
    cursors_before = incremental_cursors(pipeline)
    context.log.info(
        f"{sync_kind(mode, entities, cursors_before)} of "
        f"{', '.join(entity.collection for entity in entities)} from {connection.api_url} "
        f"(space {connection.space_id}) into {warehouse.location()}"
    )
    failed: dict[str, str] = {}
    remaining = list(entities)
    while remaining:
        session = CrmSession(retry_settings_from_env(), on_retry=_retry_logger(context))
        source = crm_source(tuple(remaining), connection, session, mode)
        started = time.monotonic()
        try:
            with scoped_environ(warehouse.run_settings()):
                events = list(
                    dlt.run(
                        context=context,
                        dlt_source=source,
                        dlt_pipeline=pipeline,
                        loader_file_format=LOADER_FILE_FORMAT,
                        refresh="drop_resources" if mode.full_refresh else None,
                    )
                )
        except Exception as error:
            # Closing the session stops read-ahead threads of other collections that wait to retry.
            session.close()
            memory_limit = warehouse.memory_limit() if warehouse.is_duckdb() else None
            collection, message = failed_collection(error, warehouse.location(), memory_limit)
            context.log.error(message)
            failed[collection] = message
            remaining = [entity for entity in remaining if entity.collection != collection]
            continue
        create_missing_tables(pipeline, remaining, mode)
        log_phases(context, pipeline, session, remaining)
        report = SyncReport(pipeline, session, mode, cursors_before, time.monotonic() - started)
        # One connection for all the metadata queries: opening one costs tens of milliseconds.
        with pipeline.sql_client() as client:
            annotated = [report.annotate(client, event, _entity_of(event, entities)) for event in events]
        yield from annotated
        break

    if failed:
        loaded = [entity.collection for entity in remaining]
        raise dg.Failure(
            description=failure_summary(failed, loaded),
            metadata={"failed_collections": sorted(failed)},
            allow_retries=False,
        )


def sync_kind(mode: SyncMode, entities: list[CrmEntity], cursors: dict[str, str | None]) -> str:
    """Name the sync for the log: a full refresh, a first sync, or an incremental one."""
    if mode.full_refresh:
        return "Full refresh"
    if not any(cursors.get(entity.table_name) for entity in entities if entity.cursor_field):
        return "First sync (every record)"
    return "Incremental sync"


def restore_state(pipeline: Any, warehouse: CrmWarehouseResource) -> None:
    """Restore dlt's state and schemas from the destination, naming a locked DuckDB file."""
    try:
        pipeline.sync_destination()
    except Exception as error:
        locked = duckdb_lock_message(error, warehouse.location())
        if locked is None:
            raise
        raise dg.Failure(description=locked, allow_retries=False) from None


class SyncReport:
    """Adds this project's metadata to each materialization of one successful sync."""

    def __init__(
        self,
        pipeline: Any,
        session: CrmSession,
        mode: SyncMode,
        cursors_before: dict[str, str | None],
        duration: float,
    ) -> None:
        self.pipeline = pipeline
        self.session = session
        self.mode = mode
        self.cursors_before = cursors_before
        self.cursors_after = incremental_cursors(pipeline)
        self.duration = duration

    def annotate(self, client: Any, event: Any, entity: CrmEntity) -> Any:
        table = entity.table_name
        stats = self.session.stats_for(entity.collection)
        rows_loaded = int(getattr((event.metadata or {}).get("rows_loaded"), "value", 0) or 0)
        cursor_before = None if self.mode.full_refresh else self.cursors_before.get(table)
        full = entity.cursor_field is None or self.mode.full_refresh or cursor_before is None
        changes = change_counts(client, entity, rows_loaded, cursor_before)
        metadata = {
            **(event.metadata or {}),
            "dagster/row_count": table_row_count(client, table),
            "rows_loaded": rows_loaded,
            "crm/rows_inserted": changes["inserted"],
            "crm/rows_updated": changes["updated"],
            "crm/rows_deleted": changes["deleted"],
            "crm/sync_mode": "full" if full else "incremental",
            "crm/cursor_before": cursor_before or "",
            "crm/cursor_after": self.cursors_after.get(table) or "",
            "crm/pages": stats.pages,
            "crm/retries": stats.retries,
            "crm/duration_seconds": round(self.duration, 3),
            "crm/collection": entity.collection,
        }
        return event._replace(metadata=metadata)


def log_phases(
    context: dg.AssetExecutionContext, pipeline: Any, session: CrmSession, entities: list[CrmEntity]
) -> None:
    """Log one line per collection and phase (extract, normalize, load) with counts and durations.

    dlt runs each phase for all collections together, so a duration is the phase's total.
    """
    trace = pipeline.last_trace
    durations = {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in trace.steps
        if step.started_at and step.finished_at
    }
    row_counts = trace.last_normalize_info.row_counts if trace.last_normalize_info else {}
    dataset = pipeline.dataset_name
    for entity in entities:
        stats = session.stats_for(entity.collection)
        rows = row_counts.get(entity.table_name, 0)
        lines = {
            "extract": f"{stats.records} records in {stats.pages} page(s)",
            "normalize": f"{rows} rows",
            "load": f"{rows} rows into {dataset}.{entity.table_name}",
        }
        for phase, counts in lines.items():
            context.log.info(
                f"Collection {entity.collection}: {phase} {counts} "
                f"({phase} of all collections {durations.get(phase, 0.0):.2f} s)"
            )


def _entity_of(event: Any, entities: list[CrmEntity]) -> CrmEntity:
    table = event.asset_key.path[-1]
    return next(entity for entity in entities if entity.table_name == table)


def _retry_logger(context: dg.AssetExecutionContext) -> Callable[[str, str, float, int], None]:
    def log_retry(collection: str, reason: str, wait: float, attempt: int) -> None:
        context.log.warning(f"Collection {collection}: {reason}; retry {attempt} in {wait:.1f} s")

    return log_retry


crm_assets = build_crm_assets()
