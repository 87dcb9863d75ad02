"""The steps of the rotation state machine, one function per state.

Each step function gets a StepContext inside the step's transaction and
returns the next state, or None when the rotation must wait (a grace period
not yet over, a manual task not yet done). See ``services`` for the order.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.clock import as_utc
from keysteward.credentials.models import Credential
from keysteward.events.services import record_event
from keysteward.identities.models import Person
from keysteward.rotation.errors import RotatorError
from keysteward.rotation.models import END_STATES, Rotation, RotationState
from keysteward.rotation.rotators.base import RotationTarget, Rotator, load_rotator
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import Secret, SecretVersion, VersionStatus
from keysteward.vault.services import (
    decrypt_version,
    promote_version,
    put_secret,
    retire_version,
)

# How often the owner of an open manual rotation task is reminded.
REMINDER_INTERVAL = timedelta(days=1)
DEFAULT_TASK_PERIOD = timedelta(days=7)


def set_state(
    session: Session,
    rotation: Rotation,
    secret_name: str,
    next_state: RotationState,
    actor: str,
) -> None:
    previous = rotation.state
    rotation.state = next_state
    record_event(
        session,
        actor=actor,
        action=f"rotation.{next_state}",
        target_type="secret",
        target_id=secret_name,
        details={
            "rotation": rotation.id,
            "rotator": rotation.rotator,
            "from": previous,
            "old_version": rotation.old_version,
            "new_version": rotation.new_version,
        },
    )


class StepContext:
    """One step's view of a rotation: its row, secret, rotator and values."""

    def __init__(
        self,
        session: Session,
        keyring: KeyRing,
        rotation: Rotation,
        actor: str,
        now: datetime,
    ) -> None:
        self.session = session
        self.keyring = keyring
        self.rotation = rotation
        self.actor = actor
        self.now = now
        self.secret = session.get_one(Secret, rotation.secret_id)
        self.credential = (
            session.get(Credential, rotation.credential_id)
            if rotation.credential_id
            else None
        )
        self.rotator: Rotator = load_rotator(rotation.rotator)
        self.target = RotationTarget(
            session=session,
            keyring=keyring,
            secret_name=self.secret.name,
            config=dict(self.credential.attributes or {}) if self.credential else {},
            credential=self.credential,
            actor=actor,
        )

    def value(self, version: int | None) -> bytes:
        """Decrypt ``version`` of this rotation's secret."""
        row = self.session.scalar(
            select(SecretVersion).where(
                SecretVersion.secret_id == self.secret.id,
                SecretVersion.version == version,
            )
        )
        if row is None or row.status == VersionStatus.RETIRED:
            raise RotatorError(
                f"version {version} of secret {self.secret.name!r} is missing or "
                "retired; the rotation cannot continue"
            )
        return decrypt_version(self.session, self.keyring, row)

    def transition(self, next_state: RotationState) -> None:
        self.rotation.attempts = 0
        set_state(self.session, self.rotation, self.secret.name, next_state, self.actor)
        if next_state in END_STATES:
            self.rotation.finished_at = self.now
        self.session.flush()


def _step_requested(step: StepContext) -> RotationState:
    rotation = step.rotation
    if step.rotator.manual:
        task_period = getattr(step.rotator, "task_period", None)
        period = task_period(step.target) if task_period else DEFAULT_TASK_PERIOD
        rotation.due_at = step.now + period
        _remind_owner(step)
        return RotationState.AWAITING_VALUE
    _remember_credential(step)
    value = step.rotator.generate(step.target)
    row = put_secret(
        step.session,
        step.keyring,
        step.secret.name,
        value,
        actor=step.actor,
        pending=True,
    )
    rotation.new_version = row.version
    return RotationState.PENDING_CREATED


def _remember_credential(step: StepContext) -> None:
    # Storing the pending value stamps the credential; keep what to restore
    # on rollback. A fingerprint is a salted hash, not secret material.
    credential = step.credential
    if credential is None:
        return
    last = as_utc(credential.last_rotated_at)
    step.rotation.details = {
        **step.rotation.details,
        "credential_fingerprint": credential.fingerprint,
        "credential_last_rotated_at": last.isoformat() if last else None,
    }


def _step_pending_created(step: StepContext) -> RotationState:
    new = step.value(step.rotation.new_version)
    old = step.value(step.rotation.old_version)
    step.rotator.apply(step.target, new, old)
    return RotationState.APPLIED


def _step_applied(step: StepContext) -> RotationState:
    new = step.value(step.rotation.new_version)
    if not step.rotator.verify(step.target, new):
        raise RotatorError(
            f"the new value of secret {step.secret.name!r} does not authenticate "
            "on the target; rolling back"
        )
    return RotationState.VERIFIED


def _step_verified(step: StepContext) -> RotationState:
    version = step.rotation.new_version
    assert version is not None
    promote_version(step.session, step.secret.name, version, actor=step.actor)
    return RotationState.PROMOTED


