"""The cluster services one server process runs beside the API."""

from dataclasses import dataclass

from fastapi import FastAPI

from keysteward.cluster.jobs import Job, JobRunner
from keysteward.cluster.notify import PolicyListener, start_policy_listener


@dataclass
class ClusterServices:
    """The threads started for one app, stopped together on shutdown."""

    listener: PolicyListener | None
    runner: JobRunner | None

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        if self.listener is not None:
            self.listener.stop()


def start_cluster_services(app: FastAPI) -> ClusterServices:
    """Start the policy listener (PostgreSQL only) and any scheduled jobs.

    Jobs run only when ``app.state.scheduled_jobs`` lists them, which
    ``keysteward serve --with-scheduler`` sets.
    """
    store = app.state.store
    jobs: list[Job] = getattr(app.state, "scheduled_jobs", None) or []
    runner = None
    if jobs:
        runner = JobRunner(store, jobs)
        runner.start()
    return ClusterServices(listener=start_policy_listener(store), runner=runner)
