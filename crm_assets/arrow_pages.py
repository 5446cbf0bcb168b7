"""Turn each page of flat records into an Arrow table, so dlt loads it without normalizing rows.

dlt normalizes Python dicts one value at a time, which took 40% of a benchmark sync of
500,000 records.
It writes Arrow tables to parquet as they are. A page becomes an Arrow table only when
that gives the same table rows as dlt's own normalizer would:

- every value is a string, an integer, a float, a boolean or null (no nested objects or
  arrays, which dlt flattens into columns and child tables);
- the values of each field share one Python type, and that type fits the field's column
  in the schema (its hint, or the type an earlier load gave it);
- the typed timestamp columns parse as ISO 8601.

Any other page goes on as dicts through dlt's normalizer, exactly as before.
"""

from typing import Any, ClassVar

import dlt
import pyarrow as pa

from dlt.extract.items_transform import ItemTransform

# dlt data types of the hinted columns and the Arrow type each is built with.
ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
# Python types of values and the dlt data type a new column of them gets.
PYTHON_TYPES: dict[type, str] = {str: "text", int: "bigint", float: "double", bool: "bool"}
TIMESTAMP = ARROW_TYPES["timestamp"]


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
        fields: dict[str, None] = {}
        for record in page:
            if not isinstance(record, dict):
                return None
            fields.update(dict.fromkeys(record))
        stored = self._stored_types()
        columns: dict[str, pa.Array] = {}
        fields_out: list[pa.Field] = []
        types: dict[str, str] = {}
        for name in fields:
            values = [record.get(name) for record in page]
            python_types = {type(value) for value in values if value is not None}
            if name in self.required and (None in values or not python_types):
                return None
            if not python_types:
                continue
            if len(python_types) > 1:
                return None
            python_type = python_types.pop()
            expected = self.hinted.get(name) or stored.get(name) or self.seen.get(name)
            array = _column(values, python_type, expected)
            if array is None:
                return None
            columns[name] = array
            fields_out.append(pa.field(name, array.type, nullable=name not in self.required))
            types[name] = expected or PYTHON_TYPES[python_type]
        self.seen.update(types)
        return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields_out))

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
        """Data types of the table's columns in the schema being extracted into."""
        try:
            table = dlt.current.source_schema().tables.get(self.table_name)
        except Exception:
            return {}
        if not table:
            return {}
        return {
            name: column["data_type"]
            for name, column in table.get("columns", {}).items()
            if "data_type" in column
        }


def _column(values: list[Any], python_type: type, data_type: str | None) -> pa.Array | None:
    """Build one column, or return None when its values do not fit `data_type` exactly."""
    natural = PYTHON_TYPES.get(python_type)
    if natural is None:
        return None
    if data_type is None:
        data_type = natural
    if data_type == "timestamp":
        if python_type is not str:
            return None
        try:
            return pa.array(values, pa.string()).cast(TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    if data_type != natural or data_type not in ARROW_TYPES:
        return None
    try:
        return pa.array(values, ARROW_TYPES[data_type])
    except (pa.ArrowInvalid, OverflowError, TypeError):
        return None



# dlt adds its `_dlt_load_id` and `_dlt_id` columns to dict rows always, but to Arrow tables
# only when these settings are on. Rows of both kinds share each table, so both must carry them.
ARROW_ROW_SETTINGS = {
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
    "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID": "true",
}
