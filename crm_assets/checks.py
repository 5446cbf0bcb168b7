"""Asset checks run after every CRM materialization, and freshness checks on a schedule."""

import os
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg

from crm_assets.assets import asset_key, destination_pool
from crm_assets.entities import COMMON_COLUMNS, CrmEntity
from crm_assets.resources import PIPELINE_NAME, CrmWarehouseResource, configured_destination
from crm_assets.spaces import SpaceConfig, configured_spaces

ID_CHECK = "id_unique_not_null"
DRIFT_CHECK = "no_type_drift"
COLUMNS_CHECK = "known_columns_typed"
EMPTY_CHECK = "not_empty"
DEFAULT_FRESHNESS_HOURS = 26.0
# dlt stores a value whose type does not fit its column in a side column `<field>__v_<type>`.
VARIANT_MARKER = "__v_"

CHECK_DESCRIPTIONS = {
    ID_CHECK: "Every row has an id and no id (per space, when several are loaded) appears twice.",
    DRIFT_CHECK: "No field changed type: no value went to a `<field>__v_<type>` side column that queries of the field miss.",
    COLUMNS_CHECK: "Every field the entity table declares exists as a column of its declared type.",
    EMPTY_CHECK: "The table has at least one row (warns only).",
}


def _check_specs(entities: tuple[CrmEntity, ...]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name=name, asset=asset_key(entity), description=description)
        for entity in entities
        for name, description in CHECK_DESCRIPTIONS.items()
    ]


def build_crm_checks(
    entities: tuple[CrmEntity, ...],
    destination: str | None = None,
    spaces: tuple[SpaceConfig, ...] | None = None,
) -> dg.AssetChecksDefinition:
    """Build one subsettable check op with four checks per CRM asset."""
    by_key = {asset_key(entity): entity for entity in entities}
    pool = destination_pool(destination or configured_destination())
    spaces = spaces if spaces is not None else configured_spaces()
    key_columns = ["space"] if spaces else []

    @dg.multi_asset_check(specs=_check_specs(entities), can_subset=True, name="crm_table_checks", pool=pool)
    def crm_table_checks(
        context: dg.AssetCheckExecutionContext, warehouse: CrmWarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        # Every space's pipeline stores the shared tables' schema, so the first one serves all.
        pipeline = warehouse.build_pipeline(f"crm_{spaces[0].name}" if spaces else PIPELINE_NAME)
        pipeline.sync_destination()
        with pipeline.sql_client() as client:
            for check_key in sorted(context.selected_asset_check_keys, key=str):
                entity = by_key[check_key.asset_key]
                facts = TableFacts.read(client, pipeline, entity, [*key_columns, entity.primary_key])
                yield evaluate_check(check_key, entity, facts)

    return crm_table_checks


class TableFacts:
    """Facts about one warehouse table that the checks evaluate."""

    def __init__(self, columns: dict[str, str | None], rows: int, null_ids: int, duplicate_ids: int) -> None:
        self.columns = columns
        self.rows = rows
        self.null_ids = null_ids
        self.duplicate_ids = duplicate_ids

    @classmethod
    def read(cls, client: Any, pipeline: Any, entity: CrmEntity, keys: list[str]) -> "TableFacts":
        existing = _destination_columns(client, entity.table_name)
        schema_columns = pipeline.default_schema.tables.get(entity.table_name, {}).get("columns", {})
        columns = {name: schema_columns.get(name, {}).get("data_type") for name in existing}
        if not existing:
            return cls(columns, 0, 0, 0)
        table = client.make_qualified_table_name(entity.table_name)
        key = entity.primary_key
        grouped = ", ".join(keys)
        repeated = f"select {grouped} from {table} group by {grouped} having count(*) > 1"
        query = f"select count(*), count(*) - count({key}), (select count(*) from ({repeated}) as d) from {table}"
        with client.execute_query(query) as cursor:
            rows, null_ids, duplicate_ids = cursor.fetchone()
        return cls(columns, int(rows), int(null_ids), int(duplicate_ids))


def _destination_columns(client: Any, table: str) -> list[str]:
    query = (
        "select column_name from information_schema.columns "
        f"where table_schema = '{client.dataset_name}' and table_name = '{table}'"
    )
    with client.execute_query(query) as cursor:
        return [row[0] for row in cursor.fetchall()]


def evaluate_check(check_key: dg.AssetCheckKey, entity: CrmEntity, facts: TableFacts) -> dg.AssetCheckResult:
    name = check_key.name
    if name == ID_CHECK:
        return dg.AssetCheckResult(
            check_name=name,
            asset_key=check_key.asset_key,
            passed=facts.null_ids == 0 and facts.duplicate_ids == 0 and bool(facts.columns),
            metadata={"null_ids": facts.null_ids, "duplicate_ids": facts.duplicate_ids, "rows": facts.rows},
            description=None if facts.columns else f"Table {entity.table_name} does not exist.",
        )
    if name == DRIFT_CHECK:
        drifted = sorted({column.split(VARIANT_MARKER)[0] for column in facts.columns if VARIANT_MARKER in column})
        side_columns = sorted(column for column in facts.columns if VARIANT_MARKER in column)
        return dg.AssetCheckResult(
            check_name=name,
            asset_key=check_key.asset_key,
            passed=not drifted,
            metadata={"drifted_fields": ", ".join(drifted), "side_columns": ", ".join(side_columns)},
            description=(
                f"Field(s) {', '.join(drifted)} of {entity.collection} changed type; the new values are in "
                f"{', '.join(side_columns)}. Declare a type that holds both in the entity table, then run "
                "crm_full_refresh_job for this collection."
                if drifted
                else None
            ),
        )
    if name == COLUMNS_CHECK:
        expected = {**COMMON_COLUMNS, **entity.columns}
        wrong = sorted(
            f"{field} (expected {data_type}, found {facts.columns.get(field) or 'no column'})"
            for field, data_type in expected.items()
            if facts.columns.get(field) != data_type
        )
        return dg.AssetCheckResult(
            check_name=name,
            asset_key=check_key.asset_key,
            passed=not wrong,
            metadata={"mismatched_columns": ", ".join(wrong), "declared_columns": len(expected)},
        )
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=check_key.asset_key,
        passed=facts.rows > 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows": facts.rows},
        description=None if facts.rows else f"Table {entity.table_name} is empty.",
    )


def freshness_hours() -> float:
    """Hours within which each CRM asset must have been updated; `CRM_FRESHNESS_HOURS`, read at load."""
    raw = os.environ.get("CRM_FRESHNESS_HOURS") or str(DEFAULT_FRESHNESS_HOURS)
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"CRM_FRESHNESS_HOURS={raw!r} is invalid: expected a number of hours.") from None


def build_freshness_checks(assets: dg.AssetsDefinition) -> list[dg.AssetChecksDefinition]:
    """Build one last-update freshness check per CRM asset, evaluated by the freshness sensor.

    NOTE: Dagster 1.13 marks these builders as superseded by `FreshnessPolicy`. They are kept
    because their results are ordinary asset checks, shown like the table checks. Move to
    `FreshnessPolicy` once this project has tests for its daemon-side evaluation.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return list(
            dg.build_last_update_freshness_checks(
                assets=[assets],
                lower_bound_delta=timedelta(hours=freshness_hours()),
                severity=dg.AssetCheckSeverity.WARN,
            )
        )
