"""Listing rotations and open manual rotation tasks."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.clock import as_utc, utcnow
from keysteward.credentials.models import Credential
from keysteward.identities.models import Person
from keysteward.rotation.models import ACTIVE_STATES, Rotation, RotationState
from keysteward.vault.models import Secret


def list_rotations(
    session: Session, *, include_finished: bool = True
) -> list[dict[str, Any]]:
    """Return every rotation with its secret name, newest first."""
    query = (
        select(Rotation, Secret.name)
        .join(Secret, Secret.id == Rotation.secret_id)
        .order_by(Rotation.id.desc())
    )
    if not include_finished:
        query = query.where(Rotation.state.in_([str(s) for s in ACTIVE_STATES]))
    return [_rotation_row(rotation, name) for rotation, name in session.execute(query)]


def list_tasks(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Return the open manual rotation tasks, soonest due first."""
    moment = now or utcnow()
    query = (
        select(Rotation, Secret.name)
        .join(Secret, Secret.id == Rotation.secret_id)
        .where(Rotation.state == RotationState.AWAITING_VALUE)
        .order_by(Rotation.due_at, Rotation.id)
    )
    tasks = []
    for rotation, name in session.execute(query):
        row = _rotation_row(rotation, name)
        due = as_utc(rotation.due_at)
        row["overdue"] = bool(due and moment > due)
        row["owner"] = _task_owner(session, rotation)
        row["instructions"] = (
            f"create a new key in the system's console, then run "
            f"`keysteward secret put {name}`, then revoke the old key there"
        )
        tasks.append(row)
    return tasks


def _task_owner(session: Session, rotation: Rotation) -> str | None:
    secret = session.get_one(Secret, rotation.secret_id)
    credential = None
    if rotation.credential_id is not None:
        credential = session.get(Credential, rotation.credential_id)
    owner_id = secret.owner_id or (credential.owner_id if credential else None)
    person = session.get(Person, owner_id) if owner_id else None
    return person.email if person else None


def _rotation_row(rotation: Rotation, secret_name: str) -> dict[str, Any]:
    return {
        "id": rotation.id,
        "secret": secret_name,
        "credential_id": rotation.credential_id,
        "rotator": rotation.rotator,
        "state": rotation.state,
        "reason": rotation.reason,
        "requested_by": rotation.requested_by,
        "requested_at": as_utc(rotation.requested_at),
        "updated_at": as_utc(rotation.updated_at),
        "old_version": rotation.old_version,
        "new_version": rotation.new_version,
        "grace_until": as_utc(rotation.grace_until),
        "due_at": as_utc(rotation.due_at),
        "attempts": rotation.attempts,
        "last_error": rotation.last_error,
        "finished_at": as_utc(rotation.finished_at),
    }
