"""The cluster services one server process runs beside the API."""

from dataclasses import dataclass

from fastapi import FastAPI

from keysteward.cluster.notify import PolicyListener, start_policy_listener


@dataclass
class ClusterServices:
    """The threads started for one app, stopped together on shutdown."""

    listener: PolicyListener | None

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()


def start_cluster_services(app: FastAPI) -> ClusterServices:
    """Start the policy listener for ``app``'s store (PostgreSQL only)."""
    return ClusterServices(listener=start_policy_listener(app.state.store))
