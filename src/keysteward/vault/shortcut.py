"""A shorter path through the server for the most frequent request: a secret read.

This ASGI middleware serves ``GET /api/v1/secrets/{name}`` with an access
token and no query string, without FastAPI's routing, dependency injection
and response validation, which cost several times the read itself.
Everything else, and every read this path cannot settle, goes on to the
FastAPI route, which gives the same answers through the store: API tokens,
failed access tokens (counted for throttling there), explicit versions, and
secrets without a current version. The route stays in the OpenAPI document,
and the tests compare both paths.

It wraps the whole middleware stack (see ``app.KeystewardAPI``), because
those layers cost about as much again. So it gives the responses it sends
the same request id, security headers, metrics and log line as
``observability.ObservabilityMiddleware`` gives all others.
"""

import base64
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keysteward.events.errors import EventNotRecordedError
from keysteward.observability import (
    REQUEST_ID_HEADER_KEY,
    SECURITY_HEADER_PAIRS,
    log_request,
    request_id_of_scope,
)
from keysteward.tokens.access import VerifiedAccessTokens
from keysteward.tokens.errors import AuthenticationError
from keysteward.tokens.prefix import API_TOKEN_PREFIX
from keysteward.tokens.principals import Principal
from keysteward.vault.reader import SecretReader
from keysteward.vault.services import SECRET_NAME, SecretRead

log = logging.getLogger(__name__)

ROUTE_PATH = "/api/v1/secrets/{name}"
PATH_PREFIX = "/api/v1/secrets/"
DENIED_MESSAGE = "not permitted to read this secret"
NOT_RECORDED_MESSAGE = "the read could not be recorded in the event log; retry later"
# Built once: json.dumps builds a new encoder for every call with options.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class SecretReadShortcut:
    """Serve plain secret reads with an access token, and pass on everything else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _secret_name(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        principal = _principal(state, scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of_scope(scope)
        reader: SecretReader = secret_reader_of(state)
        client = scope.get("client")
        try:
            read = await reader.read(
                principal,
                name,
                source=client[0] if client else None,
                request_id=request_id,
            )
        except EventNotRecordedError:
            body = _error("error", NOT_RECORDED_MESSAGE)
            await self._respond(scope, send, 503, body, request_id, started)
            return
        except Exception as exc:
            # The same response as the app's handler of unexpected errors. The
            # message names no secret.
            log.error(
                "unhandled %s on GET %s (request id %s)",
                type(exc).__name__,
                ROUTE_PATH,
                request_id,
            )
            body = _error("internal_error", "internal server error")
            await self._respond(scope, send, 500, body, request_id, started)
            return
        if read is None:
            # The route reads through the store and records the read itself.
            await self.app(scope, receive, send)
            return
        status, body = _response(name, read)
        await self._respond(scope, send, status, body, request_id, started)

    async def _respond(
        self,
        scope: Scope,
        send: Send,
        status: int,
        body: dict[str, Any],
        request_id: str,
        started: float,
    ) -> None:
        encoded = _JSON_ENCODER.encode(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(encoded)).encode()),
            (REQUEST_ID_HEADER_KEY, request_id.encode()),
            *SECURITY_HEADER_PAIRS,
        ]
        scope["app"].state.http_metrics.observe(
            "GET", ROUTE_PATH, status, time.perf_counter() - started
        )
        log_request("GET", ROUTE_PATH, status, request_id)
        start: Message = {
            "type": "http.response.start",
            "status": status,
            "headers": headers,
        }
        await send(start)
        await send({"type": "http.response.body", "body": encoded})


def secret_reader_of(state: Any) -> SecretReader:
    """Return the app's secret reader, creating it on first use."""
    reader: SecretReader | None = getattr(state, "secret_reader", None)
    if reader is None:
        # Both callers are async handlers on the event loop thread, so two
        # requests cannot race here.
        reader = SecretReader(
            state.store, state.keyring, getattr(state, "idle_tasks", None)
        )
        state.secret_reader = reader
    return reader


def verified_tokens_of(state: Any) -> VerifiedAccessTokens:
    cache: VerifiedAccessTokens | None = getattr(state, "verified_tokens", None)
    if cache is None:
        cache = VerifiedAccessTokens()
        state.verified_tokens = cache
    return cache


def _secret_name(scope: Scope) -> str | None:
    """Return the secret name of a plain read request, else None."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path: str = scope["path"]
    if not path.startswith(PATH_PREFIX) or scope.get("query_string"):
        return None
    name = path[len(PATH_PREFIX) :]
    return name if SECRET_NAME.match(name) else None


def _principal(state: Any, scope: Scope) -> Principal | None:
    """Return the principal of a valid access token in the request, else None."""
    for key, value in scope["headers"]:
        if key != b"authorization":
            continue
        scheme, _, token = value.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        if token.startswith(API_TOKEN_PREFIX):
            return None
        try:
            return verified_tokens_of(state).verify(state.keyring, token)
        except AuthenticationError:
            return None
    return None


def _response(name: str, read: SecretRead) -> tuple[int, dict[str, Any]]:
    if read.secret is None:
        return 403, _error("forbidden", DENIED_MESSAGE)
    value = read.secret.value
    try:
        text, encoding = value.decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(value).decode(), "base64"
    body = {
        "name": name,
        "version": read.secret.version,
        "value": text,
        "encoding": encoding,
    }
    return 200, body


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": {}}}
