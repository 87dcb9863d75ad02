"""Run the audit: evaluate every active credential and record the findings.

A run loads the inventory in bulk, evaluates the rules in memory and
inserts its findings in bulk. It then closes the findings of earlier runs in
the same scope. A finding whose problem is found again is superseded by the
new one, and a finding whose problem is gone is resolved. A finding the user
accepted stays accepted in the new run.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.audit.config import AuditConfig, Thresholds
from keysteward.audit.context import AuditContext, CredentialView
from keysteward.audit.departures import load_departed_readers
from keysteward.audit.loader import Inventory, load_inventory
from keysteward.audit.persistence import store_findings
from keysteward.audit.ranking import credential_factors, rank_key
from keysteward.audit.results import AuditSummary, RankedFinding, count_by_severity
from keysteward.audit.rules import RULES, Hit, at_least
from keysteward.audit.rules._base import RuleCheck
from keysteward.clock import as_utc, utcnow
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.services import record_event
from keysteward.findings.models import AuditRun, FindingStatus

ProgressCallback = Callable[[int, int], None]
# Call the progress callback once per this many credentials.
PROGRESS_STEP = 1000


@dataclass
class AuditResult:
    summary: AuditSummary
    findings: list[RankedFinding]
    superseded: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)


def run_audit(
    store: Store,
    *,
    as_of: datetime,
    config: AuditConfig,
    system: str | None = None,
    actor: str = "cli",
    progress: ProgressCallback | None = None,
    keep: bool = True,
) -> AuditResult:
    """Evaluate the active credentials, store the run and return it ranked.

    Everything happens in one transaction, so a failed run leaves the
    findings of earlier runs as they were. With ``keep`` False the
    transaction is rolled back, so the store is left as it was. A stored run
    must not be judged earlier than the newest stored run, because it would
    resolve findings that are still open; raises InvalidInputError then.
    """
    session = store.session_factory()
    transaction = session.begin()
    try:
        if keep:
            _check_not_backdated(session, as_of)
        result = _evaluate_and_store(
            session, as_of, config, system, progress, actor if keep else None
        )
        if keep:
            transaction.commit()
        else:
            transaction.rollback()
    except BaseException:
        transaction.rollback()
        raise
    finally:
        session.close()
    return result


def _check_not_backdated(session: Session, as_of: datetime) -> None:
    newest = as_utc(session.scalar(select(func.max(AuditRun.as_of))))
    if newest is not None and as_of < newest:
        raise InvalidInputError(
            f"invalid --as-of {as_of.isoformat()}: the newest stored audit run is "
            f"as of {newest.isoformat()}, and an earlier run would resolve its "
            "open findings; pass a later date, or --no-store to report without "
            "storing"
        )


def _evaluate_and_store(
    session: Session,
    as_of: datetime,
    config: AuditConfig,
    system: str | None,
    progress: ProgressCallback | None,
    actor: str | None,
) -> AuditResult:
    """Run the audit in ``session``; record an event only when ``actor`` is set."""
    run = AuditRun(started_at=utcnow(), as_of=as_of)
    run.parameters = {"as_of": as_of.isoformat(), "system": system}
    session.add(run)
    session.flush()

    inventory = load_inventory(session, system)
    context = AuditContext(
        as_of=as_of,
        config=config,
        fingerprint_holders=inventory.fingerprint_holders,
        departed_readers=load_departed_readers(session, inventory.people, as_of),
    )
    findings = evaluate(inventory.credentials, context, progress)
    scope_id = inventory.scope_system.id if inventory.scope_system else None
    superseded, resolved = store_findings(session, run, scope_id, findings)

    summary = _summarize(run.id, inventory, context, findings, resolved, system)
    run.finished_at = utcnow()
    run.credentials_evaluated = len(inventory.credentials)
    run.findings_count = len(findings)
    if actor is not None:
        record_event(
            session,
            actor=actor,
            action="audit.run",
            target_type="audit_run",
            target_id=run.id,
            details={
                "as_of": as_of.isoformat(),
                "system": system,
                "credentials_evaluated": run.credentials_evaluated,
                "findings": summary.findings_by_severity,
                "resolved": resolved,
                "superseded": superseded,
            },
        )
    return AuditResult(summary, findings, superseded, dict(run.parameters))


def evaluate(
    credentials: list[CredentialView],
    context: AuditContext,
    progress: ProgressCallback | None = None,
) -> list[RankedFinding]:
    """Run every enabled rule on every credential; return the ranked findings."""
    findings: list[RankedFinding] = []
    checks_by_system: dict[str, list[tuple[str, RuleCheck]]] = {}
    total = len(credentials)
    for index, credential in enumerate(credentials, start=1):
        hits = evaluate_credential(credential, context, checks_by_system)
        if hits:
            findings.extend(_rank_hits(credential, context, hits))
        if progress is not None and (index % PROGRESS_STEP == 0 or index == total):
            progress(index, total)
    findings.sort(key=lambda f: rank_key(f.severity, f.score, f.credential_id, f.rule))
    for rank, finding in enumerate(findings, start=1):
        finding.rank = rank
    return findings


def evaluate_credential(
    credential: CredentialView,
    context: AuditContext,
    checks_by_system: dict[str, list[tuple[str, RuleCheck]]] | None = None,
) -> list[Hit]:
    """Return the hits of every rule enabled for the credential's system.

    ``checks_by_system`` caches the enabled rules per system across calls.
    """
    thresholds = context.thresholds(credential)
    cache = {} if checks_by_system is None else checks_by_system
    checks = cache.get(credential.system_name)
    if checks is None:
        checks = _enabled_checks(context.config, thresholds)
        cache[credential.system_name] = checks
    hits: list[Hit] = []
    for rule_id, check in checks:
        hit = check(credential, context, thresholds)
        if hit is None:
            continue
        hit.severity = at_least(hit.severity, context.config.min_severity(rule_id))
        hits.append(hit)
    return hits


def _enabled_checks(
    config: AuditConfig, thresholds: Thresholds
) -> list[tuple[str, RuleCheck]]:
    return [
        (rule_id, check)
        for rule_id, check in RULES.items()
        if config.rule_enabled(rule_id) and rule_id not in thresholds.disabled_rules
    ]


def _rank_hits(
    credential: CredentialView, context: AuditContext, hits: list[Hit]
) -> list[RankedFinding]:
    factors = credential_factors(credential, context, (hit.rule for hit in hits))
    owner = credential.accountable_person
    ranked = []
    for hit in hits:
        evidence = dict(hit.evidence)
        evidence["ranking"] = {
            "privilege": factors.privilege,
            "exposure": factors.exposure,
            "staleness": factors.staleness,
        }
        ranked.append(
            RankedFinding(
                rank=0,
                finding_id=None,
                severity=str(hit.severity),
                score=factors.score(hit.severity),
                rule=hit.rule,
                title=hit.title,
                recommendation=hit.recommendation,
                evidence=evidence,
                status=FindingStatus.OPEN,
                credential_id=credential.id,
                credential=credential.name,
                system=credential.system_name,
                owner=owner.email if owner else "",
                privilege=credential.privilege,
                source=credential.source,
                source_id=credential.source_id,
            )
        )
    return ranked


def _summarize(
    run_id: int,
    inventory: Inventory,
    context: AuditContext,
    findings: list[RankedFinding],
    resolved: int,
    system: str | None,
) -> AuditSummary:
    live_keys: Counter[str] = Counter()
    departed_credentials = {
        finding.credential_id
        for finding in findings
        if finding.rule == "owner_departed"
    }
    ages = []
    for credential in inventory.credentials:
        age = context.days_since(credential.rotation_reference)
        if age is not None:
            ages.append(max(age, 0))
        if credential.id not in departed_credentials:
            continue
        for person in (
            credential.accountable_person,
            credential.holder_person,
            credential.created_by,
        ):
            if person is not None and person.departed_by(context.as_of_date):
                live_keys[person.email] += 1
                break
    return AuditSummary(
        run_id=run_id,
        as_of=context.as_of,
        credentials_evaluated=len(inventory.credentials),
        credentials_with_findings=len({f.credential_id for f in findings}),
        findings_by_severity=count_by_severity(findings),
        departed_with_live_keys=dict(live_keys.most_common()),
        credential_ages_days=ages,
        resolved=resolved,
        system=system,
    )
