"""``keysteward serve`` subprocesses: a free port to start one on, and its start."""

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path | None = None
) -> None:
    """Wait until ``url`` returns 200 on /healthz; fail with ``log`` if it exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"keysteward serve for {url} exited with {process.returncode}"
                + _output(log)
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"keysteward serve for {url} did not answer /healthz within "
        f"{START_TIMEOUT:.0f} s" + _output(log)
    )


def _output(log: Path | None) -> str:
    return f":\n{log.read_text()}" if log is not None else ""
