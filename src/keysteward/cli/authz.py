"""``keysteward policy``, ``keysteward check`` and ``keysteward access``."""

from pathlib import Path
from typing import Annotated, Any

import typer

from keysteward.cli._context import console, print_json, state_of
from keysteward.errors import InvalidInputError

policy_app = typer.Typer(
    help="Validate, plan, apply and export the access policy (roles as code).",
    no_args_is_help=True,
)
access_app = typer.Typer(
    help="Report who can access what, and recommend smaller roles.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PolicyFileArgument = Annotated[
    Path, typer.Argument(help="Policy YAML file.", show_default=False)
]


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
    app.add_typer(access_app, name="access")
    app.command("check")(check_command)


@policy_app.command("validate")
def validate_command(
    ctx: typer.Context, path: PolicyFileArgument, json_output: JsonOption = False
) -> None:
    """Check a policy file's schema, references and principals without changing it.

    Errors are listed as FILE:LINE: message; the exit code is 2 if any. A
    principal missing from the store exits with 4, as apply does.
    """
    from keysteward.authz.policy import load_policy_file
    from keysteward.authz.services import check_policy_principals

    loaded = load_policy_file(path)
    policy = loaded.policy
    with state_of(ctx).store.session() as session:
        check_policy_principals(session, policy)
    summary = {
        "file": str(path),
        "valid": True,
        "roles": len(policy.roles),
        "groups": len(policy.groups),
        "assignments": len(policy.assignments),
        "denies": len(policy.denies),
        "base": loaded.base,
    }
    if json_output:
        print_json(summary)
        return
    typer.echo(
        f"{path}: valid ({summary['roles']} roles, {summary['groups']} groups, "
        f"{summary['assignments']} assignments, {summary['denies']} deny rules)"
    )


@policy_app.command("plan")
def plan_command(
    ctx: typer.Context, path: PolicyFileArgument, json_output: JsonOption = False
) -> None:
    """Show what applying the file would change (+ add, - remove, ~ change).

    Exit code 0 when nothing would change, 1 when the plan has changes, so a CI
    job can spot drift between the repository and the store.
    """
    from keysteward.authz.policy import load_policy_file
    from keysteward.authz.services import check_policy_principals, plan_policy

    loaded = load_policy_file(path)
    with state_of(ctx).store.session() as session:
        check_policy_principals(session, loaded.policy)
        plan = plan_policy(session, loaded.policy)
    if json_output:
        data = plan.to_dict()
        data["base_matches_store"] = loaded.base == plan.store_digest
        print_json(data)
    else:
        typer.echo(plan.render())
        if not plan.is_empty and loaded.base not in (None, plan.store_digest):
            typer.echo(
                "warning: the store changed since this file's base; apply will "
                "reject it unless --force is given",
                err=True,
            )
    if not plan.is_empty:
        raise typer.Exit(1)


