"""Ordering, filtering and keyset paging of one collection."""

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from crm_assets.emulator.query import EMPTY_CURSOR, ListQuery, SortField, encode_cursor
from crm_assets.emulator.store import CrmStore
from crm_assets.emulator.timestamps import parse_timestamp

# Number of ordered and filtered views kept. A paged read reuses one view for all its
# pages until the collection changes.
_VIEW_CACHE_SIZE = 32


@dataclass(frozen=True)
class Page:
    """One page of a listing, before it is serialized."""

    records: list[dict]
    total: int
    start_cursor: str
    end_cursor: str
    has_previous_page: bool
    has_next_page: bool
    # End cursor of the first page for the same order and filters, which the
    # repeat_cursor fault sends in place of `end_cursor`.
    first_page_end_cursor: str


@dataclass(frozen=True)
class _View:
    keys: list[tuple]
    records: list[dict]


def sort_key(value: object) -> tuple:
    """Return a key that orders values of mixed types.

    The type order is: missing or null, booleans, numbers, dates and timestamps (as
    instants), other strings, then lists and objects (by their JSON text). Missing
    values therefore come first in ascending order and last in descending order.
    """
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        moment = parse_timestamp(value)
        return (3, moment) if moment is not None else (4, value)
    return (5, json.dumps(value, sort_keys=True, default=str))


class RecordLister:
    """Page builder for a store's collections, with ordered views cached per store version."""

    def __init__(self, store: CrmStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._views: OrderedDict[tuple, _View] = OrderedDict()

    def list_page(self, collection: str, query: ListQuery) -> Page:
        view = self._view(collection, query)
        start = 0
        if query.after_key:
            after = tuple(sort_key(value) for value in query.after_key)
            start = _position_after(view.keys, after, query.order)
        chunk = view.records[start : start + query.page_size]
        if chunk:
            start_cursor = _cursor_of(chunk[0], query.order)
            end_cursor = _cursor_of(chunk[-1], query.order)
        else:
            start_cursor = end_cursor = query.after or EMPTY_CURSOR
        return Page(
            records=[_project(record, query.load_only) for record in chunk],
            total=len(view.records),
            start_cursor=start_cursor,
            end_cursor=end_cursor,
            has_previous_page=query.after is not None,
            has_next_page=start + query.page_size < len(view.records),
            first_page_end_cursor=_first_page_end_cursor(view, query),
        )

    def _view(self, collection: str, query: ListQuery) -> _View:
        cache_key = (
            collection,
            self.store.version(collection),
            query.order,
            query.filters,
            query.include_deleted,
        )
        with self._lock:
            view = self._views.get(cache_key)
            if view is not None:
                self._views.move_to_end(cache_key)
                return view
        version, records = self.store.snapshot(collection)
        view = _build_view(records, query)
        with self._lock:
            self._views[(*cache_key[:1], version, *cache_key[2:])] = view
            while len(self._views) > _VIEW_CACHE_SIZE:
                self._views.popitem(last=False)
        return view


def _build_view(records: list[dict], query: ListQuery) -> _View:
    selected = [
        record
        for record in records
        if (query.include_deleted or not record.get("is_deleted"))
        and all(condition.matches(record) for condition in query.filters)
    ]
    decorated = [
        (tuple(sort_key(record.get(field.name)) for field in query.order), record)
        for record in selected
    ]
    # Stable sorts from the last field to the first give a mixed ascending and
    # descending order without inverting keys.
    for index in reversed(range(len(query.order))):
        decorated.sort(key=lambda item: item[0][index], reverse=query.order[index].descending)
    return _View(keys=[item[0] for item in decorated], records=[item[1] for item in decorated])


def _compare_keys(left: tuple, right: tuple, order: tuple[SortField, ...]) -> int:
    for left_value, right_value, field in zip(left, right, order):
        if left_value != right_value:
            result = -1 if left_value < right_value else 1
            return -result if field.descending else result
    return 0


def _position_after(keys: list[tuple], after: tuple, order: tuple[SortField, ...]) -> int:
    """Return the index of the first key strictly after `after` in the listing order."""
    low, high = 0, len(keys)
    while low < high:
        middle = (low + high) // 2
        if _compare_keys(keys[middle], after, order) <= 0:
            low = middle + 1
        else:
            high = middle
    return low


def _cursor_of(record: dict, order: tuple[SortField, ...]) -> str:
    return encode_cursor([record.get(field.name) for field in order])


def _first_page_end_cursor(view: _View, query: ListQuery) -> str:
    if not view.records:
        return EMPTY_CURSOR
    last_index = min(query.page_size, len(view.records)) - 1
    return _cursor_of(view.records[last_index], query.order)


def _project(record: dict, load_only: tuple[str, ...] | None) -> dict:
    if load_only is None:
        return record
    return {name: record[name] for name in load_only if name in record}
