"""Measured explanations of failing targets, written into the report."""

from bench.scenario import Scenario
from bench.targets import MB, TargetCheck, emulator_busy_share, latency_bound_seconds, lower_bound_fetch_rate
from bench.variants import VariantResult

WORK_STAGES = ("dlt extract", "dlt normalize", "dlt load")


def explain(checks: list[TargetCheck], scenarios: list[Scenario]) -> list[str]:
    """Return Markdown paragraphs, one per failing check, built from the measurements."""
    by_name = {scenario.name: scenario for scenario in scenarios}
    paragraphs: list[str] = []
    for check in checks:
        if check.passed:
            continue
        involved = [by_name[name] for name in check.scenario_names]
        if check.kind == "step":
            paragraphs.append(_why_step(involved[0]))
        elif check.kind == "latency":
            paragraphs.append(_why_latency(involved[0]))
        elif check.kind == "memory":
            paragraphs.append(_why_memory(check, involved))
        elif check.kind == "emulator":
            paragraphs.append(_why_emulator(involved[0]))
    return paragraphs


def _seconds(result: VariantResult, stage: str) -> float:
    return result.stages.get(stage, 0.0)


def _why_step(scenario: Scenario) -> str:
    a, c = scenario.results["a"], scenario.results["c"]
    step = a.step_seconds or 0.0
    dlt_run = _seconds(a, "dlt run")
    parts = ", ".join(f"{stage.removeprefix('dlt ')} {_seconds(a, stage):.1f} s" for stage in WORK_STAGES)
    return (
        f"**(a) step vs (c), {scenario.name}.** The step took {step:.1f} s: "
        f"{_seconds(a, 'STEP_START to dlt run start'):.1f} s before dlt's run started, the run "
        f"{dlt_run:.1f} s (dlt {parts}), and {_seconds(a, 'dlt run end to STEP_SUCCESS'):.1f} s "
        f"in the asset code after dlt's run returned. (c) fetched in {_seconds(c, 'fetch'):.1f} s and loaded in "
        f"{_seconds(c, 'load'):.1f} s. Extract vs fetch: {_seconds(a, 'dlt extract'):.1f} s vs "
        f"{_seconds(c, 'fetch'):.1f} s; normalize plus load vs DuckDB read_json: "
        f"{_seconds(a, 'dlt normalize') + _seconds(a, 'dlt load'):.1f} s vs {_seconds(c, 'load'):.1f} s."
    )


def _why_latency(scenario: Scenario) -> str:
    a = scenario.results["a"]
    step = a.step_seconds or 0.0
    pages = a.largest_collection_pages
    extract = _seconds(a, "dlt extract")
    per_page = 1000 * extract / pages if pages else 0.0
    before = _seconds(a, "launch to RUN_START") + _seconds(a, "RUN_START to sync STEP_START")
    after = _seconds(a, "sync STEP_SUCCESS to RUN_SUCCESS") + _seconds(a, "RUN_SUCCESS to process exit")
    return (
        f"**Whole sync vs latency bound, {scenario.name}.** The bound is "
        f"{latency_bound_seconds(scenario):.1f} s. The whole sync took {a.wall_seconds:.1f} s: "
        f"{before:.1f} s from launch to the sync's STEP_START, the step {step:.1f} s, and "
        f"{after:.1f} s from its STEP_SUCCESS to process exit (the asset-check steps and "
        f"shutdown). In the step, dlt extract took {extract:.1f} s for {pages:,} pages per "
        f"collection, {per_page:.0f} ms per page against {scenario.latency_ms:g} ms of added "
        f"latency; normalize and load took "
        f"{_seconds(a, 'dlt normalize') + _seconds(a, 'dlt load'):.1f} s after it."
    )


def _why_memory(check: TargetCheck, scenarios: list[Scenario]) -> str:
    lines = [f"**{check.target}, {check.scope}.** Sampled peak RSS per process of (a):"]
    for scenario in scenarios:
        peaks = sorted(scenario.results["a"].process_peaks.items(), key=lambda item: -item[1])[:3]
        listed = "; ".join(f"`{label}` {peak / MB:,.0f} MB" for label, peak in peaks)
        lines.append(f"at {scenario.records:,} records: {listed}.")
    return " ".join(lines)


def _why_emulator(scenario: Scenario) -> str:
    c = scenario.results["c"]
    cpu_per_page = 1000 * c.emulator_cpu_seconds / c.pages
    text = (
        f"**Emulator, {scenario.name}.** (c) fetched {lower_bound_fetch_rate(scenario):,.0f} pages/s. "
        f"The emulator used {cpu_per_page:.1f} ms of CPU per page, so it was busy "
        f"{emulator_busy_share(scenario):.0%} of one core during (c)'s fetch stage. It is one Python "
        "process, so it cannot use much more than one core."
    )
    single = scenario.ceiling(1)
    if single is not None:
        interval = 1000 / single.pages_per_second
        text += f" One keep-alive session gets a page every {interval:.1f} ms"
        # Less CPU than half the interval means the emulator is mostly idle between pages.
        text += ", so the emulator mostly waits instead of computing." if cpu_per_page < interval / 2 else "."
    return text
