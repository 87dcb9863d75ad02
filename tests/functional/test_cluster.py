"""Three ``keysteward serve`` processes on one PostgreSQL database.

The processes are real subprocesses on free ports of 127.0.0.1. The checks
share one module fixture, so the processes start once, and the kill test
runs last because it stops one of them.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from common.rotation_setup import (
    add_rotatable_secret,
    keyring_for,
    random_master_key,
)
from common.served_processes import free_port, wait_healthy
from keysteward.db import Base, Store
from keysteward.events.checkpoint_record import RECORD_FILE_NAME
from keysteward.events.models import Event
from keysteward.events.verify import verify_chain
from keysteward.identities.models import Person, ServiceAccount
from keysteward.operators.services import set_role
from keysteward.rotation.models import Rotation
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token

KEYSTEWARD = str(Path(sys.executable).with_name("keysteward"))
REMINDER_INTERVAL = timedelta(seconds=1)
POLICY_GRANT = """
roles:
  cluster-reader:
    permissions: [crm:contacts:read]
assignments:
  - principal: service_account:cluster-bot
    role: cluster-reader
"""
POLICY_EMPTY = "roles: {}\n"
BOT = "service_account:cluster-bot"


@dataclass
class Cluster:
    urls: list[str]
    processes: list[subprocess.Popen[bytes]]
    store: Store
    env: dict[str, str]
    token: str

    def post(self, index: int, path: str, body: dict[str, object]) -> httpx.Response:
        return httpx.post(
            f"{self.urls[index]}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )


def empty_database(store: Store) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with store.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    # The recorded checkpoint names an event of the chain just removed.
    (store.settings.home / RECORD_FILE_NAME).unlink(missing_ok=True)


def admin_token(store: Store) -> str:
    with store.session() as session:
        person = Person(name="Cluster Admin", email="cluster-admin@example.com")
        session.add(person)
        session.flush()
        set_role(session, person.email, "admin", actor="test")
        principal = Principal(PrincipalType.PERSON, person.id, person.email)
        return issue_api_token(session, principal, actor="test").token


@pytest.fixture(scope="module")
def cluster(
    postgres_store: Store, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    empty_database(postgres_store)
    master_key = random_master_key()
    add_rotatable_secret(
        postgres_store,
        keyring_for(master_key),
        "cluster-secret",
        b"pw-" + b"c" * 16,
        {"rotator": "manual"},
    )
    token = admin_token(postgres_store)
    env = {
        **os.environ,
        "KEYSTEWARD_HOME": str(postgres_store.settings.home),
        "KEYSTEWARD_DATABASE_URL": postgres_url,
        "KEYSTEWARD_KEY_PROVIDER": "env",
        "KEYSTEWARD_MASTER_KEY": master_key,
        "KEYSTEWARD_LOG_LEVEL": "INFO",
    }
    logs = tmp_path_factory.mktemp("cluster-logs")
    urls: list[str] = []
    processes: list[subprocess.Popen[bytes]] = []
    for number in range(3):
        port = free_port()
        command = [KEYSTEWARD, "serve", "--port", str(port), "--with-scheduler"]
        command += ["--job-intervals", f"review-reminders={REMINDER_INTERVAL.seconds}"]
        with (logs / f"serve-{number}.log").open("wb") as log_file:
            processes.append(
                subprocess.Popen(command, env=env, stdout=log_file, stderr=log_file)
            )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        yield Cluster(urls, processes, postgres_store, env, token)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def apply_policy_through(cluster: Cluster, index: int, policy: str) -> None:
    response = cluster.post(index, "/policy/apply", {"policy": policy, "force": True})
    assert response.status_code == 200, response.text


def decision_at(cluster: Cluster, index: int) -> str:
    response = cluster.post(
        index, "/checks", {"principal": BOT, "permission": "crm:contacts:read"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["decision"])


def decision_within_second(cluster: Cluster, index: int, expected: str) -> str:
    """Poll process ``index`` for up to one second; return its last decision."""
    deadline = time.monotonic() + 1.0
    decision = decision_at(cluster, index)
    while decision != expected and time.monotonic() < deadline:
        time.sleep(0.02)
        decision = decision_at(cluster, index)
    return decision


def test_policy_change_reaches_every_process(cluster: Cluster) -> None:
    with cluster.store.session() as session:
        owner = session.scalar(select(Person))
        session.add(ServiceAccount(name="cluster-bot", owner=owner, purpose="test"))
    apply_policy_through(cluster, 0, POLICY_EMPTY)
    # Warm every process's cached index with the deny.
    for index in range(3):
        assert decision_at(cluster, index) == "deny"

    apply_policy_through(cluster, 0, POLICY_GRANT)

    assert decision_within_second(cluster, 1, "allow") == "allow"
    assert decision_within_second(cluster, 2, "allow") == "allow"

    apply_policy_through(cluster, 2, POLICY_EMPTY)

    assert decision_within_second(cluster, 0, "deny") == "deny"
    assert decision_within_second(cluster, 1, "deny") == "deny"


def test_concurrent_rotations_give_one(cluster: Cluster) -> None:
    command = [KEYSTEWARD, "rotate", "cluster-secret", "--json"]
    rotators = [
        subprocess.Popen(
            command, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    exit_codes = []
    for rotator in rotators:
        rotator.communicate(timeout=120)
        exit_codes.append(rotator.returncode)

    assert 0 in exit_codes
    with cluster.store.session() as session:
        count = session.scalar(select(func.count()).select_from(Rotation))
    assert count == 1


def job_starts(store: Store, job: str) -> list[datetime]:
    with store.session() as session:
        events = session.scalars(
            select(Event).where(
                Event.action == "cluster.job.run", Event.target_id == job
            )
        )
        return sorted(
            datetime.fromisoformat(event.details["started_at"]) for event in events
        )


def test_scheduled_job_once_per_interval(cluster: Cluster) -> None:
    deadline = time.monotonic() + 30
    while len(job_starts(cluster.store, "review-reminders")) < 3:
        assert time.monotonic() < deadline, "review-reminders ran fewer than 3 times"
        time.sleep(0.2)

    starts = job_starts(cluster.store, "review-reminders")
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    assert min(gaps) >= REMINDER_INTERVAL
    # The daily jobs started once in total, not once per process.
    assert len(job_starts(cluster.store, "audit")) == 1
    assert len(job_starts(cluster.store, "rotation")) == 1


def test_events_form_one_chain(cluster: Cluster) -> None:
    for index in range(3):
        decision_at(cluster, index)

    with cluster.store.read_snapshot() as session:
        report = verify_chain(session, cluster.store.settings.home)
        checks = session.scalar(
            select(func.count()).where(Event.action == "authz.check")
        )

    assert report.problems == []
    assert report.events_checked > 0
    assert checks is not None
    assert checks >= 3


def wait_for_writes(acknowledged: list[str], count: int) -> None:
    deadline = time.monotonic() + 60
    while len(acknowledged) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_kill_loses_no_acknowledged_write(cluster: Cluster) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        number = 0
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                number += 1
                principal = f"service_account:load-{worker}-{number}"
                url = cluster.urls[number % 3]
                try:
                    response = client.post(
                        f"{url}/api/v1/checks",
                        json={"principal": principal, "permission": "crm:x:read"},
                        headers={"Authorization": f"Bearer {cluster.token}"},
                    )
                except httpx.TransportError:
                    continue
                if 200 <= response.status_code < 300:
                    with lock:
                        acknowledged.append(principal)

    workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    wait_for_writes(acknowledged, 30)
    cluster.processes[2].send_signal(signal.SIGKILL)
    cluster.processes[2].wait(timeout=10)
    wait_for_writes(acknowledged, len(acknowledged) + 30)
    stop.set()
    for worker in workers:
        worker.join()

    with cluster.store.session() as session:
        stored = set(
            session.scalars(
                select(Event.target_id).where(Event.action == "authz.check")
            )
        )
    assert len(acknowledged) >= 60
    missing = [principal for principal in acknowledged if principal not in stored]
    assert missing == []
    with cluster.store.read_snapshot() as session:
        assert verify_chain(session, cluster.store.settings.home).problems == []
