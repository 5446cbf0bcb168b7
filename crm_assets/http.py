"""HTTP session for the CRM API: retries, clear error statuses and page validation.

The source sends every request through this session, so each rule here applies to every
collection. A `429` waits for `Retry-After`, never less than a floor and never more
than a cap. `5xx` and connection errors back off exponentially. A `200` page must be JSON
with a `data` list and a `page_info` object before dlt reads it, so a broken page can never
turn into an empty table.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import requests

from dlt.sources.helpers.rest_client.auth import HttpBasicAuth

from crm_assets.errors import CrmApiError, CrmProtocolError, CrmTransportError
from crm_assets.settings import CrmConnection, RetrySettings


@dataclass
class CollectionStats:
    """Counters of one collection's requests during one sync."""

    pages: int = 0
    retries: int = 0
    records: int = 0


RetryCallback = Callable[[str, str, float, int], None]


def collection_of(url: str) -> str:
    """Return the collection named by the last path segment of a list URL."""
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


def url_without_secrets(url: str) -> str:
    """Return the URL without user info, query string or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the wait in seconds that a `Retry-After` header requests, or None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - (now or datetime.now(timezone.utc))).total_seconds()


class CrmSession(requests.Session):
    """A `requests.Session` that retries, raises clear errors and validates list pages."""

    def __init__(self, retry: RetrySettings, on_retry: RetryCallback | None = None) -> None:
        super().__init__()
        self.retry = retry
        self.on_retry = on_retry
        self.stats: dict[str, CollectionStats] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def close(self) -> None:
        """Close the connections; requests still waiting to be retried give up at once."""
        self._closed.set()
        super().close()

    def stats_for(self, collection: str) -> CollectionStats:
        with self._lock:
            return self.stats.setdefault(collection, CollectionStats())

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        collection = collection_of(request.url or "")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.retry.timeout

        for attempt in range(1, self.retry.max_attempts + 1):
            response, failure = self._attempt(request, collection, kwargs)
            if response is not None and failure is None:
                return self._checked(response, collection)
            if attempt == self.retry.max_attempts:
                raise self._exhausted(collection, failure, response)
            wait = self._wait_before_retry(attempt, response)
            self._note_retry(collection, failure or "", wait, attempt)
            if self._closed.wait(wait):
                raise CrmTransportError(
                    collection,
                    f"Collection {collection}: the sync ended while a request waited to be retried "
                    f"after {failure}.",
                )
        raise AssertionError("unreachable: the loop returns or raises")

    def _attempt(
        self, request: requests.PreparedRequest, collection: str, kwargs: dict[str, Any]
    ) -> tuple[requests.Response | None, str | None]:
        """Send once; return the response and, if it should be retried, why."""
        try:
            response = super().send(request, **kwargs)
        except requests.HTTPError as error:
            # A response hook may raise on 4xx and 5xx statuses; the status rules below
            # apply instead.
            if error.response is None:
                raise
            response = error.response
        except requests.Timeout:
            return None, f"timed out after {self.retry.timeout:g} s"
        except requests.ConnectionError as error:
            return None, f"connection failed ({type(error).__name__})"
        if response.status_code == 429:
            return response, "HTTP 429 (rate limited)"
        if response.status_code >= 500:
            return response, f"HTTP {response.status_code}"
        return response, None

    def _wait_before_retry(self, attempt: int, response: requests.Response | None) -> float:
        backoff = min(self.retry.backoff_max, self.retry.backoff_base * 2 ** (attempt - 1))
        if response is None or response.status_code != 429:
            return backoff
        requested = parse_retry_after(response.headers.get("Retry-After"))
        if requested is None or requested <= 0:
            # A missing, zero or past Retry-After must not turn retries into a busy loop.
            return max(backoff, self.retry.retry_after_min)
        return min(max(requested, self.retry.retry_after_min), self.retry.retry_after_max)

    def _note_retry(self, collection: str, reason: str, wait: float, attempt: int) -> None:
        self.stats_for(collection).retries += 1
        if self.on_retry is not None:
            self.on_retry(collection, reason, wait, attempt)

    def _exhausted(
        self, collection: str, failure: str | None, response: requests.Response | None
    ) -> CrmTransportError:
        attempts = self.retry.max_attempts
        if response is not None and response.status_code == 429:
            requested = response.headers.get("Retry-After", "not given")
            return CrmTransportError(
                collection,
                f"Collection {collection}: the CRM API is rate limiting (HTTP 429) and still was "
                f"after {attempts} attempts; it requested a retry after {requested!r} (seconds or date), "
                f"and this client waits at most {self.retry.retry_after_max:g} s per retry. "
                "Run the sync again after that time, or raise CRM_RETRY_AFTER_MAX.",
            )
        if response is None and failure and failure.startswith("timed out"):
            return CrmTransportError(
                collection,
                f"Collection {collection}: every request {failure} ({attempts} attempts, "
                f"timeout CRM_REQUEST_TIMEOUT={self.retry.timeout:g} s). The CRM API is not "
                "responding; check its status page, or raise CRM_REQUEST_TIMEOUT.",
            )
        return CrmTransportError(
            collection,
            f"Collection {collection}: the CRM API request failed {attempts} times, last with "
            f"{failure}. The API may be down or unreachable; retry later.",
        )

    def _checked(self, response: requests.Response, collection: str) -> requests.Response:
        if response.status_code >= 400:
            raise api_error(response, collection)
        stats = self.stats_for(collection)
        stats.pages += 1
        body = validated_page(response, collection, stats.pages)
        stats.records += len(body["data"])
        # dlt reads the body several times; serving the parsed one avoids parsing it again.
        response.json = lambda **_: body  # type: ignore[method-assign]
        return response


class CrmClient:
    """Reader of the listing pages of one space, through a `CrmSession` with HTTP Basic auth."""

    def __init__(self, connection: CrmConnection, session: CrmSession) -> None:
        self.base_url = connection.base_url.rstrip("/")
        self.session = session
        # dlt's Basic auth encodes the credentials as UTF-8, so any character is allowed.
        self.auth = HttpBasicAuth(connection.username, connection.password)

    def page(self, collection: str, params: dict[str, Any]) -> dict[str, Any]:
        """Return one validated listing page of `collection` (a dict with `data` and `page_info`)."""
        response = self.session.get(
            f"{self.base_url}/entities/{collection}", params=params, auth=self.auth
        )
        return response.json()


def validated_page(response: requests.Response, collection: str, page: int) -> dict[str, Any]:
    """Parse a list page and check the fields that paging depends on."""
    try:
        body = _parse_json(response)
    except ValueError:
        kind = response.headers.get("Content-Type", "unknown content type")
        raise CrmProtocolError(collection, page, f"the body is not JSON ({kind})") from None
    if not isinstance(body, dict):
        raise CrmProtocolError(collection, page, "the body is not a JSON object")
    if not isinstance(body.get("data"), list):
        raise CrmProtocolError(collection, page, "the `data` list is missing")
    page_info = body.get("page_info")
    if not isinstance(page_info, dict):
        raise CrmProtocolError(collection, page, "the `page_info` object is missing")
    has_next = page_info.get("has_next_page")
    if not isinstance(has_next, bool):
        raise CrmProtocolError(
            collection, page, f"`page_info.has_next_page` is {has_next!r}, not a boolean"
        )
    return body


def _parse_json(response: requests.Response) -> Any:
    """Parse the body with orjson, which is several times faster than the standard library.

    orjson rejects integers beyond 64 bits, which the standard parser reads, so a body that
    orjson refuses is parsed again by requests before it counts as invalid.
    """
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def api_error(response: requests.Response, collection: str) -> CrmApiError:
    """Build the error for a 4xx status, with the cause and the fix for that status."""
    status = response.status_code
    detail = _error_message(response)
    url = url_without_secrets(response.url)
    if status == 401:
        text = (
            f"Collection {collection}: the CRM API rejected the credentials (HTTP 401). "
            "Check CRM_USERNAME (the space's API token) and CRM_PASSWORD (its API secret)."
        )
    elif status == 403:
        text = (
            f"Collection {collection}: the API application has no access to {collection} "
            f"(HTTP 403). Grant it read access to {collection} in the CRM's API settings, "
            "or remove the collection from the entity table."
        )
    elif status == 404:
        text = (
            f"Collection {collection}: not found at {url} (HTTP 404: {detail}). Check "
            f"CRM_API_URL and CRM_SPACE_ID, and that the space has a {collection} collection."
        )
    else:
        text = f"Collection {collection}: the CRM API rejected the request to {url} (HTTP {status}: {detail})."
    return CrmApiError(collection, status, text)


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no JSON error body"
    if isinstance(body, dict) and body.get("message"):
        return f"{body.get('name', 'error')}: {body['message']}"
    return "no error message"
