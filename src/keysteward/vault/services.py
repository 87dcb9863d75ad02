"""Storing, reading and retiring secret values.

Envelope encryption: each version gets a fresh random data key, which
encrypts the value with AES-256-GCM and is itself wrapped by the active KEK.
The associated data binds the value to its secret id and version, and the
wrapped data key to its KEK id, secret id and version, so a ciphertext copied
into another row fails to decrypt.
"""

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keysteward.clock import utcnow
from keysteward.credentials.models import Credential
from keysteward.credentials.services import fingerprint_secret
from keysteward.crypto import aead
from keysteward.events.services import record_event
from keysteward.tokens.principals import Principal
from keysteward.vault.access import AccessDecision, authorize_secret_read
from keysteward.vault.errors import (
    InvalidSecretError,
    SecretNotFoundError,
)
from keysteward.vault.keys import (
    KeyRing,
    data_key_associated_data,
    payload_associated_data,
)
from keysteward.vault.models import (
    KeyEncryptionKey,
    Secret,
    SecretVersion,
    VersionStatus,
)

# \Z, not $: $ also matches before a final newline.
SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")
MAX_SECRET_BYTES = 64 * 1024
READ_ACTION = "secret.read"


@dataclass(frozen=True)
class SecretMetadata:
    """Links of a secret to the inventory; a None field is left unchanged."""

    credential_id: int | None = None
    system_id: int | None = None
    owner_id: int | None = None
    rotation_days: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class SecretValue:
    """A decrypted value and the version it came from."""

    name: str
    version: int
    value: bytes

    def __repr__(self) -> str:
        return f"SecretValue({self.name!r}, version={self.version}, value=[secure])"


@dataclass(frozen=True)
class SecretRead:
    """The outcome of one read: the decision, and the value when allowed."""

    decision: AccessDecision
    secret: SecretValue | None


