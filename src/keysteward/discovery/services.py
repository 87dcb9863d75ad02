"""Recording a scan in the store: hits by fingerprint, and the inventory link.

A found secret whose fingerprint matches a Credential gets the place added
to ``attributes.discovered_in`` (the audit then raises found_outside_vault
with the credential's owner). An unknown one becomes a new Credential with
source "discovery" and no owner. Only fingerprints are written.
"""

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.credentials.models import Credential, CredentialKind, CredentialStatus
from keysteward.credentials.services import fingerprint_secret
from keysteward.discovery.engine import Finding
from keysteward.discovery.models import DiscoveryHit
from keysteward.discovery.sources import ScanStats
from keysteward.events.services import record_event
from keysteward.systems.models import System, SystemCategory

SOURCE = "discovery"
# NOTE: discovered_in keeps the first 100 places per credential; a secret
# pasted into more places than that is still counted in discovery_hits.
MAX_PLACES = 100


@dataclass
class LinkSummary:
    """Counts of the inventory changes made by recording one scan."""

    hits_recorded: int = 0
    credentials_linked: int = 0
    credentials_created: int = 0


def location_key(finding: Finding) -> str:
    """Return the SHA-256 that identifies a finding's place (not its secret)."""
    parts = [
        finding.path,
        str(finding.line),
        finding.pointer or "",
        finding.commit or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def place_of(finding: Finding) -> dict[str, Any]:
    """Return the ``discovered_in`` entry for a finding, without the secret."""
    place: dict[str, Any] = {"path": finding.path, "line": finding.line}
    if finding.pointer:
        place["pointer"] = finding.pointer
    if finding.commit:
        place["commit"] = finding.commit
    if finding.author:
        place["author"] = finding.author
    place["rule"] = finding.rule_id
    return place


# A path segment kept in an endpoint: a short lower-case word or version
# ("services", "webhooks", "v1"). Webhook URLs carry their secret in later
# segments, so every segment from the first other one on is masked.
_PLAIN_SEGMENT = re.compile(r"[a-z]{1,12}|v[0-9]{1,2}")


def _endpoint(secret: str) -> str | None:
    """Return scheme, host and the plain leading path of a URL secret.

    The query, the user info and every path segment from the first one that
    is not a plain word are dropped, because webhook URLs keep their token
    there.
    """
    if "://" not in secret:
        return None
    parts = urlsplit(secret)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments: list[str] = []
    masked = False
    for segment in parts.path.split("/")[1:]:
        masked = masked or not _PLAIN_SEGMENT.fullmatch(segment)
        segments.append("…" if masked and segment else segment)
    return f"{parts.scheme}://{host}/" + "/".join(segments)


def _system(session: Session, name: str | None, category: str) -> System | None:
    if not name:
        return None
    system = session.scalar(select(System).where(System.name == name))
    if system is None:
        known = {item.value for item in SystemCategory}
        system = System(
            name=name, category=category if category in known else SystemCategory.OTHER
        )
        session.add(system)
        session.flush()
    return system


def _add_places(credential: Credential, findings: list[Finding]) -> bool:
    """Append new places to ``credential``; return True when any was added."""
    attributes = dict(credential.attributes or {})
    places = list(attributes.get("discovered_in") or [])
    seen = {(p.get("path"), p.get("line"), p.get("commit")) for p in places}
    added = False
    for finding in findings:
        key = (finding.path, finding.line, finding.commit)
        if key in seen or len(places) >= MAX_PLACES:
            continue
        seen.add(key)
        places.append(place_of(finding))
        added = True
    if added:
        attributes["discovered_in"] = places
        # Assign a new dict so SQLAlchemy detects the change to the JSON column.
        credential.attributes = attributes
    return added


def _new_credential(
    session: Session, digest: str, findings: list[Finding]
) -> Credential:
    first = findings[0]
    rule = first.rule
    kinds = {item.value for item in CredentialKind}
    attributes: dict[str, Any] = {
        "discovered_in": [],
        "usage_known": False,
        "rule": rule.id,
    }
    endpoint = _endpoint(first.secret)
    if endpoint:
        attributes["endpoint"] = endpoint
        attributes["embedded_secret"] = True
    credential = Credential(
        name=f"{rule.description} found in {first.path}"[:300],
        kind=rule.kind if rule.kind in kinds else CredentialKind.OTHER,
        system=_system(session, rule.system, rule.category),
        status=CredentialStatus.ACTIVE,
        source=SOURCE,
        source_id=digest,
        fingerprint=digest,
        secret_hint=first.secret[-4:] if len(first.secret) >= 16 else None,
        attributes=attributes,
    )
    _add_places(credential, findings)
    session.add(credential)
    session.flush()
    return credential


def _matching_credentials(
    session: Session, digest: str, identifiers: set[str]
) -> list[Credential]:
    condition = Credential.fingerprint == digest
    if identifiers:
        condition = or_(condition, Credential.source_id.in_(sorted(identifiers)))
    return list(
        session.scalars(select(Credential).where(condition).order_by(Credential.id))
    )


def _record_hits(
    session: Session, digest: str, findings: list[Finding], credential_id: int | None
) -> int:
    now = utcnow()
    recorded = 0
    for finding in findings:
        key = location_key(finding)
        hit = session.scalar(
            select(DiscoveryHit).where(
                DiscoveryHit.fingerprint == digest, DiscoveryHit.location_key == key
            )
        )
        if hit is None:
            hit = DiscoveryHit(
                fingerprint=digest,
                location_key=key,
                rule=finding.rule_id,
                path=finding.path[:2000],
                line=finding.line,
                pointer=(finding.pointer or None) and finding.pointer[:500],
                commit=finding.commit,
                author=(finding.author or None) and finding.author[:500],
                first_seen_at=now,
            )
            session.add(hit)
            recorded += 1
        hit.last_seen_at = now
        hit.credential_id = credential_id
    return recorded


def record_scan(
    session: Session,
    findings: list[Finding],
    stats: ScanStats,
    *,
    actor: str,
    roots: list[str],
) -> LinkSummary:
    """Store the hits of a scan, link them to the inventory and log the scan."""
    summary = LinkSummary()
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[fingerprint_secret(session, finding.secret)].append(finding)
    for digest, group in groups.items():
        identifiers = {f.identifier for f in group if f.identifier}
        credentials = _matching_credentials(session, digest, identifiers)
        if credentials:
            for credential in credentials:
                if _add_places(credential, group):
                    summary.credentials_linked += 1
            credential_id = credentials[0].id
        else:
            credential_id = _new_credential(session, digest, group).id
            summary.credentials_created += 1
        summary.hits_recorded += _record_hits(session, digest, group, credential_id)
    record_event(
        session,
        actor=actor,
        action="discovery.scan",
        target_type="paths",
        target_id=", ".join(roots)[:200],
        details={
            "files": stats.files,
            "blobs": stats.blobs,
            "bytes": stats.bytes,
            "findings": len(findings),
            "new_findings": sum(1 for f in findings if not f.baselined),
            "hits_recorded": summary.hits_recorded,
            "credentials_linked": summary.credentials_linked,
            "credentials_created": summary.credentials_created,
        },
    )
    return summary
