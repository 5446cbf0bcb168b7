"""Validation of connection settings, before any request is sent."""

import pytest

from crm_assets.errors import CrmConfigError
from crm_assets.http import parse_retry_after
from crm_assets.settings import build_connection

VALID = {"api_url": "https://eu-central.api.example.com", "space_id": "space-1", "username": "u", "password": "p"}


@pytest.mark.parametrize(
    "api_url",
    ["https://eu-central.api.example.com", "http://127.0.0.1:8080", "http://localhost:9000/", "http://[::1]:81"],
)
def test_api_url_accepted(api_url):
    connection = build_connection(**{**VALID, "api_url": api_url})

    assert connection.base_url == f"{api_url.rstrip('/')}/api/v100/rest/spaces/space-1/"


@pytest.mark.parametrize(
    "api_url, expected",
    [
        ("ftp://example.com", "expected http(s)://HOST"),
        ("eu-central.api.example.com", "expected http(s)://HOST"),
        ("https://", "expected http(s)://HOST"),
        ("http://eu-central.api.example.com", "uses plain http to a remote host"),
        ("https://user:secret@example.com", "must not contain credentials"),
        ("https://example.com/?x=1", "remove the query or fragment"),
    ],
)
def test_api_url_rejected(api_url, expected):
    with pytest.raises(CrmConfigError) as raised:
        build_connection(**{**VALID, "api_url": api_url})

    assert expected in str(raised.value)
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize("space_id", ["a/b", "..", ".", "a b", "a?b", "a#b", "a%2Fb", "tab\t", ""])
def test_unsafe_space_id_rejected(space_id):
    with pytest.raises(CrmConfigError, match="CRM_SPACE_ID"):
        build_connection(**{**VALID, "space_id": space_id})


@pytest.mark.parametrize("page_size", [0, 101, -5])
def test_page_size_out_of_range(page_size):
    with pytest.raises(CrmConfigError, match=f"CRM_PAGE_SIZE={page_size} is invalid"):
        build_connection(**VALID, page_size=page_size)


def test_missing_settings_listed_together():
    with pytest.raises(CrmConfigError) as raised:
        build_connection(None, "space-1", None, "")

    assert "CRM_API_URL, CRM_USERNAME, CRM_PASSWORD" in str(raised.value)


def test_connection_repr_hides_credentials():
    connection = build_connection(**{**VALID, "username": "token-XYZ", "password": "secret-XYZ"})

    assert "token-XYZ" not in repr(connection)
    assert "secret-XYZ" not in repr(connection)


@pytest.mark.parametrize(
    "header, expected",
    [("0", 0.0), ("7", 7.0), (" 12 ", 12.0), ("soon", None), (None, None)],
)
def test_retry_after_seconds(header, expected):
    assert parse_retry_after(header) == expected


def test_retry_after_http_date():
    from datetime import datetime, timezone

    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)

    assert parse_retry_after("Fri, 04 Dec 2026 12:00:30 GMT", now=now) == 30.0


def test_username_with_colon_rejected():
    with pytest.raises(CrmConfigError, match="CRM_USERNAME contains ':'"):
        build_connection(**{**VALID, "username": "token:part"})
