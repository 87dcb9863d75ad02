"""Picking the secrets that are due for rotation, and running them.

A secret is due when its current value is older than its maximum age,
resolved in this order: the secret's own ``rotation_days``, then the audit
settings (``[audit.systems.<name>]``, ``System.rotation_max_age_days``,
``[audit]``), then 90 days. Only secrets whose credential names a rotator
are picked, and never credentials held by a person: those rotate on events,
such as offboarding, through ``queue_rotation``.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.audit.config import AuditConfig, load_audit_config
from keysteward.clock import as_utc, utcnow
from keysteward.credentials.models import Credential
from keysteward.db import Store
from keysteward.errors import KeystewardError
from keysteward.rotation.locks import (
    SCHEDULER_LEASE,
    acquire_lease,
    new_owner_id,
    release_lease,
)
from keysteward.rotation.models import ACTIVE_STATES, Rotation
from keysteward.rotation.services import (
    RotationResult,
    resume_rotations,
    rotate_secret,
)
from keysteward.systems.models import System
from keysteward.vault.keys import KeyRing, keyring_for_home
from keysteward.vault.models import Secret, SecretVersion, VersionStatus

log = logging.getLogger(__name__)

SCHEDULER_ACTOR = "system:rotation-scheduler"


@dataclass(frozen=True)
class DueSecret:
    """A secret whose current value is older than its maximum age."""

    name: str
    rotator: str
    age_days: int
    max_age_days: int

    def as_dict(self) -> dict[str, object]:
        return {
            "secret": self.name,
            "rotator": self.rotator,
            "age_days": self.age_days,
            "max_age_days": self.max_age_days,
        }


def due_secrets(
    session: Session, audit_config: AuditConfig, now: datetime
) -> list[DueSecret]:
    """Return the secrets due for rotation at ``now``, oldest first.

    The age counts from when the current version was stored in the vault.
    Secrets with an unfinished rotation are left out; resuming covers them.
    """
    busy = set(
        session.scalars(
            select(Rotation.secret_id).where(
                Rotation.state.in_([str(state) for state in ACTIVE_STATES])
            )
        )
    )
    query = (
        select(Secret, SecretVersion.created_at, Credential, System)
        .join(SecretVersion, SecretVersion.secret_id == Secret.id)
        .join(Credential, Credential.id == Secret.credential_id)
        .outerjoin(System, System.id == Credential.system_id)
        .where(SecretVersion.status == VersionStatus.CURRENT)
        .where(Credential.holder_person_id.is_(None))
        .order_by(SecretVersion.created_at, Secret.name)
    )
    due = []
    for secret, stored_at, credential, system in session.execute(query):
        rotator = (credential.attributes or {}).get("rotator")
        if secret.id in busy or not isinstance(rotator, str) or not rotator:
            continue
        max_age = _max_age_days(secret, system, audit_config)
        age = now - (as_utc(stored_at) or now)
        if age >= timedelta(days=max_age):
            due.append(DueSecret(secret.name, rotator, age.days, max_age))
    return due


def _max_age_days(
    secret: Secret, system: System | None, audit_config: AuditConfig
) -> int:
    if secret.rotation_days is not None:
        return secret.rotation_days
    thresholds = audit_config.thresholds_for(
        system.name if system else None,
        system.rotation_max_age_days if system else None,
    )
    return thresholds.rotation_max_age_days


@dataclass(frozen=True)
class SchedulerRun:
    """The outcome of one scheduler pass, ``skipped`` when another process ran it."""

    results: list[RotationResult]
    skipped: bool


def run_due_rotations(
    store: Store,
    now: datetime | None = None,
    *,
    keyring: KeyRing | None = None,
    audit_config: AuditConfig | None = None,
    actor: str = SCHEDULER_ACTOR,
) -> SchedulerRun:
    """Resume unfinished rotations, then rotate every due secret.

    Runs once across processes: a second caller while a pass is running gets
    ``skipped=True``. A secret that fails is reported in its result and the
    pass goes on with the next one.
    """
    moment = now or utcnow()
    keyring = keyring or keyring_for_home(store.settings.home)
    audit_config = audit_config or load_audit_config(store.settings)
    owner = new_owner_id()
    if not acquire_lease(store, SCHEDULER_LEASE, owner):
        log.info("rotation scheduler pass skipped: another process runs one")
        return SchedulerRun([], skipped=True)
    try:
        results = resume_rotations(store, keyring, actor=actor, now=moment)
        with store.session() as session:
            due = due_secrets(session, audit_config, moment)
        for item in due:
            try:
                result = rotate_secret(
                    store, keyring, item.name, actor=actor, reason="due", now=moment
                )
            except KeystewardError as exc:
                log.warning("rotation of secret %s not started: %s", item.name, exc)
                continue
            results.append(result)
        return SchedulerRun(results, skipped=False)
    finally:
        release_lease(store, SCHEDULER_LEASE, owner)


def run_scheduler_loop(
    store: Store, interval: timedelta, *, max_passes: int | None = None
) -> None:
    """Call ``run_due_rotations`` every ``interval`` until interrupted.

    A pass that raises is logged and the loop goes on; ``max_passes`` stops
    it after that many passes (for tests and one-shot runs).
    """
    passes = 0
    while max_passes is None or passes < max_passes:
        started = time.monotonic()
        try:
            run = run_due_rotations(store)
            log.info(
                "rotation scheduler pass finished: %d rotations, skipped=%s",
                len(run.results),
                run.skipped,
            )
        except Exception:
            log.exception("rotation scheduler pass failed; retrying next interval")
        passes += 1
        if max_passes is not None and passes >= max_passes:
            return
        elapsed = time.monotonic() - started
        time.sleep(max(interval.total_seconds() - elapsed, 0))
