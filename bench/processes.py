"""Child processes with a time limit, a memory limit and a peak-RSS measurement.

Each measured variant runs as its own process group. Two peak figures are taken:

* `max_rss_bytes`: `ru_maxrss` from `os.wait4` on the child. Linux reports the largest
  peak of any single process among the child and the descendants it waited for, so it
  is exact but does not add up processes that ran at the same time.
* `tree_peak_rss_bytes`: the largest sum of RSS over the child and all its descendants,
  sampled with psutil every `SAMPLE_INTERVAL` seconds. It can miss short spikes.
"""

import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

PROJECT_FOLDER = Path(__file__).resolve().parent.parent
SAMPLE_INTERVAL = 0.1
_PR_SET_PDEATHSIG = 1


class BenchmarkError(RuntimeError):
    """A benchmark step failed. The message names the step and its log file."""


@dataclass(frozen=True)
class ChildResult:
    """Outcome and resource use of one finished child process."""

    returncode: int
    started_at: float
    wall_seconds: float
    max_rss_bytes: int
    tree_peak_rss_bytes: int
    # User plus system CPU time of the child and the descendants it waited for.
    cpu_seconds: float
    log_path: Path
    # Sampled peak RSS of each process of the tree, keyed by "pid command".
    process_peaks: dict[str, int]
    # (Unix time, RSS sum of the tree) every SAMPLE_INTERVAL seconds.
    rss_samples: list[tuple[float, int]]


def busy_cpu_seconds() -> float:
    """Return the CPU time that all processes of the machine have used since boot, all cores.

    Idle, I/O wait and steal time are left out. Guest time is already part of user time.
    """
    times = psutil.cpu_times()
    return (
        times.user
        + times.nice
        + times.system
        + getattr(times, "irq", 0.0)
        + getattr(times, "softirq", 0.0)
    )


def own_cpu_seconds() -> float:
    """Return the user plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def log_tail(path: Path, lines: int = 15) -> str:
    """Return the last `lines` lines of a log file, for error messages."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def die_with_parent(death_signal: signal.Signals) -> Callable[[], None]:
    """Return a pre-exec hook that makes Linux send `death_signal` when the parent exits.

    So a child stops by itself even if the benchmark process is killed.
    """

    def set_death_signal() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)

    return set_death_signal


class _Watchdog(threading.Thread):
    """Sampler of the process tree's RSS that kills the group on a time or memory limit."""

    def __init__(self, pid: int, timeout: float, memory_limit_bytes: int) -> None:
        super().__init__(daemon=True, name=f"watchdog-{pid}")
        self.pid = pid
        self.deadline = time.monotonic() + timeout
        self.memory_limit_bytes = memory_limit_bytes
        self.peak_bytes = 0
        self.samples: list[tuple[float, int]] = []
        self._peaks: dict[int, int] = {}
        # The latest command seen per pid: a new child shows its parent's until it calls exec.
        self._commands: dict[int, str] = {}
        self.killed_because: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.done.wait(SAMPLE_INTERVAL):
            total = self._sample(root)
            self.samples.append((time.time(), total))
            self.peak_bytes = max(self.peak_bytes, total)
            if self.peak_bytes > self.memory_limit_bytes:
                self._kill(f"its processes used more than {self.memory_limit_bytes >> 20} MB")
            elif time.monotonic() > self.deadline:
                self._kill("it exceeded its time limit")

    def _kill(self, reason: str) -> None:
        if self.killed_because is None:
            self.killed_because = reason
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _sample(self, root: psutil.Process) -> int:
        """Return the RSS sum of the tree now, and update each process's peak."""
        total = 0
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        for process in processes:
            try:
                rss = process.memory_info().rss
                self._commands[process.pid] = _short_command(process)
            except psutil.Error:
                continue
            total += rss
            self._peaks[process.pid] = max(self._peaks.get(process.pid, 0), rss)
        return total

    def process_peaks(self) -> dict[str, int]:
        return {f"{pid} {self._commands[pid]}": peak for pid, peak in self._peaks.items()}


def _short_command(process: psutil.Process) -> str:
    """Return the command of a process, paths relative to the project folder, cut to 60 characters.

    Relative paths keep the generated page free of the folder the benchmark ran in.
    """
    arguments = process.cmdline()
    words = [Path(arguments[0]).name, *arguments[1:]] if arguments else [process.name()]
    prefix = f"{PROJECT_FOLDER}{os.sep}"
    return " ".join(word.replace(prefix, "") for word in words)[:60]


def run_child(
    command: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
    memory_limit_bytes: int,
    cwd: Path | None = None,
) -> ChildResult:
    """Run `command` to completion with its output in `log_path`, and measure it.

    Raises BenchmarkError if the time or memory limit ended the child. A non-zero exit
    status is returned, not raised, so the caller can name the variant that failed.
    """
    with log_path.open("wb") as log:
        started_at = time.time()
        started = time.perf_counter()
        # Only the main thread starts children, because the death signal fires when the
        # thread that started the child exits.
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )
        watchdog = _Watchdog(process.pid, timeout, memory_limit_bytes)
        watchdog.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall_seconds = time.perf_counter() - started
        watchdog.done.set()
        watchdog.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    _kill_leftovers(process.pid)
    if watchdog.killed_because is not None:
        raise BenchmarkError(
            f"`{' '.join(command[:4])} ...` was stopped because {watchdog.killed_because}; "
            f"see {log_path}. Its last output:\n{log_tail(log_path)}"
        )
    return ChildResult(
        returncode=process.returncode,
        started_at=started_at,
        wall_seconds=wall_seconds,
        # Linux reports ru_maxrss in KiB.
        max_rss_bytes=usage.ru_maxrss * 1024,
        tree_peak_rss_bytes=watchdog.peak_bytes,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        log_path=log_path,
        process_peaks=watchdog.process_peaks(),
        rss_samples=watchdog.samples,
    )


def _kill_leftovers(group_id: int) -> None:
    """Kill processes that the child left running in its process group."""
    try:
        os.killpg(group_id, signal.SIGKILL)
    except ProcessLookupError:
        pass
