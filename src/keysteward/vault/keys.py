"""The KEK ring: key-encryption keys stored wrapped by the master key."""

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.crypto import aead
from keysteward.crypto.keyring import KeyProvider, key_provider
from keysteward.errors import ConfigError
from keysteward.vault.models import KekStatus, KeyEncryptionKey

ACCESS_TOKEN_KEY_PURPOSE = b"keysteward access-token signing v1"
BACKUP_KEY_PURPOSE = b"keysteward backup encryption v1"


def kek_associated_data(kek_id: int) -> bytes:
    return f"keysteward/kek/v1|{kek_id}".encode()


def data_key_associated_data(kek_id: int, secret_id: int, version: int) -> bytes:
    return f"keysteward/data-key/v1|{kek_id}|{secret_id}|{version}".encode()


def payload_associated_data(secret_id: int, version: int) -> bytes:
    return f"keysteward/secret-value/v1|{secret_id}|{version}".encode()


@dataclass
class KeyRing:
    """Unwraps KEKs with the master key and caches them for the process.

    Subkeys derived from the master key are cached too, so, like the KEKs, a
    master key changed on disk takes effect when the process restarts.
    """

    provider: KeyProvider
    _keks: dict[int, bytes] = field(default_factory=dict, repr=False)
    _derived: dict[bytes, bytes] = field(default_factory=dict, repr=False)

    def master_key(self) -> bytes:
        return self.provider.master_key()

    def derived_key(self, purpose: bytes) -> bytes:
        """Return the master key's subkey for one purpose (token signing, backups)."""
        cached = self._derived.get(purpose)
        if cached is None:
            cached = aead.derive_key(self.master_key(), purpose)
            self._derived[purpose] = cached
        return cached

    def kek(self, row: KeyEncryptionKey) -> bytes:
        """Return the plain KEK of ``row``, or raise DecryptionError."""
        cached = self._keks.get(row.id)
        if cached is not None:
            return cached
        if row.wrapped_key is None:
            raise aead.DecryptionError
        key = aead.unwrap_key(
            self.master_key(), row.wrapped_key, kek_associated_data(row.id)
        )
        self._keks[row.id] = key
        return key

    def create_kek(self, session: Session, status: str = KekStatus.ACTIVE) -> int:
        """Add a new KEK wrapped by the master key; return its id."""
        row = KeyEncryptionKey(status=status, wrapped_key=None)
        session.add(row)
        session.flush()
        key = aead.generate_key()
        row.wrapped_key = aead.wrap_key(
            self.master_key(), key, kek_associated_data(row.id)
        )
        session.flush()
        self._keks[row.id] = key
        return row.id

    def active_kek(self, session: Session) -> tuple[KeyEncryptionKey, bytes]:
        """Return the KEK that wraps new data keys, creating the first one."""
        query = (
            select(KeyEncryptionKey)
            .where(KeyEncryptionKey.status == KekStatus.ACTIVE)
            .order_by(KeyEncryptionKey.id.desc())
            .limit(1)
        )
        row = session.scalar(query)
        if row is None:
            session.get_one(KeyEncryptionKey, self.create_kek(session))
            row = session.scalar(query)
            assert row is not None
        return row, self.kek(row)

    def forget(self, kek_id: int) -> None:
        self._keks.pop(kek_id, None)


def keyring_for_home(home: Path) -> KeyRing:
    """Return a key ring over the key provider that the environment selects."""
    return KeyRing(key_provider(home))


def check_master_key(session: Session, keyring: KeyRing) -> None:
    """Raise ConfigError unless the master key unwraps the store's newest KEK.

    A store without KEKs passes, because any key can start it.
    """
    row = session.scalar(
        select(KeyEncryptionKey)
        .where(KeyEncryptionKey.wrapped_key.is_not(None))
        .order_by(KeyEncryptionKey.id.desc())
        .limit(1)
    )
    if row is None:
        return
    try:
        keyring.kek(row)
    except aead.DecryptionError:
        raise ConfigError(
            f"the master key does not unwrap key-encryption key {row.id} of this "
            "store: check KEYSTEWARD_KEY_PROVIDER and its key or passphrase"
        ) from None
