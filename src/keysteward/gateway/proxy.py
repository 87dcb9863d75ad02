"""The gateway ASGI app: authenticate, authorize, inject the credential, forward.

A request to ``/{system}/{path}`` goes through these steps, and the first one
that fails ends it with an error response:

1. the system must be configured and the path free of ambiguous encodings (404, 400);
2. the bearer token must be a keysteward access token or API token (401);
3. the caller's token bucket for the system must not be empty (429);
4. a rule must map the method and path to a permission (403, deny by default);
5. the authz engine must allow the permission (403 with its explanation);
6. the request is forwarded with the system's credential, and the upstream
   response streamed back (413, 502, 504 for body, connection and timeout errors).

The caller's own Authorization and Cookie headers never reach the upstream,
and redirects are returned to the caller unfollowed, so the credential is
only ever sent to the configured upstream URL.
"""

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import anyio.to_thread
import httpx
from sqlalchemy.exc import SQLAlchemyError

from keysteward.authz.engine import Decision, authorizer_for
from keysteward.db import Store
from keysteward.gateway import errors
from keysteward.gateway.config import GatewayConfig, SystemConfig
from keysteward.gateway.credentials import CredentialCache, Injected, ResponseMasker
from keysteward.gateway.errors import GatewayError
from keysteward.gateway.ratelimit import RateLimiter, bucket_key, rate_limiter_for
from keysteward.gateway.recording import RequestRecord, RequestRecorder
from keysteward.gateway.rules import UnsafePathError, check_path, match_rule
from keysteward.tokens.access import LEEWAY_SECONDS, verify_access_token
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.exchange import authenticate_bearer
from keysteward.tokens.prefix import API_TOKEN_PREFIX
from keysteward.tokens.principals import Principal
from keysteward.tokens.services import api_token_in_force_unlocked
from keysteward.vault.keys import KeyRing

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Hop-by-hop headers (RFC 9110 section 7.6.1) plus the Proxy-* family. The
# headers named in a Connection header are dropped as well.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
# Headers of the caller that are meant for keysteward, not the upstream.
CALLER_ONLY = frozenset({"host", "authorization", "cookie"})
# Upstream cookies belong to the session of the injected credential; handing
# them to the caller would let it act upstream without the gateway.
UPSTREAM_ONLY = frozenset({"set-cookie", "set-cookie2"})
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
POOL_TIMEOUT = 5.0
# Idle upstream connections are closed after this many seconds, below the
# 5 s keep-alive timeout of uvicorn and several other servers, so that the
# gateway rarely reuses a connection the upstream is closing.
KEEPALIVE_EXPIRY = 4.0
RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A verified access token is reused for up to this many seconds without
# checking its signature again, and never past the time the verifier would
# start to reject it (its exp plus the verifier's leeway).
ACCESS_TOKEN_CACHE_SECONDS = 5.0
ACCESS_TOKEN_CACHE_SIZE = 10_000
# How long the gateway trusts its last look at an API token's revocation and
# expiry, so a revoked API token's access tokens stop within this time.
API_TOKEN_RECHECK_SECONDS = 1.0


def _is_hop_by_hop(name: str, listed: frozenset[str]) -> bool:
    return name in HOP_BY_HOP or name.startswith("proxy-") or name in listed


def _connection_listed(headers: list[tuple[str, str]]) -> frozenset[str]:
    listed: set[str] = set()
    for name, value in headers:
        if name == "connection":
            listed.update(part.strip().lower() for part in value.split(","))
    return frozenset(listed)


@dataclass
class _Exchange:
    """The state of one request so far, for its event and log line."""

    system: str
    method: str
    source: str | None
    request_id: str
    principal: Principal | None = None
    rule: str | None = None
    permission: str | None = None
    reason: str | None = None
    # Whether the authz engine allowed the request. The status and
    # upstream_status show whether it then reached the upstream.
    allowed: bool = False
    upstream_status: int | None = None
    response_started: bool = False


