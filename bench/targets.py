"""The benchmark's performance targets, evaluated on measured scenarios."""

from dataclasses import dataclass

from bench.scenario import Scenario

STEP_TO_LOWER_BOUND_MAX = 1.5
LATENCY_BOUND_MAX = 1.15
MEMORY_MAX_BYTES = 400 * 2**20
MEMORY_REFERENCE_RECORDS = 20_000
MEMORY_GROWTH_MAX = 0.20
# The emulator is one Python process, so about one core is all it can use. It counts as
# the bottleneck when it is busier than this share of one core while (c), the fastest
# client, fetches.
EMULATOR_BUSY_MAX = 0.5
MB = 2**20


@dataclass(frozen=True)
class TargetCheck:
    """One target evaluated on one scenario (or a pair of sizes), with its numbers."""

    kind: str  # "step", "latency", "latency step", "memory" or "emulator"
    target: str
    scope: str
    passed: bool
    numbers: str
    # Names of the scenarios that the numbers come from.
    scenario_names: tuple[str, ...]


def evaluate(scenarios: list[Scenario]) -> list[TargetCheck]:
    """Evaluate every target that the measured scenarios allow."""
    checks = [check_step(scenario) for scenario in scenarios]
    latent = [scenario for scenario in scenarios if scenario.latency_ms > 0]
    checks += [check_latency(scenario) for scenario in latent]
    checks += [check_latency_step(scenario) for scenario in latent]
    checks += check_memory(scenarios)
    checks += [check_emulator(scenario) for scenario in scenarios]
    return checks


def check_step(scenario: Scenario) -> TargetCheck:
    step = scenario.results["a"].step_seconds or 0.0
    lower_bound = scenario.results["c"].wall_seconds
    limit = STEP_TO_LOWER_BOUND_MAX * lower_bound
    return TargetCheck(
        kind="step",
        scenario_names=(scenario.name,),
        target=f"(a) step ≤ {STEP_TO_LOWER_BOUND_MAX:g} × (c) wall time",
        scope=scenario.name,
        passed=step <= limit,
        numbers=f"step {step:.1f} s, "
        f"limit {STEP_TO_LOWER_BOUND_MAX:g} × {lower_bound:.1f} s = {limit:.1f} s "
        f"(ratio {step / lower_bound:.2f})",
    )


def latency_bound_seconds(scenario: Scenario) -> float:
    """Return the pages of the largest collection times the added latency, in seconds."""
    return scenario.results["a"].largest_collection_pages * scenario.latency_ms / 1000


def check_latency(scenario: Scenario) -> TargetCheck:
    """Check the whole sync, from process start to exit, against the latency bound."""
    result = scenario.results["a"]
    return _latency_check(
        scenario,
        kind="latency",
        subject="whole sync",
        seconds=result.wall_seconds,
        detail=f" (step {result.step_seconds or 0:.1f} s)",
    )


def check_latency_step(scenario: Scenario) -> TargetCheck:
    """Check the same bound on the sync step alone, without Dagster's start-up, checks and shutdown.

    Dagster's own start-up takes about 5 s whatever the data, more than the 15% margin of
    a small scenario, so this row shows whether the collections themselves overlap.
    """
    step = scenario.results["a"].step_seconds or 0.0
    return _latency_check(scenario, kind="latency step", subject="step alone", seconds=step, detail="")


def _latency_check(scenario: Scenario, kind: str, subject: str, seconds: float, detail: str) -> TargetCheck:
    pages = scenario.results["a"].largest_collection_pages
    bound = latency_bound_seconds(scenario)
    limit = LATENCY_BOUND_MAX * bound
    return TargetCheck(
        kind=kind,
        scenario_names=(scenario.name,),
        target=f"(a) {subject} ≤ {LATENCY_BOUND_MAX:g} × pages of the largest collection × latency",
        scope=scenario.name,
        passed=seconds <= limit,
        numbers=f"{subject} {seconds:.1f} s{detail}, {pages:,} pages × {scenario.latency_ms:g} ms "
        f"= {bound:.1f} s, limit {limit:.1f} s (ratio {seconds / bound:.2f})",
    )


def check_memory(scenarios: list[Scenario]) -> list[TargetCheck]:
    """Check (a)'s peak at 20,000 records (else the smallest size) and its growth to the largest."""
    checks: list[TargetCheck] = []
    for latency in sorted({scenario.latency_ms for scenario in scenarios}):
        by_size = sorted((s for s in scenarios if s.latency_ms == latency), key=lambda s: s.records)
        reference = next((s for s in by_size if s.records == MEMORY_REFERENCE_RECORDS), by_size[0])
        peak = reference.results["a"].peak_rss_bytes
        checks.append(
            TargetCheck(
                kind="memory",
                scenario_names=(reference.name,),
                target=f"(a) peak memory ≤ {MEMORY_MAX_BYTES // MB} MB",
                scope=reference.name,
                passed=peak <= MEMORY_MAX_BYTES,
                numbers=_peak_numbers(reference),
            )
        )
        largest = by_size[-1]
        if largest.records > reference.records:
            checks.append(_memory_growth(reference, largest))
    return checks


def _peak_numbers(scenario: Scenario) -> str:
    result = scenario.results["a"]
    return (
        f"peak {result.peak_rss_bytes / MB:,.0f} MB "
        f"(process tree {result.tree_peak_rss_bytes / MB:,.0f} MB, "
        f"largest process {result.max_rss_bytes / MB:,.0f} MB)"
    )


def _memory_growth(small: Scenario, large: Scenario) -> TargetCheck:
    before = small.results["a"].peak_rss_bytes
    after = large.results["a"].peak_rss_bytes
    growth = after / before - 1
    return TargetCheck(
        kind="memory",
        scenario_names=(small.name, large.name),
        target=f"(a) peak memory grows ≤ {MEMORY_GROWTH_MAX:.0%} "
        f"from {small.records:,} to {large.records:,}",
        scope=f"{small.latency_ms:g} ms latency",
        passed=growth <= MEMORY_GROWTH_MAX,
        numbers=f"{before / MB:,.0f} MB → {after / MB:,.0f} MB ({growth:+.0%}); largest process "
        f"{small.results['a'].max_rss_bytes / MB:,.0f} MB → "
        f"{large.results['a'].max_rss_bytes / MB:,.0f} MB",
    )


def lower_bound_fetch_rate(scenario: Scenario) -> float:
    """Return the pages per second that (c) fetched during its fetch stage."""
    result = scenario.results["c"]
    return result.pages / result.stages["fetch"]


def emulator_busy_share(scenario: Scenario) -> float:
    """Return the share of one core that the emulator used during (c)'s fetch stage."""
    result = scenario.results["c"]
    return result.emulator_cpu_seconds / result.stages["fetch"]


def check_emulator(scenario: Scenario) -> TargetCheck:
    """Check that the emulator had headroom while the fastest client fetched from it."""
    busy = emulator_busy_share(scenario)
    ceiling = scenario.ceiling(4)
    ceiling_text = (
        f", emulator ceiling {ceiling.pages_per_second:,.0f} pages/s on 4 sessions"
        if ceiling
        else ""
    )
    return TargetCheck(
        kind="emulator",
        scenario_names=(scenario.name,),
        target=f"emulator not the bottleneck: busy ≤ {EMULATOR_BUSY_MAX:.0%} "
        "of one core during (c)'s fetch",
        scope=scenario.name,
        passed=busy <= EMULATOR_BUSY_MAX,
        numbers=f"busy {busy:.0%}, "
        f"(c) fetched {lower_bound_fetch_rate(scenario):,.0f} pages/s{ceiling_text}",
    )
