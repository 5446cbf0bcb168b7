"""Facts about the loaded tables for materialization metadata: counts, cursors, changes."""

from typing import Any

from dlt.common.pipeline import SupportsPipeline
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from crm_assets.entities import CrmEntity
from crm_assets.source import SOURCE_NAME, SyncMode, empty_table_resources


def incremental_cursors(pipeline: SupportsPipeline) -> dict[str, str | None]:
    """Return the last cursor value of each table's incremental read, from dlt's state."""
    resources = pipeline.state.get("sources", {}).get(SOURCE_NAME, {}).get("resources", {})
    cursors: dict[str, str | None] = {}
    for table, state in resources.items():
        incremental = state.get("incremental", {})
        values = [item.get("last_value") for item in incremental.values()]
        cursors[table] = values[0] if values else None
    return cursors


def table_exists(client: Any, table: str) -> bool:
    qualified = client.make_qualified_table_name(table)
    try:
        with client.execute_query(f"select 1 from {qualified} limit 0"):
            return True
    except DatabaseUndefinedRelation:
        return False


def create_missing_tables(pipeline: SupportsPipeline, entities: list[CrmEntity], mode: SyncMode) -> None:
    """Create the typed, empty table of every entity that has none yet."""
    with pipeline.sql_client() as client:
        missing = [entity for entity in entities if not table_exists(client, entity.table_name)]
    if missing:
        pipeline.run(empty_table_resources(tuple(missing), mode))


def table_row_count(client: Any, table: str) -> int:
    """Return the number of rows of a table, through an open dlt SQL client of the pipeline."""
    qualified = client.make_qualified_table_name(table)
    with client.execute_query(f"select count(*) from {qualified}") as cursor:
        return int(cursor.fetchone()[0])


def change_counts(
    client: Any, entity: CrmEntity, rows_loaded: int, cursor_before: str | None
) -> dict[str, int]:
    """Split the rows this sync loaded into inserted, updated and deleted records.

    The staging table of a merged table contains exactly the rows of the last load. A record
    counts as inserted when it was created at or after the previous cursor (every record
    on a first sync), as deleted when `is_deleted` is true, and as updated otherwise.
    """
    if rows_loaded == 0 or entity.cursor_field is None:
        return {"inserted": rows_loaded, "updated": 0, "deleted": 0}
    since = (cursor_before or "1970-01-01 00:00:00+00:00").replace("'", "''")
    with client.with_staging_dataset():
        staging = client.make_qualified_table_name(entity.table_name)
    query = (
        "select count(*) filter (where is_deleted), "
        f"count(*) filter (where not coalesce(is_deleted, false) and created >= '{since}'::timestamptz), "
        f"count(*) from {staging}"
    )
    with client.execute_query(query) as cursor:
        deleted, inserted, total = cursor.fetchone()
    return {"inserted": int(inserted), "updated": int(total - inserted - deleted), "deleted": int(deleted)}
