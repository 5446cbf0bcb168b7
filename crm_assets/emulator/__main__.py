"""Command line: serve the emulator on 127.0.0.1 until SIGTERM or SIGINT."""

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from crm_assets.emulator.faults import Faults
from crm_assets.emulator.sample import load_sample_store
from crm_assets.emulator.server import CrmEmulator
from crm_assets.emulator.store import CrmStore
from crm_assets.emulator.synthetic import DEFAULT_COLLECTIONS, synthetic_store

logger = logging.getLogger("crm_assets.emulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crm_assets.emulator",
        description=(
            "Serve an emulator of the CRM REST API (v100) on 127.0.0.1. Prints one line "
            "with the base URL when ready and stops cleanly on SIGTERM or SIGINT."
        ),
    )
    _add_server_options(parser)
    _add_dataset_options(parser)
    _add_fault_options(parser)
    return parser


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=_port, default=0, help="TCP port; 0 (default) picks a free port."
    )
    parser.add_argument(
        "--space-id", default=os.environ.get("CRM_EMULATOR_SPACE_ID", "demo-space"),
        help="Space id in the URL path (default: $CRM_EMULATOR_SPACE_ID or demo-space).",
    )
    parser.add_argument(
        "--username", default=os.environ.get("CRM_EMULATOR_USERNAME", "demo-token"),
        help="HTTP Basic username, the API token (default: $CRM_EMULATOR_USERNAME or demo-token).",
    )
    parser.add_argument(
        "--password", default=os.environ.get("CRM_EMULATOR_PASSWORD", "demo-secret"),
        help=(
            "HTTP Basic password, the API secret (default: $CRM_EMULATOR_PASSWORD or "
            "demo-secret). Prefer the variable, because other local users can read "
            "command-line arguments."
        ),
    )
    parser.add_argument(
        "--ready-file", type=Path, metavar="PATH",
        help="Write the base URL to this file once listening (atomically) and delete it on stop.",
    )
    parser.add_argument("--verbose", action="store_true", help="Log every request to stderr.")


def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=("sample", "synthetic"),
        default="sample",
        help="sample: the bundled real sample data (default); synthetic: generated records.",
    )
    parser.add_argument(
        "--records", type=_non_negative, default=1000, metavar="N",
        help="Number of records per collection for --dataset synthetic (default 1000).",
    )
    parser.add_argument(
        "--collections", default=",".join(DEFAULT_COLLECTIONS), metavar="NAMES",
        help="Comma-separated collections for --dataset synthetic (default: %(default)s).",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the synthetic field values (default 0)."
    )


def _add_fault_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--latency-ms", type=_non_negative_float, default=0.0, metavar="MS",
        help="Delay added to every listing response, in milliseconds (default 0).",
    )
    parser.add_argument(
        "--rate-limit-every", type=_non_negative, default=0, metavar="N",
        help="Respond to every Nth listing request with 429 (default 0: never).",
    )
    parser.add_argument(
        "--retry-after", default="1", metavar="VALUE",
        help="Retry-After header of each 429: seconds or an HTTP date (default 1).",
    )
    parser.add_argument(
        "--server-error-every", type=_non_negative, default=0, metavar="M",
        help="Respond to every Mth listing request with --server-error-status (default 0: never).",
    )
    parser.add_argument(
        "--server-error-status", type=_server_error_status, default=500, metavar="STATUS",
        help="HTTP status (5xx) of injected server errors (default 500).",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    emulator = CrmEmulator(
        build_store(args),
        space_id=args.space_id,
        username=args.username,
        password=args.password,
        port=args.port,
        verbose=args.verbose,
    )
    emulator.faults = Faults(
        latency_seconds=args.latency_ms / 1000,
        rate_limit_every=args.rate_limit_every,
        rate_limit_retry_after=args.retry_after,
        server_error_every=args.server_error_every,
        server_error_status=args.server_error_status,
    )
    serve_until_signal(emulator, args.ready_file)
    return 0


def build_store(args: argparse.Namespace) -> CrmStore:
    if args.dataset == "sample":
        store = load_sample_store()
    else:
        collections = [name.strip() for name in args.collections.split(",") if name.strip()]
        store = synthetic_store(records=args.records, collections=collections, seed=args.seed)
    counts = {name: len(store.all_records(name)) for name in store.collections()}
    logger.info("Loaded dataset %s: %s records (%s).", args.dataset, sum(counts.values()), counts)
    return store


def serve_until_signal(emulator: CrmEmulator, ready_file: Path | None) -> None:
    stop_requested = threading.Event()

    def request_stop(signal_number: int, frame: object) -> None:
        logger.info("Received %s, stopping.", signal.Signals(signal_number).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emulator.start()
    print(f"CRM emulator listening on {emulator.url} (space {emulator.space_id})", flush=True)
    if ready_file is not None:
        write_atomically(ready_file, emulator.url + "\n")
    try:
        # A timed wait lets the signal handler run promptly on every platform.
        while not stop_requested.wait(0.5):
            pass
    finally:
        emulator.stop()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
        logger.info("CRM emulator stopped.")


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file next to `path`, then rename it to `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, got {port}")
    return port


def _server_error_status(text: str) -> int:
    status = int(text)
    if not 500 <= status <= 599:
        raise argparse.ArgumentTypeError(f"must be a 5xx HTTP status, got {status}")
    return status


def _non_negative_float(text: str) -> float:
    number = float(text)
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return number


def _non_negative(text: str) -> int:
    number = int(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {number}")
    return number


if __name__ == "__main__":
    sys.exit(main())
