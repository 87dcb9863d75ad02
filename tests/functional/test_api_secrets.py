"""The HTTP API and the SDK against a real uvicorn server on 127.0.0.1."""

import base64
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlalchemy import select

import keysteward
from common.event_failures import events_rejected
from keysteward.app import create_app
from keysteward.authz.models import Permission, Role, RoleGrant
from keysteward.authz.services import mark_policy_changed
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.events.verify import verify_chain
from keysteward.identities.models import Person, ServiceAccount
from keysteward.tokens import services as token_services
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import put_secret

HUBSPOT_VALUE = "pat-na1-" + "5e4d3c2b" * 4


@dataclass
class Server:
    url: str
    store: Store
    keyring: KeyRing


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(store: Store, caplog: pytest.LogCaptureFixture) -> Iterator[Server]:
    """Serve the API for ``store`` from a uvicorn thread on a free local port."""
    caplog.set_level(logging.DEBUG)
    encoded = base64.b64encode(os.urandom(32)).decode()
    keyring = KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))
    app = create_app(store.settings, store=store, keyring=keyring)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="debug")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 10 s")
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", store, keyring)
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


def _account(server: Server, name: str, *permissions: str) -> str:
    """Create account ``name`` with a role of ``permissions``; return its token."""
    with server.store.session() as session:
        owner = session.scalar(select(Person).where(Person.email == "ops@example.com"))
        if owner is None:
            owner = Person(name="Ops", email="ops@example.com")
        account = ServiceAccount(name=name, owner=owner, purpose="test")
        role = Role(name=f"{name}-role")
        for text in permissions:
            system, resource, action = text.split(":")
            role.permissions.append(
                Permission(system=system, resource=resource, action=action)
            )
        session.add_all([account, role])
        session.flush()
        session.add(
            RoleGrant(
                role_id=role.id,
                principal_type="service_account",
                principal_id=account.id,
            )
        )
        mark_policy_changed(session)
        principal = Principal(PrincipalType.SERVICE_ACCOUNT, account.id, name)
        return issue_api_token(session, principal, actor="t").token


def _put(server: Server, name: str, value: bytes) -> None:
    with server.store.session() as session:
        put_secret(session, server.keyring, name, value, actor="t")


def _exchange(server: Server, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/token",
        data={"grant_type": "client_credentials", "client_secret": token},
    )


