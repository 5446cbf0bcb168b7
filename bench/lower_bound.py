"""Variant (c): the least work that copies the collections into DuckDB.

Run as a child of `bench.run`: `python -m bench.lower_bound RESULT_JSON`. One thread and
one keep-alive `requests.Session` per collection page through it with `first=100` and
`after=page_info.end_cursor` until `has_next_page` is false, writing each record as one
JSON line. Then DuckDB loads each file with one `read_json` into `crm.<table>`. The
connection comes from the same `CRM_*` variables as the other variants.
"""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import requests
from requests.auth import HTTPBasicAuth

from crm_assets.entities import CRM_ENTITIES

PAGE_SIZE = 100
REQUEST_TIMEOUT = 30.0


def fetch_collection(
    base_url: str, collection: str, auth: tuple[bytes, bytes], target: Path
) -> int:
    """Write every record of `collection` to `target` as JSON lines and return the page count."""
    pages = 0
    params: dict[str, str | int] = {"first": PAGE_SIZE}
    with requests.Session() as session, target.open("w", encoding="utf-8") as output:
        session.auth = HTTPBasicAuth(*auth)
        while True:
            response = session.get(base_url + collection, params=params, timeout=REQUEST_TIMEOUT)
            response.raise_for_status()
            body = response.json()
            pages += 1
            for record in body["data"]:
                output.write(json.dumps(record, ensure_ascii=False))
                output.write("\n")
            page_info = body["page_info"]
            if page_info["has_next_page"] is False:
                return pages
            params["after"] = page_info["end_cursor"]


def load_files(database: Path, files: dict[str, Path]) -> None:
    """Create `crm.<table>` from each JSON lines file with one bulk `read_json`."""
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema crm")
        for table, path in files.items():
            connection.execute(
                f'create table crm."{table}" as '
                "select * from read_json(?, format = 'newline_delimited')",
                [str(path)],
            )


def main(result_path: Path) -> int:
    base_url = (
        f"{os.environ['CRM_API_URL']}/api/v100/rest/spaces/{os.environ['CRM_SPACE_ID']}/entities/"
    )
    auth = (os.environ["CRM_USERNAME"].encode("utf-8"), os.environ["CRM_PASSWORD"].encode("utf-8"))
    folder = Path(os.environ["CRM_PIPELINES_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    files = {entity.table_name: folder / f"{entity.table_name}.jsonl" for entity in CRM_ENTITIES}

    started = time.time()
    with ThreadPoolExecutor(max_workers=len(CRM_ENTITIES)) as pool:
        futures = {
            entity.collection: pool.submit(
                fetch_collection, base_url, entity.collection, auth, files[entity.table_name]
            )
            for entity in CRM_ENTITIES
        }
        pages = {collection: future.result() for collection, future in futures.items()}
    fetched = time.time()
    load_files(Path(os.environ["CRM_DUCKDB_PATH"]), files)
    loaded = time.time()

    windows = {"fetch": (started, fetched), "load": (fetched, loaded)}
    stages = {name: end - start for name, (start, end) in windows.items()}
    result = {"stages": stages, "windows": windows, "pages": pages}
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
