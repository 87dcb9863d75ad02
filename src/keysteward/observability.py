"""Request ids, security headers and Prometheus metrics for the HTTP app."""

import glob
import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Metric,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("keysteward.http")

# prometheus_client's multiprocess mode: when this variable is set before
# prometheus_client is imported, every process writes its metric values to
# files in the directory it names, and a scrape of any process adds up all
# of them (see keysteward.metrics_directory).
MULTIPROCESS_DIR_SETTING = "PROMETHEUS_MULTIPROC_DIR"

API_PREFIX = "/api/v1"

REQUEST_ID_HEADER = "X-Request-ID"
# ASGI gives header names in lower case, as bytes.
REQUEST_ID_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
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


# The same headers as raw ASGI pairs, for responses built without Starlette.
SECURITY_HEADER_PAIRS = [
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in SECURITY_HEADERS.items()
]


def request_id_of_scope(scope: Scope) -> str:
    """Return the request's offered X-Request-ID when it is plain, else a new id."""
    offered = ""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER_KEY:
            offered = value.decode("latin-1")
            break
    if _REQUEST_ID_PATTERN.fullmatch(offered):
        return offered
    return _new_request_id()


class _RequestIds:
    """Unique request ids: a random prefix per process and a counter.

    24 hex digits, shorter than the 32 characters at which the log redaction
    starts to treat random-looking text as a secret. The ids need to be
    unique, not secret, and a counter costs no system call per request,
    unlike reading 96 random bits.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count(secrets.randbits(40))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


_new_request_id = _RequestIds()
# A forked server process starts a prefix of its own.
os.register_at_fork(after_in_child=_new_request_id.reset)


def route_template(request: Request) -> str:
    """Return the matched route's path template, such as ``/api/v1/people/{id}``.

    Logs, metrics and events use the template, never the raw path, because a
    path can carry any text and would make one metric series per value.
    """
    return _scope_route_template(request.scope)


def _scope_route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    # An included router's route may carry only its own part of the path.
    prefix = API_PREFIX
    if scope["path"].startswith(prefix + "/") and not path.startswith(prefix):
        return prefix + path
    return path


class ObservabilityMiddleware:
    """Give each HTTP request an id, security headers, metrics and a log line.

    The request id is stored in ``scope["state"]``, where
    ``request.state.request_id`` finds it. A plain ASGI class, because
    Starlette's ``BaseHTTPMiddleware`` runs the app in a task of its own and
    passes every response message through a memory stream.
    """

    def __init__(self, app: ASGIApp, metrics: "HttpMetrics") -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = request_id_of_scope(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._observe(scope, message, request_id, started)
            await send(message)

        await self.app(scope, receive, send_observed)

    def _observe(
        self, scope: Scope, start: Message, request_id: str, started: float
    ) -> None:
        # The router has set scope["route"] by the time the response starts.
        # Latency is measured to the start of the response, not to its last
        # byte, so a streamed body does not count.
        route = _scope_route_template(scope)
        status = start["status"]
        self.metrics.observe(
            scope["method"], route, status, time.perf_counter() - started
        )
        # ASGI lets an app leave out the headers of a response.
        start.setdefault("headers", [])
        headers = MutableHeaders(scope=start)
        headers[REQUEST_ID_HEADER] = request_id
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        log_request(scope["method"], route, status, request_id)


def log_request(method: str, route: str, status: int, request_id: str) -> None:
    log.info("%s %s -> %d (request id %s)", method, route, status, request_id)


class HttpMetrics:
    """The Prometheus request counter and latency histogram of one app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "keysteward_http_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "keysteward_http_request_duration_seconds",
            "Time to serve an HTTP request, in seconds, by route template.",
            ["route"],
            registry=registry,
        )
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and record its time to the start of the response."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            # labels() takes a lock and builds a tuple on each call, so each
            # combination's children are looked up once.
            series = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(route),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)


def install_observability(app: FastAPI) -> None:
    """Add request ids, security headers, an access log line and ``/metrics``."""
    registry = CollectorRegistry()
    http_metrics = HttpMetrics(registry)
    app.state.metrics_registry = registry
    app.state.http_metrics = http_metrics
    app.add_middleware(ObservabilityMiddleware, metrics=http_metrics)
    scraped = _scraped_registry(registry)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(scraped), media_type=CONTENT_TYPE_LATEST)


def _scraped_registry(own: CollectorRegistry) -> CollectorRegistry:
    """Return the registry that ``/metrics`` exports.

    That is the app's own, unless the processes share a metrics directory
    (as the workers of ``serve --workers`` do). Then it is one that sums the
    values of every process that wrote there, those of ended processes
    included, so counters never go back when a worker is restarted.
    """
    directory = os.environ.get(MULTIPROCESS_DIR_SETTING)
    if not directory:
        return own
    combined = CollectorRegistry()
    combined.register(_SharedValues(directory))
    return combined


class _SharedValues(Collector):
    """Sum the value files of every process in a multiprocess directory.

    A file that cannot be read (cut short, or not a value file) is left out
    and logged, so one bad file does not fail every scrape.
    """

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._skipped: set[str] = set()

    def collect(self) -> Iterable[Metric]:
        readable = []
        for path in sorted(glob.glob(os.path.join(self._directory, "*.db"))):
            try:
                multiprocess.MultiProcessCollector.merge([path], accumulate=False)
            except Exception as exc:
                if path not in self._skipped:
                    self._skipped.add(path)
                    log.error("skipping unreadable metrics file %s: %s", path, exc)
                continue
            readable.append(path)
        return multiprocess.MultiProcessCollector.merge(readable, accumulate=True)
