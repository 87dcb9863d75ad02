"""``keysteward gateway``: run the credential-injecting proxy and check its config."""

from pathlib import Path
from typing import Annotated, Any

import typer

from keysteward.cli._context import console, print_json, state_of

gateway_app = typer.Typer(
    help="Proxy requests to downstream APIs with vault credentials, after an "
    "authorization check.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Gateway YAML file [default: HOME/gateway.yaml; env: "
        "KEYSTEWARD_GATEWAY_CONFIG].",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")


def _config_path(ctx: typer.Context, config: Path | None) -> Path:
    from keysteward.gateway.config import gateway_config_path

    return config or gateway_config_path(state_of(ctx).settings.home)


@gateway_app.command("serve")
def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8601,
) -> None:
    """Serve the gateway on its own port until interrupted."""
    import uvicorn

    from keysteward.gateway.config import load_gateway_config
    from keysteward.gateway.proxy import GatewayApp
    from keysteward.vault.keys import keyring_for_home

    state = state_of(ctx)
    state.background_checkpoints = True
    gateway_config = load_gateway_config(_config_path(ctx, config), required=True)
    keyring = keyring_for_home(state.settings.home)
    # Read the master key now, so a missing key fails before the server starts.
    keyring.master_key()
    app = GatewayApp(state.store, keyring, gateway_config)
    # NOTE: TLS is left to a reverse proxy in front; bind to 127.0.0.1 unless
    # one is there, because tokens cross this connection.
    # uvicorn's own access log would print each raw URL, query string and
    # any token in it included; the app logs each request by route instead.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=state.settings.log_level.lower(),
        access_log=False,
    )


@gateway_app.command("rules")
def rules(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the gateway config and list each system's upstream and rules."""
    from rich.table import Table

    from keysteward.gateway.config import load_gateway_config

    gateway_config = load_gateway_config(_config_path(ctx, config), required=True)
    rows: list[dict[str, Any]] = []
    for system in gateway_config.systems.values():
        for rule in system.rules:
            rows.append(
                {
                    "system": system.name,
                    "upstream": system.upstream,
                    "methods": sorted(rule.methods) if rule.methods else ["*"],
                    "path": rule.pattern,
                    "permission": f"{system.name}:{rule.resource}:"
                    f"{rule.action or '(by method)'}",
                    "credential": f"{system.credential.secret} "
                    f"({system.credential.inject})",
                }
            )
    if as_json:
        print_json({"source": gateway_config.source, "rules": rows})
        return
    table = Table("System", "Upstream", "Methods", "Path", "Permission", "Credential")
    for row in rows:
        table.add_row(
            row["system"],
            row["upstream"],
            ",".join(row["methods"]),
            row["path"],
            row["permission"],
            row["credential"],
        )
    console.print(table)
    console.print(
        f"{len(gateway_config.systems)} system(s), {len(rows)} rule(s) in "
        f"{gateway_config.source}"
    )
