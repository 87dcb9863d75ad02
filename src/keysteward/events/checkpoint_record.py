"""The newest checkpoint a home has signed, kept in a file beside its key.

Checkpoints live in the database, so someone who can write the database can
delete them and then rewrite the chain before the oldest one left. This file,
``checkpoint.last`` in KEYSTEWARD_HOME, keeps the sequence and digest of the
newest checkpoint that any process with this home signed, outside their
reach. ``keysteward events verify`` and the next checkpoint check that the
chain still has that event with that digest.
"""

import fcntl
import json
import os
from pathlib import Path

from keysteward.errors import ConfigError
from keysteward.events.chain import ChainPoint

RECORD_FILE_NAME = "checkpoint.last"
LOCK_FILE_NAME = "checkpoint.last.lock"


def read_recorded(home: Path) -> ChainPoint | None:
    """Return the recorded checkpoint, or None when none was recorded.

    Raises ConfigError when the file exists but is not a valid record.
    """
    path = home / RECORD_FILE_NAME
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        point = ChainPoint(int(data["sequence"]), str(data["digest"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"invalid checkpoint record {path}: expected JSON with sequence and "
            "digest; restore it from backup, or delete it to trust the database's "
            "checkpoints alone"
        ) from None
    return point


def record_signed(home: Path, point: ChainPoint) -> None:
    """Record ``point`` as the newest signed checkpoint, unless a newer one is.

    Processes that share the home take turns under a file lock, and the
    file is replaced in one rename, so a reader never sees half a record.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (home / LOCK_FILE_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        recorded = read_recorded(home)
        if recorded is not None and recorded.sequence >= point.sequence:
            return
        temporary = home / f"{RECORD_FILE_NAME}.{os.getpid()}.tmp"
        text = json.dumps({"sequence": point.sequence, "digest": point.digest})
        temporary.write_text(text + "\n", encoding="ascii")
        os.replace(temporary, home / RECORD_FILE_NAME)