def _step_promoted(step: StepContext) -> RotationState:
    step.rotation.grace_until = step.now + step.rotator.grace_period(step.target)
    return RotationState.GRACE


def _step_grace(step: StepContext) -> RotationState | None:
    grace_until = as_utc(step.rotation.grace_until)
    if grace_until is not None and step.now < grace_until:
        return None
    if step.rotation.old_version is not None:
        step.rotator.revoke(step.target, step.value(step.rotation.old_version))
    return RotationState.OLD_REVOKED


def _step_old_revoked(step: StepContext) -> RotationState:
    old = step.rotation.old_version
    if old is not None and _version_status(step, old) != VersionStatus.RETIRED:
        retire_version(step.session, step.secret.name, old, actor=step.actor)
    return RotationState.DONE


def _step_awaiting_value(step: StepContext) -> RotationState | None:
    newest = _newest_version_after(step, step.rotation.old_version)
    if newest is None:
        last = as_utc(step.rotation.reminded_at)
        if last is None or step.now - last >= REMINDER_INTERVAL:
            _remind_owner(step)
        return None
    if newest.status == VersionStatus.PENDING:
        promote_version(
            step.session, step.secret.name, newest.version, actor=step.actor
        )
    step.rotation.new_version = newest.version
    return RotationState.PROMOTED


def _step_rolling_back(step: StepContext) -> RotationState:
    rotation = step.rotation
    new_version = rotation.new_version
    if new_version is not None and _version_status(step, new_version) not in (
        None,
        VersionStatus.RETIRED,
    ):
        old = step.value(rotation.old_version)
        new = step.value(new_version)
        step.rotator.apply(step.target, old, new)
        if not step.rotator.verify(step.target, old):
            # NOTE: an old value that no longer works (an expired token, a
            # password changed by hand) keeps the rotation here, with the
            # pending value kept in the vault, until an operator steps in.
            raise RotatorError(
                f"the old value of secret {step.secret.name!r} does not "
                "authenticate after rollback; the new value stays pending in the "
                "vault"
            )
        step.rotator.revoke(step.target, new)
        retire_version(step.session, step.secret.name, new_version, actor=step.actor)
    _restore_credential(step)
    return RotationState.ROLLED_BACK


def _restore_credential(step: StepContext) -> None:
    details = step.rotation.details
    if step.credential is None or "credential_fingerprint" not in details:
        return
    step.credential.fingerprint = details["credential_fingerprint"]
    last = details.get("credential_last_rotated_at")
    step.credential.last_rotated_at = datetime.fromisoformat(last) if last else None


def _version_status(step: StepContext, version: int) -> str | None:
    return step.session.scalar(
        select(SecretVersion.status).where(
            SecretVersion.secret_id == step.secret.id,
            SecretVersion.version == version,
        )
    )


def _newest_version_after(
    step: StepContext, version: int | None
) -> SecretVersion | None:
    newest = step.session.scalar(
        select(func.max(SecretVersion.version)).where(
            SecretVersion.secret_id == step.secret.id,
            SecretVersion.version > (version or 0),
            SecretVersion.status.in_(
                [str(VersionStatus.CURRENT), str(VersionStatus.PENDING)]
            ),
        )
    )
    if newest is None:
        return None
    return step.session.scalar(
        select(SecretVersion).where(
            SecretVersion.secret_id == step.secret.id,
            SecretVersion.version == newest,
        )
    )


def _remind_owner(step: StepContext) -> None:
    owner = _owner_email(step)
    due = as_utc(step.rotation.due_at)
    step.rotation.reminded_at = step.now
    record_event(
        step.session,
        actor=step.actor,
        action="rotation.reminder",
        target_type="secret",
        target_id=step.secret.name,
        details={
            "rotation": step.rotation.id,
            "owner": owner,
            "due_at": due.isoformat() if due else None,
            "overdue": bool(due and step.now > due),
        },
    )


def _owner_email(step: StepContext) -> str | None:
    owner_id = step.secret.owner_id or (
        step.credential.owner_id if step.credential else None
    )
    if owner_id is None:
        return None
    person = step.session.get(Person, owner_id)
    return person.email if person else None


STEPS: dict[RotationState, Callable[[StepContext], RotationState | None]] = {
    RotationState.REQUESTED: _step_requested,
    RotationState.AWAITING_VALUE: _step_awaiting_value,
    RotationState.PENDING_CREATED: _step_pending_created,
    RotationState.APPLIED: _step_applied,
    RotationState.VERIFIED: _step_verified,
    RotationState.PROMOTED: _step_promoted,
    RotationState.GRACE: _step_grace,
    RotationState.OLD_REVOKED: _step_old_revoked,
    RotationState.ROLLING_BACK: _step_rolling_back,
}
