"""A small client for reading secrets from a keysteward server.

    client = keysteward.Client("http://127.0.0.1:8600", api_token)
    password = client.secret("hubspot")

The client trades its API token for a short-lived access token, renews it
before it expires, and keeps each secret in memory for ``cache_seconds``.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

# Renew the access token this many seconds before its reported expiry.
RENEW_MARGIN_SECONDS = 30
DEFAULT_CACHE_SECONDS = 60.0


class ClientError(Exception):
    """A request to the keysteward server failed; ``status`` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class Client:
    """Reads secrets over the keysteward HTTP API."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_seconds < 0:
            raise ValueError(f"cache_seconds must be 0 or more, got {cache_seconds}")
        self._api_token = token
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._http = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout, transport=transport
        )
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._access_expires = 0.0
        self._cache: dict[tuple[str, int | None], tuple[float, str]] = {}

    def __repr__(self) -> str:
        return f"Client({str(self._http.base_url)!r}, token=[secure])"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def secret(self, name: str, version: int | None = None) -> str:
        """Return the value of secret ``name`` (current version unless given).

        Binary values come back base64-encoded. Raises ClientError on a
        refusal or server error.
        """
        key = (name, version)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        body = self._get_secret(name, version)
        value = str(body["value"])
        if self._cache_seconds:
            with self._lock:
                self._cache[key] = (now + self._cache_seconds, value)
        return value

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _get_secret(self, name: str, version: int | None) -> dict[str, Any]:
        params = {} if version is None else {"version": version}
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self._current_access_token()}"}
            response = self._http.get(
                f"/api/v1/secrets/{name}", params=params, headers=headers
            )
            if response.status_code == 401 and attempt == 0:
                # The access token may have expired early (server restart with
                # a new key); buy a fresh one once.
                self._access_token = None
                continue
            return self._json_or_raise(response)
        raise AssertionError("unreachable")

    def _current_access_token(self) -> str:
        with self._lock:
            if self._access_token and self._clock() < self._access_expires:
                return self._access_token
        response = self._http.post(
            "/api/v1/token",
            data={"grant_type": "client_credentials", "client_secret": self._api_token},
        )
        body = self._json_or_raise(response)
        with self._lock:
            self._access_token = str(body["access_token"])
            lifetime = int(body["expires_in"])
            self._access_expires = self._clock() + max(
                lifetime - RENEW_MARGIN_SECONDS, 1
            )
            return self._access_token

    @staticmethod
    def _json_or_raise(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.is_success and isinstance(body, dict):
            return body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ClientError(
            response.status_code,
            str(error.get("code", "error")),
            str(error.get("message", response.reason_phrase)),
        )
