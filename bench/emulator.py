"""The CRM emulator as a separate process, its CPU time and its throughput ceiling."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from requests.auth import HTTPBasicAuth

from bench.processes import BenchmarkError, die_with_parent

PROJECT_DIR = Path(__file__).resolve().parent.parent
SPACE_ID = "bench-space"
USERNAME = "bench-token"
# A password with characters that HTTP Basic must carry byte for byte.
PASSWORD = "bench-secret:@%€"
PAGE_SIZE = 100
# crm_assets.emulator.synthetic notes about 5 s to generate 100,000 records in each of 5
# collections, so this leaves a wide margin for slow or busy machines.
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
# Read from the start of a page body, which the emulator writes before `data`.
_END_CURSOR = re.compile(rb'"end_cursor": "([^"]*)"')
_HAS_NEXT = re.compile(rb'"has_next_page": (true|false)')


@dataclass(frozen=True)
class Emulator:
    """A running emulator process: its API root URL and process id."""

    url: str
    pid: int

    @property
    def list_url_prefix(self) -> str:
        return f"{self.url}/api/v100/rest/spaces/{SPACE_ID}/entities/"

    def cpu_seconds(self) -> float:
        """Return the user plus system CPU time that the emulator process has used."""
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system


@contextmanager
def running_emulator(
    records: int, latency_ms: float, collections: list[str], folder: Path
) -> Iterator[Emulator]:
    """Start `python -m crm_assets.emulator` with synthetic records; stop it on exit."""
    ready_file = folder / "emulator-url"
    log_path = folder / "emulator.log"
    command = [
        sys.executable,
        "-m",
        "crm_assets.emulator",
        "--port",
        "0",
        "--dataset",
        "synthetic",
        "--records",
        str(records),
        "--collections",
        ",".join(collections),
        "--latency-ms",
        f"{latency_ms:g}",
        "--space-id",
        SPACE_ID,
        "--username",
        USERNAME,
        "--ready-file",
        str(ready_file),
    ]
    env = {**os.environ, "CRM_EMULATOR_PASSWORD": PASSWORD}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        try:
            url = _wait_for_url(process, ready_file, log_path)
            yield Emulator(url=url, pid=process.pid)
        finally:
            _stop(process)


def _wait_for_url(process: subprocess.Popen[bytes], ready_file: Path, log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready_file.exists():
            return ready_file.read_text().strip()
        if process.poll() is not None:
            raise BenchmarkError(
                f"The emulator exited with status {process.returncode} before it was ready; "
                f"see {log_path}."
            )
        time.sleep(0.1)
    raise BenchmarkError(f"The emulator did not start within {START_TIMEOUT:g} s; see {log_path}.")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def new_session() -> requests.Session:
    session = requests.Session()
    # Bytes, because requests encodes a str password as Latin-1, which cannot carry "€".
    session.auth = HTTPBasicAuth(USERNAME.encode("utf-8"), PASSWORD.encode("utf-8"))
    return session


def warm_up(emulator: Emulator, listings: list[tuple[str, dict[str, str]]]) -> None:
    """Request the first page of every (collection, query parameters) listing once.

    The emulator sorts and filters a collection on the first request of each distinct
    listing and caches the result, so without this the first variant measured would
    pay for the sorting.
    """
    with new_session() as session:
        for collection, params in listings:
            response = session.get(
                emulator.list_url_prefix + collection,
                params={**params, "first": str(PAGE_SIZE)},
                timeout=REQUEST_TIMEOUT,
            )
            response.raise_for_status()


@dataclass(frozen=True)
class Ceiling:
    """Pages per second that the emulator served to a tight client loop."""

    threads: int
    seconds: float
    pages: int

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds


def measure_ceiling(emulator: Emulator, collection: str, threads: int, seconds: float) -> Ceiling:
    """Page through `collection` in `threads` keep-alive sessions for about `seconds`.

    Each thread pages with `first=100` and starts over at the end of the collection.
    The client reads the cursor with a regular expression instead of parsing the body,
    so that it takes as little of the shared CPU as possible.
    """
    counts = [0] * threads
    stop_at = time.monotonic() + seconds
    workers = [
        threading.Thread(target=_page_until, args=(emulator, collection, stop_at, counts, index))
        for index in range(threads)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Ceiling(threads=threads, seconds=time.perf_counter() - started, pages=sum(counts))


def _page_until(
    emulator: Emulator, collection: str, stop_at: float, counts: list[int], index: int
) -> None:
    url = emulator.list_url_prefix + collection
    cursor: str | None = None
    with new_session() as session:
        while time.monotonic() < stop_at:
            params: dict[str, str | int] = {"first": PAGE_SIZE}
            if cursor is not None:
                params["after"] = cursor
            response = session.get(url, params=params, timeout=REQUEST_TIMEOUT)
            response.raise_for_status()
            head = response.content[:1024]
            counts[index] += 1
            cursor = _next_cursor(head)


def _next_cursor(head: bytes) -> str | None:
    """Return the cursor of the next page, or None to start over at the first page."""
    has_next = _HAS_NEXT.search(head)
    end_cursor = _END_CURSOR.search(head)
    if has_next is None or end_cursor is None:
        raise BenchmarkError(
            f"The emulator sent a page without page_info near the start: {head[:200]!r}"
        )
    return end_cursor.group(1).decode("ascii") if has_next.group(1) == b"true" else None
