"""AES-256-GCM encryption with associated data, and the key wrap built on it.

Every key passed here is 32 random bytes. Each call draws a fresh 96-bit
nonce from the OS random source and stores it in front of the ciphertext.
Callers keep nonces from repeating under one key by giving each secret
version its own data key, so a key encrypts one payload in its lifetime.

Misuse (a key of the wrong length) raises ValueError naming the argument.
Every failure to authenticate raises the bare ``DecryptionError``, whatever
the cause, so an error message can never tell an attacker which check failed.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class DecryptionError(Exception):
    """A ciphertext failed to authenticate: wrong key, associated data or bytes."""


def generate_key() -> bytes:
    """Return a new random 256-bit key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _check_key(key: bytes, argument: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        length = len(key) if isinstance(key, bytes) else type(key).__name__
        raise ValueError(f"{argument} must be {KEY_BYTES} bytes, got {length}")


def encrypt(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt ``plaintext`` under ``key``; return nonce, ciphertext and tag."""
    _check_key(key, "key")
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def decrypt(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Return the plaintext of ``sealed``, or raise DecryptionError."""
    _check_key(key, "key")
    return decrypt_with(AESGCM(key), sealed, associated_data)


def decrypt_with(cipher: AESGCM, sealed: bytes, associated_data: bytes) -> bytes:
    """Return the plaintext of ``sealed`` under a cipher built once for its key.

    Raises DecryptionError like ``decrypt``.
    """
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError
    nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    try:
        return cipher.decrypt(nonce, body, associated_data)
    except InvalidTag:
        raise DecryptionError from None


def wrap_key(wrapping_key: bytes, key: bytes, associated_data: bytes) -> bytes:
    """Encrypt ``key`` under ``wrapping_key``, bound to ``associated_data``.

    AES-GCM is used in place of AES-KW (RFC 3394) because AES-KW cannot bind
    associated data, and the binding is what stops a wrapped key from being
    moved to another row.
    """
    _check_key(wrapping_key, "wrapping_key")
    _check_key(key, "key")
    return encrypt(wrapping_key, key, associated_data)


def unwrap_key(wrapping_key: bytes, wrapped: bytes, associated_data: bytes) -> bytes:
    """Return the key inside ``wrapped``, or raise DecryptionError."""
    key = decrypt(wrapping_key, wrapped, associated_data)
    if len(key) != KEY_BYTES:
        raise DecryptionError
    return key


def derive_key(master_key: bytes, purpose: bytes) -> bytes:
    """Derive a 256-bit subkey of ``master_key`` for one ``purpose`` (HKDF-SHA256).

    Distinct purposes give independent keys, so the master key itself is
    only ever used to wrap key-encryption keys.
    """
    _check_key(master_key, "master_key")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose)
    return hkdf.derive(master_key)
