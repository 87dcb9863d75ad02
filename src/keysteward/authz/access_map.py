"""The access map: who can do what, with which credentials, and when last used.

``build_access_map`` gathers every service account and person, the roles
they have (directly or through groups), the permissions those grant per
system, the credentials the inventory lists for them, and the latest use.
``render_markdown`` and ``render_html`` format it; the HTML page is
self-contained, with an SVG graph of principal -> role -> system drawn on
the server, so it opens offline and in mail archives.
"""

import html
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.authz.engine import grants_by_principal, role_closure
from keysteward.authz.models import PermissionUsage
from keysteward.authz.permissions import PrincipalKind, parse_pattern
from keysteward.authz.services import load_store_policy
from keysteward.clock import as_utc, utcnow
from keysteward.credentials.models import Credential
from keysteward.identities.models import Person, ServiceAccount


@dataclass
class RoleHolding:
    role: str
    via_group: str | None
    expires_at: datetime | None


@dataclass
class HeldCredential:
    name: str
    system: str | None
    kind: str
    status: str
    last_used_at: datetime | None


@dataclass
class PrincipalAccess:
    principal: str
    kind: str
    name: str
    display_name: str
    status: str
    roles: list[RoleHolding] = field(default_factory=list)
    permissions_by_system: dict[str, list[str]] = field(default_factory=dict)
    credentials: list[HeldCredential] = field(default_factory=list)
    last_used_at: datetime | None = None


