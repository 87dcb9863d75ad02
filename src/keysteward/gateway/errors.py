"""Gateway error responses, in the API's ``{"error": {...}}`` shape.

No response built here contains the upstream credential or the caller's token:
messages name systems, permissions and principals only.
"""

import json
from collections.abc import Mapping
from typing import Any


class GatewayError(Exception):
    """An error response the gateway sends itself instead of forwarding."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        error = {"code": self.code, "message": self.message, "details": self.details}
        return json.dumps({"error": error}).encode()


def unknown_system(system: str) -> GatewayError:
    return GatewayError(
        404,
        "not_found",
        f"system {system!r} is not configured in the gateway; add it under "
        "systems in the gateway config",
    )


def unsafe_path(reason: str) -> GatewayError:
    return GatewayError(400, "bad_request", f"invalid request path: {reason}")


def unauthorized() -> GatewayError:
    return GatewayError(
        401,
        "unauthorized",
        "missing or invalid token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def throttled(retry_after: int, message: str) -> GatewayError:
    return GatewayError(
        429, "too_many_requests", message, headers={"Retry-After": str(retry_after)}
    )


def no_rule(system: str, method: str) -> GatewayError:
    return GatewayError(
        403,
        "forbidden",
        f"no gateway rule of system {system!r} covers this {method} request "
        "(deny by default)",
        {"permission": None, "reason": "no matching rule"},
    )


def denied(permission: str, reason: str, decision: Mapping[str, Any]) -> GatewayError:
    return GatewayError(
        403,
        "forbidden",
        f"missing permission {permission}",
        {"permission": permission, "reason": reason, "decision": dict(decision)},
    )


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        "payload_too_large",
        f"request body exceeds the gateway limit of {limit} bytes",
        {"max_request_bytes": limit},
    )


def upstream_timeout(system: str) -> GatewayError:
    return GatewayError(
        504, "gateway_timeout", f"upstream of system {system!r} timed out"
    )


def upstream_unreachable(system: str) -> GatewayError:
    return GatewayError(
        502, "bad_gateway", f"upstream of system {system!r} could not be reached"
    )


def credential_unavailable(system: str) -> GatewayError:
    return GatewayError(
        502,
        "bad_gateway",
        f"the credential of system {system!r} could not be read from the vault; "
        "check credential.secret in the gateway config",
    )


def token_store_unavailable() -> GatewayError:
    return GatewayError(
        503,
        "unavailable",
        "the token's revocation state could not be read from the store; retry later",
        headers={"Retry-After": "1"},
    )
