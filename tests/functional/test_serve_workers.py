"""``keysteward serve --workers 2`` on the embedded SQLite store.

Two worker processes share one port and one database. Every read they
serve must be on record in one valid chain, with checkpoints signed over
both processes' events.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from common.principals import create_account
from common.read_servers import api_token_for, exchange_token
from common.rotation_setup import keyring_for, random_master_key
from common.served_processes import free_port, wait_healthy
from keysteward.config import Settings
from keysteward.db import Store, open_store
from keysteward.events.models import Event, EventCheckpoint
from keysteward.socket_table import listening_sockets
from keysteward.vault.services import put_secret

KEYSTEWARD = str(Path(sys.executable).with_name("keysteward"))
SECRET_VALUE = "pat-na1-" + "0a1b2c3d" * 4
READS = 1200
CLIENTS = 8
HEALTH_CHECKS = 40
BURST_CONNECTIONS = 16


@dataclass
class Workers:
    url: str
    store: Store
    env: dict[str, str]
    api_token: str
    process: subprocess.Popen[bytes]


def _wait_for_line(log_path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    if text not in log_path.read_text():
        pytest.fail(f"no line {text!r} within 60 s in:\n{log_path.read_text()}")


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    master_key = random_master_key()
    home = tmp_path / "home"
    store = open_store(Settings(home=home))
    principal = create_account(store, "crm-sync", "keysteward:secrets/hubspot:read")
    with store.session() as session:
        put_secret(
            session,
            keyring_for(master_key),
            "hubspot",
            SECRET_VALUE.encode(),
            actor="t",
        )
    api_token = api_token_for(store, principal)

    env = {
        **os.environ,
        "KEYSTEWARD_HOME": str(home),
        "KEYSTEWARD_KEY_PROVIDER": "env",
        "KEYSTEWARD_MASTER_KEY": master_key,
        "KEYSTEWARD_SQLITE_SYNCHRONOUS": "NORMAL",
        # Turns on the line that serve logs once every worker listens.
        "KEYSTEWARD_LOG_LEVEL": "INFO",
    }

    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [KEYSTEWARD, "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
    url = f"http://127.0.0.1:{port}"

    try:
        wait_healthy(url, process, log_path)
        # /healthz returns 200 once the first worker serves, and serve logs
        # this line once both do.
        _wait_for_line(log_path, f"all 2 worker processes listen on port {port}")
        yield Workers(url, store, env, api_token, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        store.engine.dispose()


def _read(url: str, access_token: str, count: int) -> list[str]:
    """Read the secret ``count`` times on new connections; return request ids."""
    request_ids = []
    headers = {"Authorization": f"Bearer {access_token}"}
    for _ in range(count):
        response = httpx.get(f"{url}/api/v1/secrets/hubspot", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["value"] == SECRET_VALUE
        request_ids.append(response.headers["x-request-id"])
    return request_ids


def test_workers_share_one_chain(workers: Workers, tmp_path: Path) -> None:
    access_token = exchange_token(workers.url, workers.api_token)
    with ThreadPoolExecutor(CLIENTS) as pool:
        batches = pool.map(
            _read,
            [workers.url] * CLIENTS,
            [access_token] * CLIENTS,
            [READS // CLIENTS] * CLIENTS,
        )
        request_ids = [request_id for batch in batches for request_id in batch]

    # Each process numbers its request ids after a random 12-digit prefix.
    prefixes = {request_id[:12] for request_id in request_ids}
    assert len(prefixes) == 2
    with workers.store.session() as session:
        reads = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.action == "secret.read", Event.outcome == "allowed")
        )
        checkpoints = session.scalar(select(func.count()).select_from(EventCheckpoint))
    assert reads == READS
    assert checkpoints is not None and checkpoints >= 1
    verified = subprocess.run(
        [KEYSTEWARD, "events", "verify", "--json"],
        env=workers.env,
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_workers_need_passphrase_in_environment(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "KEYSTEWARD_PASSPHRASE"
    }
    env["KEYSTEWARD_HOME"] = str(tmp_path / "home")
    env["KEYSTEWARD_KEY_PROVIDER"] = "passphrase"
    result = subprocess.run(
        [KEYSTEWARD, "serve", "--workers", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "KEYSTEWARD_PASSPHRASE" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_rejects_wrong_master_key(tmp_path: Path, workers: str) -> None:
    home = tmp_path / "home"
    store = open_store(Settings(home=home))
    with store.session() as session:
        put_secret(
            session, keyring_for(random_master_key()), "hubspot", b"v", actor="t"
        )
    store.engine.dispose()
    env = {
        **os.environ,
        "KEYSTEWARD_HOME": str(home),
        "KEYSTEWARD_KEY_PROVIDER": "env",
        "KEYSTEWARD_MASTER_KEY": random_master_key(),
    }
    command = [KEYSTEWARD, "serve", "--workers", workers, "--port", str(free_port())]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "does not unwrap key-encryption key" in result.stderr


def _healthz_count(metrics: str) -> float:
    """Return the request counter of GET /healthz with status 200 in ``metrics``."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if (
                sample.name == "keysteward_http_requests_total"
                and sample.labels.get("route") == "/healthz"
                and sample.labels.get("status") == "200"
            ):
                return sample.value
    return 0.0


