"""Measure token verification and secret reads, in process and over the API.

For each backend (SQLite, and PostgreSQL in a scratch database) this times:

- the raw cost floors: one AES-256-GCM decrypt of a 40-byte value and one
  SHA-256 of an API token, with no store involved;
- in process: ``authenticate_api_token`` (checksum, SHA-256, one indexed
  lookup, last-used update, commit), ``verify_access_token`` (JWT HS256,
  no store) and ``read_secret`` (role check, two unwraps, decrypt, read
  event, commit);
- over HTTP: ``keysteward serve`` in a subprocess on 127.0.0.1, loaded from
  this process with httpx: token exchanges, and secret reads with an access
  token, by one client and by several client threads.

``--write-docs`` replaces the "## Vault and tokens" section of
docs/benchmarks.md with the figures.
"""

import argparse
import base64
import hashlib
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.config import Settings
from keysteward.crypto import aead
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store, open_store
from keysteward.identities.models import Person, ServiceAccount
from keysteward.socket_table import listening_sockets
from keysteward.tokens.access import issue_access_token, verify_access_token
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import authenticate_api_token, issue_api_token
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import put_secret, read_secret

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION_TITLE = "## Vault and tokens"
SECRET_VALUE = ("pat-na1-" + "0a1b2c3d" * 4).encode()


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Run ``operation`` repeatedly for about ``seconds``; return calls per second."""
    operation()  # warm caches and connections before timing
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - start)


def prepare_store(store: Store, keyring: KeyRing) -> tuple[Principal, str]:
    """Add a service account allowed to read "hubspot", the secret and a token."""
    with store.session() as session:
        owner = Person(name="Bench Owner", email="bench@example.com")
        account = ServiceAccount(name="bench", owner=owner, purpose="benchmark")
        role = Role(name="bench-reader")
        role.permissions.append(
            Permission(system="keysteward", resource="secrets/hubspot", action="read")
        )
        session.add_all([owner, account, role])
        session.flush()
        session.add(
            RoleGrant(
                role_id=role.id,
                principal_type="service_account",
                principal_id=account.id,
            )
        )
        put_secret(session, keyring, "hubspot", SECRET_VALUE, actor="bench")
        principal = Principal(PrincipalType.SERVICE_ACCOUNT, account.id, "bench")
        token = issue_api_token(session, principal, actor="bench").token
    return principal, token


def measure_in_process(
    store: Store, keyring: KeyRing, principal: Principal, token: str, seconds: float
) -> dict[str, float]:
    def verify_api_token() -> None:
        with store.session() as session:
            authenticate_api_token(session, token)

    access = issue_access_token(keyring, principal, {"bench-reader"}, api_token_id=1)

    def read() -> None:
        with store.session() as session:
            result = read_secret(session, keyring, principal, "hubspot", via="bench")
            assert result.secret is not None

    return {
        "api_token_verify": rate(verify_api_token, seconds),
        "access_token_verify": rate(
            lambda: verify_access_token(keyring, access.token), seconds
        ),
        "secret_read": rate(read, seconds),
    }


def measure_floors(seconds: float) -> dict[str, float]:
    key = aead.generate_key()
    sealed = aead.encrypt(key, SECRET_VALUE, b"ad")
    token = "ks_api_" + secrets.token_urlsafe(36)
    return {
        "aes_gcm_decrypt": rate(lambda: aead.decrypt(key, sealed, b"ad"), seconds),
        "sha256": rate(lambda: hashlib.sha256(token.encode()).digest(), seconds),
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    home: Path,
    database_url: str,
    master_key: str,
    settings: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Iterator[str]:
    """Start ``keysteward serve`` in a subprocess; yield its base URL.

    ``settings`` adds environment variables, such as other KEYSTEWARD_ settings,
    and ``workers`` is the server's ``--workers``.
    """
    port = _free_port()
    environment = {
        **os.environ,
        "KEYSTEWARD_HOME": str(home),
        "KEYSTEWARD_DATABASE_URL": database_url,
        "KEYSTEWARD_KEY_PROVIDER": "env",
        MASTER_KEY_SETTING: master_key,
        **(settings or {}),
    }
    command = [str(Path(sys.executable).parent / "keysteward"), "serve"]
    command += ["--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # Each worker listens on a socket of its own, and /healthz
                # returns 200 as soon as the first one serves.
                if (
                    listening_sockets(port) >= workers
                    and httpx.get(f"{url}/healthz").status_code == 200
                ):
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(
                    f"keysteward serve exited with code {process.returncode} "
                    "before it answered; see its output above"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("keysteward serve did not start within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _load(url: str, token: str, seconds: float, threads: int) -> float:
    """Read the secret from ``threads`` clients for ``seconds``; return reads/s."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def client_loop(index: int) -> None:
        with httpx.Client(base_url=url) as client:
            exchanged = client.post(
                "/api/v1/token",
                data={"grant_type": "client_credentials", "client_secret": token},
            )
            bearer = {"Authorization": f"Bearer {exchanged.json()['access_token']}"}
            while time.perf_counter() < stop:
                response = client.get("/api/v1/secrets/hubspot", headers=bearer)
                response.raise_for_status()
                counts[index] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=client_loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def measure_api(url: str, token: str, seconds: float, threads: int) -> dict[str, float]:
    with httpx.Client(base_url=url) as client:

        def exchange() -> None:
            response = client.post(
                "/api/v1/token",
                data={"grant_type": "client_credentials", "client_secret": token},
            )
            response.raise_for_status()

        exchanges = rate(exchange, seconds)
    return {
        "api_exchange": exchanges,
        "api_read_1": _load(url, token, seconds, 1),
        f"api_read_{threads}": _load(url, token, seconds, threads),
    }


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    name = f"keysteward_bench_{secrets.token_hex(4)}"
    admin_dsn = make_url(admin_url).set(drivername="postgresql")
    dsn = admin_dsn.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_backend(
    label: str, database_url: str | None, seconds: float, threads: int
) -> dict[str, float]:
    master_key = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: master_key}))
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        store = open_store(Settings(home=home, database_url=database_url))
        try:
            principal, token = prepare_store(store, keyring)
            results = measure_in_process(store, keyring, principal, token, seconds)
            url_for_server = store.settings.resolved_database_url
        finally:
            store.engine.dispose()
        with running_server(home, url_for_server, master_key) as url:
            results.update(measure_api(url, token, seconds, threads))
    print(label, {name: round(value) for name, value in results.items()})
    return results


