"""Credential injection forms and masking of echoed credentials."""

import base64

import pytest

from keysteward.gateway.config import CredentialSpec, Injection
from keysteward.gateway.credentials import ResponseMasker, build_injection

VALUE = "cred_" + "Hk3" * 8


def test_bearer_injection() -> None:
    injected = build_injection(CredentialSpec(secret="s"), VALUE)

    assert injected.headers == (("authorization", f"Bearer {VALUE}"),)
    assert VALUE not in repr(injected)


def test_basic_injection_with_username() -> None:
    spec = CredentialSpec(secret="s", inject=Injection.BASIC, username="ops")

    injected = build_injection(spec, VALUE)

    encoded = base64.b64encode(f"ops:{VALUE}".encode())
    assert injected.headers == (("authorization", f"Basic {encoded.decode()}"),)
    assert encoded in injected.masks


def test_query_injection() -> None:
    spec = CredentialSpec(secret="s", inject=Injection.QUERY, name="key")

    injected = build_injection(spec, VALUE)

    assert injected.query == (("key", VALUE),)
    assert injected.headers == ()


@pytest.mark.parametrize("split_at", [1, 5, 10, len(VALUE) - 1])
def test_masker_finds_value_split_across_chunks(split_at: int) -> None:
    body = f"before {VALUE} after".encode()
    cut = len("before ") + split_at
    masker = ResponseMasker((VALUE.encode(),))

    out = masker.feed(body[:cut]) + masker.feed(body[cut:]) + masker.finish()

    assert out == f"before {'*' * len(VALUE)} after".encode()


def test_masker_keeps_length_and_plain_bytes() -> None:
    masker = ResponseMasker((VALUE.encode(),))
    chunks = [b"a" * 100, VALUE.encode() * 2, b"b" * 3]

    out = b"".join(masker.feed(chunk) for chunk in chunks) + masker.finish()

    assert len(out) == sum(len(chunk) for chunk in chunks)
    assert VALUE.encode() not in out
    assert out.startswith(b"a" * 100)
