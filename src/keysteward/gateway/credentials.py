"""Upstream credentials: read from the vault, cached briefly, injected, masked.

The decrypted value stays in process memory for ``credential_cache_seconds``
(30 s by default) so that a request does not pay for a store read and a
decryption. A rotated secret is therefore picked up within that time. Each
vault read is recorded as a ``secret.read`` event with actor ``gateway``.
"""

import base64
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

import anyio.to_thread

from keysteward.crypto.aead import DecryptionError
from keysteward.db import Store
from keysteward.errors import KeystewardError
from keysteward.gateway.config import CredentialSpec, Injection
from keysteward.gateway.errors import credential_unavailable
from keysteward.transactions import run_transaction
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import read_secret_as_operator

log = logging.getLogger(__name__)

GATEWAY_ACTOR = "gateway"


@dataclass(frozen=True)
class Injected:
    """The headers or query parameters to add upstream, and the forms to mask."""

    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    masks: tuple[bytes, ...]

    def __repr__(self) -> str:
        return "Injected([secure])"


def build_injection(spec: CredentialSpec, value: str) -> Injected:
    """Return the header or query parameter that carries ``value`` upstream."""
    masks = {value.encode(), quote(value, safe="").encode()}
    if spec.inject is Injection.BEARER:
        headers = (("authorization", f"Bearer {value}"),)
        return Injected(headers, (), tuple(masks))
    if spec.inject is Injection.HEADER:
        assert spec.name is not None
        return Injected(((spec.name.lower(), value),), (), tuple(masks))
    if spec.inject is Injection.QUERY:
        assert spec.name is not None
        return Injected((), ((spec.name, value),), tuple(masks))
    pair = f"{spec.username}:{value}" if spec.username is not None else value
    encoded = base64.b64encode(pair.encode()).decode()
    masks.add(encoded.encode())
    return Injected((("authorization", f"Basic {encoded}"),), (), tuple(masks))


class CredentialCache:
    """Decrypted upstream credentials by system, each kept for ``lifetime`` seconds."""

    def __init__(self, store: Store, keyring: KeyRing, lifetime: float) -> None:
        self._store = store
        self._keyring = keyring
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Injected]] = {}

    async def get(self, system: str, spec: CredentialSpec) -> Injected:
        """Return the injection for ``system``, reading the vault when stale.

        Raises GatewayError (502) when the secret is missing or cannot be
        decrypted; the log names the secret, never its value.
        """
        cached = self._entries.get(system)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return await anyio.to_thread.run_sync(self._load, system, spec)

    def _load(self, system: str, spec: CredentialSpec) -> Injected:
        with self._lock:
            cached = self._entries.get(system)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            try:
                secret = run_transaction(
                    self._store,
                    lambda session: read_secret_as_operator(
                        session, self._keyring, spec.secret, actor=GATEWAY_ACTOR
                    ),
                )
                value = secret.value.decode()
            except (KeystewardError, DecryptionError, UnicodeDecodeError) as exc:
                log.error(
                    "gateway could not read secret %r for system %s: %s",
                    spec.secret,
                    system,
                    type(exc).__name__,
                )
                raise credential_unavailable(system) from None
            injected = build_injection(spec, value)
            if self._lifetime > 0:
                self._entries[system] = (time.monotonic() + self._lifetime, injected)
            return injected

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


class ResponseMasker:
    """Replace every masked form of the credential in a streamed body with ``*``.

    Each match is replaced by as many ``*`` as it has bytes, so a
    Content-Length stays correct. The last ``longest - 1`` bytes of a chunk
    are held back until the next one, so a value split across two chunks is
    still found.
    """

    def __init__(self, masks: tuple[bytes, ...]) -> None:
        self._masks = tuple(mask for mask in masks if mask)
        self._keep = max((len(mask) for mask in self._masks), default=1) - 1
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._mask(self._pending + chunk)
        if len(data) <= self._keep:
            self._pending = data
            return b""
        cut = len(data) - self._keep
        self._pending = data[cut:]
        return data[:cut]

    def finish(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    def _mask(self, data: bytes) -> bytes:
        for mask in self._masks:
            if mask in data:
                data = data.replace(mask, b"*" * len(mask))
        return data