def machine_line() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory_kib = int(line.split()[1])
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in (
            "cryptography",
            "PyJWT",
            "fastapi",
            "uvicorn",
            "httpx",
            "SQLAlchemy",
        )
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {versions}"
    )


def render_section(
    command: str,
    floors: dict[str, float],
    backends: dict[str, dict[str, float]],
    threads: int,
) -> str:
    lines = [
        SECTION_TITLE,
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine_line()}. The server is one uvicorn worker started by "
        "`keysteward serve` in a subprocess; the load comes from httpx clients in "
        "the benchmark process on the same machine, so both share the 2 cores.",
        "",
        "Operations per second, one run each. Floors without the store: "
        f"AES-256-GCM decrypt of a 40-byte value {floors['aes_gcm_decrypt']:,.0f}/s, "
        f"SHA-256 of an API token {floors['sha256']:,.0f}/s.",
        "",
        "- *API token verify*: `authenticate_api_token` in its own transaction "
        "(checksum, SHA-256, indexed lookup, commit; last-used time rewritten at "
        "most once a minute).",
        "- *access token verify*: `verify_access_token`, HS256 JWT, no store.",
        "- *secret read*: `read_secret` in its own transaction (role check, KEK and "
        "data key unwrap, decrypt, read event, commit).",
        "- *exchange over API*: `POST /api/v1/token`, one client.",
        f"- *read over API*: `GET /api/v1/secrets/hubspot` with an access token, "
        f"one client, then {threads} client threads.",
        "",
        "| Backend | API token verify | access token verify | secret read | "
        f"exchange over API | read over API (1) | read over API ({threads}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, results in backends.items():
        lines.append(
            f"| {label} | {results['api_token_verify']:,.0f} | "
            f"{results['access_token_verify']:,.0f} | {results['secret_read']:,.0f} | "
            f"{results['api_exchange']:,.0f} | {results['api_read_1']:,.0f} | "
            f"{results[f'api_read_{threads}']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    text = DOCS_PATH.read_text() if DOCS_PATH.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION_TITLE)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _match: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS_PATH.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per figure")
    parser.add_argument("--threads", type=int, default=4, help="API client threads")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin URL of the PostgreSQL server for the scratch database",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--write-docs", action="store_true", help="update docs/benchmarks.md"
    )
    args = parser.parse_args()

    floors = measure_floors(args.seconds)
    print("floors", {name: round(value) for name, value in floors.items()})
    backends = {"SQLite (WAL)": run_backend("sqlite", None, args.seconds, args.threads)}
    if not args.no_postgres:
        with scratch_postgres(args.postgres_url) as url:
            backends["PostgreSQL"] = run_backend(
                "postgresql", url, args.seconds, args.threads
            )
    command = ".venv/bin/python bench/vault_tokens.py " + " ".join(sys.argv[1:])
    section = render_section(command.strip(), floors, backends, args.threads)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
