"""One scenario: one emulator size and latency, the three variants and the emulator ceiling."""

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import emulator as emu
from bench.variants import Limits, VariantResult, run_variant
from crm_assets.entities import CRM_ENTITIES, CrmEntity
from crm_assets.source import listing_params

COLLECTIONS = [entity.collection for entity in CRM_ENTITIES]
VARIANT_KEYS = ("a", "b", "c")
CEILING_THREADS = (1, 4)


def _first_request_params(entity: CrmEntity) -> dict[str, str]:
    """Return the query parameters of an entity's first request in a fresh pipeline, without `first`."""
    params = listing_params(entity, page_size=100)
    params.pop("first")
    return {name: str(value) for name, value in params.items()}


def warm_up_listings() -> list[tuple[str, dict[str, str]]]:
    """Return the listings the variants request: (c)'s plain paging and the dlt source's own."""
    plain: list[tuple[str, dict[str, str]]] = [(collection, {}) for collection in COLLECTIONS]
    product = [
        (entity.collection, _first_request_params(entity))
        for entity in CRM_ENTITIES
    ]
    return plain + product


@dataclass
class Scenario:
    """Results of the three variants against one emulator, and its measured ceiling."""

    records: int
    latency_ms: float
    results: dict[str, VariantResult] = field(default_factory=dict)
    # Measured at latency 0 only, one per entry of CEILING_THREADS.
    ceilings: list[emu.Ceiling] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.records:,} records per collection, {self.latency_ms:g} ms latency"

    def ceiling(self, threads: int) -> emu.Ceiling | None:
        return next((item for item in self.ceilings if item.threads == threads), None)


def run_scenario(
    records: int, latency_ms: float, limits: Limits, folder: Path, ceiling_seconds: float
) -> Scenario:
    """Start an emulator, run every variant against it, then measure its ceiling at latency 0."""
    scenario = Scenario(records=records, latency_ms=latency_ms)
    folder.mkdir(parents=True)
    with emu.running_emulator(records, latency_ms, COLLECTIONS, folder) as emulator:
        emu.warm_up(emulator, warm_up_listings())
        for key in VARIANT_KEYS:
            workspace = folder / key
            result = run_variant(key, emulator, records, workspace, limits)
            scenario.results[key] = result
            _print_progress(scenario, result)
            # Deleted at once, because (c)'s JSON lines files and the DuckDB files grow with N.
            shutil.rmtree(workspace)
        if latency_ms == 0:
            scenario.ceilings = _ceilings(emulator, ceiling_seconds)
    if scenario.ceilings:
        rates = ", ".join(
            f"{item.threads} session(s) {item.pages_per_second:,.0f} pages/s"
            for item in scenario.ceilings
        )
        print(f"  emulator ceiling: {rates}", flush=True)
    return scenario


def _ceilings(emulator: emu.Emulator, seconds: float) -> list[emu.Ceiling]:
    return [
        emu.measure_ceiling(emulator, COLLECTIONS[0], threads, seconds)
        for threads in CEILING_THREADS
    ]


def _print_progress(scenario: Scenario, result: VariantResult) -> None:
    step = f", step {result.step_seconds:.1f} s" if result.step_seconds is not None else ""
    print(
        f"  {time.strftime('%H:%M:%S')} {result.label}: {result.wall_seconds:.1f} s{step}, "
        f"peak RSS {result.peak_rss_bytes / 2**20:,.0f} MB, "
        f"other load {result.other_load:.2f} cores, rows verified ({scenario.name})",
        flush=True,
    )
