"""Measured explanations of failing targets, written into the report."""

from bench.scenario import Scenario
from bench.targets import (
    LATENCY_BOUND_MAX,
    MB,
    TargetCheck,
    emulator_busy_share,
    latency_bound_seconds,
    lower_bound_fetch_rate,
)
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
        elif check.kind in ("latency", "latency step"):
            paragraphs.append(_why_latency(involved[0], step_only=check.kind == "latency step"))
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
    parts = ", ".join(
        f"{stage.removeprefix('dlt ')} {_seconds(a, stage):.1f} s" for stage in WORK_STAGES
    )
    extract, fetch = _seconds(a, "dlt extract"), _seconds(c, "fetch")
    after_extract = _seconds(a, "dlt normalize") + _seconds(a, "dlt load")
    gaps = {
        "normalize plus load vs DuckDB read_json": after_extract - _seconds(c, "load"),
        "extract vs fetch": extract - fetch,
    }
    ranked = ", then ".join(
        f"{name} (+{gap:.1f} s)" for name, gap in sorted(gaps.items(), key=lambda item: -item[1])
    )
    return (
        f"**(a) step vs (c), {scenario.name}.** The step took {step:.1f} s. Of that, "
        f"{_seconds(a, 'STEP_START to dlt run start'):.1f} s passed before dlt's run started, "
        f"the run took {_seconds(a, 'dlt run'):.1f} s (dlt {parts}), and the asset code after "
        f"the run took {_seconds(a, 'dlt run end to STEP_SUCCESS'):.1f} s. (c) fetched in "
        f"{fetch:.1f} s and loaded in {_seconds(c, 'load'):.1f} s. The largest gap is {ranked}."
    )


def _why_latency(scenario: Scenario, step_only: bool = False) -> str:
    a, c = scenario.results["a"], scenario.results["c"]
    step = a.step_seconds or 0.0
    pages = a.largest_collection_pages
    bound = latency_bound_seconds(scenario)
    extract = _seconds(a, "dlt extract")
    before = _seconds(a, "launch to RUN_START") + _seconds(a, "RUN_START to sync STEP_START")
    after = _seconds(a, "sync STEP_SUCCESS to RUN_SUCCESS") + _seconds(
        a, "RUN_SUCCESS to process exit"
    )
    measured = step if step_only else a.wall_seconds
    return (
        f"**{'Step alone' if step_only else 'Whole sync'} vs latency bound, {scenario.name}.** "
        f"The bound is {bound:.1f} s. The whole sync took {a.wall_seconds:.1f} s: {before:.1f} s from launch to the sync's "
        f"STEP_START, the step {step:.1f} s, and {after:.1f} s from its STEP_SUCCESS to process "
        f"exit (the asset-check steps and shutdown). In the step, dlt extract took {extract:.1f} s "
        f"for {pages:,} pages per collection, "
        f"{_per_page_ms(extract, pages):.0f} ms per page against "
        f"{scenario.latency_ms:g} ms of added latency (the lower bound (c): "
        f"{_per_page_ms(_seconds(c, 'fetch'), pages):.0f} ms per page). "
        "Normalize and load ran after "
        f"extract and took {_seconds(a, 'dlt normalize') + _seconds(a, 'dlt load'):.1f} s. "
        f"Everything but extract took {measured - extract:.1f} s of the "
        f"{'step' if step_only else 'whole sync'}, while the target leaves "
        f"{(LATENCY_BOUND_MAX - 1) * bound:.1f} s beyond the bound."
    )


def _per_page_ms(seconds: float, pages: int) -> float:
    return 1000 * seconds / pages if pages else 0.0


def _why_memory(check: TargetCheck, scenarios: list[Scenario]) -> str:
    lines = [f"**{check.target}, {check.scope}.**"]
    for scenario in scenarios:
        a, b = scenario.results["a"], scenario.results["b"]
        peaks = sorted(a.process_peaks.items(), key=lambda item: -item[1])[:2]
        listed = "; ".join(f"`{label}` {peak / MB:,.0f} MB" for label, peak in peaks)
        lines.append(
            f"At {scenario.records:,} records, the largest processes of (a) peaked at {listed}. "
            f"Tree peak by dlt stage, (a): {_stage_peaks_text(a)}; (b), the same dlt run without "
            f"Dagster: {_stage_peaks_text(b)}."
        )
    return " ".join(lines)


def _stage_peaks_text(result: VariantResult) -> str:
    return ", ".join(f"{stage} {peak / MB:,.0f} MB" for stage, peak in result.stage_peaks.items())


def _why_emulator(scenario: Scenario) -> str:
    c = scenario.results["c"]
    cpu_per_page = 1000 * c.emulator_cpu_seconds / c.pages
    text = (
        f"**Emulator, {scenario.name}.** "
        f"(c) fetched {lower_bound_fetch_rate(scenario):,.0f} pages/s. "
        f"The emulator used {cpu_per_page:.1f} ms of CPU per page, so it was busy "
        f"{emulator_busy_share(scenario):.0%} of one core during (c)'s fetch stage. "
        "It is one Python "
        "process, so it cannot use much more than one core."
    )
    single = scenario.ceiling(1)
    if single is not None:
        interval = 1000 / single.pages_per_second
        text += f" One keep-alive session gets a page every {interval:.1f} ms"
        # Less CPU than half the interval means the emulator is mostly idle between pages.
        text += (
            ", so the emulator mostly waits instead of computing."
            if cpu_per_page < interval / 2
            else "."
        )
    return text
