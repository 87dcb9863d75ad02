"""The rotation state machine.

Each step runs in its own transaction and commits its new state before the
next step begins::

    requested -> pending_created -> applied -> verified -> promoted -> grace
              -> old_revoked -> done
    requested -> awaiting_value -> promoted -> ...        (manual rotators)
    pending_created | applied | verified -> rolling_back -> rolled_back
    requested -> failed                                   (nothing changed)

A step that is killed after it changed the target but before its commit
runs again on resume, which is why rotator methods must be idempotent. The
value that works on the target is always in the vault: the old one stays
current until the new one has been verified, and a rollback retires the
pending value only after the old one authenticates again.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.credentials.models import Credential, CredentialKind
from keysteward.db import Store
from keysteward.errors import KeystewardError
from keysteward.events.services import record_event
from keysteward.logging import redact
from keysteward.rotation.errors import (
    RotationNotFoundError,
    RotationRejectedError,
    RotatorError,
)
from keysteward.rotation.locks import (
    acquire_lease,
    new_owner_id,
    release_lease,
    secret_lease_name,
)
from keysteward.rotation.models import (
    ACTIVE_STATES,
    END_STATES,
    MAX_REASON_CHARS,
    Rotation,
    RotationState,
)
from keysteward.rotation.rotators.base import load_rotator
from keysteward.rotation.steps import STEPS, StepContext, set_state
from keysteward.vault.errors import SecretNotFoundError
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import Secret, SecretVersion, VersionStatus
from keysteward.vault.services import get_secret

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000
# Failed steps before promotion roll the rotation back; these states keep
# retrying instead, because the new value is already current.
ROLLBACK_STATES = (
    RotationState.PENDING_CREATED,
    RotationState.APPLIED,
    RotationState.VERIFIED,
)

# How long a rotation waits for another process to release the secret.
DEFAULT_LOCK_WAIT = timedelta(seconds=30)
LOCK_POLL_SECONDS = 0.2

Checkpoint = Callable[[str], None]


@dataclass(frozen=True)
class RotationResult:
    """The state of one rotation at the end of a run."""

    rotation_id: int
    secret: str
    rotator: str
    state: str
    last_error: str | None
    # False when another process had the lease, so this run left the rotation alone.
    driven: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "rotation_id": self.rotation_id,
            "secret": self.secret,
            "rotator": self.rotator,
            "state": self.state,
            "last_error": self.last_error,
            "driven": self.driven,
        }


# Requesting ------------------------------------------------------------------


def resolve_secret(session: Session, name_or_id: str) -> Secret:
    """Return the secret named ``name_or_id``, or the one linked to that credential id.

    Raises SecretNotFoundError naming the value when neither exists.
    """
    secret = session.scalar(select(Secret).where(Secret.name == name_or_id))
    if secret is not None:
        return secret
    if name_or_id.isdigit():
        return _secret_of_credential(session, int(name_or_id))
    raise SecretNotFoundError(
        f"no secret named {name_or_id!r}; give a secret name from "
        "`keysteward secret list` or a credential id"
    )


def _secret_of_credential(session: Session, credential_id: int) -> Secret:
    secret = session.scalar(
        select(Secret)
        .where(Secret.credential_id == credential_id)
        .order_by(Secret.id)
        .limit(1)
    )
    if secret is None:
        raise SecretNotFoundError(
            f"credential {credential_id} has no secret in the vault; store it with "
            f"`keysteward secret put NAME --credential-id {credential_id}`"
        )
    return secret


def reject_person_password(credential: Credential | None) -> None:
    """Raise RotationRejectedError for a password that a person holds."""
    if credential is None:
        return
    if credential.kind == CredentialKind.PASSWORD and credential.holder_person_id:
        raise RotationRejectedError(
            f"credential {credential.id} ({credential.name!r}) is a person's "
            "password; keysteward never rotates people's passwords. Ask the "
            "person to change it, or reset it in the identity provider"
        )


def rotator_name_for(secret: Secret, credential: Credential | None) -> str:
    """Return the rotator configured for ``secret``, or raise RotationRejectedError."""
    name = (credential.attributes or {}).get("rotator") if credential else None
    if not isinstance(name, str) or not name:
        where = f"credential {credential.id}" if credential else "a linked credential"
        raise RotationRejectedError(
            f'secret {secret.name!r} has no rotator; set "rotator" (api_token, '
            f"postgres, redis or manual) in the attributes of {where}"
        )
    return name


def active_rotation(session: Session, secret_id: int) -> Rotation | None:
    return session.scalar(
        select(Rotation).where(
            Rotation.secret_id == secret_id,
            Rotation.state.in_([str(state) for state in ACTIVE_STATES]),
        )
    )


def queue_rotation(
    session: Session,
    *,
    credential_id: int | None = None,
    secret_name: str | None = None,
    reason: str,
    actor: str,
) -> Rotation:
    """Request a rotation of one secret in the caller's transaction.

    Name the secret by ``secret_name`` or by its linked ``credential_id``.
    Returns the new rotation in state ``requested``, or the secret's
    unfinished rotation when there is one, so queueing twice is harmless.
    The next ``keysteward rotate --due``, ``rotation resume`` or scheduler
    run drives it. Raises RotationRejectedError for a person's password or a
    secret without a rotator, and SecretNotFoundError for an unknown name.
    """
    if (credential_id is None) == (secret_name is None):
        raise RotationRejectedError(
            "queue_rotation needs exactly one of credential_id or secret_name"
        )
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise RotationRejectedError(
            f"invalid rotation reason of {len(reason)} characters; give 1 to "
            f"{MAX_REASON_CHARS}"
        )
    if secret_name is not None:
        secret = get_secret(session, secret_name)
    else:
        assert credential_id is not None
        secret = _secret_of_credential(session, credential_id)
    credential = (
        session.get(Credential, secret.credential_id) if secret.credential_id else None
    )
    reject_person_password(credential)
    rotator = load_rotator(rotator_name_for(secret, credential))
    existing = active_rotation(session, secret.id)
    if existing is not None:
        return existing
    old_version = _current_version(session, secret.id)
    if old_version is None and not rotator.manual:
        raise RotationRejectedError(
            f"secret {secret.name!r} has no current value to rotate; put one with "
            f"`keysteward secret put {secret.name}`"
        )
    rotation = Rotation(
        secret_id=secret.id,
        credential_id=secret.credential_id,
        rotator=rotator.name,
        state=RotationState.REQUESTED,
        reason=reason,
        requested_by=actor,
        requested_at=utcnow(),
        old_version=old_version,
        attempts=0,
        details={},
    )
    # The unique partial index allows one unfinished rotation per secret; a
    # savepoint keeps the caller's transaction usable when we lose the race.
    try:
        with session.begin_nested():
            session.add(rotation)
    except IntegrityError:
        existing = active_rotation(session, secret.id)
        if existing is None:
            raise
        return existing
    record_event(
        session,
        actor=actor,
        action="rotation.requested",
        target_type="secret",
        target_id=secret.name,
        details={"rotation": rotation.id, "rotator": rotator.name, "reason": reason},
    )
    session.flush()
    return rotation


def _current_version(session: Session, secret_id: int) -> int | None:
    return session.scalar(
        select(SecretVersion.version).where(
            SecretVersion.secret_id == secret_id,
            SecretVersion.status == VersionStatus.CURRENT,
        )
    )


# Driving -----------------------------------------------------------------------


def rotate_secret(
    store: Store,
    keyring: KeyRing,
    name_or_id: str,
    *,
    actor: str,
    reason: str = "operator",
    requested_since: datetime | None = None,
    now: datetime | None = None,
    checkpoint: Checkpoint | None = None,
    lock_wait: timedelta = DEFAULT_LOCK_WAIT,
) -> RotationResult:
    """Rotate one secret now, as far as it can go in this run.

    A rotation of the same secret requested at or after ``requested_since``
    (by default, the start of this call) counts as this request, so two
    concurrent calls produce one rotation. While another live process holds
    the secret's lease this call waits up to ``lock_wait``, then returns that
    process's rotation with ``driven=False``.
    """
    started = requested_since or utcnow()
    owner = new_owner_id()
    with store.session() as session:
        secret = resolve_secret(session, name_or_id)
        secret_id, secret_name = secret.id, secret.name
    lease = secret_lease_name(secret_id)
    if not _wait_for_lease(store, lease, owner, lock_wait):
        return _result_for_secret(store, secret_id, secret_name, driven=False)
    try:
        with store.session() as session:
            rotation = _reusable_rotation(session, secret_id, started)
            if rotation is None:
                rotation = queue_rotation(
                    session, secret_name=secret_name, reason=reason, actor=actor
                )
            rotation_id = rotation.id
        return drive_rotation(
            store, keyring, rotation_id, actor=actor, now=now, checkpoint=checkpoint
        )
    finally:
        release_lease(store, lease, owner)


def _wait_for_lease(store: Store, lease: str, owner: str, wait: timedelta) -> bool:
    deadline = time.monotonic() + wait.total_seconds()
    while not acquire_lease(store, lease, owner):
        if time.monotonic() >= deadline:
            return False
        time.sleep(LOCK_POLL_SECONDS)
    return True


def _reusable_rotation(
    session: Session, secret_id: int, since: datetime
) -> Rotation | None:
    active = active_rotation(session, secret_id)
    if active is not None:
        return active
    recent = session.scalar(
        select(Rotation)
        .where(
            Rotation.secret_id == secret_id,
            Rotation.state == RotationState.DONE,
            Rotation.requested_at >= since,
        )
        .order_by(Rotation.id.desc())
        .limit(1)
    )
    return recent


def _result_for_secret(
    store: Store, secret_id: int, secret_name: str, *, driven: bool
) -> RotationResult:
    with store.session() as session:
        rotation = active_rotation(session, secret_id)
        if rotation is None:
            rotation = session.scalar(
                select(Rotation)
                .where(Rotation.secret_id == secret_id)
                .order_by(Rotation.id.desc())
                .limit(1)
            )
        if rotation is None:
            raise RotatorError(
                f"secret {secret_name!r} is being rotated by another process; "
                "check `keysteward rotation list` and try again later"
            )
        return _result(rotation, secret_name, driven=driven)


def _result(rotation: Rotation, secret_name: str, *, driven: bool) -> RotationResult:
    return RotationResult(
        rotation_id=rotation.id,
        secret=secret_name,
        rotator=rotation.rotator,
        state=rotation.state,
        last_error=rotation.last_error,
        driven=driven,
    )


def resume_rotations(
    store: Store,
    keyring: KeyRing,
    *,
    actor: str,
    now: datetime | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[RotationResult]:
    """Drive every unfinished rotation forward, or back, as far as it can go.

    Rotations whose lease a live process holds are reported with
    ``driven=False`` and left alone.
    """
    with store.session() as session:
        pending = [
            (rotation.id, rotation.secret_id)
            for rotation in session.scalars(
                select(Rotation)
                .where(Rotation.state.in_([str(state) for state in ACTIVE_STATES]))
                .order_by(Rotation.id)
            )
        ]
    results = []
    for rotation_id, secret_id in pending:
        owner = new_owner_id()
        lease = secret_lease_name(secret_id)
        if not acquire_lease(store, lease, owner):
            with store.session() as session:
                rotation = session.get_one(Rotation, rotation_id)
                name = session.get_one(Secret, secret_id).name
                results.append(_result(rotation, name, driven=False))
            continue
        try:
            results.append(
                drive_rotation(
                    store,
                    keyring,
                    rotation_id,
                    actor=actor,
                    now=now,
                    checkpoint=checkpoint,
                )
            )
        finally:
            release_lease(store, lease, owner)
    return results


def drive_rotation(
    store: Store,
    keyring: KeyRing,
    rotation_id: int,
    *,
    actor: str,
    now: datetime | None = None,
    checkpoint: Checkpoint | None = None,
) -> RotationResult:
    """Run steps of rotation ``rotation_id`` until it ends or must wait.

    The caller must have the secret's lease. ``now`` pins the clock for grace
    periods and task due dates. ``checkpoint`` is called with
    ``before:<state>`` and ``after:<state>`` around each step's action, so
    tests can stop the process there.
    """
    while _run_step(store, keyring, rotation_id, actor, now, checkpoint):
        pass
    with store.session() as session:
        rotation = session.get_one(Rotation, rotation_id)
        name = session.get_one(Secret, rotation.secret_id).name
        return _result(rotation, name, driven=True)


def _run_step(
    store: Store,
    keyring: KeyRing,
    rotation_id: int,
    actor: str,
    now: datetime | None,
    checkpoint: Checkpoint | None,
) -> bool:
    """Run one step in one transaction; return True when another step may follow."""
    state = ""
    try:
        with store.session() as session:
            rotation = session.get_one(Rotation, rotation_id, with_for_update=True)
            state = rotation.state
            if state in END_STATES:
                return False
            step = StepContext(session, keyring, rotation, actor, now or utcnow())
            if checkpoint is not None:
                checkpoint(f"before:{state}")
            next_state = STEPS[RotationState(state)](step)
            if checkpoint is not None:
                checkpoint(f"after:{state}")
            if next_state is None:
                return False
            step.transition(next_state)
            return True
    except KeystewardError as exc:
        return _record_failure(store, rotation_id, state, exc, actor)


def _record_failure(
    store: Store, rotation_id: int, state: str, exc: KeystewardError, actor: str
) -> bool:
    """Store a failed step; return True when the rotation should roll back now."""
    message = redact(str(exc))[:MAX_ERROR_CHARS]
    log.warning("rotation %d failed in state %s: %s", rotation_id, state, message)
    with store.session() as session:
        rotation = session.get_one(Rotation, rotation_id, with_for_update=True)
        secret_name = session.get_one(Secret, rotation.secret_id).name
        rotation.attempts += 1
        rotation.last_error = message
        next_state: RotationState | None = None
        if state == RotationState.REQUESTED:
            next_state = RotationState.FAILED
        elif state in ROLLBACK_STATES:
            next_state = RotationState.ROLLING_BACK
        record_event(
            session,
            actor=actor,
            action="rotation.step_failed",
            target_type="secret",
            target_id=secret_name,
            outcome="failure",
            details={"rotation": rotation_id, "state": state, "error": message},
        )
        if next_state is not None:
            set_state(session, rotation, secret_name, next_state, actor)
            if next_state in END_STATES:
                rotation.finished_at = utcnow()
    return next_state == RotationState.ROLLING_BACK


def plan_rotation(session: Session, name_or_id: str) -> dict[str, Any]:
    """Check that ``name_or_id`` can rotate and return what would happen.

    Raises the same errors a real rotation would raise first (unknown
    secret, person's password, missing or unknown rotator), and changes
    nothing.
    """
    secret = resolve_secret(session, name_or_id)
    credential = (
        session.get(Credential, secret.credential_id) if secret.credential_id else None
    )
    reject_person_password(credential)
    rotator = load_rotator(rotator_name_for(secret, credential))
    active = active_rotation(session, secret.id)
    return {
        "secret": secret.name,
        "rotator": rotator.name,
        "manual": rotator.manual,
        "current_version": _current_version(session, secret.id),
        "active_rotation": active.id if active else None,
        "active_state": active.state if active else None,
    }


def abandon_rotation(session: Session, rotation_id: int, *, actor: str) -> Rotation:
    """Mark an unfinished rotation failed without touching the target or the vault.

    This is the way out of a rotation stuck in ``rolling_back``: the pending
    value stays in the vault, so whichever value works on the target can
    still be read, and a new rotation of the secret may start.
    """
    rotation = session.get(Rotation, rotation_id, with_for_update=True)
    if rotation is None:
        raise RotationNotFoundError(
            f"rotation {rotation_id} not found; `keysteward rotation list` shows "
            "the ids"
        )
    if rotation.state in END_STATES:
        raise RotationRejectedError(
            f"rotation {rotation_id} already ended in state {rotation.state}; "
            "nothing to abandon"
        )
    secret_name = session.get_one(Secret, rotation.secret_id).name
    set_state(session, rotation, secret_name, RotationState.FAILED, actor)
    rotation.last_error = f"abandoned by {actor}"
    rotation.finished_at = utcnow()
    session.flush()
    return rotation
