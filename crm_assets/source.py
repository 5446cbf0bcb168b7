"""The dlt source for the CRM REST API v100, built on dlt's declarative REST API source.

Paging follows the API contract: `first` sets the page size (at most 100), the cursor of the
next page is `page_info.end_cursor`, and only `has_next_page: false` ends a listing. The last
page still carries a cursor, so a paginator that stops on a missing cursor would ask once
more, and one that trusted a repeated cursor could loop forever: both are treated as faults.
"""

from collections.abc import Iterator
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


def entity_columns(entity: CrmEntity) -> dict[str, dict[str, Any]]:
    """Column hints for the known fields, so they exist as typed columns even when all null."""
    typed = {**COMMON_COLUMNS, **entity.columns}
    return {
        name: {"data_type": data_type, "nullable": name != entity.primary_key}
        for name, data_type in typed.items()
    }


def entity_resource_config(entity: CrmEntity) -> dict[str, Any]:
    return {
        "name": entity.table_name,
        "table_name": entity.table_name,
        "primary_key": entity.primary_key,
        "write_disposition": "merge",
        "columns": entity_columns(entity),
        "endpoint": {"path": f"entities/{entity.collection}"},
    }


def crm_source(
    entities: tuple[CrmEntity, ...],
    connection: CrmConnection,
    session: CrmSession,
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
        "resources": [entity_resource_config(entity) for entity in entities],
    }
    return rest_api_source(config, name=SOURCE_NAME, parallelized=True)


def empty_table_resources(entities: tuple[CrmEntity, ...]) -> list[DltResource]:
    """Resources that create each entity's table with its typed columns and no rows.

    dlt creates a table only when a load carries data for it, so a collection that is empty
    in the CRM would otherwise have no table and break downstream SQL.
    """
    return [
        dlt.resource(
            _schema_marker,
            name=entity.table_name,
            table_name=entity.table_name,
            primary_key=entity.primary_key,
            write_disposition="merge",
            columns=entity_columns(entity),
        )
        for entity in entities
    ]


def _schema_marker() -> Iterator[Any]:
    yield dlt.mark.materialize_table_schema()
