"""A description of the machine and the package versions that a benchmark ran with."""

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

PACKAGES = ("dagster", "dagster-dlt", "dlt", "duckdb", "pyarrow", "requests")
PROJECT_DIR = Path(__file__).resolve().parent.parent
# The files whose content decides what variant (a) runs.
PRODUCT_PATHS = ("crm_assets", "deploy")


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


def product_fingerprint() -> str:
    """Return a SHA-256 prefix over the product's source and instance settings, to detect edits."""
    digest = hashlib.sha256()
    for folder in PRODUCT_PATHS:
        for path in sorted((PROJECT_DIR / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yaml"):
                digest.update(str(path.relative_to(PROJECT_DIR)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def product_version() -> str:
    """Return the Git commit of the project and how many product files differ from it."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown commit"
    changed = _git("status", "--porcelain", "--", *PRODUCT_PATHS)
    count = len(changed.splitlines()) if changed else 0
    edits = f", {count} uncommitted change(s) under {', '.join(PRODUCT_PATHS)}" if count else ""
    return f"commit {commit}{edits}, source fingerprint {product_fingerprint()}"


def _git(*arguments: str) -> str:
    try:
        completed = subprocess.run(
            ["git", *arguments],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return completed.stdout.strip()
