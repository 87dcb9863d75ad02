"""Run one rotation in a child process and SIGKILL it at a chosen checkpoint.

Usage: ``python -m common.rotation_child SECRET CHECKPOINT`` with the store
and master key in KEYSTEWARD_DATABASE_URL, KEYSTEWARD_KEY_PROVIDER=env and
KEYSTEWARD_MASTER_KEY. CHECKPOINT is ``before:<state>`` or ``after:<state>``;
the process kills itself there, so no cleanup code of any kind runs.
"""

import os
import signal
import sys

from keysteward.config import load_settings
from keysteward.db import open_store
from keysteward.rotation.services import rotate_secret
from keysteward.vault.keys import keyring_for_home


def main() -> int:
    secret, kill_at = sys.argv[1], sys.argv[2]

    def checkpoint(point: str) -> None:
        if point == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    settings = load_settings()
    store = open_store(settings)
    result = rotate_secret(
        store,
        keyring_for_home(settings.home),
        secret,
        actor="operator:child",
        checkpoint=checkpoint,
    )
    print(result.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
