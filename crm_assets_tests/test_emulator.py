"""Tests of the CRM API emulator over real HTTP on 127.0.0.1."""

import base64
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from importlib import resources
from pathlib import Path

import pytest

from crm_assets.emulator import (
    SAMPLE_COUNTS,
    CrmEmulator,
    CrmStore,
    Faults,
    RequestRecord,
    load_sample_store,
    parse_timestamp,
    synthetic_store,
)
from crm_assets.emulator.ids import ID_NAMESPACE, record_id

COLLECTIONS = ("Accounts", "Activities", "Clients", "Contacts", "Entities")
USERNAME = "demo-token"
PASSWORD = "demo-secret"
API_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00")


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def basic_auth(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def fetch(
    emulator: CrmEmulator,
    collection: str = "Accounts",
    params: dict[str, str] | None = None,
    authorization: str | None = basic_auth(USERNAME, PASSWORD),
    path: str | None = None,
    timeout: float = 5.0,
) -> Reply:
    """GET a listing (or `path`) and return the reply, whatever its status."""
    if path is None:
        path = f"/api/v100/rest/spaces/{emulator.space_id}/entities/{collection}"
    query = "?" + urllib.parse.urlencode(params) if params else ""
    request = urllib.request.Request(emulator.url + path + query)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def walk(emulator: CrmEmulator, collection: str = "Accounts", **params: str) -> list[dict]:
    """Follow end_cursor until has_next_page is false and return all records."""
    records: list[dict] = []
    after: str | None = None
    while True:
        query = dict(params) if after is None else {**params, "after": after}
        body = fetch(emulator, collection, query).json()
        records.extend(body["data"])
        if not body["page_info"]["has_next_page"]:
            return records
        after = body["page_info"]["end_cursor"]


def decode_cursor(cursor: str) -> list:
    return json.loads(base64.b64decode(cursor))


def statuses(emulator: CrmEmulator, count: int) -> list[int]:
    return [fetch(emulator, params={"first": "5"}).status for _ in range(count)]


@pytest.fixture
def store() -> CrmStore:
    synthetic = synthetic_store(records=250, collections=COLLECTIONS)
    synthetic.add_collection("Empty")
    return synthetic


@pytest.fixture
def emulator(store: CrmStore) -> Iterator[CrmEmulator]:
    with CrmEmulator(store, space_id="demo-space", username=USERNAME, password=PASSWORD) as running:
        yield running


# Paging


def test_default_page_size_is_30(emulator):
    body = fetch(emulator).json()
    assert len(body["data"]) == 30
    assert body["total"] == 250
    assert body["page_info"]["has_next_page"] is True
    assert body["page_info"]["has_previous_page"] is False


@pytest.mark.parametrize(
    "first, expected",
    [("1", 1), ("100", 100), ("101", 100), ("5000", 100)],
    ids=["one", "maximum", "just-over", "far-over"],
)
def test_page_size_clamped_to_100(emulator, first, expected):
    assert len(fetch(emulator, params={"first": first}).json()["data"]) == expected


@pytest.mark.parametrize(
    "first", ["0", "-1", "abc", "1.5", ""], ids=["zero", "negative", "word", "float", "empty"]
)
def test_invalid_first_rejected(emulator, first):
    reply = fetch(emulator, params={"first": first})
    body = reply.json()
    assert reply.status == 400
    assert body["name"] == "ERROR_PARAMETER_INVALID"
    assert body["message"].startswith("Parameter 'first'")


def test_cursor_walk_returns_every_id(emulator, store):
    pages = []
    after = None
    while True:
        params = {"first": "100"} if after is None else {"first": "100", "after": after}
        body = fetch(emulator, params=params).json()
        pages.append(body)
        if not body["page_info"]["has_next_page"]:
            break
        after = body["page_info"]["end_cursor"]
    ids = [record["id"] for page in pages for record in page["data"]]
    last_page = pages[-1]
    last_record = last_page["data"][-1]

    assert [len(page["data"]) for page in pages] == [100, 100, 50]
    assert [page["page_info"]["has_previous_page"] for page in pages] == [False, True, True]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == {record["id"] for record in store.live_records("Accounts")}
    assert last_page["page_info"]["end_cursor"] is not None
    last_key = [last_record["created"], last_record["id"]]
    assert decode_cursor(last_page["page_info"]["end_cursor"]) == last_key


def test_after_last_cursor_returns_empty(emulator):
    body = fetch(emulator, params={"first": "100"}).json()
    while body["page_info"]["has_next_page"]:
        params = {"first": "100", "after": body["page_info"]["end_cursor"]}
        body = fetch(emulator, params=params).json()
    last_cursor = body["page_info"]["end_cursor"]

    past_end = fetch(emulator, params={"first": "100", "after": last_cursor}).json()

    assert past_end["data"] == []
    assert past_end["page_info"]["has_next_page"] is False
    assert past_end["page_info"]["has_previous_page"] is True
    assert past_end["page_info"]["end_cursor"] == last_cursor
    assert past_end["total"] == 250


def test_empty_collection_has_cursor(emulator):
    body = fetch(emulator, "Empty").json()
    assert body["data"] == []
    assert body["total"] == 0
    assert body["page_info"]["has_next_page"] is False
    assert body["page_info"]["end_cursor"] is not None
    assert decode_cursor(body["page_info"]["end_cursor"]) == []


@pytest.mark.parametrize(
    "cursor",
    ["not a cursor!", base64.b64encode(b"{}").decode(), base64.b64encode(b'["x"]').decode()],
    ids=["not-base64", "object", "wrong-length"],
)
def test_invalid_cursor_rejected(emulator, cursor):
    reply = fetch(emulator, params={"after": cursor})
    assert reply.status == 400
    assert reply.json()["message"].startswith("Parameter 'after'")


def test_urlsafe_cursor_accepted(emulator):
    cursor = fetch(emulator, params={"first": "10"}).json()["page_info"]["end_cursor"]
    urlsafe = cursor.replace("+", "-").replace("/", "_").rstrip("=")
    expected = fetch(emulator, params={"first": "10", "after": cursor}).json()["data"]
    assert fetch(emulator, params={"first": "10", "after": urlsafe}).json()["data"] == expected


def test_walk_stable_under_inserts(emulator, store):
    original_ids = {record["id"] for record in store.live_records("Accounts")}
    seen: list[str] = []
    after = None
    while True:
        params = {"first": "40"} if after is None else {"first": "40", "after": after}
        body = fetch(emulator, params=params).json()
        seen.extend(record["id"] for record in body["data"])
        # One insert sorts before every walked record (an offset would shift), one after.
        early = {"id": str(uuid.uuid4()), "created": "2000-01-01 00:00:00.000000+00:00"}
        store.put_raw("Accounts", early)
        store.put("Accounts", {"name": f"Inserted after {len(seen)} records"})
        if not body["page_info"]["has_next_page"]:
            break
        after = body["page_info"]["end_cursor"]
    assert len(seen) == len(set(seen))
    assert original_ids <= set(seen)
    # Seven pages of 40: the late inserts made after pages 1 to 6 come on the last page.
    assert len(seen) == 250 + 6


# Authentication and errors


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic_auth(USERNAME, "wrong-secret"),
        basic_auth("wrong-token", PASSWORD),
        basic_auth(USERNAME, PASSWORD + " "),
        "Bearer " + PASSWORD,
        "Basic %%%",
        "Basic " + base64.b64encode(USERNAME.encode()).decode(),
    ],
    ids=[
        "missing",
        "wrong-password",
        "wrong-username",
        "trailing-space",
        "bearer",
        "bad-base64",
        "no-colon",
    ],
)
def test_bad_credentials_get_401(emulator, authorization):
    reply = fetch(emulator, authorization=authorization)
    body = reply.json()
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == 'Basic realm="api"'
    assert set(body) == {"success", "http_status", "code", "name", "message"}
    assert body["success"] is False
    assert body["http_status"] == body["code"] == 401
    assert body["name"] == "ERROR_UNAUTHORIZED"