@dataclass
class AccessMap:
    generated_at: datetime
    principals: list[PrincipalAccess]
    # Role name -> systems its permissions (and included roles') reach.
    role_systems: dict[str, list[str]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _last_usage(session: Session) -> dict[str, datetime]:
    query = select(
        PermissionUsage.principal, func.max(PermissionUsage.last_seen_at)
    ).group_by(PermissionUsage.principal)
    return {
        principal: as_utc(last) or utcnow()
        for principal, last in session.execute(query)
        if last is not None
    }


def _credentials(
    session: Session,
) -> tuple[dict[int, list[HeldCredential]], dict[int, list[HeldCredential]]]:
    by_person: dict[int, list[HeldCredential]] = defaultdict(list)
    by_account: dict[int, list[HeldCredential]] = defaultdict(list)
    query = select(Credential).where(
        (Credential.holder_person_id.is_not(None))
        | (Credential.holder_service_account_id.is_not(None))
    )
    for credential in session.scalars(query):
        held = HeldCredential(
            name=credential.name,
            system=credential.system.name if credential.system else None,
            kind=credential.kind,
            status=credential.status,
            last_used_at=as_utc(credential.last_used_at),
        )
        if credential.holder_person_id is not None:
            by_person[credential.holder_person_id].append(held)
        elif credential.holder_service_account_id is not None:
            by_account[credential.holder_service_account_id].append(held)
    return by_person, by_account


def build_access_map(session: Session, now: datetime | None = None) -> AccessMap:
    """Gather the access map from the store."""
    now = as_utc(now) or utcnow()
    policy = load_store_policy(session)
    grants = grants_by_principal(policy, now)
    last_usage = _last_usage(session)
    by_person, by_account = _credentials(session)

    entries: list[PrincipalAccess] = []
    for account in session.scalars(
        select(ServiceAccount).order_by(ServiceAccount.name)
    ):
        entries.append(
            PrincipalAccess(
                principal=f"{PrincipalKind.SERVICE_ACCOUNT}:{account.name}",
                kind=PrincipalKind.SERVICE_ACCOUNT,
                name=account.name,
                display_name=account.name,
                status=account.status,
                credentials=by_account.get(account.id, []),
            )
        )
    for person in session.scalars(select(Person).order_by(Person.email)):
        entries.append(
            PrincipalAccess(
                principal=f"{PrincipalKind.PERSON}:{person.email}",
                kind=PrincipalKind.PERSON,
                name=person.email,
                display_name=person.name,
                status=person.status,
                credentials=by_person.get(person.id, []),
            )
        )

    for entry in entries:
        held = grants.get(entry.principal, [])
        holdings = {(g.role, g.via_group, g.expires_at) for g in held}
        entry.roles = [
            RoleHolding(role, via_group, expires_at)
            for role, via_group, expires_at in sorted(
                holdings, key=lambda h: (h[0], h[1] or "")
            )
        ]
        per_system: dict[str, set[str]] = defaultdict(set)
        for grant in held:
            per_system[parse_pattern(grant.permission).system].add(grant.permission)
        entry.permissions_by_system = {
            system: sorted(texts) for system, texts in sorted(per_system.items())
        }
        times = [c.last_used_at for c in entry.credentials if c.last_used_at]
        if entry.principal in last_usage:
            times.append(last_usage[entry.principal])
        entry.last_used_at = max(times, default=None)

    role_systems = {}
    for name in sorted(policy.roles):
        systems = set()
        for role_name, _path in role_closure(policy, name):
            spec = policy.roles.get(role_name)
            for text in spec.permissions if spec else ():
                systems.add(parse_pattern(text).system)
        role_systems[name] = sorted(systems)
    return AccessMap(now, entries, role_systems)


def _when(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _text(text: str) -> str:
    """Escape a name from the store for Markdown, whose renderers pass raw HTML."""
    return html.escape(text, quote=False).replace("\n", " ")


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|")


def render_markdown(access: AccessMap) -> str:
    """Format the access map as Markdown, one section per principal."""
    lines = [
        "# Access map",
        "",
        f"Generated {_when(access.generated_at)}. {len(access.principals)} principals.",
        "",
        "| Principal | Status | Roles | Systems | Credentials | Last used |",
        "|---|---|---|---|---|---|",
    ]
    for entry in access.principals:
        roles = ", ".join(holding.role for holding in entry.roles) or "none"
        systems = ", ".join(entry.permissions_by_system) or "none"
        lines.append(
            f"| {_cell(entry.principal)} | {entry.status} | {_cell(roles)} | "
            f"{_cell(systems)} | {len(entry.credentials)} | "
            f"{_when(entry.last_used_at)} |"
        )
    for entry in access.principals:
        lines += ["", f"## {_text(entry.principal)}", ""]
        if entry.display_name != entry.name:
            lines += [f"Name: {_text(entry.display_name)}", ""]
        lines.append("Roles:")
        for holding in entry.roles:
            extra = f" through {_text(holding.via_group)}" if holding.via_group else ""
            if holding.expires_at:
                extra += f", expires {_when(holding.expires_at)}"
            lines.append(f"- {_text(holding.role)}{extra}")
        if not entry.roles:
            lines.append("- none")
        lines += ["", "Permissions by system:"]
        for system, permissions in entry.permissions_by_system.items():
            lines.append(f"- {system}: {', '.join(f'`{p}`' for p in permissions)}")
        if not entry.permissions_by_system:
            lines.append("- none")
        lines += ["", "Credentials held:"]
        for credential in entry.credentials:
            lines.append(
                f"- {_text(credential.name)} ({credential.kind}, "
                f"{credential.system or '?'}, "
                f"{credential.status}), last used {_when(credential.last_used_at)}"
            )
        if not entry.credentials:
            lines.append("- none")
        lines += ["", f"Last used: {_when(entry.last_used_at)}"]
    return "\n".join(lines) + "\n"


@dataclass
class _Node:
    key: str
    kind: str
    label: str
    x: int
    y: int


@dataclass
class _Graph:
    width: int
    height: int
    nodes: list[_Node]
    edges: list[tuple[_Node, _Node, bool]]


COLUMN_X = (20, 330, 640)
COLUMN_KINDS = ("principal", "role", "system")
NODE_WIDTH = 240
ROW_HEIGHT = 28


def _graph(access: AccessMap) -> _Graph:
    """Lay out principals, roles and systems in three columns."""
    principals = [entry for entry in access.principals if entry.roles]
    roles = sorted({h.role for entry in principals for h in entry.roles})
    systems = sorted({s for role in roles for s in access.role_systems.get(role, [])})
    columns: list[dict[str, _Node]] = [{}, {}, {}]
    for column, keys in enumerate(([e.principal for e in principals], roles, systems)):
        for row, key in enumerate(keys):
            columns[column][key] = _Node(
                key, COLUMN_KINDS[column], key, COLUMN_X[column], 40 + row * ROW_HEIGHT
            )
    edges = []
    for entry in principals:
        for holding in entry.roles:
            edges.append(
                (
                    columns[0][entry.principal],
                    columns[1][holding.role],
                    holding.via_group is not None,
                )
            )
    for role in roles:
        for system in access.role_systems.get(role, []):
            edges.append((columns[1][role], columns[2][system], False))
    rows = max((len(column) for column in columns), default=0)
    nodes = [node for column in columns for node in column.values()]
    return _Graph(COLUMN_X[2] + NODE_WIDTH + 20, 60 + rows * ROW_HEIGHT, nodes, edges)


def render_html(access: AccessMap) -> str:
    """Format the access map as one self-contained HTML page with an SVG graph."""
    environment = Environment(autoescape=select_autoescape(default=True))
    environment.filters["when"] = _when
    template_text = (
        resources.files("keysteward.authz") / "templates" / "access_map.html.j2"
    ).read_text(encoding="utf-8")
    template = environment.from_string(template_text)
    return template.render(
        access=access,
        graph=_graph(access),
        node_width=NODE_WIDTH,
        row_height=ROW_HEIGHT,
    )
