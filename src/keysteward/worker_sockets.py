"""A listening socket of its own for each ``serve --workers`` process.

uvicorn's supervisor binds one socket and passes it to every worker. A
kept-alive connection stays with the worker that accepted it, and under a
burst of new connections the worker that wakes first often accepts all of
them. In a check with ``wrk -c8``, all 8 went to one of two workers in two
runs of four, leaving the other worker's core idle. Here each worker binds
its own socket with SO_REUSEPORT instead, and the Linux kernel hashes every
new connection to one of them, so connections spread evenly on average.
"""

import ctypes
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from keysteward.errors import ConfigError
from keysteward.socket_table import child_pids, listening_sockets

log = logging.getLogger(__name__)

# From <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
# The name of the lock on a port, in Linux's abstract Unix socket namespace.
_LOCK_PREFIX = "keysteward-serve-workers-port-"
_UNPRIVILEGED_PORT_START = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
# Seconds that all workers may take to start listening.
LISTEN_TIMEOUT = 60


class WorkerListener:
    """The address that every worker process binds a socket of its own to.

    uvicorn's supervisor pickles the sockets it hands to each new worker
    process. This object goes in their place, and unpickling it in the
    worker binds a new SO_REUSEPORT socket there.
    """

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.host = host
        self.port = port
        self.backlog = backlog

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return (bind_worker_socket, (self.host, self.port, self.backlog))


def run_workers(config: Config) -> None:
    """Run ``config.workers`` uvicorn workers, each on a socket of its own.

    Raises ConfigError when the address is taken or a worker failed to
    start, so the command exits with an error rather than 0.
    """
    with _port_lock(config.port):
        check_port_free(config.host, config.port)
        log.info(
            "serving on http://%s with %d worker processes",
            _address(config.host, config.port),
            config.workers,
        )
        # Each worker unpickles the listener into a socket (see WorkerListener).
        listener = WorkerListener(config.host, config.port, config.backlog)
        supervisor = Multiprocess(config, sockets=cast(list[socket.socket], [listener]))
        threading.Thread(
            target=_log_when_listening,
            args=(config.port, config.workers),
            name="worker-listen-check",
            daemon=True,
        ).start()
        supervisor.run()
    failed = [p.pid for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
    if failed:
        raise ConfigError(
            f"worker process {failed[0]} failed to start. Its log lines above "
            "give the cause."
        )


@contextmanager
def _port_lock(port: int) -> Iterator[None]:
    """Hold a lock on ``port`` that only one ``serve --workers`` gets.

    Workers of two servers started close together would both pass the port
    check and then share the port through SO_REUSEPORT. The lock is a Unix
    socket in Linux's abstract namespace, which the kernel frees when this
    process exits, however it exits.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as lock:
        try:
            lock.bind(f"\0{_LOCK_PREFIX}{port}")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(
                f"another `keysteward serve --workers` process is using port "
                f"{port}. Stop it, or choose another --port. `ss -xap | grep "
                f"{_LOCK_PREFIX}{port}` shows the process that holds the lock."
            ) from None
        yield


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError when another socket listens on host:port.

    SO_REUSEPORT would let the workers join the sockets of another server of
    the same user on that port and split its connections, so this binds the
    address once without that option first.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        # Allows binding over connections still in TIME_WAIT, never over a
        # listening socket.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"failed to listen on {_address(host, port)}: {exc.strerror}. "
                + _fix_for(exc, host)
            ) from None


def _fix_for(exc: OSError, host: str) -> str:
    """Return what to do about a failure to bind a listening address."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        example = "::1" if ":" in host else "127.0.0.1"
        return f"Give --host an address of this machine, such as {example}."
    if exc.errno == errno.EACCES:
        first = _unprivileged_port_start()
        return (
            f"Ports below {first} (net.ipv4.ip_unprivileged_port_start) need "
            f"CAP_NET_BIND_SERVICE. Choose a --port of {first} or above, or "
            "give the server that capability."
        )
    return "Stop the process that listens there, or choose another --port."


def _unprivileged_port_start() -> int:
    try:
        return int(Path(_UNPRIVILEGED_PORT_START).read_text())
    except (OSError, ValueError):
        return 1024


def _log_when_listening(port: int, workers: int) -> None:
    """Log once every worker listens, or a warning if they do not in time.

    Each worker listens a moment after its process starts, and ``/healthz``
    returns 200 once the first one serves. So this line shows an operator,
    or a load test, when new connections spread over all of them.
    """
    deadline = time.monotonic() + LISTEN_TIMEOUT
    while time.monotonic() < deadline:
        if listening_sockets(port, child_pids()) >= workers:
            log.info("all %d worker processes listen on port %d", workers, port)
            return
        time.sleep(0.1)
    log.warning(
        "only %d of %d worker processes listen on port %d after %d s. See "
        "their log lines for the cause",
        listening_sockets(port, child_pids()),
        workers,
        port,
        LISTEN_TIMEOUT,
    )


def bind_worker_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Open a SO_REUSEPORT socket listening on host:port in a new worker process.

    Also ties the worker's life to its parent's. Exits with uvicorn's startup
    failure code when binding or listening fails, so the supervisor stops
    instead of restarting the worker.
    """
    _stop_with_parent()
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        # Listening now, not when uvicorn starts serving, claims the port
        # before the app loads. uvloop ignores a failed listen() there and
        # would leave the worker running with no socket. Connections that
        # arrive meanwhile wait in the backlog.
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        address = _address(host, port)
        print(
            f"worker failed to listen on {address}: {exc}. {_fix_for(exc, host)}",
            file=sys.stderr,
        )
        sys.exit(STARTUP_FAILURE)
    return sock


def _stop_with_parent() -> None:
    """Have the kernel send SIGTERM to this worker when its parent dies.

    Without it, workers of a parent killed by SIGKILL would keep serving on
    their port, next to the workers of any server started after it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
    parent = multiprocessing.parent_process()
    # The parent may have died before the call above took effect.
    if parent is not None and os.getppid() != parent.pid:
        sys.exit(STARTUP_FAILURE)


def _address(host: str, port: int) -> str:
    """Format host and port as in a URL, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _family(host: str) -> socket.AddressFamily:
    # The same rule uvicorn applies to --host: a colon means IPv6.
    return socket.AF_INET6 if ":" in host else socket.AF_INET