def test_utf8_password_matched_bytewise(store):
    password = "p@ss:wörd€ #%${HOME}x"
    decomposed = password.replace("ö", "o\u0308")
    with CrmEmulator(store, username="api-tøken", password=password) as emulator:
        accepted = fetch(emulator, authorization=basic_auth("api-tøken", password))
        rejected = fetch(emulator, authorization=basic_auth("api-tøken", decomposed))
        truncated = fetch(emulator, authorization=basic_auth("api-tøken", password[:-1]))
    assert accepted.status == 200
    assert rejected.status == 401
    assert truncated.status == 401


@pytest.mark.parametrize(
    "path, message",
    [
        ("/api/v100/rest/spaces/other-space/entities/Accounts", "Space not found."),
        ("/api/v100/rest/spaces/demo-space/entities/Unicorns", "Collection not found."),
        ("/api/v100/rest/spaces/demo-space/entities", "No API endpoint exists at this path."),
        ("/", "No API endpoint exists at this path."),
    ],
    ids=["space", "collection", "no-collection", "root"],
)
def test_unknown_path_returns_404(emulator, path, message):
    reply = fetch(emulator, path=path)
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == {
        "success": False,
        "http_status": 404,
        "code": 404,
        "name": "ERROR_NOT_FOUND",
        "message": message,
    }


