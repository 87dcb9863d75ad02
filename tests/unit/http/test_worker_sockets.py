"""Per-worker listening sockets: the port check and the socket a worker binds."""

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keysteward.errors import ConfigError
from keysteward.socket_table import listening_sockets
from keysteward.worker_sockets import (
    _fix_for,
    _port_lock,
    check_port_free,
)

# Unpickles two listeners in a fresh process, as two workers would, and
# prints what the kernel reports of the sockets. It runs in a subprocess
# because binding also sets the process's parent-death signal.
UNPICKLING_PROCESS = """
import ctypes, json, pickle, signal, socket, sys
from keysteward.worker_sockets import WorkerListener

PR_GET_PDEATHSIG = 2
port = int(sys.argv[1])
data = pickle.dumps(WorkerListener("127.0.0.1", port, 16))
first, second = pickle.loads(data), pickle.loads(data)
signal_number = ctypes.c_int()
ctypes.CDLL(None).prctl(PR_GET_PDEATHSIG, ctypes.byref(signal_number), 0, 0, 0)
print(json.dumps({
    "ports": [first.getsockname()[1], second.getsockname()[1]],
    "reuse_port": first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT),
    "listening": first.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
    "death_signal": signal_number.value,
}))
"""


@pytest.fixture
def listening() -> Iterator[int]:
    """Yield the port of a plain listening socket, as another server's."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_port_check_rejects_listening_port(listening: int) -> None:
    with pytest.raises(ConfigError) as raised:
        check_port_free("127.0.0.1", listening)
    message = str(raised.value)
    assert f"failed to listen on 127.0.0.1:{listening}" in message
    assert "Address already in use" in message
    assert "choose another --port" in message


def test_port_check_accepts_free_port() -> None:
    check_port_free("127.0.0.1", _free_port())


def test_listener_binds_reusable_socket() -> None:
    port = _free_port()
    result = subprocess.run(
        [sys.executable, "-c", UNPICKLING_PROCESS, str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    sockets = json.loads(result.stdout)
    # Both bound the same port, which only SO_REUSEPORT allows.
    assert sockets["ports"] == [port, port]
    assert sockets["reuse_port"] == 1
    # Listening before uvicorn loads the app claims the port early, and a
    # failed listen() exits like a failed bind.
    assert sockets["listening"] == 1
    assert sockets["death_signal"] == 15


def test_port_check_names_host_fix() -> None:
    # 192.0.2.0/24 is reserved for documentation, so no machine has it.
    with pytest.raises(ConfigError) as raised:
        check_port_free("192.0.2.7", _free_port())
    message = str(raised.value)
    assert "failed to listen on 192.0.2.7:" in message
    assert "Give --host an address of this machine" in message


def test_port_check_brackets_ipv6() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError) as raised:
            check_port_free("::1", port)
    assert f"failed to listen on [::1]:{port}" in str(raised.value)


def test_privileged_port_fix() -> None:
    fix = _fix_for(PermissionError(errno.EACCES, "Permission denied"), "127.0.0.1")
    first = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert f"Choose a --port of {first} or above" in fix
    assert "CAP_NET_BIND_SERVICE" in fix


def test_host_fix_suggests_same_family() -> None:
    missing = OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
    assert "such as ::1" in _fix_for(missing, "2001:db8::1")
    assert "such as 127.0.0.1" in _fix_for(missing, "192.0.2.7")


def test_port_lock_taken_once() -> None:
    port = _free_port()
    with _port_lock(port):
        with pytest.raises(ConfigError) as raised, _port_lock(port):
            pass
        assert f"another `keysteward serve --workers` process is using port {port}" in (
            str(raised.value)
        )
    # Released on exit.
    with _port_lock(port):
        pass


def test_listener_exits_on_taken_port(listening: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", UNPICKLING_PROCESS, str(listening)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # uvicorn's supervisor stops, rather than restarts, a worker that exits
    # with its startup failure code 3.
    assert result.returncode == 3
    assert f"worker failed to listen on 127.0.0.1:{listening}" in result.stderr


def test_listening_sockets_counts_ipv4_and_ipv6(listening: int) -> None:
    assert listening_sockets(listening) == 1
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(("::1", listening))
        assert listening_sockets(listening) == 1
        sock.listen()
        assert listening_sockets(listening) == 2


def test_listening_sockets_of_given_processes(listening: int) -> None:
    # The fixture's socket belongs to this process.
    assert listening_sockets(listening, [os.getpid()]) == 1
    assert listening_sockets(listening, []) == 0