class GatewayApp:
    """An ASGI reverse proxy for the systems in ``config``.

    It serves on its own (``keysteward gateway serve``) or mounted in the API
    app. The shared upstream connection pool is created on the first request
    and closed by ``aclose`` or at the end of the ASGI lifespan.
    """

    def __init__(
        self,
        store: Store,
        keyring: KeyRing,
        config: GatewayConfig,
        *,
        rate_limiter: RateLimiter | None = None,
        recorder: RequestRecorder | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.config = config
        self.rate_limiter = rate_limiter or rate_limiter_for(store)
        self.recorder = recorder or RequestRecorder(store)
        self.credentials = CredentialCache(
            store, keyring, config.credential_cache_seconds
        )
        # The shared Authorizer reuses the compiled policy and rereads the
        # stored policy version once per refresh_seconds (1 s by default).
        # NOTE: that read, and a rebuild after a policy change, run on the
        # event loop and hold up other requests while they last.
        self.authorizer = authorizer_for(store)
        self._transport = transport
        self._pool: httpx.AsyncBaseTransport | None = None
        self._verified: dict[str, tuple[float, Principal]] = {}
        # By API token id: when it was last looked up, and whether it was in force.
        self._api_tokens: dict[int, tuple[float, bool]] = {}
        self._timeouts = {
            name: httpx.Timeout(
                connect=system.connect_timeout,
                read=system.read_timeout,
                write=system.read_timeout,
                pool=POOL_TIMEOUT,
            )
            for name, system in config.systems.items()
        }

    @property
    def pool(self) -> httpx.AsyncBaseTransport:
        """The shared upstream connection pool, created on first use.

        Requests go to httpx's transport rather than through an AsyncClient,
        because a client's cookie jar would store upstream cookies and send
        them with later requests of other principals. The transport also
        never follows redirects.
        """
        if self._pool is None:
            self._pool = self._transport or httpx.AsyncHTTPTransport(
                limits=httpx.Limits(
                    max_connections=200,
                    max_keepalive_connections=50,
                    keepalive_expiry=KEEPALIVE_EXPIRY,
                ),
                trust_env=False,
            )
        return self._pool

    async def aclose(self) -> None:
        """Close the upstream connections and write the buffered records."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
        await self.rate_limiter.close()
        await anyio.to_thread.run_sync(self.recorder.close)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        await self._handle(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope["headers"]
        ]
        client = scope.get("client")
        system, rest, raw_rest = _split_path(scope)
        exchange = _Exchange(
            system=system,
            method=scope["method"],
            source=client[0] if client else None,
            request_id=_request_id(scope, headers),
        )
        status = 500
        try:
            status = await self._serve(
                exchange, scope, headers, rest, raw_rest, receive, send
            )
        except GatewayError as exc:
            status = exc.status
            exchange.reason = exchange.reason or exc.code
            await _send_error(send, exc, exchange)
        except Exception as exc:
            # Only the exception type is logged: messages of HTTP and Redis
            # errors can carry URLs. The request fails closed.
            log.error(
                "gateway request %s for system %s failed: %s",
                exchange.request_id,
                exchange.system,
                type(exc).__name__,
            )
            exchange.reason = "internal error"
            if not exchange.response_started:
                error = GatewayError(500, "internal_error", "internal server error")
                await _send_error(send, error, exchange)
        finally:
            self._record(exchange, status)

    async def _serve(
        self,
        exchange: _Exchange,
        scope: Scope,
        headers: list[tuple[str, str]],
        rest: str,
        raw_rest: str,
        receive: Receive,
        send: Send,
    ) -> int:
        system = self.config.systems.get(exchange.system)
        if system is None:
            raise errors.unknown_system(exchange.system)
        try:
            check_path(rest, raw_rest)
        except UnsafePathError as exc:
            raise errors.unsafe_path(str(exc)) from None
        exchange.principal = await self._authenticate(headers, exchange.source)
        await self._check_rate(exchange, system)
        self._authorize(exchange, system, rest)
        injected = await self.credentials.get(system.name, system.credential)
        return await self._forward(
            exchange, system, injected, scope, headers, raw_rest, receive, send
        )

    async def _authenticate(
        self, headers: list[tuple[str, str]], source: str | None
    ) -> Principal:
        token = _bearer_token(headers)
        if token is None:
            raise errors.unauthorized()
        if not token.startswith(API_TOKEN_PREFIX):
            # An access token is checked in memory. Only a failure goes on to
            # authenticate_bearer, which counts it against the source address.
            principal = self._verified_access_token(token)
            if principal is not None:
                token_id = principal.api_token_id
                if token_id is not None and not await self._in_force(token_id):
                    raise errors.unauthorized()
                return principal
        try:
            return await anyio.to_thread.run_sync(
                lambda: authenticate_bearer(
                    self.store, self.keyring, token, source=source
                )
            )
        except ThrottledError as exc:
            raise errors.throttled(
                exc.retry_after, "too many failed attempts; retry later"
            ) from None
        except AuthenticationError:
            raise errors.unauthorized() from None

    async def _in_force(self, token_id: int) -> bool:
        """Return whether API token ``token_id`` is unrevoked and unexpired.

        The result is reused for API_TOKEN_RECHECK_SECONDS, then read again
        from the store in a worker thread. The read takes no lock, so a CLI
        command that has SQLite's write lock does not delay it. Raises
        the gateway's 503 when the store cannot be read.
        """
        now = time.monotonic()
        cached = self._api_tokens.get(token_id)
        if cached is not None and now - cached[0] < API_TOKEN_RECHECK_SECONDS:
            return cached[1]
        driver_error = self.store.engine.dialect.loaded_dbapi.Error
        try:
            in_force = await anyio.to_thread.run_sync(
                api_token_in_force_unlocked, self.store, token_id
            )
        except (SQLAlchemyError, driver_error) as exc:
            log.error("reading API token %d failed: %s", token_id, exc)
            raise errors.token_store_unavailable() from None
        if len(self._api_tokens) >= ACCESS_TOKEN_CACHE_SIZE:
            self._api_tokens.clear()
        self._api_tokens[token_id] = (now, in_force)
        return in_force

    def _verified_access_token(self, token: str) -> Principal | None:
        cached = self._verified.get(token)
        now = time.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            principal = verify_access_token(self.keyring, token)
        except AuthenticationError:
            return None
        if len(self._verified) >= ACCESS_TOKEN_CACHE_SIZE:
            self._verified.clear()
        rejected_at = _expiry(token) + LEEWAY_SECONDS
        self._verified[token] = (
            min(now + ACCESS_TOKEN_CACHE_SECONDS, rejected_at),
            principal,
        )
        return principal

    async def _check_rate(self, exchange: _Exchange, system: SystemConfig) -> None:
        limit = system.rate_limit
        if limit is None or exchange.principal is None:
            return
        key = bucket_key(exchange.principal.label, system.name)
        wait = await self.rate_limiter.acquire(key, limit)
        if wait > 0:
            retry_after = max(1, int(wait + 0.999))
            raise errors.throttled(
                retry_after,
                f"rate limit of system {system.name!r} reached "
                f"({limit.requests} requests per {limit.per_seconds:g} s); "
                f"retry after {retry_after} s",
            )

    def _authorize(self, exchange: _Exchange, system: SystemConfig, rest: str) -> None:
        assert exchange.principal is not None
        found = match_rule(system.rules, exchange.method, rest or "/")
        if found is None:
            exchange.reason = "no matching rule"
            raise errors.no_rule(system.name, exchange.method)
        exchange.rule = found.rule.pattern
        if found.permission is None:
            exchange.reason = "no permission applies to this method or path"
            raise GatewayError(
                403,
                "forbidden",
                f"rule {found.rule.pattern!r} of system {system.name!r} gives no "
                f"permission for this {exchange.method} request (deny by default)",
                {"permission": None, "reason": exchange.reason},
            )
        exchange.permission = found.permission
        decision = explain_role_limit(
            self.authorizer.check(
                exchange.principal.label,
                found.permission,
                roles=exchange.principal.role_limit,
            ),
            exchange.principal,
        )
        if not decision:
            exchange.reason = decision.reason
            raise errors.denied(found.permission, decision.reason, decision.to_dict())
        exchange.allowed = True

    async def _forward(
        self,
        exchange: _Exchange,
        system: SystemConfig,
        injected: Injected,
        scope: Scope,
        headers: list[tuple[str, str]],
        raw_rest: str,
        receive: Receive,
        send: Send,
    ) -> int:
        request = self._upstream_request(
            system, injected, scope, headers, raw_rest, receive
        )
        try:
            response = await self._send(request)
        except httpx.TimeoutException:
            raise errors.upstream_timeout(system.name) from None
        except httpx.TransportError as exc:
            log.warning(
                "gateway could not reach the upstream of %s: %s",
                system.name,
                type(exc).__name__,
            )
            raise errors.upstream_unreachable(system.name) from None
        exchange.upstream_status = response.status_code
        try:
            await _relay_response(response, injected, exchange, send)
        finally:
            await response.aclose()
        return response.status_code

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.pool.handle_async_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # An upstream may close a kept-alive connection just as it is
            # reused. A request without a body that cannot change anything is
            # safe to send once more, on a new connection.
            has_body = "content-length" in request.headers or (
                "transfer-encoding" in request.headers
            )
            if request.method not in RETRY_METHODS or has_body:
                raise
            log.info("gateway retries %s after a closed connection", request.method)
            return await self.pool.handle_async_request(request)

    def _upstream_request(
        self,
        system: SystemConfig,
        injected: Injected,
        scope: Scope,
        headers: list[tuple[str, str]],
        raw_rest: str,
        receive: Receive,
    ) -> httpx.Request:
        limit = system.max_request_bytes
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            raise errors.body_too_large(limit)
        query = scope.get("query_string", b"").decode("latin-1")
        if injected.query:
            names = {name for name, _ in injected.query}
            kept = [
                (name, value)
                for name, value in parse_qsl(query, keep_blank_values=True)
                if name not in names
            ]
            query = urlencode(kept + list(injected.query))
        url = system.upstream + raw_rest + (f"?{query}" if query else "")
        has_body = declared is not None or any(
            name == "transfer-encoding" for name, _ in headers
        )
        return httpx.Request(
            scope["method"],
            url,
            headers=_upstream_headers(headers, injected),
            content=_request_body(receive, limit) if has_body else None,
            extensions={"timeout": self._timeouts[system.name].as_dict()},
        )

    def _record(self, exchange: _Exchange, status: int) -> None:
        principal = exchange.principal.label if exchange.principal else None
        decision = "allowed" if exchange.allowed else "denied"
        log.info(
            "gateway %s %s %s -> %d (%s, request id %s)",
            principal or "anonymous",
            exchange.method,
            # The system comes from the request's decoded path, so a %0A in
            # it must not start a new log line.
            _printable(exchange.permission or exchange.system),
            status,
            decision,
            exchange.request_id,
        )
        self.recorder.add(
            RequestRecord(
                principal=principal,
                system=exchange.system,
                method=exchange.method,
                rule=exchange.rule,
                permission=exchange.permission,
                decision=decision,
                status=status,
                upstream_status=exchange.upstream_status,
                source_address=exchange.source,
                request_id=exchange.request_id,
                reason=exchange.reason,
            )
        )


def explain_role_limit(decision: Decision, principal: Principal) -> Decision:
    """Name the token's role subset in a denial that no deny rule explains.

    The engine already counted only the token's roles; this only rewords the
    reason, so the caller learns that another role of theirs might grant it.
    """
    if decision or principal.role_limit is None or decision.deny is not None:
        return decision
    roles = ", ".join(sorted(principal.role_limit)) or "none"
    return Decision(
        False,
        decision.principal,
        decision.permission,
        note=f"the token of {decision.principal} is limited to roles {roles}, "
        f"none of which grants {decision.permission}",
    )


def _printable(text: str) -> str:
    """Return ``text`` with control characters escaped, for a one-line log."""
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def _split_path(scope: Scope) -> tuple[str, str, str]:
    """Return the system, and the rest of the path decoded and as sent."""
    root: str = scope.get("root_path", "")
    path: str = scope["path"]
    raw = scope.get("raw_path")
    raw_path = raw.decode("latin-1") if raw else path
    if root:
        path = path.removeprefix(root)
        raw_path = raw_path.removeprefix(root)
    if unquote(raw_path) != path:
        # The raw path does not line up with the decoded one, so the decoded
        # path is re-encoded and forwarded instead.
        raw_path = quote(path, safe="/:@!$&'()*+,;=-._~")
    system, _, rest = path.lstrip("/").partition("/")
    _, _, raw_rest = raw_path.lstrip("/").partition("/")
    if rest or path.endswith(system + "/"):
        rest = "/" + rest
        raw_rest = "/" + raw_rest
    return system, rest, raw_rest


def _request_id(scope: Scope, headers: list[tuple[str, str]]) -> str:
    state = scope.get("state") or {}
    existing = state.get("request_id")
    if isinstance(existing, str):
        return existing
    for name, value in headers:
        if name == REQUEST_ID_HEADER and _REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def _expiry(token: str) -> float:
    """Return the exp claim of an access token whose signature was verified."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])


def _bearer_token(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name == "content-length":
            try:
                return int(value)
            except ValueError:
                raise errors.GatewayError(
                    400, "bad_request", "invalid Content-Length header"
                ) from None
    return None


def _upstream_headers(
    headers: list[tuple[str, str]], injected: Injected
) -> list[tuple[str, str]]:
    listed = _connection_listed(headers)
    replaced = {name for name, _ in injected.headers}
    forwarded = [
        (name, value)
        for name, value in headers
        if not _is_hop_by_hop(name, listed)
        and name not in CALLER_ONLY
        and name not in replaced
    ]
    return forwarded + list(injected.headers)


async def _request_body(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.GatewayError(499, "client_closed", "client disconnected")
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise errors.body_too_large(limit)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _response_headers(
    response: httpx.Response, injected: Injected, exchange: _Exchange
) -> list[tuple[bytes, bytes]]:
    pairs = [
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in response.headers.raw
    ]
    listed = _connection_listed(pairs)
    result = []
    for name, value in pairs:
        if _is_hop_by_hop(name, listed) or name in UPSTREAM_ONLY:
            continue
        # An upstream that echoes the credential, for example in a Location
        # carrying the query parameter, gets it masked here.
        for mask in injected.masks:
            text = mask.decode("latin-1")
            if text in value:
                value = value.replace(text, "*" * len(text))
        result.append((name.encode("latin-1"), value.encode("latin-1")))
    result.append((REQUEST_ID_HEADER.encode(), exchange.request_id.encode()))
    return result


async def _relay_response(
    response: httpx.Response, injected: Injected, exchange: _Exchange, send: Send
) -> None:
    exchange.response_started = True
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": _response_headers(response, injected, exchange),
        }
    )
    # Compressed bodies pass through as they are: masking needs the plain text.
    # NOTE: so a credential echoed inside a gzip or br body is not masked.
    encoded = response.headers.get("content-encoding", "identity") != "identity"
    masker = None if encoded else ResponseMasker(injected.masks)
    try:
        async for chunk in response.aiter_raw():
            out = masker.feed(chunk) if masker else chunk
            if out:
                await send(
                    {"type": "http.response.body", "body": out, "more_body": True}
                )
        tail = masker.finish() if masker else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})
    except httpx.TransportError as exc:
        # The status line is already sent, so the connection is cut instead.
        log.warning(
            "gateway lost the upstream of %s mid-response: %s",
            exchange.system,
            type(exc).__name__,
        )
        exchange.reason = "upstream failed mid-response"


async def _send_error(send: Send, exc: GatewayError, exchange: _Exchange) -> None:
    body = exc.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER.encode(), exchange.request_id.encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    await send(
        {"type": "http.response.start", "status": exc.status, "headers": headers}
    )
    await send({"type": "http.response.body", "body": body})


def build_gateway(store: Store, keyring: KeyRing, home: Path) -> GatewayApp:
    """Return a gateway over ``home``'s config file or KEYSTEWARD_GATEWAY_CONFIG."""
    from keysteward.gateway.config import gateway_config_path, load_gateway_config

    config = load_gateway_config(gateway_config_path(home))
    return GatewayApp(store, keyring, config)