@pytest.mark.parametrize("via", ["attribute", "faults"])
def test_forbidden_collection_returns_403(emulator, via):
    if via == "attribute":
        emulator.forbidden_collections = {"Activities"}
    else:
        emulator.faults = Faults(forbidden_collections=frozenset({"Activities"}))
    reply = fetch(emulator, "Activities")
    assert reply.status == 403
    assert reply.json()["name"] == "ERROR_FORBIDDEN"
    assert fetch(emulator, "Accounts").status == 200


def test_post_returns_405(emulator):
    url = f"{emulator.url}/api/v100/rest/spaces/demo-space/entities/Accounts"
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 405
    assert error.value.headers["Allow"] == "GET"


# Filters, ordering and projection


def modified_pivot(store: CrmStore) -> str:
    """Return the `modified` of record 100. Synthetic `modified` values increase with the index."""
    return store.get("Accounts", record_id("Accounts", 100))["modified"]


@pytest.mark.parametrize(
    "operator, expected",
    [("gt", 149), ("gte", 150), ("lt", 100), ("lte", 101), ("eq", 1), ("not-eq", 249)],
    ids=["gt", "gte", "lt", "lte", "eq", "not-eq"],
)
def test_modified_filter_operators(emulator, store, operator, expected):
    params = {
        "filter[modified]": modified_pivot(store),
        "filter-op[modified]": operator,
        "first": "100",
    }
    body = fetch(emulator, params=params).json()
    assert body["total"] == expected
    assert len(walk(emulator, **params)) == expected


def test_default_filter_operator_is_eq(emulator, store):
    assert fetch(emulator, params={"filter[modified]": modified_pivot(store)}).json()["total"] == 1


