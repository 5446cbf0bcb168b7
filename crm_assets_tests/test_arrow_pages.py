"""Pages as Arrow tables: which pages qualify, and that the tables equal dlt's own normalizing."""

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from crm_assets.arrow_pages import PagesToArrow
from crm_assets.emulator import CrmStore, load_sample_store
from crm_assets.entities import CRM_ENTITIES
from crm_assets.http import CrmSession
from crm_assets.resources import CrmWarehouseResource
from crm_assets.settings import RetrySettings, build_connection, scoped_environ
from crm_assets.source import SyncMode, crm_source, entity_columns

from .conftest import PASSWORD, SPACE_ID, USERNAME
from .test_sample_data import EXPECTED_ROWS, OPPORTUNITIES

ACCOUNTS = CRM_ENTITIES[0]
DLT_ROW_COLUMNS = ("_dlt_load_id", "_dlt_id", "_dlt_parent_id", "_dlt_root_id")


def accounts_step() -> PagesToArrow:
    return PagesToArrow("accounts", entity_columns(ACCOUNTS, SyncMode()))


def account(number: int, **fields) -> dict:
    return {
        "id": f"acc-{number:03d}",
        "created": "2024-01-01 08:00:00.000001+00:00",
        "modified": f"2024-01-02 08:00:{number % 60:02d}.250000+00:00",
        "revision": 1,
        "is_deleted": False,
        "is_delete_protected": False,
        "name": f"Account {number}",
        **fields,
    }


def test_flat_page_becomes_typed_table():
    page = [account(1, annual_revenue=12.5, rating=4, vip=True), account(2, fax=None, rating=None)]

    table = accounts_step()(page)

    assert isinstance(table, pa.Table)
    assert table.schema.field("id").nullable is False
    types = {field.name: str(field.type) for field in table.schema}
    assert types == {
        "id": "string",
        "created": "timestamp[us, tz=UTC]",
        "modified": "timestamp[us, tz=UTC]",
        "revision": "int64",
        "is_deleted": "bool",
        "is_delete_protected": "bool",
        "name": "string",
        "annual_revenue": "double",
        "rating": "int64",
        "vip": "bool",
    }
    assert table.column("modified").to_pylist() == [
        datetime(2024, 1, 2, 8, 0, 1, 250000, tzinfo=timezone.utc),
        datetime(2024, 1, 2, 8, 0, 2, 250000, tzinfo=timezone.utc),
    ]
    assert table.column("annual_revenue").to_pylist() == [12.5, None]


@pytest.mark.parametrize(
    "fields",
    [
        {"custom": {"tier": "gold"}},
        {"tags": ["a", "b"]},
        {"external_id": 10},  # the other record has a string
        {"annual_revenue": 5},  # an integer in a column typed double
        {"name": 7},  # an integer in a column typed text
        {"modified": "next Tuesday"},
        {"id": None},
        {"big": 2**70},
    ],
    ids=["object", "array", "mixed types", "int for double", "int for text", "bad timestamp", "null id", "huge int"],
)
def test_unfit_page_stays_dicts(fields):
    page = [account(1, external_id="A-1"), account(2, **fields)]
    step = accounts_step()

    assert step(page) is page
    assert (step.arrow_pages, step.dict_pages) == (0, 1)


def test_dict_page_type_kept():
    step = accounts_step()
    step([account(1, code="C-1", custom={"tier": "gold"})])

    later = [account(2, code=2)]

    assert step(later) is later


def test_earlier_page_type_kept():
    step = accounts_step()
    step([account(1, external_id=10)])

    later = [account(2, external_id="A-2")]

    assert step(later) is later


def test_sample_pages_become_arrow():
    store = load_sample_store()
    for entity in (*CRM_ENTITIES, OPPORTUNITIES):
        step = PagesToArrow(entity.table_name, entity_columns(entity, SyncMode()))
        records = store.all_records(entity.collection)
        pages = [records[start : start + 100] for start in range(0, len(records), 100)]
        tables = [step(page) for page in pages]
        assert all(isinstance(table, pa.Table) for table in tables), entity.collection
        assert sum(table.num_rows for table in tables) == len(records), entity.collection


def load(emulator_url: str, database: Path, entities, arrow_pages: bool, batch_records: int = 5000, page_size: int = 100) -> None:
    """Sync `entities` from the emulator into `database` with the product's source and settings."""
    connection = build_connection(emulator_url, SPACE_ID, USERNAME, PASSWORD, page_size=page_size)
    warehouse = CrmWarehouseResource(duckdb_path=str(database), pipelines_dir=str(database.parent / "dlt"))
    pipeline = warehouse.build_pipeline()
    source = crm_source(
        tuple(entities), connection, CrmSession(RetrySettings()), batch_records=batch_records, arrow_pages=arrow_pages
    )
    with scoped_environ(warehouse.run_settings()):
        pipeline.run(source, loader_file_format="parquet")


