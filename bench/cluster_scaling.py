"""Measure requests per second with one, two and three server processes.

Starts ``keysteward serve`` N times (N = 1, 2, 3) on free ports of 127.0.0.1
against one fresh PostgreSQL database, and drives each process with its own
``wrk`` (install it with ``apt-get install -y wrk``). The total connections
stay the same for every N, split evenly over the processes. Two request
kinds are measured: ``POST /api/v1/checks`` (an authorization check, which
also appends an event) and ``GET /api/v1/secrets/NAME`` (a secret read).

``--write-docs`` replaces the "## Scale-out" section of docs/benchmarks.md.
The database is dropped afterwards.

NOTE: wrk, PostgreSQL and the servers share the machine, so on a machine with
few cores the load generator takes CPU from the servers it measures.
"""

import argparse
import base64
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.authz.services import mark_policy_changed
from keysteward.config import Settings
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import open_store
from keysteward.identities.models import Person, ServiceAccount
from keysteward.operators.services import set_role
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import put_secret

ROOT = Path(__file__).resolve().parents[1]
DOCS_PATH = ROOT / "docs" / "benchmarks.md"
KEYSTEWARD = str(Path(sys.executable).with_name("keysteward"))
SECTION_TITLE = "## Scale-out"
SECRET_NAME = "bench-secret"  # noqa: S105 (a secret name, not a value)
CHECK_BODY = {
    "principal": "service_account:bench-bot",
    "permission": "crm:contacts:read",
}


@dataclass
class Seeded:
    env: dict[str, str]
    admin_token: str
    bot_token: str


@dataclass
class Point:
    kind: str
    processes: int
    requests_per_second: float
    errors: int


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"keysteward_bench_{os.getpid()}_{secrets.token_hex(3)}"
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


def seed(database_url: str, home: Path) -> Seeded:
    """Create an operator, a service account allowed both requests, and a secret."""
    master_key = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: master_key}))
    store = open_store(Settings(home=home, database_url=database_url))
    with store.session() as session:
        admin = Person(name="Bench Admin", email="bench-admin@example.com")
        bot = ServiceAccount(name="bench-bot", owner=admin, purpose="benchmark")
        role = Role(name="bench-role")
        role.permissions.append(
            Permission(system="crm", resource="contacts", action="read")
        )
        role.permissions.append(
            Permission(
                system="keysteward", resource=f"secrets/{SECRET_NAME}", action="read"
            )
        )
        session.add_all([admin, bot, role])
        session.flush()
        session.add(
            RoleGrant(
                role_id=role.id, principal_type="service_account", principal_id=bot.id
            )
        )
        mark_policy_changed(session)
        set_role(session, admin.email, "admin", actor="bench")
        put_secret(session, keyring, SECRET_NAME, b"v" * 40, actor="bench")
        admin_principal = Principal(PrincipalType.PERSON, admin.id, admin.email)
        bot_principal = Principal(PrincipalType.SERVICE_ACCOUNT, bot.id, bot.name)
        admin_token = issue_api_token(session, admin_principal, actor="bench").token
        bot_token = issue_api_token(session, bot_principal, actor="bench").token
    store.engine.dispose()
    env = {
        **os.environ,
        "KEYSTEWARD_HOME": str(home),
        "KEYSTEWARD_DATABASE_URL": database_url,
        "KEYSTEWARD_KEY_PROVIDER": "env",
        "KEYSTEWARD_MASTER_KEY": master_key,
        "KEYSTEWARD_LOG_LEVEL": "WARNING",
    }
    return Seeded(env, admin_token, bot_token)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def servers(count: int, env: dict[str, str]) -> Iterator[list[str]]:
    """Start ``count`` server processes and yield their base URLs."""
    urls = []
    processes = []
    for _ in range(count):
        port = free_port()
        command = [KEYSTEWARD, "serve", "--port", str(port)]
        processes.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_healthy(url)
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"keysteward serve at {url} did not start within 60 s")


def wrk_script(folder: Path, kind: str, seeded: Seeded) -> Path:
    """Write the wrk Lua script that sends one kind of request."""
    if kind == "check":
        lines = [
            'wrk.method = "POST"',
            f"wrk.body = {json.dumps(json.dumps(CHECK_BODY))}",
            'wrk.headers["Content-Type"] = "application/json"',
            f'wrk.headers["Authorization"] = "Bearer {seeded.admin_token}"',
        ]
    else:
        lines = [f'wrk.headers["Authorization"] = "Bearer {seeded.bot_token}"']
    path = folder / f"{kind}.lua"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def request_path(kind: str) -> str:
    if kind == "check":
        return "/api/v1/checks"
    return f"/api/v1/secrets/{SECRET_NAME}"


