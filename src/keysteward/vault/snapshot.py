"""An in-memory copy of what secret reads depend on, tagged with its generation.

The API decides a read against a ``ReadSnapshot`` without a database query.
The snapshot carries the read generation it was loaded at (see
``ReadGeneration``). The transaction that records a read compares it with
the stored one. So a decision is released only when nothing changed in
between, or after it was made again on a fresh snapshot.
"""

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from keysteward.authz.engine import PolicyIndex
from keysteward.clock import as_utc, utcnow
from keysteward.crypto import aead
from keysteward.identities.models import (
    Person,
    PersonStatus,
    ServiceAccount,
    ServiceAccountStatus,
)
from keysteward.tokens.models import ApiToken
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.vault.access import (
    REVOKED_TOKEN_REASON,
    AccessDecision,
    decide_secret_read,
    policy_index,
)
from keysteward.vault.keys import (
    KeyRing,
    data_key_associated_data,
    payload_associated_data,
)
from keysteward.vault.models import (
    KeyEncryptionKey,
    ReadGeneration,
    Secret,
    SecretVersion,
    VersionStatus,
)

GENERATION_ROW_ID = 1
# Plain SQL, for callers that hold a driver cursor.
GENERATION_QUERY = "SELECT generation FROM vault_read_generation WHERE id = 1"
# Loads retried when the generation moved while the snapshot was read.
MAX_LOAD_ATTEMPTS = 5


@dataclass(frozen=True)
class CachedVersion:
    """The sealed current version of one secret, as stored."""

    secret_id: int
    version: int
    kek_id: int
    ciphertext: bytes = field(repr=False)
    wrapped_key: bytes = field(repr=False)


@dataclass(frozen=True)
class ReadOutcome:
    """A decision, and for an allowed read the version to return.

    ``version`` is None for a denial, and for an allowed read of a secret
    that has no current version in the snapshot.
    """

    decision: AccessDecision
    version: CachedVersion | None


@dataclass
class ReadSnapshot:
    """Policy, active principals, live API tokens and current secret versions."""

    generation: int
    index: PolicyIndex
    active_principals: frozenset[tuple[str, int]]
    # Expiry (None: never) of each API token that is not revoked, by id.
    live_api_tokens: dict[int, datetime | None] = field(repr=False)
    current_versions: dict[str, CachedVersion] = field(repr=False)
    keks: dict[int, bytes] = field(repr=False)
    _ciphers: dict[tuple[int, int], AESGCM] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def decide(self, principal: Principal, name: str) -> ReadOutcome:
        """Decide a read of the current version of ``name`` by ``principal``."""
        if principal.api_token_id is not None and not self._token_in_force(
            principal.api_token_id
        ):
            return ReadOutcome(AccessDecision(False, REVOKED_TOKEN_REASON), None)
        active = (str(principal.type), principal.id) in self.active_principals
        decision = decide_secret_read(self.index, principal, name, active=active)
        if not decision:
            return ReadOutcome(decision, None)
        return ReadOutcome(decision, self.current_versions.get(name))

    def _token_in_force(self, token_id: int) -> bool:
        if token_id not in self.live_api_tokens:
            return False
        expires_at = self.live_api_tokens[token_id]
        return expires_at is None or utcnow() < expires_at

    def decrypt(self, version: CachedVersion) -> bytes:
        """Return the value of ``version``, or raise the bare DecryptionError.

        Unwrapped data keys are kept for the snapshot's lifetime, as ciphers
        ready for use, next to the KEKs that the key ring keeps for the process.
        """
        key = (version.secret_id, version.version)
        cipher = self._ciphers.get(key)
        if cipher is None:
            kek = self.keks.get(version.kek_id)
            if kek is None:
                raise aead.DecryptionError
            data_key = aead.unwrap_key(
                kek,
                version.wrapped_key,
                data_key_associated_data(
                    version.kek_id, version.secret_id, version.version
                ),
            )
            cipher = AESGCM(data_key)
            with self._lock:
                self._ciphers[key] = cipher
        return aead.decrypt_with(
            cipher,
            version.ciphertext,
            payload_associated_data(version.secret_id, version.version),
        )


def read_generation(session: Session) -> int:
    """Return the stored read generation, recreating a missing row at random."""
    # Plain SQL: this runs in every event batch of the API's secret reads,
    # where an ORM query costs about ten times as much.
    generation = session.connection().exec_driver_sql(GENERATION_QUERY).scalar()
    if generation is not None:
        return int(generation)
    # Only an emptied table (TRUNCATE) lacks the row. A random restart keeps
    # snapshots cached before it from matching. A concurrent writer may do
    # the same, hence ON CONFLICT.
    values = {"id": GENERATION_ROW_ID, "generation": secrets.randbits(62)}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            postgresql_insert(ReadGeneration).values(values).on_conflict_do_nothing()
        )
    else:
        session.execute(
            sqlite_insert(ReadGeneration).values(values).on_conflict_do_nothing()
        )
    query = select(ReadGeneration.generation).where(
        ReadGeneration.id == GENERATION_ROW_ID
    )
    return int(session.scalar(query) or 0)


def load_snapshot(session: Session, keyring: KeyRing) -> ReadSnapshot:
    """Read a consistent snapshot in ``session``.

    The generation is read before and after the tables, so a change
    committed by another transaction while they were read (possible on
    PostgreSQL at READ COMMITTED) makes the load start again.
    """
    for _attempt in range(MAX_LOAD_ATTEMPTS):
        before = read_generation(session)
        snapshot = _load_tables(session, keyring, before)
        if read_generation(session) == before:
            return snapshot
    raise RuntimeError(
        f"the read generation changed during {MAX_LOAD_ATTEMPTS} snapshot loads"
    )


def _load_tables(session: Session, keyring: KeyRing, generation: int) -> ReadSnapshot:
    accounts = session.scalars(
        select(ServiceAccount.id).where(
            ServiceAccount.status == ServiceAccountStatus.ACTIVE
        )
    )
    people = session.scalars(
        select(Person.id).where(Person.status == PersonStatus.ACTIVE)
    )
    active = {(str(PrincipalType.SERVICE_ACCOUNT), id_) for id_ in accounts}
    active |= {(str(PrincipalType.PERSON), id_) for id_ in people}
    tokens = session.execute(
        select(ApiToken.id, ApiToken.expires_at).where(ApiToken.revoked_at.is_(None))
    )
    live_tokens = {token_id: as_utc(expires) for token_id, expires in tokens}
    rows = session.execute(
        select(
            Secret.name,
            SecretVersion.secret_id,
            SecretVersion.version,
            SecretVersion.kek_id,
            SecretVersion.ciphertext,
            SecretVersion.wrapped_key,
        )
        .join(Secret, Secret.id == SecretVersion.secret_id)
        .where(SecretVersion.status == VersionStatus.CURRENT)
    )
    versions = {
        row.name: CachedVersion(
            row.secret_id, row.version, row.kek_id, row.ciphertext, row.wrapped_key
        )
        for row in rows
    }
    keks: dict[int, bytes] = {}
    for kek_row in session.scalars(select(KeyEncryptionKey)):
        try:
            keks[kek_row.id] = keyring.kek(kek_row)
        except aead.DecryptionError:
            # A retired KEK has no key material, so only reads under it fail.
            continue
    return ReadSnapshot(
        generation=generation,
        index=policy_index(session),
        active_principals=frozenset(active),
        live_api_tokens=live_tokens,
        current_versions=versions,
        keks=keks,
    )
