"""A throwaway PostgreSQL server on 127.0.0.1 for tests, from Debian's postgresql package."""

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_USER = "postgres"  # Debian's account: initdb and postgres refuse to run as root


def server_bin_dir() -> Path | None:
    """Return the newest installed PostgreSQL server's bin folder, or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parent.parent.name))
    return candidates[-1].parent if candidates else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _open_for_server_user(folder: Path) -> None:
    """Let the server account reach a folder under pytest's root-only temporary tree."""
    if os.geteuid() != 0:
        return
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", f"{SERVER_USER}:", str(folder)], check=True)
    for parent in folder.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o001)


@contextmanager
def running_postgres(folder: Path) -> Iterator[str]:
    """Start a server with its data under `folder`; yield a connection URL; stop it after."""
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries were not found under /usr/lib/postgresql. "
            "Run .ci/run, or install them with: apt-get install -y postgresql"
        )
    data = folder / "pgdata"
    _open_for_server_user(folder)
    port = free_port()
    subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "crm", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {data}"
    control = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "postgres.log")]
    subprocess.run(_as_server_user([*control, "-o", options, "-w", "start"]), check=True, capture_output=True)
    try:
        # The server trusts loopback connections; dlt requires a password in the URL all the same.
        yield f"postgresql://crm:not-checked@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([*control, "-m", "immediate", "stop"]), capture_output=True)
