"""The app of each process that ``keysteward serve --workers N`` starts.

uvicorn starts every worker as a new Python process and imports
``worker_app`` by name, so nothing but the environment passes from the
parent. The parent puts its resolved settings there as ``KEYSTEWARD_*``
variables, and each worker opens its own store, key ring and event writer.
"""

import os

from fastapi import FastAPI

from keysteward.config import load_settings
from keysteward.db import open_store
from keysteward.logging import configure_logging

SCHEDULER_SETTING = "KEYSTEWARD_WITH_SCHEDULER"
JOB_INTERVALS_SETTING = "KEYSTEWARD_JOB_INTERVALS"


def worker_app() -> FastAPI:
    """Build one worker's app from the settings in the environment."""
    from keysteward.app import create_app
    from keysteward.events.automatic import enable_automatic_checkpoints
    from keysteward.vault.keys import check_master_key, keyring_for_home

    settings = load_settings()
    configure_logging(settings.log_level)
    store = open_store(settings)
    enable_automatic_checkpoints(store, background=True)
    keyring = keyring_for_home(settings.home)
    with store.read_snapshot() as session:
        check_master_key(session, keyring)
    # The parent set PROMETHEUS_MULTIPROC_DIR, so /metrics sums the counters
    # of every worker (see observability._scraped_registry).
    app = create_app(settings, store=store, keyring=keyring)
    if os.environ.get(SCHEDULER_SETTING) == "1":
        from keysteward.cluster.jobs import parse_intervals, scheduled_jobs

        intervals = os.environ.get(JOB_INTERVALS_SETTING, "")
        app.state.scheduled_jobs = scheduled_jobs(parse_intervals(intervals))
    return app
