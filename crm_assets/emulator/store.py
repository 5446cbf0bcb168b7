"""Thread-safe in-memory record store behind the emulator."""

import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from crm_assets.emulator.timestamps import format_timestamp

_ONE_MICROSECOND = timedelta(microseconds=1)


class CrmStore:
    """Collections of CRM records, keyed by collection name, with a monotonic clock.

    Stored record dicts are never mutated: every write stores a new dict, so a
    snapshot of references stays consistent while other threads write. Records keep
    their insertion order, and an update keeps the record's position.
    """

    def __init__(self, clock_start: datetime | None = None) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, list[dict]] = {}
        self._positions: dict[str, dict[str, int]] = {}
        self._versions: dict[str, int] = {}
        if clock_start is not None and clock_start.tzinfo is None:
            clock_start = clock_start.replace(tzinfo=UTC)
        self._clock_start = clock_start
        self._clock_origin = time.monotonic()
        self._last_tick: datetime | None = None

    def tick(self) -> datetime:
        """Advance the store clock and return it as an aware UTC datetime.

        The clock follows real time (from `clock_start` if given) but every tick is at
        least one microsecond after the previous one, so it never repeats or goes back.
        """
        with self._lock:
            if self._clock_start is None:
                candidate = datetime.now(UTC)
            else:
                elapsed = timedelta(seconds=time.monotonic() - self._clock_origin)
                candidate = self._clock_start + elapsed
            if self._last_tick is not None and candidate <= self._last_tick:
                candidate = self._last_tick + _ONE_MICROSECOND
            self._last_tick = candidate
            return candidate

    def collections(self) -> list[str]:
        """Return the collection names in sorted order."""
        with self._lock:
            return sorted(self._records)

    def has_collection(self, name: str) -> bool:
        with self._lock:
            return name in self._records

    def add_collection(self, name: str) -> None:
        """Create an empty collection. Does nothing if it already exists."""
        with self._lock:
            if name not in self._records:
                self._records[name] = []
                self._positions[name] = {}
                self._versions[name] = 0

    def version(self, collection: str) -> int:
        """Return a counter that grows with every write to the collection."""
        with self._lock:
            return self._versions.get(collection, 0)

    def put(self, collection: str, record: dict) -> dict:
        """Insert a record, or update the stored one with the same `id`, and return a copy.

        An update merges the given fields over the stored record. The store sets the
        server fields: `id` (a new UUID if missing), `created` on insert only,
        `modified` from the store clock, `revision` (1 on insert, then +1),
        `is_deleted` (False unless given) and `is_delete_protected` (False unless given
        or already stored). The collection is created if needed.
        """
        with self._lock:
            self.add_collection(collection)
            record_id = str(record.get("id") or uuid.uuid4())
            previous = self._get_stored(collection, record_id)
            now = format_timestamp(self.tick())
            merged = {"id": record_id, **(previous or {}), **record}
            merged["id"] = record_id
            merged["created"] = previous.get("created", now) if previous else now
            merged["modified"] = now
            merged["revision"] = _next_revision(previous)
            merged["is_deleted"] = bool(record.get("is_deleted", False))
            merged.setdefault("is_delete_protected", False)
            self._store(collection, merged, replace=True)
            return dict(merged)

    def delete(self, collection: str, record_id: str) -> dict:
        """Soft-delete a record: set `is_deleted`, bump `modified` and `revision`.

        Raises KeyError if the collection has no record with that id.
        """
        with self._lock:
            previous = self._get_stored(collection, record_id)
            if previous is None:
                raise KeyError(f"No record with id {record_id!r} in collection {collection!r}.")
            updated = dict(previous)
            updated["is_deleted"] = True
            updated["modified"] = format_timestamp(self.tick())
            updated["revision"] = _next_revision(previous)
            self._store(collection, updated, replace=True)
            return dict(updated)

    def put_raw(self, collection: str, record: dict) -> dict:
        """Append a copy of `record` exactly as given, and return another copy.

        No field is set or checked, so tests can store duplicate ids, missing fields or
        values of unusual types. A later put() or delete() with the same id changes the
        most recently appended of the duplicates.
        """
        self.put_raw_many(collection, [record])
        return dict(record)

    def put_raw_many(self, collection: str, records: Iterable[dict]) -> int:
        """Append copies of many records as put_raw() does, under one lock. Returns the count."""
        with self._lock:
            self.add_collection(collection)
            count = 0
            for record in records:
                self._store(collection, dict(record), replace=False)
                count += 1
            return count

    def get(self, collection: str, record_id: str) -> dict | None:
        """Return a copy of the record with that id (deleted or not), or None."""
        with self._lock:
            stored = self._get_stored(collection, record_id)
            return dict(stored) if stored is not None else None

    def live_records(self, collection: str) -> list[dict]:
        """Return copies of the records that are not soft-deleted, in insertion order."""
        return [record for record in self.all_records(collection) if not record.get("is_deleted")]

    def all_records(self, collection: str) -> list[dict]:
        """Return copies of all records, soft-deleted ones included, in insertion order."""
        with self._lock:
            return [dict(record) for record in self._records.get(collection, [])]

    def snapshot(self, collection: str) -> tuple[int, list[dict]]:
        """Return the collection's version and its stored records, without copying them.

        Callers must treat the record dicts as read-only.
        """
        with self._lock:
            return self._versions.get(collection, 0), list(self._records.get(collection, []))

    def _get_stored(self, collection: str, record_id: str) -> dict | None:
        position = self._positions.get(collection, {}).get(record_id)
        if position is None:
            return None
        return self._records[collection][position]

    def _store(self, collection: str, record: dict, replace: bool) -> None:
        records = self._records[collection]
        positions = self._positions[collection]
        record_id = record.get("id")
        position = positions.get(record_id) if replace and isinstance(record_id, str) else None
        if position is None:
            records.append(record)
            if isinstance(record_id, str):
                positions[record_id] = len(records) - 1
        else:
            records[position] = record
        self._versions[collection] += 1


def _next_revision(previous: dict | None) -> int:
    revision = previous.get("revision") if previous else None
    if isinstance(revision, int) and not isinstance(revision, bool):
        return revision + 1
    return 1
