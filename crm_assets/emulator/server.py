"""The emulator's HTTP server on 127.0.0.1, with request recording and fault settings."""

import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import TracebackType

from crm_assets.emulator.faults import Faults
from crm_assets.emulator.handler import CrmRequestHandler
from crm_assets.emulator.listing import RecordLister
from crm_assets.emulator.store import CrmStore

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RequestRecord:
    """A listing request as the emulator received it, without the Authorization header.

    `params` contains the decoded query parameters (the last value of a repeated name),
    and `path` is the URL path without the query.
    """

    collection: str
    params: dict[str, str]
    status: int
    path: str
    # time.monotonic() when the response was decided, to measure the gaps between requests.
    # Left out of comparisons, so that tests can compare records with expected ones.
    recorded: float = field(default=0.0, compare=False)


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Threading HTTP server that tracks open connections so stop() can close them."""

    daemon_threads = True
    # Listen backlog; the default of 5 is small for clients that open many connections.
    request_queue_size = 64

    def __init__(self, port: int, emulator: "CrmEmulator") -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((HOST, port), CrmRequestHandler)

    def track_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open connection, which ends idle keep-alive reads."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        logger.error("Request from %s failed.", client_address, exc_info=True)


class CrmEmulator:
    """HTTP emulator of the CRM REST API (version 100) serving one space from a CrmStore.

    Use it as a context manager, or call start() and stop(). With `port=0` the
    operating system picks a free port, and `url` returns it.
    """

    def __init__(
        self,
        store: CrmStore,
        space_id: str = "demo-space",
        username: str = "demo-token",
        password: str = "demo-secret",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.store = store
        self.space_id = space_id
        self.username = username
        self.password = password
        self.verbose = verbose
        self.lister = RecordLister(store)
        # Collections that respond with 403, in addition to Faults.forbidden_collections.
        self.forbidden_collections: set[str] = set()
        self._port = port
        self._lock = threading.Lock()
        self._faults = Faults()
        self._request_number = 0
        self._requests: list[RequestRecord] = []
        self._stopping = threading.Event()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"CrmEmulator({state}, space_id={self.space_id!r})"

    @property
    def faults(self) -> Faults:
        """Faults in force. Assigning new Faults restarts the request count at 1."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._request_number = 0

    @property
    def url(self) -> str:
        """API base URL without a path, e.g. "http://127.0.0.1:8765". Raises if not running."""
        return f"http://{HOST}:{self.port}"

    @property
    def port(self) -> int:
        """Bound TCP port. Raises RuntimeError if the emulator is not running."""
        if self._server is None:
            raise RuntimeError(
                "The emulator is not running: call start() or use it in a with block."
            )
        return self._server.server_address[1]

    @property
    def requests(self) -> list[RequestRecord]:
        """Return a copy of the recorded listing requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def list_requests(self, collection: str) -> list[RequestRecord]:
        """Return the recorded listing requests of one collection, oldest first."""
        return [record for record in self.requests if record.collection == collection]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> "CrmEmulator":
        """Bind the port and serve in a daemon thread. Raises RuntimeError if already running."""
        if self._server is not None:
            raise RuntimeError("The emulator is already running.")
        self._stopping.clear()
        self._server = EmulatorHTTPServer(self._port, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"crm-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled requests and close open connections."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> "CrmEmulator":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def next_request(self) -> tuple[int, Faults]:
        """Count a listing request and return its number and the faults in force for it."""
        with self._lock:
            self._request_number += 1
            return self._request_number, self._faults

    def record_request(
        self, collection: str, params: dict[str, str], status: int, path: str
    ) -> None:
        record = RequestRecord(collection, dict(params), status, path, time.monotonic())
        with self._lock:
            self._requests.append(record)

    def is_forbidden(self, collection: str, faults: Faults) -> bool:
        return (
            collection in self.forbidden_collections
            or collection in faults.forbidden_collections
        )

    def pause(self, seconds: float) -> None:
        """Sleep for `seconds`, returning early when the emulator stops."""
        if seconds > 0:
            self._stopping.wait(seconds)
