"""Injected failures for testing clients: rate limits, server errors, stalls, bad bodies."""

from dataclasses import dataclass, field

from crm_assets.emulator.errors import ApiError, status_error_name
from crm_assets.emulator.response import Response

_MALFORMED_BODY = b'{"success": true, "data": ['
_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Scheduled maintenance</title></head>\n"
    b"<body><h1>Scheduled maintenance</h1>\n"
    b"<p>The CRM is down for maintenance. Please try again later.</p></body></html>\n"
)


@dataclass
class Faults:
    """Failures to inject, all off by default.

    Request numbers count the listing requests (GET of an entities collection, in any
    collection) from 1, starting when this object is assigned to `CrmEmulator.faults`.
    Assign a new object to reset the count. Stalls and latency come first. Then rate
    limits and server errors apply before authentication, as at a gateway, and then
    `html_at` and `malformed_at` replace whatever response would follow. The other
    `*_at` sets, `has_next_as_string` and `repeat_cursor` change only 200 pages.
    """

    rate_limit_every: int = 0
    rate_limit_first: int = 0
    # Seconds or an HTTP date, sent as the Retry-After header of every 429.
    rate_limit_retry_after: str = "1"
    server_error_every: int = 0
    server_error_status: int = 500
    latency_seconds: float = 0.0
    stall_seconds: float = 0.0
    # Request numbers that stall, or None to stall every request.
    stall_at: set[int] | None = None
    malformed_at: set[int] = field(default_factory=set)
    html_at: set[int] = field(default_factory=set)
    missing_page_info_at: set[int] = field(default_factory=set)
    missing_data_at: set[int] = field(default_factory=set)
    has_next_as_string: bool = False
    repeat_cursor: bool = False
    missing_cursor_at: set[int] = field(default_factory=set)
    forbidden_collections: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("rate_limit_every", "rate_limit_first", "server_error_every"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"Faults.{name} must be 0 (off) or positive, got {value}.")
        for name in ("latency_seconds", "stall_seconds"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"Faults.{name} must not be negative, got {value}.")
        status = self.server_error_status
        if not 100 <= status <= 599:
            raise ValueError(f"Faults.server_error_status must be an HTTP status, got {status}.")
        self.forbidden_collections = frozenset(self.forbidden_collections)

    def stall_for(self, number: int) -> float:
        """Return the seconds that request `number` waits before any byte is sent."""
        if self.stall_seconds and (self.stall_at is None or number in self.stall_at):
            return self.stall_seconds
        return 0.0

    def gateway_error(self, number: int) -> ApiError | None:
        """Return the 429 or server error that request `number` gets, or None."""
        if number <= self.rate_limit_first or _every(self.rate_limit_every, number):
            return ApiError(
                429,
                "ERROR_TOO_MANY_REQUESTS",
                "Rate limit exceeded. Retry after the time in the Retry-After header.",
                headers={"Retry-After": self.rate_limit_retry_after},
            )
        if _every(self.server_error_every, number):
            status = self.server_error_status
            return ApiError(status, status_error_name(status), "Injected server fault.")
        return None

    def canned_response(self, number: int) -> Response | None:
        """Return the HTML maintenance page or truncated JSON for request `number`, or None."""
        if number in self.html_at:
            return Response(200, "text/html; charset=utf-8", _MAINTENANCE_PAGE)
        if number in self.malformed_at:
            return Response(200, "application/json", _MALFORMED_BODY)
        return None

    def reshape_page(self, number: int, body: dict, first_page_end_cursor: str) -> dict:
        """Apply the page faults to a successful listing body and return the new body."""
        page_info = dict(body["page_info"])
        if self.repeat_cursor:
            page_info["end_cursor"] = first_page_end_cursor
        if number in self.missing_cursor_at:
            page_info["has_next_page"] = True
            page_info["end_cursor"] = None
        if self.has_next_as_string:
            page_info["has_next_page"] = "true" if page_info["has_next_page"] else "false"
        reshaped = {**body, "page_info": page_info}
        if number in self.missing_page_info_at:
            del reshaped["page_info"]
        if number in self.missing_data_at:
            del reshaped["data"]
        return reshaped


def _every(period: int, number: int) -> bool:
    return period > 0 and number % period == 0
