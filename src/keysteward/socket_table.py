"""TCP sockets in state LISTEN, as Linux lists them under /proc."""

import os
from collections.abc import Iterable
from pathlib import Path

# The state column of /proc/net/tcp, from <net/tcp_states.h>.
_TCP_LISTEN = "0A"


def listening_sockets(port: int, pids: Iterable[int] | None = None) -> int:
    """Count TCP sockets in state LISTEN on ``port``, on any address.

    With ``pids``, counts only the sockets that those processes have open.
    """
    inodes = None if pids is None else socket_inodes(pids)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port != port or fields[3] != _TCP_LISTEN:
                continue
            if inodes is None or fields[9] in inodes:
                count += 1
    return count


def socket_inodes(pids: Iterable[int]) -> set[str]:
    """Return the inode numbers of the sockets that ``pids`` have open."""
    inodes = set()
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def child_pids() -> list[int]:
    """Return the pids of this process's children, from every thread."""
    pids = []
    for task in Path("/proc/self/task").iterdir():
        pids += [int(pid) for pid in (task / "children").read_text().split()]
    return pids