def validate_secret_name(name: str) -> str:
    if not SECRET_NAME.match(name):
        raise InvalidSecretError(
            f"invalid secret name {name!r}; use 1 to 200 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def get_secret(session: Session, name: str) -> Secret:
    secret = session.scalar(select(Secret).where(Secret.name == name))
    if secret is None:
        raise SecretNotFoundError(
            f"secret {name!r} not found; `keysteward secret list` shows the names"
        )
    return secret


def _apply_metadata(secret: Secret, metadata: SecretMetadata) -> None:
    for field_name in (
        "credential_id",
        "system_id",
        "owner_id",
        "rotation_days",
        "description",
    ):
        value = getattr(metadata, field_name)
        if value is not None:
            setattr(secret, field_name, value)


def put_secret(
    session: Session,
    keyring: KeyRing,
    name: str,
    value: bytes,
    *,
    actor: str,
    metadata: SecretMetadata | None = None,
    pending: bool = False,
) -> SecretVersion:
    """Store ``value`` as a new version of secret ``name``, creating the secret.

    The new version becomes current and the old current one previous, unless
    ``pending`` is set, which stores the version without changing the current
    one. A linked credential gets the value's fingerprint.
    """
    validate_secret_name(name)
    if not value:
        raise InvalidSecretError(f"empty value for secret {name!r}; give a value")
    if len(value) > MAX_SECRET_BYTES:
        raise InvalidSecretError(
            f"value for secret {name!r} is {len(value)} bytes; the maximum is "
            f"{MAX_SECRET_BYTES}"
        )
    secret = session.scalar(select(Secret).where(Secret.name == name))
    if secret is None:
        secret = Secret(name=name)
        session.add(secret)
    _apply_metadata(secret, metadata or SecretMetadata())
    session.flush()

    latest = session.scalar(
        select(func.max(SecretVersion.version)).where(
            SecretVersion.secret_id == secret.id
        )
    )
    number = (latest or 0) + 1
    if not pending:
        _demote_current(session, secret.id)
    row = _seal_version(session, keyring, secret.id, number, value)
    row.status = VersionStatus.PENDING if pending else VersionStatus.CURRENT
    row.created_by = actor
    session.add(row)
    _record_fingerprint(session, secret, value)
    record_event(
        session,
        actor=actor,
        action="secret.put",
        target_type="secret",
        target_id=name,
        details={"version": number, "status": str(row.status)},
    )
    session.flush()
    return row


def _demote_current(session: Session, secret_id: int) -> None:
    current = session.scalars(
        select(SecretVersion).where(
            SecretVersion.secret_id == secret_id,
            SecretVersion.status == VersionStatus.CURRENT,
        )
    )
    for old in current:
        old.status = VersionStatus.PREVIOUS


def _seal_version(
    session: Session, keyring: KeyRing, secret_id: int, number: int, value: bytes
) -> SecretVersion:
    kek_row, kek = keyring.active_kek(session)
    data_key = aead.generate_key()
    return SecretVersion(
        secret_id=secret_id,
        version=number,
        ciphertext=aead.encrypt(
            data_key, value, payload_associated_data(secret_id, number)
        ),
        wrapped_key=aead.wrap_key(
            kek, data_key, data_key_associated_data(kek_row.id, secret_id, number)
        ),
        kek_id=kek_row.id,
    )


def _record_fingerprint(session: Session, secret: Secret, value: bytes) -> None:
    if secret.credential_id is None:
        return
    credential = session.get(Credential, secret.credential_id)
    if credential is None:
        raise InvalidSecretError(
            f"credential {secret.credential_id} not found; link the secret to an "
            "existing credential id"
        )
    credential.fingerprint = fingerprint_secret(session, value)
    credential.last_rotated_at = utcnow()


def decrypt_version(session: Session, keyring: KeyRing, row: SecretVersion) -> bytes:
    """Return the value of ``row``, or raise the bare DecryptionError."""
    kek_row = session.get(KeyEncryptionKey, row.kek_id)
    if kek_row is None:
        raise aead.DecryptionError
    kek = keyring.kek(kek_row)
    data_key = aead.unwrap_key(
        kek,
        row.wrapped_key,
        data_key_associated_data(row.kek_id, row.secret_id, row.version),
    )
    return aead.decrypt(
        data_key, row.ciphertext, payload_associated_data(row.secret_id, row.version)
    )


def find_version(session: Session, name: str, version: int | None) -> SecretVersion:
    """Return the requested version, or the current one when ``version`` is None."""
    # One joined query serves every read of a stored version. The secret is
    # looked up on its own only to tell the two not-found errors apart.
    query = (
        select(SecretVersion)
        .join(Secret, Secret.id == SecretVersion.secret_id)
        .where(Secret.name == name)
    )
    if version is None:
        query = query.where(SecretVersion.status == VersionStatus.CURRENT)
    else:
        query = query.where(SecretVersion.version == version)
    row = session.scalar(query)
    if row is None:
        get_secret(session, name)
        missing_version = (
            "a current version" if version is None else f"version {version}"
        )
        raise SecretNotFoundError(
            f"secret {name!r} has no {missing_version}; "
            f"`keysteward secret versions {name}` lists them"
        )
    if row.status == VersionStatus.RETIRED:
        raise SecretNotFoundError(
            f"version {row.version} of secret {name!r} is retired and cannot be read"
        )
    return row


def read_secret(
    session: Session,
    keyring: KeyRing,
    principal: Principal,
    name: str,
    *,
    version: int | None = None,
    source: str | None = None,
    via: str = "cli",
    request_id: str | None = None,
) -> SecretRead:
    """Authorize and decrypt one read of secret ``name`` by ``principal``.

    The read event (allowed or denied) is flushed in the caller's transaction
    before the value is returned, so a read whose event cannot be written
    fails. The caller must commit the transaction before it releases the value.
    A denial is decided before the secret is looked up, so a denied caller
    cannot tell whether the secret exists. Raises SecretNotFoundError only to
    a permitted caller.
    """
    validate_secret_name(name)
    decision = authorize_secret_read(session, principal, name)
    details: dict[str, object] = {"reason": decision.reason, "via": via}
    read = SecretRead(decision, None)
    if decision:
        row = find_version(session, name, version)
        value = decrypt_version(session, keyring, row)
        details["version"] = row.version
        read = SecretRead(decision, SecretValue(name, row.version, value))
    record_event(
        session,
        actor=principal.label,
        action=READ_ACTION,
        target_type="secret",
        target_id=name,
        outcome="allowed" if decision else "denied",
        source_address=source,
        request_id=request_id,
        details=details,
    )
    session.flush()
    return read


def read_secret_as_operator(
    session: Session,
    keyring: KeyRing,
    name: str,
    *,
    actor: str,
    version: int | None = None,
    source: str | None = None,
) -> SecretValue:
    """Decrypt secret ``name`` for a local operator who has the master key.

    Anyone with the master key can decrypt the store anyway, so no role
    check applies, but the read is still recorded as an event.
    """
    row = find_version(session, name, version)
    value = decrypt_version(session, keyring, row)
    record_event(
        session,
        actor=actor,
        action=READ_ACTION,
        target_type="secret",
        target_id=name,
        outcome="allowed",
        source_address=source,
        details={"version": row.version, "via": "operator", "reason": "master key"},
    )
    session.flush()
    return SecretValue(name=name, version=row.version, value=value)


def list_secrets(session: Session) -> list[dict[str, object]]:
    """Return every secret's metadata and current version number, by name."""
    current = (
        select(SecretVersion.secret_id, SecretVersion.version, SecretVersion.created_at)
        .where(SecretVersion.status == VersionStatus.CURRENT)
        .subquery()
    )
    query = (
        select(Secret, current.c.version, current.c.created_at)
        .outerjoin(current, current.c.secret_id == Secret.id)
        .order_by(Secret.name)
    )
    return [
        {
            "name": secret.name,
            "current_version": number,
            "updated_at": changed,
            "credential_id": secret.credential_id,
            "system_id": secret.system_id,
            "owner_id": secret.owner_id,
            "rotation_days": secret.rotation_days,
            "description": secret.description,
        }
        for secret, number, changed in session.execute(query)
    ]


def list_versions(session: Session, name: str) -> list[dict[str, object]]:
    """Return the versions of secret ``name``, oldest first, without values."""
    secret = get_secret(session, name)
    rows = session.scalars(
        select(SecretVersion)
        .where(SecretVersion.secret_id == secret.id)
        .order_by(SecretVersion.version)
    )
    return [
        {
            "version": row.version,
            "status": row.status,
            "created_at": row.created_at,
            "created_by": row.created_by,
            "retired_at": row.retired_at,
            "kek_id": row.kek_id,
        }
        for row in rows
    ]


def retire_version(session: Session, name: str, version: int, *, actor: str) -> None:
    """Mark a version retired and erase its ciphertext.

    The current version cannot be retired, because reads would then find no
    value; put a new value first.
    """
    row = find_version(session, name, version)
    if row.status == VersionStatus.CURRENT:
        raise InvalidSecretError(
            f"version {version} of secret {name!r} is current; put a new value "
            "with `keysteward secret put` before retiring it"
        )
    row.status = VersionStatus.RETIRED
    row.retired_at = utcnow()
    row.ciphertext = b""
    record_event(
        session,
        actor=actor,
        action="secret.retire",
        target_type="secret",
        target_id=name,
        details={"version": version},
    )
    session.flush()


def promote_version(session: Session, name: str, version: int, *, actor: str) -> None:
    """Make a pending or previous version current; the current one becomes previous."""
    row = find_version(session, name, version)
    if row.status == VersionStatus.CURRENT:
        return
    _demote_current(session, row.secret_id)
    row.status = VersionStatus.CURRENT
    record_event(
        session,
        actor=actor,
        action="secret.promote",
        target_type="secret",
        target_id=name,
        details={"version": version},
    )
    session.flush()


def verify_all_versions(session: Session, keyring: KeyRing) -> int:
    """Decrypt every readable version; return the count or raise DecryptionError."""
    rows = session.scalars(
        select(SecretVersion).where(SecretVersion.status != VersionStatus.RETIRED)
    )
    count = 0
    for row in rows:
        decrypt_version(session, keyring, row)
        count += 1
    return count