@pytest.mark.parametrize(
    "shape",
    ["space", "t-separator", "z-suffix", "offset", "no-fraction"],
)
def test_timestamp_filter_formats(emulator, store, shape):
    pivot = parse_timestamp(modified_pivot(store))
    texts = {
        "space": pivot.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "t-separator": pivot.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "z-suffix": pivot.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "offset": (pivot + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S.%f+02:00"),
        "no-fraction": pivot.strftime("%Y-%m-%d %H:%M:%S"),
    }
    values = [record["modified"] for record in store.live_records("Accounts")]
    cut = pivot.replace(microsecond=0) if shape == "no-fraction" else pivot
    expected = sum(1 for value in values if parse_timestamp(value) >= cut)
    params = {"filter[modified]": texts[shape], "filter-op[modified]": "gte"}
    assert fetch(emulator, params=params).json()["total"] == expected


@pytest.mark.parametrize(
    "params, parameter",
    [
        (
            {"filter[modified]": "2024-01-01", "filter-op[modified]": "between"},
            "filter-op[modified]",
        ),
        ({"filter[modified]": "yesterday", "filter-op[modified]": "gte"}, "filter[modified]"),
        ({"filter-op[created]": "gt"}, "filter[created]"),
        ({"include-deleted": "maybe"}, "include-deleted"),
        ({"order-by": "-"}, "order-by"),
    ],
    ids=["unknown-operator", "bad-timestamp", "missing-value", "bad-boolean", "empty-order"],
)
def test_invalid_parameter_rejected(emulator, params, parameter):
    reply = fetch(emulator, params=params)
    body = reply.json()
    assert reply.status == 400
    assert body["name"] == "ERROR_PARAMETER_INVALID"
    assert body["message"].startswith(f"Parameter '{parameter}'")


@pytest.mark.parametrize(
    "collection, params, predicate",
    [
        (
            "Accounts",
            {"filter[name]": "north", "filter-op[name]": "contains"},
            lambda r: "north" in r["name"].lower(),
        ),
        ("Accounts", {"filter[country]": "Kenya"}, lambda r: r["country"] == "Kenya"),
        (
            "Accounts",
            {"filter[employees]": "10000", "filter-op[employees]": "gt"},
            lambda r: r["employees"] > 10000,
        ),
        ("Contacts", {"filter-op[title]": "null"}, lambda r: r["title"] is None),
        ("Contacts", {"filter-op[title]": "not-null"}, lambda r: r["title"] is not None),
        (
            "Accounts",
            {
                "filter[country]": "Japan",
                "filter[employees]": "5000",
                "filter-op[employees]": "lte",
            },
            lambda r: r["country"] == "Japan" and r["employees"] <= 5000,
        ),
    ],
    ids=["contains", "string-eq", "number-gt", "null", "not-null", "two-filters"],
)
def test_field_filters_match_python(emulator, store, collection, params, predicate):
    records = store.live_records(collection)
    expected = sorted(record["id"] for record in records if predicate(record))
    found = sorted(record["id"] for record in walk(emulator, collection, first="100", **params))
    assert len(expected) > 0
    assert found == expected


def test_deleted_hidden_by_default(emulator, store):
    before = store.get("Accounts", record_id("Accounts", 7))
    deleted_ids = {record_id("Accounts", index) for index in (7, 8, 9)}
    for record_id_ in deleted_ids:
        store.delete("Accounts", record_id_)
    after = store.get("Accounts", record_id("Accounts", 7))

    default = walk(emulator, first="100")
    with_deleted = walk(emulator, first="100", **{"include-deleted": "true"})

    assert len(default) == 247
    assert deleted_ids.isdisjoint(record["id"] for record in default)
    assert len(with_deleted) == 250
    assert {record["id"] for record in with_deleted if record["is_deleted"]} == deleted_ids
    assert after["revision"] == before["revision"] + 1
    assert after["modified"] > before["modified"]


def test_incremental_read_sees_changes(emulator, store):
    last_seen = max(record["modified"] for record in store.live_records("Accounts"))
    updated = store.put("Accounts", {"id": record_id("Accounts", 3), "name": "Renamed"})
    deleted = store.delete("Accounts", record_id("Accounts", 4))
    inserted = store.put("Accounts", {"name": "New account"})
    params = {
        "filter[modified]": last_seen,
        "filter-op[modified]": "gte",
        "order-by": "modified",
        "include-deleted": "true",
    }

    changes = walk(emulator, **params)

    changed_ids = [record["id"] for record in changes[1:]]
    assert changed_ids == [updated["id"], deleted["id"], inserted["id"]]
    assert changes[0]["modified"] == last_seen
    assert changes[1]["name"] == "Renamed"
    assert changes[2]["is_deleted"] is True


@pytest.mark.parametrize("order_by", ["modified", "-modified", "country,-employees"])
def test_order_by_fields(emulator, store, order_by):
    records = walk(emulator, first="100", **{"order-by": order_by})
    expected = sorted(store.live_records("Accounts"), key=lambda record: record["id"])
    for name in reversed(order_by.split(",")):
        field = name.lstrip("-")
        expected.sort(key=lambda record: record[field], reverse=name.startswith("-"))
    assert [record["id"] for record in records] == [record["id"] for record in expected]


def test_unknown_order_field_keeps_id_order(emulator):
    records = walk(emulator, first="100", **{"order-by": "no_such_field"})
    ids = [record["id"] for record in records]
    assert ids == sorted(ids)


def test_load_only_limits_fields(emulator):
    body = fetch(emulator, params={"load-only": "name, modified"}).json()
    assert all(set(record) == {"id", "name", "modified"} for record in body["data"])


def test_records_have_standard_fields(emulator):
    for collection in COLLECTIONS:
        for record in fetch(emulator, collection, {"first": "100"}).json()["data"]:
            assert uuid.UUID(record["id"]).version == 5
            assert API_TIMESTAMP.fullmatch(record["created"])
            assert API_TIMESTAMP.fullmatch(record["modified"])
            assert record["is_deleted"] is False
            assert record["is_delete_protected"] is False
            assert ("revision" in record) == (collection != "Entities")


# Faults


def test_rate_limit_every_nth(emulator):
    emulator.faults = Faults(rate_limit_every=3)
    assert statuses(emulator, 6) == [200, 200, 429, 200, 200, 429]
    reply = fetch(emulator)
    assert reply.status == 200
    emulator.faults = Faults(rate_limit_every=1)
    limited = fetch(emulator)
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["name"] == "ERROR_TOO_MANY_REQUESTS"


def test_rate_limit_first_requests(emulator):
    http_date = "Wed, 21 Oct 2015 07:28:00 GMT"
    emulator.faults = Faults(rate_limit_first=2, rate_limit_retry_after=http_date)
    first = fetch(emulator)
    assert first.headers["Retry-After"] == http_date
    assert [first.status, *statuses(emulator, 2)] == [429, 429, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_every_mth(emulator, status):
    emulator.faults = Faults(server_error_every=2, server_error_status=status)
    assert statuses(emulator, 4) == [200, status, 200, status]


def test_latency_delays_response(emulator):
    emulator.faults = Faults(latency_seconds=0.2)
    started = time.monotonic()
    assert fetch(emulator).status == 200
    assert time.monotonic() - started >= 0.2


def test_stall_exceeds_client_timeout(emulator):
    emulator.faults = Faults(stall_seconds=2.0, stall_at={1})
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        fetch(emulator, timeout=0.3)
    assert fetch(emulator, timeout=1.0).status == 200


def test_malformed_body_is_truncated(emulator):
    emulator.faults = Faults(malformed_at={2})
    assert fetch(emulator).status == 200
    reply = fetch(emulator)
    assert reply.status == 200
    assert reply.body == b'{"success": true, "data": ['
    with pytest.raises(json.JSONDecodeError):
        reply.json()


def test_html_maintenance_page(emulator):
    emulator.faults = Faults(html_at={1})
    reply = fetch(emulator)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert b"maintenance" in reply.body


@pytest.mark.parametrize(
    "faults, missing",
    [(Faults(missing_page_info_at={1}), "page_info"), (Faults(missing_data_at={1}), "data")],
    ids=["page-info", "data"],
)
def test_missing_body_key(emulator, faults, missing):
    emulator.faults = faults
    body = fetch(emulator).json()
    assert missing not in body
    assert body["success"] is True


def test_has_next_as_string(emulator):
    emulator.faults = Faults(has_next_as_string=True)
    first = fetch(emulator, params={"first": "100"}).json()
    last = fetch(emulator, "Empty").json()
    assert first["page_info"]["has_next_page"] == "true"
    assert last["page_info"]["has_next_page"] == "false"


def test_repeat_cursor_returns_first_cursor(emulator):
    emulator.faults = Faults(repeat_cursor=True)
    first = fetch(emulator, params={"first": "50"}).json()["page_info"]
    second = fetch(emulator, params={"first": "50", "after": first["end_cursor"]}).json()
    third_params = {"first": "50", "after": second["page_info"]["end_cursor"]}
    third = fetch(emulator, params=third_params).json()
    assert second["page_info"]["end_cursor"] == first["end_cursor"]
    assert second["page_info"]["has_next_page"] is True
    assert third["data"] == second["data"]


def test_missing_cursor_with_next_page(emulator):
    emulator.faults = Faults(missing_cursor_at={1})
    page_info = fetch(emulator, params={"first": "300"}).json()["page_info"]
    assert page_info["end_cursor"] is None
    assert page_info["has_next_page"] is True


def test_new_faults_restart_count(emulator):
    emulator.faults = Faults(rate_limit_first=1)
    assert statuses(emulator, 2) == [429, 200]
    emulator.faults = Faults(rate_limit_first=1)
    assert statuses(emulator, 2) == [429, 200]


@pytest.mark.parametrize(
    "arguments",
    [{"rate_limit_every": -1}, {"latency_seconds": -0.5}, {"server_error_status": 42}],
    ids=["negative-period", "negative-latency", "bad-status"],
)
def test_invalid_faults_raise(arguments):
    with pytest.raises(ValueError):
        Faults(**arguments)


# Request log and connections


def test_requests_recorded_with_status(emulator):
    emulator.faults = Faults(rate_limit_first=1)
    accounts_params = {"filter[modified]": "2024-01-01 00:00:00", "first": "5"}
    fetch(emulator, params=accounts_params)
    fetch(emulator, "Clients", {"first": "5"})
    fetch(emulator, path="/not/an/api/path")
    prefix = "/api/v100/rest/spaces/demo-space/entities"

    assert emulator.requests == [
        RequestRecord("Accounts", accounts_params, 429, f"{prefix}/Accounts"),
        RequestRecord("Clients", {"first": "5"}, 200, f"{prefix}/Clients"),
    ]
    assert [record.collection for record in emulator.list_requests("Clients")] == ["Clients"]
    assert PASSWORD not in repr(emulator.requests)
    emulator.clear_requests()
    assert emulator.requests == []


def test_keep_alive_reuses_connection(emulator):
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    headers = {"Authorization": basic_auth(USERNAME, PASSWORD)}
    path = "/api/v100/rest/spaces/demo-space/entities/Accounts?first=2"
    try:
        connection.request("GET", path, headers=headers)
        first = connection.getresponse()
        first.read()
        socket_after_first = connection.sock
        connection.request("GET", path, headers=headers)
        second = connection.getresponse()
        second.read()
        socket_after_second = connection.sock
    finally:
        connection.close()
    assert first.status == second.status == 200
    assert first.headers["Content-Length"] is not None
    assert socket_after_first is not None
    assert socket_after_second is socket_after_first


def test_url_requires_running_emulator(store):
    emulator = CrmEmulator(store)
    with pytest.raises(RuntimeError):
        _ = emulator.url
    emulator.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.url)
    finally:
        emulator.stop()


# Store


def test_put_sets_server_fields():
    store = CrmStore()
    inserted = store.put("Accounts", {"name": "Acme", "city": "Lyon"})
    updated = store.put("Accounts", {"id": inserted["id"], "name": "Acme Ltd"})

    assert uuid.UUID(inserted["id"])
    assert inserted["revision"] == 1
    assert inserted["created"] == inserted["modified"]
    assert inserted["is_deleted"] is False
    assert inserted["is_delete_protected"] is False
    assert updated["revision"] == 2
    assert updated["created"] == inserted["created"]
    assert updated["modified"] > inserted["modified"]
    assert updated["city"] == "Lyon"
    assert API_TIMESTAMP.fullmatch(updated["modified"])


def test_store_clock_strictly_increases():
    start = datetime(2020, 1, 1, tzinfo=UTC)
    store = CrmStore(clock_start=start)
    ticks = [store.tick() for _ in range(2000)]
    assert all(later > earlier for earlier, later in zip(ticks, ticks[1:]))
    assert start <= ticks[0] < start + timedelta(seconds=5)


def test_put_raw_keeps_exact_values(emulator, store):
    store.add_collection("Raw")
    first = {"id": "same-id", "created": "2020-01-01 00:00:00.000000+00:00", "value": 1}
    second = {"id": "same-id", "created": "2020-01-02 00:00:00.000000+00:00", "value": "one"}
    store.put_raw("Raw", first)
    store.put_raw("Raw", second)
    assert fetch(emulator, "Raw").json()["data"] == [first, second]


def test_delete_unknown_id_raises():
    store = CrmStore()
    store.add_collection("Accounts")
    with pytest.raises(KeyError):
        store.delete("Accounts", "no-such-id")


# Sample data


@pytest.fixture(scope="module")
def sample_store() -> CrmStore:
    return load_sample_store()


def test_sample_counts_exact(sample_store):
    counts = {name: len(sample_store.all_records(name)) for name in sample_store.collections()}
    assert counts == SAMPLE_COUNTS
    assert counts == {
        "Accounts": 85,
        "Activities": 8_300 + 6_711,
        "Clients": 35 + 6,
        "Contacts": 992,
        "Entities": 6,
        "Opportunities": 8_800,
    }


def test_sample_loads_are_identical(sample_store):
    again = load_sample_store()
    for collection in sample_store.collections():
        assert again.all_records(collection) == sample_store.all_records(collection)


def test_sample_references_resolve(sample_store):
    account_ids = {record["id"] for record in sample_store.all_records("Accounts")}
    clients = sample_store.all_records("Clients")
    client_ids = {record["id"] for record in clients}
    opportunities = sample_store.all_records("Opportunities")

    contacts = sample_store.all_records("Contacts")
    assert {record["primary_account_id"] for record in contacts} <= account_ids
    assert {record["owner_id"] for record in sample_store.all_records("Accounts")} <= client_ids
    assert {record["owner_id"] for record in opportunities} <= client_ids
    assert sum(1 for record in opportunities if record["account_id"] is None) == 1_425
    assert {record["account_id"] for record in opportunities} - {None} <= account_ids
    parents = {record["parent_account_id"] for record in sample_store.all_records("Accounts")}
    assert parents - {None} <= account_ids
    managers = [record for record in clients if record["role"] == "manager"]
    assert len(managers) == 6
    assert all(record["manager_id"] is None for record in managers)
    assert {record["manager_id"] for record in clients} - {None} == {r["id"] for r in managers}


def test_sample_timestamps_are_ordered(sample_store):
    for collection in sample_store.collections():
        for record in sample_store.all_records(collection):
            assert API_TIMESTAMP.fullmatch(record["created"]), record
            assert API_TIMESTAMP.fullmatch(record["modified"]), record
            assert record["modified"] >= record["created"], record


def test_sample_files_match_checksums():
    folder = resources.files("crm_assets.emulator").joinpath("sample_data")
    checked = 0
    for source in ("maven-crm-sales-opportunities", "salesforce-coral-cloud-contacts"):
        text = folder.joinpath(source, "SOURCE.txt").read_text(encoding="utf-8")
        for digest, name in re.findall(r"^([0-9a-f]{64})\s+(\S+)$", text, flags=re.MULTILINE):
            data = folder.joinpath(source, name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, name
            checked += 1
    assert checked == 6


def test_sample_served_over_http(sample_store):
    with CrmEmulator(sample_store) as emulator:
        entities = fetch(emulator, "Entities", {"first": "100"}).json()
        opportunities = fetch(emulator, "Opportunities", {"first": "1"}).json()
    assert sorted(record["table_name"] for record in entities["data"]) == sorted(SAMPLE_COUNTS)
    assert all("revision" not in record for record in entities["data"])
    assert opportunities["total"] == 8_800


# Synthetic data


def test_synthetic_is_deterministic():
    first = synthetic_store(records=300, collections=COLLECTIONS, seed=3)
    second = synthetic_store(records=300, collections=COLLECTIONS, seed=3)
    other_seed = synthetic_store(records=300, collections=COLLECTIONS, seed=4)
    for collection in COLLECTIONS:
        records = first.all_records(collection)
        assert records == second.all_records(collection)
        assert [r["id"] for r in records] == [r["id"] for r in other_seed.all_records(collection)]
    assert first.all_records("Accounts") != other_seed.all_records("Accounts")


def test_synthetic_ids_are_uuid5():
    store = synthetic_store(records=3, collections=("Accounts",))
    ids = [record["id"] for record in store.all_records("Accounts")]
    assert ids == [str(uuid.uuid5(ID_NAMESPACE, f"Accounts:{index}")) for index in range(3)]


def test_synthetic_timestamps_increase():
    records = synthetic_store(records=500, collections=("Contacts",)).all_records("Contacts")
    for field in ("created", "modified"):
        values = [record[field] for record in records]
        assert all(later > earlier for earlier, later in zip(values, values[1:])), field
    assert all(record["modified"] >= record["created"] for record in records)


# Command line


def test_cli_serves_until_sigterm(tmp_path: Path):
    ready_file = tmp_path / "url"
    password = "cli-secret:€"
    command = [
        sys.executable, "-m", "crm_assets.emulator", "--dataset", "synthetic", "--records", "20",
        "--space-id", "cli-space", "--ready-file", str(ready_file),
    ]
    env = {**os.environ, "CRM_EMULATOR_PASSWORD": password}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not ready_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        url = ready_file.read_text().strip()
        request = urllib.request.Request(f"{url}/api/v100/rest/spaces/cli-space/entities/Clients")
        request.add_header("Authorization", basic_auth("demo-token", password))
        with urllib.request.urlopen(request, timeout=5) as response:
            total = json.loads(response.read())["total"]
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)

    assert total == 20
    assert process.returncode == 0
    assert stdout == f"CRM emulator listening on {url} (space cli-space)\n"
    assert password not in stdout + stderr
    assert not ready_file.exists()


def test_cli_help_names_units():
    command = [sys.executable, "-m", "crm_assets.emulator", "--help"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert completed.returncode == 0
    assert "milliseconds" in completed.stdout
    assert "--ready-file" in completed.stdout
