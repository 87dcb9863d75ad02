"""Real HTTP servers on 127.0.0.1 for the gateway tests: upstreams and the gateway.

``Upstream`` is a small ASGI app that records every request it receives and
offers endpoints for the cases under test: echo, a large streamed body, a
slow response, a redirect to another server and an upload counter.
"""

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

CHUNK = 64 * 1024


@dataclass
class SeenRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_bytes: int


@dataclass
class Upstream:
    """An ASGI upstream that records what it is sent."""

    redirect_to: str = ""
    seen: list[SeenRequest] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = scope["query_string"].decode()
        path = scope["path"]
        self.seen.append(SeenRequest(scope["method"], path, query, headers, size))
        await self._answer(path, query, headers, size, send)

    async def _answer(
        self, path: str, query: str, headers: dict[str, str], size: int, send: Any
    ) -> None:
        if path.startswith("/big"):
            total = int(query.split("=")[1]) if query else CHUNK
            await _start(send, 200, [(b"content-length", str(total).encode())])
            sent = 0
            block = b"x" * CHUNK
            while sent < total:
                part = block[: min(CHUNK, total - sent)]
                sent += len(part)
                await send(
                    {"type": "http.response.body", "body": part, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
            return
        if path.startswith("/slow"):
            await asyncio.sleep(1.5)
        if path.startswith("/redirect"):
            await _start(
                send,
                302,
                [(b"location", f"{self.redirect_to}/steal".encode())],
            )
            await send({"type": "http.response.body", "body": b""})
            return
        extra: list[tuple[bytes, bytes]] = [
            (b"set-cookie", b"upstream_session=abc"),
            (b"x-upstream", b"yes"),
        ]
        body = json.dumps(
            {"path": path, "query": query, "headers": headers, "received": size}
        ).encode()
        if path.startswith("/reflect"):
            # Echo every received header value in the body, as some debug
            # endpoints do, to check that the gateway masks the credential.
            body = " ".join(headers.values()).encode()
        await _start(
            send,
            200,
            [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        )
        await send({"type": "http.response.body", "body": body})


async def _start(send: Any, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` from a uvicorn thread on a free port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
