"""Benchmark the CRM sync against the local emulator and write docs/benchmarks.md.

For every size and latency, an emulator process serves N synthetic records per
collection. Three variants then copy all five collections into a fresh DuckDB file, each
in its own child process. They are (a) the Dagster materialization of every CRM asset,
(b) the same dlt source in a plain dlt pipeline and (c) a minimal requests + DuckDB copy.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from bench.machine import product_fingerprint, product_version
from bench.processes import BenchmarkError
from bench.report import read_intro, render
from bench.scenario import Scenario, run_scenario
from bench.targets import evaluate
from bench.variants import PROJECT_DIR, Limits

DEFAULT_OUTPUT = PROJECT_DIR / "docs" / "benchmarks.md"
# A smoke run's report, kept out of the docs that Git tracks.
QUICK_OUTPUT = PROJECT_DIR / ".local" / "benchmarks-quick.md"
QUICK_SIZES = [2000]
QUICK_LATENCIES = [0.0]
# A run is marked as disturbed when other processes kept this many cores busy on average.
BUSY_MACHINE_CORES = 0.2
Number = TypeVar("Number", int, float)


def _number_list(text: str, convert: Callable[[str], Number], minimum: Number, kind: str) -> list[Number]:
    """Parse a comma-separated option value; every number must be at least `minimum`."""
    try:
        numbers = [convert(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {kind}, got {text!r}") from None
    if not numbers or min(numbers) < minimum:
        raise argparse.ArgumentTypeError(f"expected one or more {kind} ≥ {minimum}, got {text!r}")
    return numbers


def _sizes(text: str) -> list[int]:
    return _number_list(text, int, 1, "integers")


def _latencies(text: str) -> list[float]:
    return _number_list(text, float, 0.0, "numbers")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[20_000, 100_000],
        metavar="N,N",
        help="Records per collection, comma-separated (default 20000,100000).",
    )
    parser.add_argument(
        "--latency-ms",
        type=_latencies,
        default=[0.0, 50.0],
        metavar="MS,MS",
        help="Delay the emulator adds to every page, in ms, comma-separated (default 0,50).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: same as --sizes 2000 --latency-ms 0.",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="Report file to write (default docs/benchmarks.md in the project, "
        "or .local/benchmarks-quick.md with --quick).",
    )
    parser.add_argument(
        "--child-timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="Time limit of each variant's process; it is killed after that (default 900).",
    )
    parser.add_argument(
        "--memory-limit-mb",
        type=int,
        default=4096,
        metavar="MB",
        help="RSS limit of each variant's process tree; it is killed above that (default 4096).",
    )
    parser.add_argument(
        "--ceiling-seconds",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="Duration of each emulator ceiling measurement (default 3).",
    )
    return parser


def command_line(args: argparse.Namespace) -> str:
    """Return the command that repeats this run, with the defaults left out."""
    if args.quick:
        words = ["python -m bench.run --quick"]
    else:
        words = [
            "python -m bench.run",
            f"--sizes {','.join(str(size) for size in args.sizes)}",
            f"--latency-ms {','.join(f'{latency:g}' for latency in args.latency_ms)}",
        ]
    return " ".join(words)


def run_all(args: argparse.Namespace, folder: Path) -> list[Scenario]:
    limits = Limits(
        timeout_seconds=args.child_timeout, memory_limit_bytes=args.memory_limit_mb * 2**20
    )
    scenarios: list[Scenario] = []
    for latency in args.latency_ms:
        for size in args.sizes:
            print(
                f"{time.strftime('%H:%M:%S')} {size:,} records per collection, "
                f"{latency:g} ms latency",
                flush=True,
            )
            scenario_folder = folder / f"{size}-{latency:g}ms"
            scenarios.append(
                run_scenario(size, latency, limits, scenario_folder, args.ceiling_seconds)
            )
    return scenarios


def run_notes(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    started_at: str,
    minutes: float,
    version: str,
) -> list[str]:
    """Return the Markdown list items that describe the run and anything that disturbed it."""
    notes = [f"- Started {started_at}, took {minutes:.1f} min.", f"- Product code: {version}"]
    if product_fingerprint() != version.rsplit(" ", 1)[-1]:
        warning = (
            "The product code changed during the run, "
            "so the scenarios may have measured different code."
        )
        print(f"WARNING: {warning}", file=sys.stderr)
        notes.append(f"- **{warning}**")

    results = [result for scenario in scenarios for result in scenario.results.values()]
    busiest = max(results, key=lambda result: result.other_load)
    if busiest.other_load > BUSY_MACHINE_CORES:
        notes.append(
            f"- **Other processes were running**: up to {busiest.other_load:.2f} of "
            f"{os.cpu_count()} cores on average during one variant ({busiest.label}, see "
            '"other processes"), so those times are longer than on an idle machine.'
        )
    if args.quick:
        notes.append("- Smoke run (`--quick`): sizes and targets here are not the full benchmark.")
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.sizes, args.latency_ms = QUICK_SIZES, QUICK_LATENCIES
    if args.output is None:
        args.output = QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT
    started = time.perf_counter()
    started_at = time.strftime("%Y-%m-%d %H:%M %Z")
    version = product_version()

    folder = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    try:
        scenarios = run_all(args, folder)
    except BenchmarkError as error:
        print(f"Benchmark failed: {error}", file=sys.stderr)
        print(
            f"The logs and files of the run are kept in {folder}; delete it when done.",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(folder)

    minutes = (time.perf_counter() - started) / 60
    checks = evaluate(scenarios)
    notes = run_notes(args, scenarios, started_at, minutes, version)
    intro_file = args.output if args.output.exists() else DEFAULT_OUTPUT
    report = render(read_intro(intro_file), command_line(args), notes, scenarios, checks)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    for check in checks:
        print(
            f"{'PASS' if check.passed else 'FAIL'}  {check.target} [{check.scope}]: {check.numbers}"
        )
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
