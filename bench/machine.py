"""A description of the machine and the package versions that a benchmark ran with."""

import os
import platform
from importlib import metadata
from pathlib import Path

import psutil

PACKAGES = ("dagster", "dagster-dlt", "dlt", "duckdb", "pyarrow", "requests")


def cpu_model() -> str:
    """Return the first `model name` of /proc/cpuinfo, or the platform's processor name."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    """Return Markdown list items: CPU, cores, RAM, OS, Python and package versions."""
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in PACKAGES)
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores",
        f"- RAM: {psutil.virtual_memory().total / 2**30:.1f} GiB",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- Packages: {versions}",
    ]