def test_workers_metrics_add_up(workers: Workers) -> None:
    # The fixture's own health checks came before.
    before = _healthz_count(httpx.get(f"{workers.url}/metrics").text)
    request_ids = [
        httpx.get(f"{workers.url}/healthz").headers["x-request-id"]
        for _ in range(HEALTH_CHECKS)
    ]
    # Each process numbers its request ids after a random 12-digit prefix, so
    # both served some of the checks.
    assert len({request_id[:12] for request_id in request_ids}) == 2

    # Each scrape reaches either process and must count every check.
    for _ in range(6):
        response = httpx.get(f"{workers.url}/metrics")
        assert response.status_code == 200
        assert _healthz_count(response.text) == before + HEALTH_CHECKS


def test_workers_metrics_directory_removed(workers: Workers) -> None:
    home = workers.store.settings.home
    httpx.get(f"{workers.url}/healthz")
    directories = list(home.glob("metrics-*"))
    assert len(directories) == 1
    assert any(directories[0].iterdir())
    # Only the owner may read the values, as for the rest of the home folder.
    assert directories[0].stat().st_mode & 0o077 == 0

    workers.process.send_signal(signal.SIGTERM)
    workers.process.wait(timeout=30)

    assert list(home.glob("metrics-*")) == []


def _home_with_secret(tmp_path: Path) -> dict[str, str]:
    """Store one secret in a new home and return the environment that serves it."""
    master_key = random_master_key()
    home = tmp_path / "home"
    store = open_store(Settings(home=home))
    with store.session() as session:
        put_secret(session, keyring_for(master_key), "hubspot", b"v", actor="t")
    store.engine.dispose()
    return {
        **os.environ,
        "KEYSTEWARD_HOME": str(home),
        "KEYSTEWARD_KEY_PROVIDER": "env",
        "KEYSTEWARD_MASTER_KEY": master_key,
    }


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_rejects_missing_metrics_directory(tmp_path: Path, workers: str) -> None:
    missing = tmp_path / "no-such-directory"
    env = {**_home_with_secret(tmp_path), "PROMETHEUS_MULTIPROC_DIR": str(missing)}
    command = [KEYSTEWARD, "serve", "--workers", workers, "--port", str(free_port())]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert f"PROMETHEUS_MULTIPROC_DIR='{missing}' is not a directory" in result.stderr


def _request_id_on_new_connection(connection: socket.socket) -> str:
    """Send GET /healthz on ``connection`` and return the response's request id."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = connection.recv(4096)
        assert chunk, "connection closed before the response headers"
        response += chunk
    for line in response.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "x-request-id":
            return value.strip()
    raise AssertionError(f"no x-request-id header in {response!r}")


def test_workers_share_burst_of_connections(workers: Workers) -> None:
    port = int(workers.url.rsplit(":", 1)[1])
    # Each worker listens on a socket of its own.
    assert listening_sockets(port) == 2
    # Every connection is open before the first request, as when a client
    # pool starts, so no worker is busy when the connections arrive.
    connections = [
        socket.create_connection(("127.0.0.1", port), timeout=10)
        for _ in range(BURST_CONNECTIONS)
    ]
    try:
        request_ids = [_request_id_on_new_connection(c) for c in connections]
    finally:
        for connection in connections:
            connection.close()

    # The kernel picks a worker's socket by a hash of each connection's
    # addresses, so all 16 landing on one worker has a chance of 2 in 65,536.
    assert len({request_id[:12] for request_id in request_ids}) == 2


def test_second_server_on_port_rejected(workers: Workers) -> None:
    port = workers.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [KEYSTEWARD, "serve", "--workers", "2", "--port", port],
        env=workers.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert f"serve --workers` process is using port {port}" in result.stderr
    # The first server still serves.
    assert httpx.get(f"{workers.url}/healthz").status_code == 200


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_stop_when_parent_killed(workers: Workers) -> None:
    children = _children(workers.process.pid)
    # Two workers and multiprocessing's resource tracker.
    assert len(children) == 3

    workers.process.kill()
    workers.process.wait(timeout=30)

    deadline = time.monotonic() + 30
    while any(_running(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [child for child in children if _running(child)] == []
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{workers.url}/healthz", timeout=2)


def test_racing_servers_one_survives(tmp_path: Path) -> None:
    env = _home_with_secret(tmp_path)
    port = free_port()
    command = [KEYSTEWARD, "serve", "--workers", "2", "--port", str(port)]
    # Both pass the port check before either's workers listen.
    servers = [
        subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while all(s.poll() is None for s in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        exited = [s for s in servers if s.poll() is not None]
        assert len(exited) == 1
        _, errors = exited[0].communicate()
        assert exited[0].returncode == 3
        assert f"port {port}" in errors or f"127.0.0.1:{port}" in errors
        [survivor] = [s for s in servers if s.poll() is None]
        wait_healthy(f"http://127.0.0.1:{port}", survivor)
        while listening_sockets(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listening_sockets(port) == 2
    finally:
        for server in servers:
            server.terminate()
            server.communicate(timeout=30)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_rejects_taken_port(tmp_path: Path, workers: str) -> None:
    env = {
        **os.environ,
        "KEYSTEWARD_HOME": str(tmp_path / "home"),
        "KEYSTEWARD_KEY_PROVIDER": "env",
        "KEYSTEWARD_MASTER_KEY": random_master_key(),
    }
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        command = [KEYSTEWARD, "serve", "--workers", workers, "--port", str(port)]
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 3
    assert f"failed to listen on 127.0.0.1:{port}: Address already in use" in (
        result.stderr
    )
    assert "choose another --port" in result.stderr
