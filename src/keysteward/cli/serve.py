"""``keysteward serve``: run the HTTP API with uvicorn."""

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from keysteward.cli._context import state_of
from keysteward.errors import ConfigError


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8600,
    with_scheduler: Annotated[
        bool,
        typer.Option(
            envvar="KEYSTEWARD_WITH_SCHEDULER",
            help="Also run the rotation, review-reminder and audit jobs, each "
            "once per interval across every process that sets this.",
        ),
    ] = False,
    job_intervals: Annotated[
        str,
        typer.Option(
            envvar="KEYSTEWARD_JOB_INTERVALS",
            help="Job intervals in seconds as NAME=SECONDS,... (jobs: rotation, "
            "default 3600; review-reminders and audit, default 86400).",
        ),
    ] = "",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the port. Each one opens its own "
            "store connections and serves requests on its own CPU core.",
        ),
    ] = 1,
) -> None:
    """Serve the API (token exchange, secret reads) until interrupted."""
    import uvicorn

    from keysteward.app import create_app
    from keysteward.vault.keys import check_master_key, keyring_for_home

    state = state_of(ctx)
    state.background_checkpoints = True
    keyring = keyring_for_home(state.settings.home)
    if workers > 1:
        _check_worker_key_provider()
    # Read the master key now, so a missing key, a passphrase prompt or a
    # wrong key is reported before the server starts, not on its first request.
    keyring.master_key()
    with state.store.read_snapshot() as session:
        check_master_key(session, keyring)
    if workers > 1:
        if with_scheduler:
            from keysteward.cluster.jobs import parse_intervals

            parse_intervals(job_intervals)
        # Migrates the store once, before the workers open it.
        state.store.engine.dispose()
        _export_settings(
            state.overrides, state.settings.home, with_scheduler, job_intervals
        )
        from keysteward.metrics_directory import shared_metrics_directory
        from keysteward.worker_sockets import run_workers

        config = uvicorn.Config(
            "keysteward.workers:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=state.settings.log_level.lower(),
            access_log=False,
            server_header=False,
        )
        with shared_metrics_directory(state.settings.home):
            run_workers(config)
        return
    from keysteward.metrics_directory import check_named_directory
    from keysteward.worker_sockets import check_port_free

    check_named_directory()
    # The same checks and messages as with --workers, before uvicorn binds.
    check_port_free(host, port)
    app = create_app(state.settings, store=state.store, keyring=keyring)
    if with_scheduler:
        from keysteward.cluster.jobs import parse_intervals, scheduled_jobs

        app.state.scheduled_jobs = scheduled_jobs(parse_intervals(job_intervals))
    # NOTE: TLS is left to a reverse proxy; bind to 127.0.0.1 unless one is
    # in front, because tokens and secrets cross this connection.
    # uvicorn's own access log would print each raw URL, query string and
    # any token in it included; the app logs each request by route instead.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=state.settings.log_level.lower(),
        access_log=False,
        # No "server: uvicorn" header, which names the server software to callers.
        server_header=False,
    )


def _check_worker_key_provider() -> None:
    """Raise ConfigError when worker processes could not unlock the master key."""
    from keysteward.crypto.keyring import PASSPHRASE_SETTING, provider_name

    if provider_name() == "passphrase" and not os.environ.get(PASSPHRASE_SETTING):
        raise ConfigError(
            "--workers needs the master key in every worker process, and a "
            "passphrase prompt reaches only the first one; set "
            f"{PASSPHRASE_SETTING} for the server, or serve with --workers 1"
        )


def _export_settings(
    overrides: dict[str, Any], home: Path, with_scheduler: bool, job_intervals: str
) -> None:
    """Put the settings given as flags into the environment the workers inherit."""
    from keysteward.workers import JOB_INTERVALS_SETTING, SCHEDULER_SETTING

    for name, value in overrides.items():
        if value is not None:
            os.environ[f"KEYSTEWARD_{name.upper()}"] = str(value)
    os.environ["KEYSTEWARD_HOME"] = str(home)
    os.environ[SCHEDULER_SETTING] = "1" if with_scheduler else "0"
    os.environ[JOB_INTERVALS_SETTING] = job_intervals
