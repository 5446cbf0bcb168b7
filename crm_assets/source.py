"""The dlt source for the CRM REST API v100: one dlt resource per collection.

Paging follows the API contract: `first` sets the page size (at most 100), the cursor of the
next page is `page_info.end_cursor`, and only `has_next_page: false` ends a listing. The last
page still carries a cursor, so a client that stops on a missing cursor would ask once
more, and one that trusted a repeated cursor could loop forever: both are treated as faults.

The loop is written here rather than configured through dlt's declarative REST API source.
That way it can read ahead in a thread and hand dlt large lists. Both are needed for a
large sync to stay close to the speed of a bare HTTP copy.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Optional

import dlt

from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from crm_assets.arrow_pages import PagesToArrow
from crm_assets.entities import COMMON_COLUMNS, CrmEntity
from crm_assets.errors import CrmProtocolError
from crm_assets.http import CrmClient, CrmSession
from crm_assets.prefetch import prefetched
from crm_assets.settings import CrmConnection

SOURCE_NAME = "crm"


class CursorPages:
    """Keyset paging on `page_info`: `after` = the previous page's `end_cursor`.

    The last page still carries a cursor, so only `has_next_page: false` ends a listing.
    A missing or repeated cursor on a page that claims a next one is a protocol fault,
    never a reason to stop early or to loop.
    """

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.page = 0
        self._seen: set[str] = set()

    def next_cursor(self, page_info: dict[str, Any]) -> str | None:
        """Return the cursor of the next page, or None after the last page."""
        self.page += 1
        if page_info["has_next_page"] is False:
            return None
        cursor = page_info.get("end_cursor")
        if not isinstance(cursor, str) or not cursor:
            raise CrmProtocolError(
                self.collection, self.page, "`has_next_page` is true but `end_cursor` is missing"
            )
        if cursor in self._seen:
            raise CrmProtocolError(
                self.collection, self.page, "`end_cursor` repeats an earlier page's cursor"
            )
        self._seen.add(cursor)
        return cursor


# The first incremental sync starts here, so it reads every record of the collection.
INITIAL_CURSOR = "1970-01-01 00:00:00"
DELETE_POLICIES = ("remove", "flag")
SPACE_COLUMN = "space"
# Records per item that dlt extracts: 50 pages of 100.
BATCH_RECORDS = 5000
# Pages each collection reads ahead of dlt. They are held in memory until dlt takes them.
PREFETCH_PAGES = 10


@dataclass(frozen=True)
class SyncMode:
    """Options of one sync: full or incremental, the delete policy, and the space it reads."""

    full_refresh: bool = False
    delete_policy: str = "remove"
    # Name of the CRM space when several are loaded into the same tables, else None.
    space: str | None = None

    def primary_key(self, entity: CrmEntity) -> str | list[str]:
        """Return the merge key: the entity's key, prefixed by `space` when spaces share tables."""
        return entity.primary_key if self.space is None else [SPACE_COLUMN, entity.primary_key]


def entity_columns(entity: CrmEntity, mode: SyncMode) -> dict[str, dict[str, Any]]:
    """Column hints: the known fields typed, so they exist even while every value is null.

    On merged tables, `modified` decides which version of a record repeated within one load
    is kept (the newest), and under the `remove` policy `is_deleted = true` deletes the row.
    """
    typed = {**COMMON_COLUMNS, **entity.columns}
    if mode.space is not None:
        typed = {SPACE_COLUMN: "text", **typed}
    keys = {SPACE_COLUMN, entity.primary_key}
    columns: dict[str, dict[str, Any]] = {
        name: {"data_type": data_type, "nullable": name not in keys} for name, data_type in typed.items()
    }
    if entity.cursor_field is not None:
        columns[entity.cursor_field]["dedup_sort"] = "desc"
        # Set in both policies, because the stored schema keeps a hint until it is overwritten.
        columns["is_deleted"]["hard_delete"] = mode.delete_policy == "remove"
    return columns


def listing_params(entity: CrmEntity, page_size: int, since: Any = None) -> dict[str, Any]:
    """Return the query of an entity's listing. Incremental entities read changes since `since`, deletions included."""
    params: dict[str, Any] = {"first": page_size}
    field = entity.cursor_field
    if field is None:
        return params
    params.update(
        {
            f"filter[{field}]": INITIAL_CURSOR if since is None else since,
            f"filter-op[{field}]": "gte",
            "order-by": field,
            "include-deleted": "true",
        }
    )
    return params


