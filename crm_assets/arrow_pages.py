"""Turn each page of flat records into an Arrow table, so dlt loads it without normalizing rows.

dlt normalizes Python dicts one value at a time, which took 40% of a benchmark sync of
500,000 records. It writes Arrow tables to parquet as they are. A page becomes an Arrow
table only when that gives the same table rows as dlt's own normalizer would:

- every value is a string, a number, a boolean or null (no nested objects or arrays,
  which dlt flattens into columns and child tables);
- the values of each field have one type, and it fits the field's column in the schema:
  its hint, its type in earlier loads, or its type on earlier pages of this sync;
- integers and fractions share a field only where the column is typed `double`;
- the typed timestamp columns parse as ISO 8601.

Any other page goes on as dicts through dlt's normalizer, exactly as before.
"""

from typing import Any, ClassVar

import dlt
import pyarrow as pa

from dlt.extract.items_transform import ItemTransform

# Type of the columns hinted as dlt `timestamp`; the API sends them as ISO 8601 strings.
TIMESTAMP = pa.timestamp("us", tz="UTC")
# Python types of values and the dlt data type a new column of them gets.
PYTHON_TYPES: dict[type, str] = {str: "text", int: "bigint", float: "double", bool: "bool"}
# Arrow types that inference gives for JSON scalars, and the dlt data type of each.
ARROW_NATURAL_TYPES: dict[pa.DataType, str] = {
    pa.string(): "text",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "bool",
}


class PagesToArrow(ItemTransform[Any, Any]):
    """Resource step that replaces a page (a list of flat dicts) by one Arrow table."""

    # After the incremental step, which filters dicts and keeps its cursor as a string.
    placement_affinity: ClassVar[float] = 1.05

    def __init__(self, table_name: str, hints: dict[str, dict[str, Any]]) -> None:
        super().__init__(lambda item: item)
        self.table_name = table_name
        self.hinted = {name: hint["data_type"] for name, hint in hints.items()}
        self.required = {name for name, hint in hints.items() if hint.get("nullable") is False}
        # Columns this step has typed so far in this sync, by name.
        self.seen: dict[str, str] = {}
        self.arrow_pages = 0
        self.dict_pages = 0

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if not isinstance(item, list) or not item:
            return item
        table = self.to_arrow(item)
        if table is None:
            self.dict_pages += 1
            self._note_dict_types(item)
            return item
        self.arrow_pages += 1
        return table

    def to_arrow(self, page: list[Any]) -> pa.Table | None:
        """Return the page as an Arrow table, or None when dlt must normalize it."""
        if not all(isinstance(record, dict) for record in page):
            return None
        try:
            # Arrow infers each field's type from all records, in C++.
            inferred = pa.array(page)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            # A field mixes types Arrow cannot combine, such as a string and a number, or
            # contains an integer beyond 64 bits.
            return None
        stored = self._stored_types()
        built: list[tuple[str, pa.Array, str]] = []
        for index, field in enumerate(inferred.type):
            name = field.name
            array = inferred.field(index)
            if name in self.required and array.null_count > 0:
                return None
            if pa.types.is_null(array.type):
                continue
            natural = ARROW_NATURAL_TYPES.get(array.type)
            if natural is None:
                return None
            expected = self._expected_type(name, stored)
            if natural == "double" and expected is None and _has_int(page, name):
                # dlt would type a new column by its first value, possibly as bigint.
                return None
            column = _fitted(array, natural, expected)
            if column is None:
                return None
            built.append((name, column, expected or natural))
        return self._table(built)

    def _expected_type(self, name: str, stored: dict[str, str]) -> str | None:
        """Return the dlt type a field must have: its hint, its stored type, or its type earlier in this sync."""
        return self.hinted.get(name) or stored.get(name) or self.seen.get(name)

    def _table(self, built: list[tuple[str, pa.Array, str]]) -> pa.Table:
        schema = pa.schema(
            pa.field(name, array.type, nullable=name not in self.required) for name, array, _ in built
        )
        self.seen.update({name: data_type for name, _, data_type in built})
        return pa.Table.from_arrays([array for _, array, _ in built], schema=schema)

    def _note_dict_types(self, page: list[Any]) -> None:
        """Remember the type that dlt will give each new field of a page it normalizes.

        dlt types a new column by its first value. A later flat page must not type the same
        column differently, which it could before dlt has normalized this page.
        """
        for record in page:
            if not isinstance(record, dict):
                continue
            for name, value in record.items():
                data_type = PYTHON_TYPES.get(type(value))
                if data_type is not None and name not in self.hinted:
                    self.seen.setdefault(name, data_type)

    def _stored_types(self) -> dict[str, str]:
        """Return the data types of the table's columns in the schema being extracted into."""
        try:
            table = dlt.current.source_schema().tables.get(self.table_name)
        except Exception:
            # Outside dlt's extraction, as in unit tests, there is no schema.
            return {}
        if not table:
            return {}
        return {
            name: column["data_type"]
            for name, column in table.get("columns", {}).items()
            if "data_type" in column
        }


def _has_int(page: list[Any], name: str) -> bool:
    return any(type(record.get(name)) is int for record in page)


def _fitted(array: pa.Array, natural: str, data_type: str | None) -> pa.Array | None:
    """Return an inferred column in the type its column needs, or None if it does not fit."""
    if data_type is None or data_type == natural:
        return array
    if data_type == "timestamp" and natural == "text":
        try:
            return array.cast(TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


# dlt adds its `_dlt_load_id` and `_dlt_id` columns to dict rows always, but to Arrow tables
# only when these settings are on. Rows of both kinds share each table, so both must carry them.
ARROW_ROW_SETTINGS = {
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID": "true",
}
