"""Access review commands: ``review start``, ``items``, ``decide``, ``export`` ..."""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keysteward.cli._context import console, print_json, state_of
from keysteward.cli.offboarding import parse_day
from keysteward.cli.vault import operator_actor
from keysteward.errors import InvalidInputError, KeystewardError

if TYPE_CHECKING:
    from keysteward.reviews.models import ReviewItem

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON instead of a table.")
]
CampaignOption = Annotated[
    int | None,
    typer.Option("--campaign", help="Campaign id [default: the newest open one]."),
]

review_app = typer.Typer(
    help="Run access reviews: snapshot, decide, apply and export evidence.",
    no_args_is_help=True,
)

# Keys of ``review walk``; Enter accepts the recommendation.
WALK_KEYS = {"k": "keep", "r": "revoke", "d": "reduce", "o": "rotate"}
ENTER_KEYS = ("\r", "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")


@review_app.command("start")
def start(
    ctx: typer.Context,
    quarterly: Annotated[
        bool,
        typer.Option("--quarterly", help="Name the campaign after the quarter."),
    ] = False,
    name: Annotated[str | None, typer.Option(help="Campaign name.")] = None,
    due: Annotated[
        str | None, typer.Option(help="Due date as YYYY-MM-DD [default: in 14 days].")
    ] = None,
    fallback_reviewer: Annotated[
        str | None,
        typer.Option(
            help="Email of the reviewer for items whose owner left or is the reviewee."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Snapshot the scope into a new campaign and assign reviewers."""
    from keysteward.reviews.services import start_campaign

    if quarterly and name is not None:
        raise InvalidInputError("--quarterly and --name were both given; choose one")
    due_on = parse_day(due, "--due") if due is not None else None
    with state_of(ctx).store.session() as session:
        campaign = start_campaign(
            session,
            actor=operator_actor(),
            name=name,
            due_on=due_on,
            fallback_reviewer=fallback_reviewer,
        )
        summary: dict[str, Any] = {
            "id": campaign.id,
            "name": campaign.name,
            "started_at": campaign.started_at,
            "due_on": campaign.due_on,
            "items": len(campaign.items),
        }
    if json_output:
        print_json(summary)
        return
    typer.echo(
        f"started campaign {summary['id']} ({summary['name']}): {summary['items']} "
        f"items, due {summary['due_on'].isoformat()}"
    )


@review_app.command("list")
def list_command(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List campaigns with their open and decided item counts."""
    from rich.table import Table

    from keysteward.reviews.services import list_campaigns

    with state_of(ctx).store.session() as session:
        rows = list_campaigns(session)
    if json_output:
        print_json(rows)
        return
    table = Table("id", "name", "status", "started", "due", "items", "open")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["status"],
            row["started_at"].isoformat(timespec="minutes"),
            row["due_on"].isoformat(),
            str(row["items"]),
            str(row["open"]),
        )
    console.print(table)


def item_row(item: "ReviewItem") -> dict[str, Any]:
    """Return the compact listing form of an item."""
    facts = item.facts or {}
    findings = facts.get("open_findings") or []
    return {
        "id": item.id,
        "type": item.subject_type,
        "subject": item.subject_label,
        "reviewee": item.reviewee,
        "reviewer": item.reviewer,
        "last_used_at": facts.get("last_used_at"),
        "last_rotated_at": facts.get("last_rotated_at"),
        "privilege": facts.get("privilege"),
        "granted": len(facts.get("granted") or []),
        "used": len(facts.get("used") or []),
        "findings": [f"{f['rule']}:{f['severity']}" for f in findings],
        "recommendation": item.recommendation,
        "reason": item.recommendation_reason,
        "recommended_permissions": item.recommended_permissions,
        "decision": item.decision,
        "proof_event_id": (item.proof or {}).get("event_id"),
    }


def _usage_cell(row: dict[str, Any]) -> str:
    if row["type"] == "role_assignment":
        return f"{row['used']}/{row['granted']} used"
    return row["privilege"] or ""


@review_app.command("items")
def items_command(
    ctx: typer.Context,
    reviewer: Annotated[
        str | None, typer.Option(help="Only items for this reviewer's email.")
    ] = None,
    campaign: CampaignOption = None,
    include_decided: Annotated[
        bool, typer.Option("--all", help="Include items already decided.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Show items in one compact table with the recommendation filled in."""
    from rich.table import Table

    from keysteward.reviews.services import list_items

    with state_of(ctx).store.session() as session:
        rows = [
            item_row(item)
            for item in list_items(
                session,
                campaign_id=campaign,
                reviewer=reviewer,
                undecided_only=not include_decided,
            )
        ]
    if json_output:
        print_json(rows)
        return
    table = Table(
        "id",
        "type",
        "subject",
        "last used",
        "privilege/use",
        "findings",
        "recommended",
        "why",
        "decision",
    )
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["type"].replace("_", " "),
            row["subject"],
            (row["last_used_at"] or "never")[:10],
            _usage_cell(row),
            ", ".join(row["findings"]),
            row["recommendation"],
            row["reason"],
            row["decision"] or "",
        )
    console.print(table)
    typer.echo(
        f"{len(rows)} items; `keysteward review accept-recommended` applies the "
        "recommendations"
    )


@review_app.command("decide")
def decide(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(metavar="ITEM", help="Item id.")],
    decision: Annotated[str, typer.Argument(help="keep, revoke, reduce or rotate.")],
    comment: Annotated[
        str | None, typer.Option(help="Why, for the evidence export.")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            help="Email of the deciding reviewer [default: the assigned one]."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Decide one item; the decision is applied at once."""
    from keysteward.reviews.services import decide_item, find_item, parse_decision

    chosen = parse_decision(decision)
    with state_of(ctx).store.session() as session:
        item = decide_item(
            session,
            find_item(session, item_id),
            chosen,
            actor=operator_actor(),
            comment=comment,
            decided_by=by,
        )
        row = item_row(item)
        proof = dict(item.proof)
    if json_output:
        print_json({**row, "proof": proof})
        return
    typer.echo(
        f"item {item_id}: {chosen.value} applied; proof event "
        f"{proof.get('event_id')}, state {proof.get('state_after')}"
    )


@review_app.command("accept-recommended")
def accept(
    ctx: typer.Context,
    reviewer: Annotated[
        str | None, typer.Option(help="Only this reviewer's items.")
    ] = None,
    all_reviewers: Annotated[
        bool,
        typer.Option(
            "--all", help="Apply every reviewer's items; needed without --reviewer."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List what would be applied; change nothing."),
    ] = False,
    campaign: CampaignOption = None,
    json_output: JsonOption = False,
) -> None:
    """Decide every open item as recommended and apply it, in one transaction."""
    from keysteward.reviews.services import accept_recommended, list_items

    if reviewer is None and not all_reviewers:
        raise InvalidInputError(
            "accept-recommended needs --reviewer EMAIL, or --all to apply every "
            "reviewer's items; add --dry-run to see them first"
        )
    if reviewer is not None and all_reviewers:
        raise InvalidInputError("--reviewer and --all were both given; choose one")
    with state_of(ctx).store.session() as session:
        if dry_run:
            pending = [
                {
                    "item": item.id,
                    "subject": item.subject_label,
                    "reviewer": item.reviewer,
                    "recommendation": item.recommendation,
                    "reason": item.recommendation_reason,
                }
                for item in list_items(
                    session,
                    campaign_id=campaign,
                    reviewer=reviewer,
                    undecided_only=True,
                )
            ]
        else:
            applied = accept_recommended(
                session, actor=operator_actor(), campaign_id=campaign, reviewer=reviewer
            )
    if dry_run:
        _print_pending(pending, json_output)
        return
    if json_output:
        print_json(dict(applied))
        return
    total = sum(applied.values())
    parts = ", ".join(f"{count} {name}" for name, count in sorted(applied.items()))
    typer.echo(f"applied {total} recommendation(s){': ' + parts if parts else ''}")


def _print_pending(pending: list[dict[str, Any]], json_output: bool) -> None:
    if json_output:
        print_json({"dry_run": True, "items": pending})
        return
    from rich.table import Table

    table = Table("item", "subject", "reviewer", "would apply", "reason")
    for row in pending:
        table.add_row(
            str(row["item"]),
            row["subject"],
            row["reviewer"] or "",
            row["recommendation"],
            row["reason"],
        )
    console.print(table)
    typer.echo(f"dry run: {len(pending)} recommendation(s) would be applied")


@review_app.command("reassign")
def reassign(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(metavar="ITEM", help="Item id.")],
    email: Annotated[str, typer.Argument(help="Email of the new reviewer.")],
) -> None:
    """Give an open item to another reviewer."""
    from keysteward.reviews.services import find_item, reassign_item

    with state_of(ctx).store.session() as session:
        item = reassign_item(
            session, find_item(session, item_id), email, actor=operator_actor()
        )
        reviewer = item.reviewer
    typer.echo(f"item {item_id} now goes to {reviewer}")


@review_app.command("remind")
def remind(
    ctx: typer.Context,
    within: Annotated[
        int, typer.Option(help="Remind about campaigns due within this many days.")
    ] = 7,
    json_output: JsonOption = False,
) -> None:
    """Record a reminder event for each reviewer with open items due soon."""
    from dataclasses import asdict

    from keysteward.reviews.services import send_reminders

    with state_of(ctx).store.session() as session:
        reminders = send_reminders(session, within_days=within, actor=operator_actor())
    if json_output:
        print_json([asdict(reminder) for reminder in reminders])
        return
    for reminder in reminders:
        typer.echo(
            f"{reminder.reviewer}: {reminder.open_items} open item(s) in "
            f"{reminder.campaign}, due {reminder.due_on.isoformat()}"
        )
    typer.echo(f"{len(reminders)} reminder(s) recorded")


@review_app.command("close")
def close(
    ctx: typer.Context,
    campaign: CampaignOption = None,
    default: Annotated[
        str,
        typer.Option(help="Decision for items still open: keep (flagged) or revoke."),
    ] = "keep",
    json_output: JsonOption = False,
) -> None:
    """Close a campaign; open items get the default decision and a flag."""
    from keysteward.reviews.services import (
        close_campaign,
        find_campaign,
        parse_decision,
    )

    decision = parse_decision(default)
    with state_of(ctx).store.session() as session:
        found = find_campaign(session, campaign)
        closed = close_campaign(
            session, found, actor=operator_actor(), default=decision
        )
        name = found.name
    if json_output:
        print_json({"campaign": name, "closed": dict(closed)})
        return
    typer.echo(
        f"closed {name}; {sum(closed.values())} open item(s) decided as "
        f"{decision.value} and flagged"
    )


@review_app.command("export")
def export(
    ctx: typer.Context,
    campaign: Annotated[int, typer.Argument(metavar="CAMPAIGN", help="Campaign id.")],
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Write the evidence as CSV here.")
    ] = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write printable HTML here.")
    ] = None,
) -> None:
    """Export the evidence: snapshot, reviewer, decision, time and proof per item."""
    from keysteward.reviews.export import render_csv, render_html, write_text
    from keysteward.reviews.services import find_campaign

    if csv_path is None and html_path is None:
        raise InvalidInputError("give --csv FILE, --html FILE or both")
    with state_of(ctx).store.session() as session:
        found = find_campaign(session, campaign)
        outputs = []
        if csv_path is not None:
            outputs.append((csv_path, render_csv(found)))
        if html_path is not None:
            outputs.append((html_path, render_html(found)))
    for path, text in outputs:
        write_text(path, text)
        typer.echo(f"wrote {path}")


def _show_item(row: dict[str, Any], position: int, total: int) -> None:
    from rich.panel import Panel

    lines = [
        f"[bold]{row['subject']}[/bold] ({row['type'].replace('_', ' ')})",
        f"reviewee: {row['reviewee'] or '-'}    last used: "
        f"{row['last_used_at'] or 'never'}    last rotated: "
        f"{row['last_rotated_at'] or '-'}",
        f"privilege/use: {_usage_cell(row)}    findings: "
        f"{', '.join(row['findings']) or 'none'}",
        f"recommended: [bold]{row['recommendation']}[/bold] ({row['reason']})",
    ]
    if row["recommended_permissions"]:
        lines.append("reduce to: " + ", ".join(row["recommended_permissions"]))
    console.print(
        Panel("\n".join(lines), title=f"item {row['id']} ({position}/{total})")
    )
    console.print(
        "Enter accept · k keep · r revoke · d reduce · o rotate · s skip · q quit"
    )


def _read_choice(row: dict[str, Any], getchar: Callable[[], str]) -> str | None:
    """Return the chosen decision, "skip", or None to quit."""
    while True:
        key = getchar()
        if key in ENTER_KEYS:
            return str(row["recommendation"])
        if key.lower() in WALK_KEYS:
            return WALK_KEYS[key.lower()]
        if key.lower() == "s":
            return "skip"
        if key.lower() in ("q", "\x03", "\x04"):
            return None


@review_app.command("walk")
def walk(
    ctx: typer.Context,
    reviewer: Annotated[
        str | None, typer.Option(help="Walk this reviewer's items [default: all].")
    ] = None,
    campaign: CampaignOption = None,
) -> None:
    """Go through open items one key press at a time; each decision commits."""
    from keysteward.reviews.services import (
        decide_item,
        find_item,
        list_items,
        parse_decision,
    )

    store = state_of(ctx).store
    with store.session() as session:
        rows = [
            item_row(item)
            for item in list_items(
                session, campaign_id=campaign, reviewer=reviewer, undecided_only=True
            )
        ]
    decided = 0
    for position, row in enumerate(rows, start=1):
        _show_item(row, position, len(rows))
        while True:
            try:
                choice = _read_choice(row, typer.getchar)
            except OSError:
                raise InvalidInputError(
                    "review walk needs a terminal to read keys from; use "
                    "`keysteward review items` and `review decide` instead"
                ) from None
            if choice is None:
                typer.echo(f"stopped; {decided} decided, the rest stay open")
                return
            if choice == "skip":
                break
            try:
                with store.session() as session:
                    decide_item(
                        session,
                        find_item(session, row["id"]),
                        parse_decision(choice),
                        actor=operator_actor(),
                        comment="decided in review walk",
                        decided_by=reviewer,
                    )
            except KeystewardError as exc:
                typer.echo(f"error: {exc}")
                continue
            decided += 1
            typer.echo(f"item {row['id']}: {choice} applied")
            break
    typer.echo(f"done; {decided} of {len(rows)} item(s) decided")