@policy_app.command("apply")
def apply_command(
    ctx: typer.Context,
    path: PolicyFileArgument,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Apply even if the store changed since the file's base."
        ),
    ] = False,
    update_base: Annotated[
        bool,
        typer.Option(
            help="After applying, write the store's new digest into the file's "
            "'base:' line, so the next edit applies cleanly."
        ),
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Make the store's policy equal the file, and record an event."""
    from keysteward.authz.policy import load_policy_file, write_base
    from keysteward.authz.services import apply_policy
    from keysteward.cli.vault import operator_actor

    loaded = load_policy_file(path)
    with state_of(ctx).store.session() as session:
        plan = apply_policy(
            session,
            loaded.policy,
            base=loaded.base,
            force=force,
            actor=operator_actor(),
        )
    if update_base and loaded.base != plan.file_digest:
        write_base(path, plan.file_digest)
    if json_output:
        print_json({**plan.to_dict(), "applied": not plan.is_empty})
        return
    typer.echo(plan.render())
    if not plan.is_empty:
        typer.echo(f"Applied. Store policy digest: {plan.file_digest}")


@policy_app.command("export")
def export_command(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Write the store's policy as YAML, with its digest as 'base:'."""
    from keysteward.authz.policy import dump_policy
    from keysteward.authz.services import load_store_policy, policy_digest

    with state_of(ctx).store.session() as session:
        policy = load_store_policy(session)
    text = dump_policy(policy, base=policy_digest(policy))
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}")


def _parse_context(pairs: list[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise InvalidInputError(
                f"invalid --context {pair!r}: expected NAME=VALUE, "
                "e.g. --context content_hash=sha256:ab12"
            )
        context[name] = value
    return context


def _require_known_principal(session: Any, kind: str, name: str) -> None:
    """Raise NotFoundError (exit 4) when the store has no such principal."""
    from sqlalchemy import select

    from keysteward.authz.models import Group
    from keysteward.errors import NotFoundError
    from keysteward.tokens.principals import find_principal

    if kind != "group":
        find_principal(session, f"{kind}:{name}")
    elif session.scalar(select(Group.id).where(Group.name == name)) is None:
        raise NotFoundError(f"group {name!r} not found; define it in the policy file")


def _require_known_action(session: Any, action: str) -> None:
    """Raise InvalidInputError when no grant, deny rule or built-in names ``action``."""
    from sqlalchemy import select

    from keysteward.authz.models import DenyRule, Permission
    from keysteward.authz.permissions import Action

    known = {str(member) for member in Action}
    known.update(session.scalars(select(Permission.action).distinct()))
    for rule in session.scalars(select(DenyRule.permission)):
        known.add(rule.rsplit(":", 1)[-1])
    if action not in known:
        raise InvalidInputError(
            f"unknown action {action!r}; use one of {', '.join(sorted(known))}"
        )


def check_command(
    ctx: typer.Context,
    principal: Annotated[
        str,
        typer.Argument(
            help="kind:name, e.g. service_account:svc-crm-sync or "
            "person:alice@example.com.",
            show_default=False,
        ),
    ],
    action: Annotated[
        str,
        typer.Argument(
            help="An action (read, write, delete, admin, ...) followed by RESOURCE, "
            "or a full system:resource:action permission.",
            show_default=False,
        ),
    ],
    resource: Annotated[
        str | None,
        typer.Argument(
            help="system:resource, e.g. hubspot:contacts.", show_default=False
        ),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option(help="Request attribute NAME=VALUE for conditional deny rules."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Decide whether PRINCIPAL may do ACTION on RESOURCE, and explain why.

    Exit code 0 when allowed, 1 when denied, 2 when the input or action is
    invalid, 4 when the principal is not in the store.
    """
    from keysteward.authz.engine import build_index
    from keysteward.authz.permissions import parse_principal, parse_request

    permission = action if resource is None else f"{resource}:{action}"
    kind, name = parse_principal(principal)
    request = parse_request(permission)
    store = state_of(ctx).store
    with store.session() as session:
        _require_known_principal(session, kind, name)
        _require_known_action(session, request.action)
    index = build_index(store)
    decision = index.check(principal, permission, context=_parse_context(context or []))
    if json_output:
        print_json(decision.to_dict())
    else:
        typer.echo(
            f"{decision.outcome.upper()}: {principal} {permission}\n{decision.reason}"
        )
    if not decision:
        raise typer.Exit(1)


@access_app.command("map")
def map_command(
    ctx: typer.Context,
    output_format: Annotated[
        str, typer.Option("--format", help="md (Markdown) or html.")
    ] = "md",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write to this file instead of stdout."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List every service account and person: roles, permissions per system,
    credentials held and when each was last used."""
    from keysteward.authz.access_map import (
        build_access_map,
        render_html,
        render_markdown,
    )

    if output_format not in ("md", "html"):
        raise InvalidInputError(f"invalid --format {output_format!r}: use md or html")
    with state_of(ctx).store.session() as session:
        access = build_access_map(session)
    if json_output:
        print_json(access.to_dict())
        return
    text = render_html(access) if output_format == "html" else render_markdown(access)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}")


@access_app.command("recommend")
def recommend_command(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, help="Look-back window in days.")] = 90,
    json_output: JsonOption = False,
) -> None:
    """Show grants not exercised in the last DAYS days, and a smaller role per
    principal that would have allowed every observed request."""
    from rich.table import Table

    from keysteward.authz.recommend import recommend

    with state_of(ctx).store.session() as session:
        result = recommend(session, days=days)
    if json_output:
        print_json(result.to_dict())
        return
    table = Table(
        "principal",
        "roles",
        "requests",
        "unused grants",
        "suggested permissions",
        title=f"Usage in the last {days} days",
    )
    for item in result.principals:
        table.add_row(
            item.principal,
            ", ".join(item.roles),
            str(item.observed_requests),
            "\n".join(item.unused) or "-",
            "\n".join(item.suggested_permissions) or "(none used)",
        )
    console.print(table)
    roles = Table("role", "holders", "permissions unused by every holder")
    for role in result.roles:
        roles.add_row(role.role, str(len(role.holders)), "\n".join(role.unused) or "-")
    console.print(roles)


@access_app.command("import-usage")
def import_usage_command(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV or JSON Lines with principal, permission, at, and optional "
            "count and decision (allow or deny).",
            show_default=False,
        ),
    ],
    json_output: JsonOption = False,
) -> None:
    """Add observed usage to the daily counts that recommendations read."""
    from keysteward.authz.usage import import_usage

    with state_of(ctx).store.session() as session:
        summary = import_usage(session, path)
    if json_output:
        print_json(summary)
        return
    typer.echo(
        f"Imported {summary['records']} records into {summary['rows']} daily rows."
    )
