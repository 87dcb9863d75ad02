"""The HTTP API: ``create_app`` wires each concept's router under ``/api/v1``.

Every error leaves as ``{"error": {"code", "message", "details"}}``, and an
unexpected exception becomes a 500 without a stack trace.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from keysteward import __version__
from keysteward.config import Settings
from keysteward.db import Store, open_store
from keysteward.errors import KeystewardError, NotFoundError
from keysteward.vault.keys import KeyRing, keyring_for_home

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    422: "invalid_request",
    429: "too_many_requests",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Return the one JSON error shape every endpoint uses."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(
        body, status_code=status, headers=dict(headers) if headers else None
    )


def _wants_page(request: Request) -> bool:
    """Return whether an error should be an HTML page: a browser on a dashboard path."""
    if request.url.path.startswith(API_PREFIX + "/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_page(request):
            from keysteward.web.routes import error_page

            return error_page(request, exc.status_code, str(exc.detail))
        code = STATUS_CODES.get(exc.status_code, "error")
        return error_response(
            exc.status_code, code, str(exc.detail), headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(
        _request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        # Only the location and message of each problem: the input itself
        # could be a secret.
        problems = [
            {"location": list(error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return error_response(
            422, "invalid_request", "invalid request", {"problems": problems}
        )

    @app.exception_handler(KeystewardError)
    async def keysteward_error(request: Request, exc: KeystewardError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 400
        if _wants_page(request):
            from keysteward.web.routes import error_page

            return error_page(request, status, str(exc))
        return error_response(status, STATUS_CODES[status], str(exc))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled %s on %s %s (request id %s)",
            type(exc).__name__,
            request.method,
            request.url.path,
            getattr(request.state, "request_id", "-"),
        )
        return error_response(500, "internal_error", "internal server error")


class KeystewardAPI(FastAPI):
    """The FastAPI app, with the secret read shortcut in front of its middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        from keysteward.vault.shortcut import SecretReadShortcut

        return SecretReadShortcut(super().build_middleware_stack())


def create_app(
    settings: Settings, store: Store | None = None, keyring: KeyRing | None = None
) -> FastAPI:
    """Build the API for ``settings``; ``store`` and ``keyring`` default to theirs."""
    from keysteward.observability import install_observability

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from keysteward.cluster.runtime import start_cluster_services

        cluster = start_cluster_services(app)
        # The server's own tasks (its main task and this lifespan), which
        # the secret reader distinguishes from requests being served.
        app.state.idle_tasks = frozenset(asyncio.all_tasks())
        yield
        cluster.stop()
        reader = getattr(app.state, "secret_reader", None)
        if reader is not None:
            reader.close()
            # A closed reader accepts no reads, and the app may start again.
            app.state.secret_reader = None
        await app.state.gateway.aclose()
        if owns_store:
            app.state.store.engine.dispose()

    owns_store = store is None
    app = KeystewardAPI(
        title="keysteward",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
        # Metrics come from /metrics (Prometheus). FastAPI's own OpenTelemetry
        # hooks, on by default since 0.142, would check the global providers
        # on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.store = store or open_store(settings)
    app.state.keyring = keyring or keyring_for_home(settings.home)
    app.state.settings = settings
    _install_error_handlers(app)
    install_observability(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for router in _concept_routers():
        app.include_router(router, prefix=API_PREFIX)
    from keysteward.gateway.proxy import build_gateway

    app.state.gateway = build_gateway(app.state.store, app.state.keyring, settings.home)
    app.mount("/gateway", app.state.gateway)
    from keysteward.web.routes import install_dashboard

    install_dashboard(app)
    return app


def _concept_routers() -> list[APIRouter]:
    from keysteward.audit.api import router as audit_router
    from keysteward.authz.api import router as authz_router
    from keysteward.credentials.api import router as credentials_router
    from keysteward.discovery.api import router as discovery_router
    from keysteward.events.api import router as events_router
    from keysteward.identities.api import router as identities_router
    from keysteward.operators.api import router as operators_router
    from keysteward.reviews.api import router as reviews_router
    from keysteward.rotation.api import router as rotation_router
    from keysteward.systems.api import router as systems_router
    from keysteward.tokens.api import router as tokens_router
    from keysteward.vault.api import router as vault_router

    return [
        operators_router,
        tokens_router,
        vault_router,
        identities_router,
        systems_router,
        credentials_router,
        authz_router,
        audit_router,
        discovery_router,
        rotation_router,
        reviews_router,
        events_router,
    ]
