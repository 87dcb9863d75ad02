"""AES-GCM sealing: round trips, and one bare error for every tampering."""

import pytest

from keysteward.crypto import aead
from keysteward.crypto.aead import DecryptionError


def test_encrypt_round_trip() -> None:
    key = aead.generate_key()
    sealed = aead.encrypt(key, b"value", b"row-1")
    assert aead.decrypt(key, sealed, b"row-1") == b"value"


def test_encrypt_fresh_nonce_each_call() -> None:
    key = aead.generate_key()
    first = aead.encrypt(key, b"value", b"ad")
    second = aead.encrypt(key, b"value", b"ad")
    assert first[: aead.NONCE_BYTES] != second[: aead.NONCE_BYTES]
    assert first != second


@pytest.mark.parametrize("position", [0, aead.NONCE_BYTES, -1])
def test_decrypt_tampered_byte_fails(position: int) -> None:
    key = aead.generate_key()
    sealed = bytearray(aead.encrypt(key, b"value", b"ad"))
    sealed[position] ^= 0x01
    with pytest.raises(DecryptionError) as caught:
        aead.decrypt(key, bytes(sealed), b"ad")
    assert str(caught.value) == ""


def test_decrypt_wrong_associated_data_fails() -> None:
    key = aead.generate_key()
    sealed = aead.encrypt(key, b"value", b"secret 1 version 1")
    with pytest.raises(DecryptionError):
        aead.decrypt(key, sealed, b"secret 2 version 1")


def test_decrypt_wrong_key_fails() -> None:
    sealed = aead.encrypt(aead.generate_key(), b"value", b"ad")
    with pytest.raises(DecryptionError):
        aead.decrypt(aead.generate_key(), sealed, b"ad")


def test_decrypt_truncated_fails() -> None:
    key = aead.generate_key()
    with pytest.raises(DecryptionError):
        aead.decrypt(key, b"short", b"ad")


def test_bad_key_length_names_argument() -> None:
    with pytest.raises(ValueError, match="key must be 32 bytes, got 16"):
        aead.encrypt(b"k" * 16, b"value", b"ad")


def test_unwrap_key_round_trip() -> None:
    kek, data_key = aead.generate_key(), aead.generate_key()
    wrapped = aead.wrap_key(kek, data_key, b"kek 1")
    assert aead.unwrap_key(kek, wrapped, b"kek 1") == data_key
    with pytest.raises(DecryptionError):
        aead.unwrap_key(kek, wrapped, b"kek 2")


def test_derive_key_separates_purposes() -> None:
    master = aead.generate_key()
    signing = aead.derive_key(master, b"signing")
    backup = aead.derive_key(master, b"backup")
    assert len(signing) == aead.KEY_BYTES
    assert signing != backup
    assert signing == aead.derive_key(master, b"signing")
