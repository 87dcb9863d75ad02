"""``keysteward serve``: run the HTTP API with uvicorn."""

from typing import Annotated

import typer

from keysteward.cli._context import state_of


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
) -> None:
    """Serve the API (token exchange, secret reads) until interrupted."""
    import uvicorn

    from keysteward.app import create_app
    from keysteward.vault.keys import keyring_for_home

    state = state_of(ctx)
    keyring = keyring_for_home(state.settings.home)
    # Read the master key now, so a missing key or a passphrase prompt
    # happens before the server starts, not on its first request.
    keyring.master_key()
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