def run_wrk(
    urls: list[str], kind: str, script: Path, connections: int, seconds: int
) -> tuple[float, int]:
    """Drive every URL at once with its own wrk. Return total requests/s and errors."""
    share = max(connections // len(urls), 1)
    runs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{share}", f"-d{seconds}s", "--timeout", "10s"]
            + ["-s", str(script)]
            + [url + request_path(kind)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    total = 0.0
    errors = 0
    for run in runs:
        output, _ = run.communicate(timeout=seconds + 60)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if rate is None:
            raise SystemExit(f"wrk printed no Requests/sec line:\n{output}")
        total += float(rate.group(1))
        failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
        socket_errors = re.search(r"Socket errors:.*?timeout (\d+)", output)
        errors += int(failed.group(1)) if failed else 0
        errors += int(socket_errors.group(1)) if socket_errors else 0
    return total, errors


def measure(args: argparse.Namespace) -> list[Point]:
    points = []
    with (
        fresh_database(args.postgres_url) as database_url,
        tempfile.TemporaryDirectory() as folder,
    ):
        home = Path(folder)
        seeded = seed(database_url, home / "home")
        scripts = {kind: wrk_script(home, kind, seeded) for kind in args.kinds}
        for count in (1, 2, 3):
            with servers(count, seeded.env) as urls:
                for kind in args.kinds:
                    # A short warm-up fills connection pools and caches.
                    run_wrk(urls, kind, scripts[kind], args.connections, 2)
                    rate, errors = run_wrk(
                        urls, kind, scripts[kind], args.connections, args.seconds
                    )
                    points.append(Point(kind, count, rate, errors))
                    print(f"{kind} x{count}: {rate:.0f} req/s, {errors} errors")
    return points


KIND_LABELS = {"check": "authorization check", "read": "secret read"}


def chart(points: list[Point], kind: str) -> list[str]:
    """Draw one ASCII bar per process count, scaled to the largest rate."""
    rows = [point for point in points if point.kind == kind]
    peak = max(point.requests_per_second for point in rows) or 1.0
    lines = [f"{KIND_LABELS[kind]} (requests/s)"]
    for point in rows:
        bar = "#" * round(40 * point.requests_per_second / peak)
        lines.append(
            f"  {point.processes} process{'es' if point.processes > 1 else '  '} "
            f"| {bar} {point.requests_per_second:.0f}"
        )
    return lines


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, "
        f"{wrk_version[0] if wrk_version else 'wrk'}; PostgreSQL on 127.0.0.1. "
        f"Load average (1 min) at the end of the run: {load:.2f}."
    )


def render(points: list[Point], args: argparse.Namespace) -> str:
    command = (
        f"`.venv/bin/python bench/cluster_scaling.py --seconds {args.seconds} "
        f"--connections {args.connections} --write-docs`"
    )
    lines = [
        SECTION_TITLE,
        "",
        f"Command: {command}",
        "",
        f"Machine: {machine()}",
        "",
        f"Each figure is the sum over N `keysteward serve` processes, each driven "
        f"by its own `wrk -t1` for {args.seconds} s after a 2 s warm-up, with "
        f"{args.connections} connections in total split evenly. wrk and "
        "PostgreSQL run on the same machine as the servers. An authorization "
        "check (`POST /api/v1/checks`) also appends an event to the log, so it "
        "is a write. A secret read (`GET /api/v1/secrets/NAME`) decrypts one "
        "secret.",
        "",
        "| Request | 1 process | 2 processes | 3 processes | 3 vs 1 | Errors |",
        "|---|---|---|---|---|---|",
    ]
    for kind in args.kinds:
        rows = {point.processes: point for point in points if point.kind == kind}
        rates = [rows[count].requests_per_second for count in (1, 2, 3)]
        errors = sum(point.errors for point in rows.values())
        ratio = rates[2] / rates[0] if rates[0] else 0.0
        lines.append(
            f"| {KIND_LABELS[kind]} | {rates[0]:.0f} | {rates[1]:.0f} | "
            f"{rates[2]:.0f} | {ratio:.2f}x | {errors} |"
        )
    lines += ["", "```"]
    for kind in args.kinds:
        lines += chart(points, kind)
    lines += ["```", ""]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS_PATH.read_text() if DOCS_PATH.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Scale-out\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _match: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS_PATH.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds per figure")
    parser.add_argument(
        "--connections", type=int, default=12, help="connections in total"
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["check", "read"],
        choices=["check", "read"],
        help="request kinds to measure",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="administrative URL; a fresh database is created on that server",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="update docs/benchmarks.md"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found; install it with: apt-get install -y wrk")
    points = measure(args)
    section = render(points, args)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