def snapshot(database: Path) -> dict[str, tuple[list, list]]:
    """Each CRM table's columns with their types, and its rows without dlt's row ids, sorted."""
    tables: dict[str, tuple[list, list]] = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        names = connection.execute(
            "select table_name from information_schema.tables where table_schema = 'crm' "
            "and table_name not like '_dlt%' order by table_name"
        ).fetchall()
        for (name,) in names:
            columns = connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'crm' and table_name = ? order by column_name",
                [name],
            ).fetchall()
            selected = ", ".join(f'"{column}"' for column, _ in columns if column not in DLT_ROW_COLUMNS)
            rows = connection.execute(f'select {selected} from crm."{name}" order by all').fetchall()
            tables[name] = (columns, rows)
    return tables


def test_sample_tables_match_dict_loads(start_emulator, tmp_path: Path):
    emulator = start_emulator(load_sample_store())
    entities = (*CRM_ENTITIES, OPPORTUNITIES)

    load(emulator.url, tmp_path / "arrow" / "warehouse.duckdb", entities, arrow_pages=True)
    load(emulator.url, tmp_path / "dicts" / "warehouse.duckdb", entities, arrow_pages=False)

    arrow = snapshot(tmp_path / "arrow" / "warehouse.duckdb")
    dicts = snapshot(tmp_path / "dicts" / "warehouse.duckdb")
    assert {name: len(rows) for name, (_, rows) in arrow.items()} == EXPECTED_ROWS
    assert arrow == dicts


def mixed_accounts_store() -> CrmStore:
    """Accounts whose pages mix flat records, nested fields, type drift, nulls and deletions."""
    store = CrmStore()
    for collection in ("Accounts", "Entities"):
        store.add_collection(collection)
    store.put("Entities", {"entity_name": "Account", "table_name": "accounts", "entity_type": "system"})
    for number in range(60):
        fields: dict = {"name": f"Account {number}", "annual_revenue": number * 1.5, "fax": None}
        if number == 3:
            fields["custom"] = {"tier": "bronze"}
            fields["code"] = "C-3"
        if number == 15:
            fields["code"] = 15
        if number == 17:
            fields["custom"] = {"tier": "gold", "score": 3}
        if number == 33:
            fields["tags"] = ["north", "key"]
        if number in (41, 42):
            fields["external_id"] = 1000 + number
        if number == 52:
            fields["external_id"] = "X-52"
        if number % 7 == 0:
            fields["vip"] = number % 2 == 0
        store.put("Accounts", {"id": f"acc-{number:03d}", **fields})
    store.delete("Accounts", "acc-005")
    return store


def test_mixed_pages_match_dict_loads(start_emulator, tmp_path: Path):
    store = mixed_accounts_store()
    emulator = start_emulator(store)
    entities = (ACCOUNTS, CRM_ENTITIES[4])
    arrow_db = tmp_path / "arrow" / "warehouse.duckdb"
    dicts_db = tmp_path / "dicts" / "warehouse.duckdb"

    for database, arrow_pages in ((arrow_db, True), (dicts_db, False)):
        load(emulator.url, database, entities, arrow_pages, batch_records=10, page_size=10)
    first = snapshot(arrow_db)
    assert first == snapshot(dicts_db)
    store.put("Accounts", {"id": "acc-017", "custom": {"tier": "silver", "score": 4}})
    store.put("Accounts", {"id": "acc-020", "name": "Renamed", "rating": 4.5})
    store.put("Accounts", {"id": "acc-099", "name": "New"})
    store.delete("Accounts", "acc-041")
    for database, arrow_pages in ((arrow_db, True), (dicts_db, False)):
        load(emulator.url, database, entities, arrow_pages, batch_records=10, page_size=10)

    second = snapshot(arrow_db)
    assert second == snapshot(dicts_db)
    assert sorted(first) == ["accounts", "accounts__tags", "entities"]
    columns, rows = second["accounts"]
    id_position = [column for column, _ in columns if column not in DLT_ROW_COLUMNS].index("id")
    ids = {row[id_position] for row in rows}
    assert len(ids) == 59
    assert "acc-005" not in ids
    assert "acc-041" not in ids
    assert "acc-099" in ids
