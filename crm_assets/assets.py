"""Dagster assets for the CRM collections: one asset per entity-table row, via dagster-dlt."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import dlt
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.pipeline.exceptions import PipelineStepFailed

from crm_assets.entities import CRM_ENTITIES, CrmEntity, validate_entities
from crm_assets.errors import CrmError
from crm_assets.http import CrmSession
from crm_assets.resources import CrmApiResource, CrmWarehouseResource, retry_settings_from_env
from crm_assets.settings import CrmConnection
from crm_assets.source import SOURCE_NAME, crm_source

GROUP_NAME = "crm"
KEY_PREFIX = "crm"
# Concurrency pool of the sync step: the shipped instance settings allow one step at a time,
# because DuckDB allows one writing process per file.
DUCKDB_POOL = "crm_duckdb"

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
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, CrmError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def build_crm_assets(entities: tuple[CrmEntity, ...] = CRM_ENTITIES) -> dg.AssetsDefinition:
    """Build one subsettable multi-asset with one asset per entity."""
    validate_entities(entities)
    spec_source = crm_source(entities, _SPEC_CONNECTION, CrmSession(retry_settings_from_env()))

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

        def log_retry(collection: str, reason: str, wait: float, attempt: int) -> None:
            context.log.warning(f"{collection}: {reason}; retry {attempt} in {wait:.1f} s")

        session = CrmSession(retry_settings_from_env(), on_retry=log_retry)
        source = crm_source(entities, connection, session)
        pipeline = warehouse.build_pipeline()
        context.log.info(
            f"Syncing {len(context.selected_asset_keys)} CRM collection(s) from "
            f"{connection.api_url} (space {connection.space_id}) into {warehouse.duckdb_file()}"
        )
        try:
            for event in dlt.run(context=context, dlt_source=source, dlt_pipeline=pipeline).fetch_row_count():
                yield _with_request_stats(event, entities, session)
        except PipelineStepFailed as error:
            cause = _root_crm_error(error)
            if cause is None:
                raise
            raise dg.Failure(description=str(cause), allow_retries=False) from None

    return crm_sync


def _with_request_stats(event: Any, entities: tuple[CrmEntity, ...], session: CrmSession) -> Any:
    table = event.asset_key.path[-1]
    collection = next(entity.collection for entity in entities if entity.table_name == table)
    stats = session.stats_for(collection)
    metadata = {**(event.metadata or {}), "crm/pages": stats.pages, "crm/retries": stats.retries}
    return event._replace(metadata=metadata)


crm_assets = build_crm_assets()
