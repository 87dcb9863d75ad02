"""The observability middleware: request ids, security headers, metrics, log.

Each test serves a small app from uvicorn on 127.0.0.1, so the middleware
runs under the same server as ``keysteward serve``.
"""

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send
from websockets.sync.client import connect

from common.read_servers import serve_app
from keysteward.observability import (
    API_PREFIX,
    CONTENT_SECURITY_POLICY,
    REQUEST_ID_HEADER,
    SECURITY_HEADERS,
    install_observability,
    route_template,
)

OFFERED_ID = "req-abcdef12"


def _build_app() -> FastAPI:
    app = FastAPI()
    install_observability(app)

    @app.get("/items/{item_id}")
    def item(item_id: int, request: Request) -> dict[str, object]:
        return {
            "item": item_id,
            "request_id": request.state.request_id,
            "route": route_template(request),
        }

    @app.get("/own-headers")
    def own_headers() -> Response:
        headers = {
            "Content-Security-Policy": "default-src 'none'",
            "Cache-Control": "max-age=60",
            REQUEST_ID_HEADER: "set-by-the-route",
        }
        return Response("ok", headers=headers)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"request_id": request.state.request_id}, 500)

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    things = APIRouter(prefix="/things")

    @things.get("/{thing_id}")
    def thing(thing_id: int, request: Request) -> dict[str, object]:
        return {"thing": thing_id, "route": route_template(request)}

    app.include_router(things, prefix=API_PREFIX)

    async def bare(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body", "body": b""})

    app.mount("/bare", bare)
    return app


@pytest.fixture
def app() -> FastAPI:
    return _build_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[httpx.Client]:
    """Serve ``app`` from a uvicorn thread; yield a client bound to its URL."""
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as built:
        yield built


def _registry(app: FastAPI) -> CollectorRegistry:
    registry: CollectorRegistry = app.state.metrics_registry
    return registry


def _requests_counted(app: FastAPI, method: str, route: str, status: str) -> float:
    value = _registry(app).get_sample_value(
        "keysteward_http_requests_total",
        {"method": method, "route": route, "status": status},
    )
    return value or 0.0


def test_offered_request_id_reaches_route(client: httpx.Client) -> None:
    response = client.get("/items/1", headers={REQUEST_ID_HEADER: OFFERED_ID})
    assert response.status_code == 200
    assert response.headers[REQUEST_ID_HEADER] == OFFERED_ID
    assert response.json()["request_id"] == OFFERED_ID


def test_generated_request_id_reaches_route(client: httpx.Client) -> None:
    response = client.get("/items/1")
    generated = response.headers[REQUEST_ID_HEADER]
    assert len(generated) == 24
    assert int(generated, 16) >= 0
    assert response.json()["request_id"] == generated


@pytest.mark.parametrize("offered", ["short", "has space 123", "x" * 65, "a/b/c/d/e"])
def test_unsafe_request_id_replaced(client: httpx.Client, offered: str) -> None:
    response = client.get("/items/1", headers={REQUEST_ID_HEADER: offered})
    assert response.headers[REQUEST_ID_HEADER] != offered
    assert len(response.headers[REQUEST_ID_HEADER]) == 24


def test_security_headers_added(client: httpx.Client) -> None:
    response = client.get("/items/1")
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name


def test_route_security_headers_kept(client: httpx.Client) -> None:
    response = client.get("/own-headers")
    assert response.headers.get_list("Content-Security-Policy") == [
        "default-src 'none'"
    ]
    assert response.headers.get_list("Cache-Control") == ["max-age=60"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert CONTENT_SECURITY_POLICY not in response.headers.values()


def test_response_without_headers_gets_them(client: httpx.Client) -> None:
    response = client.get("/bare/x", headers={REQUEST_ID_HEADER: OFFERED_ID})
    assert response.status_code == 204
    assert response.headers[REQUEST_ID_HEADER] == OFFERED_ID
    assert response.headers["X-Frame-Options"] == "DENY"


def test_route_request_id_replaced(client: httpx.Client) -> None:
    response = client.get("/own-headers", headers={REQUEST_ID_HEADER: OFFERED_ID})
    assert response.headers.get_list(REQUEST_ID_HEADER) == [OFFERED_ID]


def test_error_handler_sees_request_id(client: httpx.Client) -> None:
    response = client.get("/boom", headers={REQUEST_ID_HEADER: OFFERED_ID})
    assert response.status_code == 500
    assert response.json() == {"request_id": OFFERED_ID}


def test_metrics_use_route_template(app: FastAPI, client: httpx.Client) -> None:
    client.get("/items/41")
    client.get("/items/42")
    client.get("/items/not-a-number")
    assert _requests_counted(app, "GET", "/items/{item_id}", "200") == 2
    assert _requests_counted(app, "GET", "/items/{item_id}", "422") == 1
    latency_count = _registry(app).get_sample_value(
        "keysteward_http_request_duration_seconds_count", {"route": "/items/{item_id}"}
    )
    assert latency_count == 3
    exposed = client.get("/metrics").text
    assert 'route="/items/{item_id}"' in exposed
    assert "/items/41" not in exposed


def test_included_router_route_has_prefix(app: FastAPI, client: httpx.Client) -> None:
    response = client.get(f"{API_PREFIX}/things/5")
    assert response.json()["route"] == f"{API_PREFIX}/things/{{thing_id}}"
    assert _requests_counted(app, "GET", f"{API_PREFIX}/things/{{thing_id}}", "200")


def test_unmatched_path_counted(app: FastAPI, client: httpx.Client) -> None:
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert _requests_counted(app, "GET", "unmatched", "404") == 1
    assert _requests_counted(app, "GET", "/no/such/path", "404") == 0


def test_log_line_names_route_and_id(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keysteward.http")
    client.get("/items/7", headers={REQUEST_ID_HEADER: OFFERED_ID})
    messages = [r.getMessage() for r in caplog.records if r.name == "keysteward.http"]
    assert messages == [f"GET /items/{{item_id}} -> 200 (request id {OFFERED_ID})"]


def test_websocket_passes_through(app: FastAPI, client: httpx.Client) -> None:
    url = str(client.base_url).replace("http://", "ws://", 1) + "/echo"
    with connect(url) as websocket:
        websocket.send("hello")
        assert websocket.recv(timeout=10) == "hello"
    assert _requests_counted(app, "GET", "/echo", "101") == 0
    assert _requests_counted(app, "GET", "unmatched", "404") == 0
