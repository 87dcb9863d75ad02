"""An app served from a uvicorn thread on 127.0.0.1, and tokens to call it with."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from keysteward.db import Store
from keysteward.tokens.principals import Principal
from keysteward.tokens.services import issue_api_token

START_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` from a uvicorn thread on a free port; yield its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start within {START_TIMEOUT} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def api_token_for(store: Store, principal: Principal) -> str:
    with store.session() as session:
        return issue_api_token(session, principal, actor="test").token


def exchange_token(url: str, api_token: str) -> str:
    """Exchange ``api_token`` for an access token at the server at ``url``."""
    response = httpx.post(
        f"{url}/api/v1/token",
        data={"grant_type": "client_credentials", "client_secret": api_token},
    )
    if response.status_code != 200:
        raise RuntimeError(f"token exchange failed with {response.status_code}")
    access: str = response.json()["access_token"]
    return access