def _get(server: Server, name: str, bearer: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.get(f"{server.url}/api/v1/secrets/{name}", headers=headers)


def test_healthz(server: Server) -> None:
    response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_exchange_then_read(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    exchanged = _exchange(server, token)
    assert exchanged.status_code == 200, exchanged.text
    body = exchanged.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    response = _get(server, "hubspot", body["access_token"])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "hubspot",
        "version": 1,
        "value": HUBSPOT_VALUE,
        "encoding": "utf-8",
    }
    with server.store.session() as session:
        event = session.scalars(
            select(Event).where(Event.action == "secret.read")
        ).one()
    assert event.outcome == "allowed"
    assert event.source_address == "127.0.0.1"
    assert event.details["via"] == "api"


def test_read_with_api_token(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/*:read")
    _put(server, "binary", bytes([0, 255, 1]))
    response = _get(server, "binary", token)
    assert response.status_code == 200
    assert response.json()["encoding"] == "base64"
    assert base64.b64decode(response.json()["value"]) == bytes([0, 255, 1])


def test_denied_and_missing_look_alike(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/hubspot:read")
    _put(server, "payroll", b"very secret")
    denied_existing = _get(server, "payroll", token)
    denied_missing = _get(server, "no-such-secret", token)
    assert denied_existing.status_code == 403, denied_existing.text
    assert denied_missing.status_code == 403, denied_missing.text
    assert denied_existing.json() == denied_missing.json()
    assert denied_existing.json()["error"]["code"] == "forbidden"


def test_permitted_missing_is_404(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/*:read")
    response = _get(server, "not-there", token)
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("bearer", [None, "ks_api_typo", "not.a.jwt"])
def test_bad_bearer_is_401(server: Server, bearer: str | None) -> None:
    response = _get(server, "hubspot", bearer)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "Traceback" not in response.text


def test_exchange_rejects_bad_grant(server: Server) -> None:
    token = _account(server, "crm-sync")
    response = httpx.post(
        f"{server.url}/api/v1/token",
        data={"grant_type": "password", "client_secret": token},
    )
    assert response.status_code == 400
    assert "client_credentials" in response.json()["error"]["message"]
    assert token not in response.text


def test_exchange_missing_fields_shape(server: Server) -> None:
    response = httpx.post(f"{server.url}/api/v1/token", data={})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"]["problems"][0]["location"] == ["body", "grant_type"]


def test_exchange_with_basic_auth(server: Server) -> None:
    token = _account(server, "crm-sync")
    response = httpx.post(
        f"{server.url}/api/v1/token",
        data={"grant_type": "client_credentials"},
        auth=("crm-sync", token),
    )
    assert response.status_code == 200, response.text


def test_revoked_token_exchange_fails(server: Server) -> None:
    token = _account(server, "crm-sync")
    with server.store.session() as session:
        for record in token_services.list_api_tokens(session):
            token_services.revoke_api_token(session, record.id, actor="t")
    response = _exchange(server, token)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "invalid client credentials"


def test_repeated_failures_throttled(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    from keysteward.tokens.prefix import generate_api_token

    wrong = generate_api_token()
    statuses = [
        _exchange(server, wrong).status_code
        for _ in range(token_services.FREE_FAILURES + 2)
    ]
    assert statuses[: token_services.FREE_FAILURES + 1] == [401] * (
        token_services.FREE_FAILURES + 1
    )
    assert statuses[-1] == 429
    blocked = _exchange(server, wrong)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "authentication failures from 127.0.0.1" in caplog.text
    assert wrong not in caplog.text


def _me(server: Server, bearer: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"}
    return httpx.get(f"{server.url}/api/v1/me", headers=headers)


def test_blocked_source_keeps_access_token(server: Server) -> None:
    token = _account(server, "crm-sync")
    access = _exchange(server, token).json()["access_token"]
    # Enough failures from this client's address to block it for minutes.
    with server.store.session() as session:
        for _ in range(token_services.FREE_FAILURES + 8):
            token_services.record_auth_failure(session, "127.0.0.1")

    wrong_access = _me(server, access + "x")
    assert wrong_access.status_code == 429, wrong_access.text
    assert int(wrong_access.headers["Retry-After"]) >= 1
    api_token = _me(server, token)
    assert api_token.status_code == 429, api_token.text
    valid_access = _me(server, access)
    assert valid_access.status_code == 200, valid_access.text
    assert valid_access.json()["principal"] == "service_account:crm-sync"


def test_sdk_reads_through_server(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    with keysteward.Client(server.url, token) as client:
        assert client.secret("hubspot") == HUBSPOT_VALUE
        assert token not in repr(client)
        with pytest.raises(keysteward.ClientError) as caught:
            client.secret("payroll")
    assert caught.value.status == 403


def test_sdk_caches_until_expiry(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", b"first")
    now = [1000.0]
    with keysteward.Client(
        server.url, token, cache_seconds=60, clock=lambda: now[0]
    ) as client:
        assert client.secret("hubspot") == "first"
        _put(server, "hubspot", b"second")
        now[0] += 59
        assert client.secret("hubspot") == "first"
        now[0] += 2
        assert client.secret("hubspot") == "second"
    with server.store.session() as session:
        reads = session.scalars(select(Event).where(Event.action == "secret.read"))
        assert len(list(reads)) == 2


def test_unrecorded_read_fails(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    access = _exchange(server, token).json()["access_token"]
    with events_rejected(server.store):
        failed = _get(server, "hubspot", access)
    assert failed.status_code == 503, failed.text
    assert HUBSPOT_VALUE not in failed.text
    with server.store.session() as session:
        reads = session.scalars(select(Event).where(Event.action == "secret.read"))
        assert reads.all() == []
    recovered = _get(server, "hubspot", access)
    assert recovered.status_code == 200, recovered.text
    assert recovered.json()["value"] == HUBSPOT_VALUE


def test_concurrent_reads_chain_events(server: Server) -> None:
    token = _account(server, "crm-sync", "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    access = _exchange(server, token).json()["access_token"]
    statuses: list[int] = []

    def read() -> None:
        statuses.append(_get(server, "hubspot", access).status_code)

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 12
    with server.store.session() as session:
        reads = session.scalars(select(Event).where(Event.action == "secret.read"))
        assert len(reads.all()) == 12
        report = verify_chain(session)
    assert report.problems == []