def write_disposition(entity: CrmEntity, mode: SyncMode) -> str:
    """Merge incremental collections; replace the others, unless spaces share the table."""
    if entity.cursor_field is None and mode.space is None:
        return "replace"
    return "merge"


def table_hints(entity: CrmEntity, mode: SyncMode) -> dict[str, Any]:
    """Return the dlt resource hints of an entity's table: name, key, write disposition and columns."""
    return {
        "name": entity.table_name,
        "table_name": entity.table_name,
        "primary_key": mode.primary_key(entity),
        "write_disposition": write_disposition(entity, mode),
        "columns": entity_columns(entity, mode),
    }


def entity_resource(
    entity: CrmEntity,
    client: CrmClient,
    page_size: int,
    mode: SyncMode = SyncMode(),
    batch_records: int = BATCH_RECORDS,
    arrow_pages: bool = True,
) -> DltResource:
    """Build the resource of one entity: its pages in batches, as Arrow tables where they are flat.

    With `arrow_pages=False` every batch goes to dlt as dicts. The tests load both ways and
    compare the tables.
    """
    hints = table_hints(entity, mode)
    resource = dlt.resource(_listing, **hints)
    incremental = None
    if entity.cursor_field is not None:
        incremental = dlt.sources.incremental(entity.cursor_field, initial_value=INITIAL_CURSOR)
    # Each collection pages in its own worker thread, so their requests overlap.
    bound = resource(entity, client, page_size, batch_records, incremental).parallelize()
    if mode.space is not None:
        bound.add_map(partial(_with_space, mode.space))
    if arrow_pages:
        bound.add_step(PagesToArrow(entity.table_name, hints["columns"]))
    return bound


def _listing(
    entity: CrmEntity,
    client: CrmClient,
    page_size: int,
    batch_records: int,
    incremental: Optional[dlt.sources.incremental[Any]] = None,
) -> Iterator[list[Any]]:
    """Yield the entity's records in lists of about `batch_records`.

    dlt handles each yielded list as one item, and each item costs a schema update, so
    pages are joined into larger lists. A thread reads up to `PREFETCH_PAGES` pages ahead,
    so requests go on while dlt processes the previous list.
    """
    since = incremental.start_value if incremental is not None else None
    params = listing_params(entity, page_size, since)
    batch: list[Any] = []
    with prefetched(_pages(entity, client, params), PREFETCH_PAGES, entity.collection) as bodies:
        for body in bodies:
            batch.extend(body["data"])
            if len(batch) >= batch_records:
                yield batch
                batch = []
    if batch:
        yield batch


def _pages(entity: CrmEntity, client: CrmClient, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every page of a listing, in order, until `has_next_page` is false."""
    cursors = CursorPages(entity.collection)
    while True:
        body = client.page(entity.collection, params)
        yield body
        cursor = cursors.next_cursor(body["page_info"])
        if cursor is None:
            return
        params = {**params, "after": cursor}


def _with_space(space: str, record: dict[str, Any]) -> dict[str, Any]:
    record[SPACE_COLUMN] = space
    return record


def crm_source(
    entities: tuple[CrmEntity, ...],
    connection: CrmConnection,
    session: CrmSession,
    mode: SyncMode = SyncMode(),
    batch_records: int = BATCH_RECORDS,
    arrow_pages: bool = True,
) -> DltSource:
    """Build the dlt source with one resource per entity, named by its table."""
    client = CrmClient(connection, session)
    resources = [
        entity_resource(entity, client, connection.page_size, mode, batch_records, arrow_pages)
        for entity in entities
    ]

    @dlt.source(name=SOURCE_NAME)
    def crm() -> list[DltResource]:
        return resources

    return crm()


def empty_table_resources(entities: tuple[CrmEntity, ...], mode: SyncMode) -> list[DltResource]:
    """Resources that create each entity's table with its typed columns and no rows.

    dlt creates a table only when a load carries data for it, so a collection that is empty
    in the CRM would otherwise have no table and break downstream SQL.
    """
    return [dlt.resource(_schema_marker, **table_hints(entity, mode)) for entity in entities]


def _schema_marker() -> Iterator[Any]:
    yield dlt.mark.materialize_table_schema()
