"""HTTP request handler of the emulator: routing, authentication, faults and listing."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from crm_assets.emulator.errors import ApiError, not_found
from crm_assets.emulator.faults import Faults
from crm_assets.emulator.listing import Page
from crm_assets.emulator.query import parse_query
from crm_assets.emulator.response import Response, json_response

if TYPE_CHECKING:
    from crm_assets.emulator.server import CrmEmulator, EmulatorHTTPServer

logger = logging.getLogger(__name__)

LIST_PATH = re.compile(r"/api/v100/rest/spaces/([^/]+)/entities/([^/]+)/?")
_UNAUTHORIZED_MESSAGE = (
    "Missing or invalid credentials: use HTTP Basic authentication with the space's "
    "API token as username and its API secret as password."
)


class CrmRequestHandler(BaseHTTPRequestHandler):
    """Request handler for GET of `/api/v100/rest/spaces/{space_id}/entities/{Collection}`."""

    protocol_version = "HTTP/1.1"
    server_version = "CrmEmulator/1.0"
    sys_version = ""
    server: EmulatorHTTPServer
    # Seconds an idle keep-alive connection stays open.
    timeout = 120
    # The headers and the body go out in two writes. With Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the headers, about 40 ms per page on Linux.
    disable_nagle_algorithm = True

    @property
    def emulator(self) -> CrmEmulator:
        return self.server.emulator

    def setup(self) -> None:
        super().setup()
        self.server.track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack_connection(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        if self.emulator.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        match = LIST_PATH.fullmatch(url.path)
        if match is None:
            self.send(not_found("No API endpoint exists at this path.").response())
            return
        space_id, collection = unquote(match.group(1)), unquote(match.group(2))
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        response = self.serve_listing(space_id, collection, params)
        # Recorded before sending, so a client that gave up on a stalled request
        # still finds it in the log.
        self.emulator.record_request(collection, params, response.status, url.path)
        self.send(response)

    def do_POST(self) -> None:
        self.reject_method()

    def do_PUT(self) -> None:
        self.reject_method()

    def do_PATCH(self) -> None:
        self.reject_method()

    def do_DELETE(self) -> None:
        self.reject_method()

    def reject_method(self) -> None:
        """Send 405, after reading the request body so the connection stays usable."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)
        error = ApiError(
            405,
            "ERROR_METHOD_NOT_ALLOWED",
            f"Method {self.command} is not supported: the emulator serves GET only.",
            headers={"Allow": "GET"},
        )
        self.send(error.response())

    def serve_listing(self, space_id: str, collection: str, params: dict[str, str]) -> Response:
        """Build the response to one listing request, faults included."""
        number, faults = self.emulator.next_request()
        self.emulator.pause(faults.stall_for(number) + faults.latency_seconds)
        try:
            gateway_error = faults.gateway_error(number)
            if gateway_error is not None:
                raise gateway_error
            canned = faults.canned_response(number)
            if canned is not None:
                return canned
            self.authenticate()
            self.check_collection(space_id, collection, faults)
            page = self.emulator.lister.list_page(collection, parse_query(params))
        except ApiError as error:
            return error.response()
        except Exception:
            logger.exception("Listing %s failed with an unexpected error.", collection)
            return ApiError(500, "ERROR_INTERNAL", "Internal emulator error.").response()
        body = faults.reshape_page(number, page_body(page), page.first_page_end_cursor)
        return json_response(200, body)

    def authenticate(self) -> None:
        emulator = self.emulator
        header = self.headers.get("Authorization")
        if not credentials_match(header, emulator.username, emulator.password):
            raise ApiError(
                401,
                "ERROR_UNAUTHORIZED",
                _UNAUTHORIZED_MESSAGE,
                headers={"WWW-Authenticate": 'Basic realm="api"'},
            )

    def check_collection(self, space_id: str, collection: str, faults: Faults) -> None:
        emulator = self.emulator
        if space_id != emulator.space_id:
            raise not_found("Space not found.")
        if emulator.is_forbidden(collection, faults):
            raise ApiError(
                403,
                "ERROR_FORBIDDEN",
                f"The application has no permission to read collection {collection}.",
            )
        if not emulator.store.has_collection(collection):
            raise not_found("Collection not found.")

    def send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


def page_body(page: Page) -> dict:
    """Return the JSON body of a successful listing."""
    return {
        "success": True,
        "total": page.total,
        "page_info": {
            "start_cursor": page.start_cursor,
            "end_cursor": page.end_cursor,
            "has_previous_page": page.has_previous_page,
            "has_next_page": page.has_next_page,
        },
        "data": page.records,
    }


def credentials_match(header: str | None, username: str, password: str) -> bool:
    """Return True if the Authorization header has HTTP Basic credentials equal to the given ones.

    The decoded credentials are split at the first colon, so the password may contain
    colons. Both parts are compared with the UTF-8 bytes of `username` and `password`.
    """
    if not header:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        return False
    user, separator, secret = decoded.partition(b":")
    if not separator:
        return False
    user_matches = hmac.compare_digest(user, username.encode("utf-8"))
    secret_matches = hmac.compare_digest(secret, password.encode("utf-8"))
    return user_matches and secret_matches
