"""A credential's full story: its owner and holder, findings and events.

The API's credential detail and the dashboard's credential page both read
this, so they always show the same facts.
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from keysteward.authz.services import load_store_policy
from keysteward.credentials.models import Credential
from keysteward.discovery.models import DiscoveryHit
from keysteward.errors import NotFoundError
from keysteward.events.models import Event
from keysteward.findings.models import Finding
from keysteward.vault.models import Secret

MAX_STORY_EVENTS = 50


def credential_summary(credential: Credential) -> dict[str, Any]:
    """Return a credential's listing fields; never its fingerprint or value."""
    holder = None
    holder_status = None
    if credential.holder_service_account is not None:
        holder = f"service_account:{credential.holder_service_account.name}"
        holder_status = credential.holder_service_account.status
    elif credential.holder_person is not None:
        holder = f"person:{credential.holder_person.email}"
        holder_status = credential.holder_person.status
    return {
        "id": credential.id,
        "name": credential.name,
        "kind": credential.kind,
        "system": credential.system.name if credential.system else None,
        "privilege": credential.privilege,
        "scopes": list(credential.scopes or []),
        "status": credential.status,
        "owner": credential.owner.email if credential.owner else None,
        "holder": holder,
        "holder_status": holder_status,
        "secret_hint": credential.secret_hint,
        "source": credential.source,
        "created_at": credential.created_at,
        "last_rotated_at": credential.last_rotated_at,
        "last_used_at": credential.last_used_at,
        "expires_at": credential.expires_at,
    }


@dataclass
class CredentialStory:
    credential: dict[str, Any]
    findings: list[dict[str, Any]] = field(default_factory=list)
    discovery_hits: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    holder_roles: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def credential_story(session: Session, credential_id: int) -> CredentialStory:
    """Collect everything known about one credential; raise NotFoundError if absent."""
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise NotFoundError(
            f"credential {credential_id} not found; list credentials to find its id"
        )
    story = CredentialStory(credential_summary(credential))
    findings = session.scalars(
        select(Finding)
        .where(Finding.credential_id == credential_id)
        .order_by(Finding.created_at.desc(), Finding.id.desc())
        .limit(100)
    )
    story.findings = [
        {
            "id": finding.id,
            "rule": finding.rule,
            "severity": finding.severity,
            "title": finding.title,
            "status": finding.status,
            "recommendation": finding.recommendation,
            "created_at": finding.created_at,
        }
        for finding in findings
    ]
    hits = session.scalars(
        select(DiscoveryHit)
        .where(DiscoveryHit.credential_id == credential_id)
        .limit(100)
    )
    story.discovery_hits = [
        {"rule": hit.rule, "path": hit.path, "line": hit.line, "commit": hit.commit}
        for hit in hits
    ]
    secret_names = list(
        session.scalars(
            select(Secret.name).where(Secret.credential_id == credential_id)
        )
    )
    story.secrets = secret_names
    holder = story.credential["holder"]
    if holder is not None:
        story.holder_roles = sorted(
            assignment.role
            for assignment in load_store_policy(session).assignments
            if assignment.principal == holder
        )

    targets = [("credential", str(credential_id))]
    targets += [("secret", name) for name in secret_names]
    conditions = [
        (Event.target_type == kind) & (Event.target_id == target)
        for kind, target in targets
    ]
    events = session.scalars(
        select(Event)
        .where(or_(*conditions))
        .order_by(Event.sequence.desc())
        .limit(MAX_STORY_EVENTS)
    )
    story.events = [
        {
            "sequence": event.sequence,
            "occurred_at": event.occurred_at,
            "actor": event.actor,
            "action": event.action,
            "outcome": event.outcome,
        }
        for event in events
    ]
    return story
