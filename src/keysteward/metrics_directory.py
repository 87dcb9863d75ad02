"""The directory where server processes share their Prometheus values.

prometheus_client's multiprocess mode is on in every process that starts
with PROMETHEUS_MULTIPROC_DIR in its environment, even set to an empty
string. Each process then writes its values to files there, and a scrape
adds up all of them (see ``observability``). ``serve --workers`` turns it
on with a private directory of its own, and an operator may name one.
"""

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from keysteward.errors import ConfigError
from keysteward.observability import MULTIPROCESS_DIR_SETTING

log = logging.getLogger(__name__)

# A private directory is named after the process that made it, so a later
# start can remove those left by a server that was killed.
PRIVATE_PREFIX = "metrics-"
_PRIVATE_NAME = re.compile(rf"{PRIVATE_PREFIX}(\d+)-")


def check_named_directory() -> Path | None:
    """Check and return the directory named in PROMETHEUS_MULTIPROC_DIR.

    Returns None when the variable is not set. Raises ConfigError unless it
    names a directory that this process can write to, because every request
    would fail otherwise. Logs a warning when it already contains values, which
    a scrape adds to this run's.
    """
    if MULTIPROCESS_DIR_SETTING not in os.environ:
        return None
    named = os.environ[MULTIPROCESS_DIR_SETTING]
    fix = "Create an empty directory there, or unset the variable."
    if not named or not Path(named).is_dir():
        raise ConfigError(
            f"{MULTIPROCESS_DIR_SETTING}={named!r} is not a directory. {fix}"
        )
    try:
        with tempfile.TemporaryFile(dir=named):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{MULTIPROCESS_DIR_SETTING}={named!r} is not writable: "
            f"{exc.strerror}. Give the server's user write access, or unset it."
        ) from None
    stale = list(Path(named).glob("*.db"))
    if stale:
        log.warning(
            "%s=%s already contains %d value files, which /metrics adds to this "
            "run's; empty it before each start",
            MULTIPROCESS_DIR_SETTING,
            named,
            len(stale),
        )
    return Path(named)


@contextmanager
def shared_metrics_directory(home: Path) -> Iterator[None]:
    """Give the workers a directory for their Prometheus values, then remove it.

    A directory the operator named is checked, used as it is and kept.
    Otherwise a new one is made in the home folder, which only the owner can
    read, and removed when the server stops.
    """
    if check_named_directory() is not None:
        yield
        return
    remove_stale_directories(home)
    directory = tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-", dir=home)
    os.environ[MULTIPROCESS_DIR_SETTING] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR_SETTING]
        shutil.rmtree(directory, ignore_errors=True)


def remove_stale_directories(home: Path) -> None:
    """Remove the private directories of servers that no longer run."""
    for directory in home.glob(f"{PRIVATE_PREFIX}*"):
        match = _PRIVATE_NAME.match(directory.name)
        if match is None or not directory.is_dir():
            continue
        if _process_running(int(match.group(1))):
            continue
        log.info("removing metrics directory %s of a stopped server", directory)
        shutil.rmtree(directory, ignore_errors=True)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # The process exists and belongs to another user.
        return True
    return True
