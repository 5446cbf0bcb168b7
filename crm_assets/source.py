"""The dlt source for the CRM REST API v100, built on dlt's declarative REST API source.

Paging follows the API contract: `first` sets the page size (at most 100), the cursor of the
next page is `page_info.end_cursor`, and only `has_next_page: false` ends a listing. The last
page still carries a cursor, so a paginator that stops on a missing cursor would ask once
more, and one that trusted a repeated cursor could loop forever: both are treated as faults.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import dlt

from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource
from dlt.sources.helpers.rest_client.auth import HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from dlt.sources.rest_api import rest_api_source
from requests import Request, Response

from crm_assets.entities import COMMON_COLUMNS, CrmEntity
from crm_assets.errors import CrmProtocolError
from crm_assets.http import CrmSession, collection_of
from crm_assets.settings import CrmConnection

SOURCE_NAME = "crm"


class CrmCursorPaginator(BasePaginator):
    """Keyset paging on `page_info`: `after` = the previous page's `end_cursor`."""

    def __init__(self) -> None:
        super().__init__()
        self._cursor: str | None = None
        self._seen: set[str] = set()
        self._page = 0

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        self._page += 1
        page_info = response.json()["page_info"]
        if page_info["has_next_page"] is False:
            self._has_next_page = False
            return

        cursor = page_info.get("end_cursor")
        collection = collection_of(response.request.url or "")
        if not isinstance(cursor, str) or not cursor:
            raise CrmProtocolError(
                collection, self._page, "`has_next_page` is true but `end_cursor` is missing"
            )
        if cursor in self._seen:
            raise CrmProtocolError(
                collection, self._page, "`end_cursor` repeats an earlier page's cursor"
            )
        self._seen.add(cursor)
        self._cursor = cursor

    def update_request(self, request: Request) -> None:
        if self._has_next_page and self._cursor is not None:
            request.params["after"] = self._cursor


# The first incremental sync starts here, so it reads every record of the collection.
INITIAL_CURSOR = "1970-01-01 00:00:00"
DELETE_POLICIES = ("remove", "flag")
SPACE_COLUMN = "space"


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


def entity_endpoint(entity: CrmEntity) -> dict[str, Any]:
    """Endpoint of an entity: incremental on its cursor field, with deleted records included."""
    endpoint: dict[str, Any] = {"path": f"entities/{entity.collection}"}
    field = entity.cursor_field
    if field is None:
        return endpoint
    endpoint["params"] = {
        f"filter[{field}]": {"type": "incremental", "cursor_path": field, "initial_value": INITIAL_CURSOR},
        f"filter-op[{field}]": "gte",
        "order-by": field,
        "include-deleted": "true",
    }
    return endpoint


def write_disposition(entity: CrmEntity, mode: SyncMode) -> str:
    """Merge incremental collections; replace the others, unless spaces share the table."""
    if entity.cursor_field is None and mode.space is None:
        return "replace"
    return "merge"


def entity_resource_config(entity: CrmEntity, mode: SyncMode = SyncMode()) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": entity.table_name,
        "table_name": entity.table_name,
        "primary_key": mode.primary_key(entity),
        "write_disposition": write_disposition(entity, mode),
        "columns": entity_columns(entity, mode),
        "endpoint": entity_endpoint(entity),
    }
    if mode.space is not None:
        config["processing_steps"] = [{"map": partial(_with_space, mode.space)}]
    return config


def _with_space(space: str, record: dict[str, Any]) -> dict[str, Any]:
    record[SPACE_COLUMN] = space
    return record


def crm_source(
    entities: tuple[CrmEntity, ...],
    connection: CrmConnection,
    session: CrmSession,
    mode: SyncMode = SyncMode(),
) -> DltSource:
    """Build the dlt source with one resource per entity, named by its table."""
    config: dict[str, Any] = {
        "client": {
            "base_url": connection.base_url,
            "auth": HttpBasicAuth(connection.username, connection.password),
            "paginator": CrmCursorPaginator(),
            "session": session,
        },
        "resource_defaults": {
            "endpoint": {"params": {"first": connection.page_size}, "data_selector": "data"},
        },
        "resources": [entity_resource_config(entity, mode) for entity in entities],
    }
    return rest_api_source(config, name=SOURCE_NAME, parallelized=True)


def empty_table_resources(entities: tuple[CrmEntity, ...], mode: SyncMode) -> list[DltResource]:
    """Resources that create each entity's table with its typed columns and no rows.

    dlt creates a table only when a load carries data for it, so a collection that is empty
    in the CRM would otherwise have no table and break downstream SQL.
    """
    return [
        dlt.resource(
            _schema_marker,
            name=entity.table_name,
            table_name=entity.table_name,
            primary_key=mode.primary_key(entity),
            write_disposition=write_disposition(entity, mode),
            columns=entity_columns(entity, mode),
        )
        for entity in entities
    ]


def _schema_marker() -> Iterator[Any]:
    yield dlt.mark.materialize_table_schema()
