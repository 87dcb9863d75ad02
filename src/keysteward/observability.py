"""Request ids, security headers and Prometheus metrics for the HTTP app."""

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

log = logging.getLogger("keysteward.http")

API_PREFIX = "/api/v1"

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming request id is kept only when it is short and plain, so a
# client cannot write arbitrary text into logs and events.
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{8,64}")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _request_id(request: Request) -> str:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    if _REQUEST_ID_PATTERN.fullmatch(offered):
        return offered
    # 24 hex digits (96 random bits): shorter than the 32 characters at which
    # the log redaction starts to treat random-looking text as a secret.
    return secrets.token_hex(12)


def route_template(request: Request) -> str:
    """Return the matched route's path template, such as ``/api/v1/people/{id}``.

    Logs, metrics and events use the template, never the raw path, because a
    path can carry any text and would make one metric series per value.
    """
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    # An included router's route may carry only its own part of the path.
    prefix = API_PREFIX
    if request.url.path.startswith(prefix + "/") and not path.startswith(prefix):
        return prefix + path
    return path


def install_observability(app: FastAPI) -> None:
    """Add request ids, security headers, an access log line and ``/metrics``."""
    registry = CollectorRegistry()
    requests = Counter(
        "keysteward_http_requests",
        "HTTP requests served, by method, route template and status code.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "keysteward_http_request_duration_seconds",
        "Time to serve an HTTP request, in seconds, by route template.",
        ["route"],
        registry=registry,
    )
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = _request_id(request)
        request.state.request_id = request_id
        started = time.perf_counter()
        response = await call_next(request)
        route = route_template(request)
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(route).observe(time.perf_counter() - started)
        response.headers[REQUEST_ID_HEADER] = request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        log.info(
            "%s %s -> %d (request id %s)",
            request.method,
            route,
            response.status_code,
            request_id,
        )
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
