"""The gateway end to end: real upstream servers, a real gateway server, real tokens."""

import base64
import logging
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from common.gateway_servers import Upstream, serve
from keysteward.app import create_app
from keysteward.authz.models import PermissionUsage
from keysteward.authz.policy import AssignmentSpec, Policy, RoleSpec
from keysteward.authz.services import apply_policy
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.gateway import proxy as proxy_module
from keysteward.gateway.config import CONFIG_SETTING, parse_gateway_config
from keysteward.gateway.proxy import GatewayApp
from keysteward.gateway.ratelimit import RateLimiter, RedisRateLimiter
from keysteward.identities.models import ServiceAccount
from keysteward.tokens.access import issue_access_token, verify_access_token
from keysteward.tokens.exchange import exchange_api_token
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token, revoke_api_token
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import put_secret

READER = "service_account:crm-sync"
RULES = """
    rules:
      - {methods: [GET, HEAD], path: "/echo/**", resource: contacts}
      - {path: "/contacts/**", resource: contacts}
      - {path: /big, resource: files}
      - {path: /reflect, resource: contacts}
      - {path: /slow, resource: slow}
      - {path: /redirect, resource: moved}
      - {methods: [POST], path: /upload, resource: uploads}
"""
POLICY = Policy(
    roles={
        "hub-reader": RoleSpec(
            "hub-reader",
            ("hub:contacts:read", "hub:files:read", "hub:slow:read", "hub:moved:read"),
        ),
        "hub-uploader": RoleSpec("hub-uploader", ("hub:uploads:write",)),
    },
    assignments=(
        AssignmentSpec(READER, "hub-reader"),
        AssignmentSpec(READER, "hub-uploader"),
    ),
)


def _keyring() -> KeyRing:
    encoded = base64.b64encode(os.urandom(32)).decode()
    return KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))


def _credential() -> str:
    return "hubcred_" + "Zq8" * 12


@dataclass
class Env:
    store: Store
    keyring: KeyRing
    upstream: Upstream
    other: Upstream
    upstream_url: str
    tokens: dict[str, str]
    start: Callable[..., tuple[GatewayApp, httpx.Client]]


def _seed(store: Store, keyring: KeyRing) -> dict[str, str]:
    with store.session() as session:
        session.add_all([ServiceAccount(name="crm-sync"), ServiceAccount(name="idle")])
    with store.session() as session:
        apply_policy(session, POLICY, base=None, force=True)
        put_secret(session, keyring, "hub-token", _credential().encode(), actor="test")
    tokens = {}
    with store.session() as session:
        for name in ("crm-sync", "idle"):
            account = session.scalars(
                select(ServiceAccount).where(ServiceAccount.name == name)
            ).one()
            principal = Principal(PrincipalType.SERVICE_ACCOUNT, account.id, name)
            tokens[name] = issue_api_token(session, principal, actor="test").token
    return tokens


def _config(upstream_url: str, credential: str, extra: str) -> str:
    return f"""
systems:
  hub:
    upstream: {upstream_url}
    read_timeout: 0.5
    max_request_bytes: 1000
    credential: {credential}
{extra}
{RULES}
"""


@pytest.fixture
def env(sqlite_store: Store) -> Iterator[Env]:
    keyring = _keyring()
    tokens = _seed(sqlite_store, keyring)
    with ExitStack() as stack:
        other = Upstream()
        other_url = stack.enter_context(serve(other))
        upstream = Upstream(redirect_to=other_url)
        upstream_url = stack.enter_context(serve(upstream))

        def start(
            credential: str = "{secret: hub-token, inject: bearer}",
            extra: str = "",
            rate_limiter: RateLimiter | None = None,
        ) -> tuple[GatewayApp, httpx.Client]:
            config = parse_gateway_config(_config(upstream_url, credential, extra))
            gateway = GatewayApp(
                sqlite_store, keyring, config, rate_limiter=rate_limiter
            )
            url = stack.enter_context(serve(gateway))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
            return gateway, client

        yield Env(sqlite_store, keyring, upstream, other, upstream_url, tokens, start)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _everything_sent_back(response: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return headers + "\n" + response.text


def test_allowed_read_injects_credential(env: Env) -> None:
    _gateway, client = env.start()

    response = client.get(
        "/hub/echo/42?page=2",
        headers={**_auth(env.tokens["crm-sync"]), "Cookie": "keysteward_session=x"},
    )

    assert response.status_code == 200
    seen = env.upstream.seen[-1]
    assert seen.path == "/echo/42"
    assert seen.query == "page=2"
    assert seen.headers["authorization"] == f"Bearer {_credential()}"
    assert "cookie" not in seen.headers
    assert env.tokens["crm-sync"] not in str(seen.headers)
    client.get("/hub/echo/43", headers=_auth(env.tokens["idle"]))
    client.get("/hub/echo/44", headers=_auth(env.tokens["crm-sync"]))
    assert "cookie" not in env.upstream.seen[-1].headers
    assert response.headers["x-upstream"] == "yes"
    assert "set-cookie" not in response.headers
    assert _credential() not in _everything_sent_back(response)


def test_access_token_is_accepted(env: Env) -> None:
    _gateway, client = env.start()
    access = exchange_api_token(
        env.store, env.keyring, env.tokens["crm-sync"], source="127.0.0.1"
    )

    response = client.get("/hub/contacts/1", headers=_auth(access.token))

    assert response.status_code == 200
    assert env.upstream.seen[-1].path == "/contacts/1"


def test_revoked_api_token_stops_access_token(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proxy_module, "API_TOKEN_RECHECK_SECONDS", 0.0)
    _gateway, client = env.start()
    access = exchange_api_token(
        env.store, env.keyring, env.tokens["crm-sync"], source="127.0.0.1"
    )
    token_id = verify_access_token(env.keyring, access.token).api_token_id
    assert token_id is not None
    before = client.get("/hub/contacts/1", headers=_auth(access.token))
    with env.store.session() as session:
        revoke_api_token(session, token_id, actor="test")

    after = client.get("/hub/contacts/2", headers=_auth(access.token))

    assert before.status_code == 200
    assert after.status_code == 401
    assert [seen.path for seen in env.upstream.seen] == ["/contacts/1"]


def test_expired_access_token_is_401(env: Env) -> None:
    _gateway, client = env.start()
    with env.store.session() as session:
        account = session.scalars(
            select(ServiceAccount).where(ServiceAccount.name == "crm-sync")
        ).one()
        principal = Principal(PrincipalType.SERVICE_ACCOUNT, account.id, "crm-sync")
    expired = issue_access_token(
        env.keyring,
        principal,
        {"hub-reader"},
        api_token_id=1,
        now=datetime.now(UTC) - timedelta(hours=1),
    )

    response = client.get("/hub/contacts/1", headers=_auth(expired.token))

    assert response.status_code == 401
    assert env.upstream.seen == []


def test_denied_write_names_permission(env: Env) -> None:
    _gateway, client = env.start()

    response = client.post(
        "/hub/contacts/1", headers=_auth(env.tokens["crm-sync"]), content=b"{}"
    )

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["details"]["permission"] == "hub:contacts:write"
    assert "deny by default" in error["details"]["reason"]
    assert "hub:contacts:write" in error["message"]
    assert env.upstream.seen == []


def test_request_without_rule_is_denied(env: Env) -> None:
    _gateway, client = env.start()

    response = client.get("/hub/admin/users", headers=_auth(env.tokens["crm-sync"]))

    assert response.status_code == 403
    assert "no gateway rule" in response.json()["error"]["message"]
    assert response.json()["error"]["details"]["permission"] is None
    assert env.upstream.seen == []


def test_principal_without_grant_is_denied(env: Env) -> None:
    _gateway, client = env.start()

    response = client.get("/hub/echo/1", headers=_auth(env.tokens["idle"]))

    assert response.status_code == 403
    assert response.json()["error"]["details"]["permission"] == "hub:contacts:read"
    assert env.upstream.seen == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}],
)
def test_missing_or_bad_token_is_401(env: Env, headers: dict[str, str]) -> None:
    _gateway, client = env.start()

    response = client.get("/hub/echo/1", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert env.upstream.seen == []


def test_unknown_system_is_404(env: Env) -> None:
    _gateway, client = env.start()

    response = client.get("/nosuch/echo", headers=_auth(env.tokens["crm-sync"]))

    assert response.status_code == 404
    assert "nosuch" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "path", ["/hub/echo/..%2Fadmin", "/hub/echo/%2e%2e/admin", "/hub/echo//x"]
)
def test_ambiguous_path_is_400(env: Env, path: str) -> None:
    _gateway, client = env.start()

    response = client.get(path, headers=_auth(env.tokens["crm-sync"]))

    assert response.status_code == 400
    assert env.upstream.seen == []


def _wait_for_gateway_lines(
    caplog: pytest.LogCaptureFixture, timeout: float = 5.0
) -> list[str]:
    """Wait until the gateway has logged a request; return its log lines."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            record.getMessage()
            for record in caplog.records
            if record.getMessage().startswith("gateway ")
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_path_cannot_forge_log_line(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    # On the package logger, whose level an earlier CLI run may have raised.
    caplog.set_level(logging.INFO, logger="keysteward")
    _gateway, client = env.start()

    response = client.get("/evil%0Agateway%20admin%20GET%20hub%20-%3E%20200/x")

    assert response.status_code in (401, 404)
    # The gateway logs a request after its response is sent.
    gateway_lines = _wait_for_gateway_lines(caplog)
    assert gateway_lines
    for line in gateway_lines:
        assert "\n" not in line
    assert any("evil\\ngateway" in line for line in gateway_lines)


def test_credential_absent_from_responses_and_logs(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway, client = env.start()
    token = _auth(env.tokens["crm-sync"])
    responses = [
        client.get("/hub/echo/1", headers=token),
        client.get("/hub/reflect", headers=token),
        client.post("/hub/contacts/1", headers=token),
        client.get("/hub/slow", headers=token),
        client.get("/hub/redirect", headers=token),
        client.get("/hub/echo/1"),
    ]
    gateway.recorder.flush()

    assert env.upstream.seen[1].headers["authorization"].endswith(_credential())
    for response in responses:
        assert _credential() not in _everything_sent_back(response)
    assert "*" * len(_credential()) in responses[1].text
    assert _credential() not in caplog.text
    with env.store.session() as session:
        events = session.scalars(select(Event)).all()
        assert events
        for event in events:
            assert _credential() not in str(event.details)


def test_query_credential_is_masked_in_echo(env: Env) -> None:
    _gateway, client = env.start(
        credential="{secret: hub-token, inject: query, name: api_key}"
    )

    response = client.get(
        "/hub/echo/1?api_key=forged&x=1", headers=_auth(env.tokens["crm-sync"])
    )

    assert response.status_code == 200
    seen = env.upstream.seen[-1]
    assert seen.query == f"x=1&api_key={_credential()}"
    assert _credential() not in response.text
    assert "forged" not in seen.query


def test_basic_and_header_injection(env: Env) -> None:
    _gateway, basic = env.start(
        credential="{secret: hub-token, inject: basic, username: ops}"
    )
    _gateway, custom = env.start(
        credential="{secret: hub-token, inject: header, name: X-Api-Key}"
    )
    token = _auth(env.tokens["crm-sync"])

    basic.get("/hub/echo/1", headers=token)
    basic_seen = env.upstream.seen[-1]
    custom.get("/hub/echo/1", headers={**token, "X-Api-Key": "forged"})
    custom_seen = env.upstream.seen[-1]

    assert basic_seen.headers["authorization"].startswith("Basic ")
    assert custom_seen.headers["x-api-key"] == _credential()
    assert "authorization" not in custom_seen.headers


def test_large_body_streams_without_buffering(env: Env) -> None:
    _gateway, client = env.start()
    size = 50 * 1024 * 1024
    received = 0
    chunks = 0

    tracemalloc.start()
    try:
        with client.stream(
            "GET", f"/hub/big?size={size}", headers=_auth(env.tokens["crm-sync"])
        ) as response:
            for chunk in response.iter_raw():
                received += len(chunk)
                chunks += 1
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 200
    assert received == size
    assert chunks > 100
    assert peak < 16 * 1024 * 1024


def test_upstream_timeout_is_504(env: Env) -> None:
    _gateway, client = env.start()

    response = client.get("/hub/slow", headers=_auth(env.tokens["crm-sync"]))

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "gateway_timeout"


def test_redirect_is_returned_not_followed(env: Env) -> None:
    _gateway, client = env.start()

    response = client.get("/hub/redirect", headers=_auth(env.tokens["crm-sync"]))

    assert response.status_code == 302
    assert response.headers["location"].endswith("/steal")
    assert env.other.seen == []


def test_body_over_limit_is_413(env: Env) -> None:
    _gateway, client = env.start()
    token = _auth(env.tokens["crm-sync"])

    declared = client.post("/hub/upload", headers=token, content=b"a" * 2000)
    chunked = client.post(
        "/hub/upload", headers=token, content=iter([b"a" * 600, b"b" * 600])
    )
    small = client.post("/hub/upload", headers=token, content=b"a" * 900)

    assert declared.status_code == 413
    assert chunked.status_code == 413
    assert small.status_code == 200
    assert small.json()["received"] == 900


def test_rate_limit_returns_429(env: Env) -> None:
    _gateway, client = env.start(extra="    rate_limit: {requests: 2, per_seconds: 60}")
    token = _auth(env.tokens["crm-sync"])

    statuses = [client.get("/hub/echo/1", headers=token).status_code for _ in range(3)]
    limited = client.get("/hub/echo/1", headers=token)

    assert statuses[:2] == [200, 200]
    assert statuses[2] == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert len(env.upstream.seen) == 2


def test_missing_vault_secret_is_502(env: Env) -> None:
    _gateway, client = env.start(credential="{secret: no-such-secret}")

    response = client.get("/hub/echo/1", headers=_auth(env.tokens["crm-sync"]))

    assert response.status_code == 502
    assert "could not be read from the vault" in response.json()["error"]["message"]
    assert env.upstream.seen == []


def test_rate_limiter_failure_fails_closed(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1, so every Redis call fails to connect.
    _gateway, client = env.start(
        extra="    rate_limit: {requests: 5, per_seconds: 1}",
        rate_limiter=RedisRateLimiter("redis://127.0.0.1:1/0"),
    )

    response = client.get("/hub/echo/1", headers=_auth(env.tokens["crm-sync"]))

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert env.upstream.seen == []
    assert "ConnectionError" in caplog.text


def test_requests_recorded_as_events_and_usage(env: Env) -> None:
    gateway, client = env.start()
    token = _auth(env.tokens["crm-sync"])
    client.get("/hub/echo/1?secret=abc", headers=token)
    client.get("/hub/echo/2", headers=token)
    client.post("/hub/contacts/1", headers=token)

    written = gateway.recorder.flush()

    assert written == 3
    with env.store.session() as session:
        events = session.scalars(
            select(Event).where(Event.action == "gateway.request")
        ).all()
        usage = {
            (row.permission, row.allowed_count, row.denied_count)
            for row in session.scalars(select(PermissionUsage))
        }
    assert [event.outcome for event in events] == ["allowed", "allowed", "denied"]
    assert {event.actor for event in events} == {READER}
    assert events[0].details["upstream_status"] == 200
    assert events[0].details["permission"] == "hub:contacts:read"
    assert "abc" not in str([event.details for event in events])
    assert ("hub:contacts:read", 2, 0) in usage
    assert ("hub:contacts:write", 0, 1) in usage


def test_gateway_mounted_in_api(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "gateway.yaml"
    config_file.write_text(
        _config(env.upstream_url, "{secret: hub-token, inject: bearer}", "")
    )
    monkeypatch.setenv(CONFIG_SETTING, str(config_file))
    app = create_app(env.store.settings, store=env.store, keyring=env.keyring)

    with serve(app) as url, httpx.Client(base_url=url) as client:
        response = client.get(
            "/gateway/hub/echo/7", headers=_auth(env.tokens["crm-sync"])
        )
        denied = client.delete(
            "/gateway/hub/contacts/7", headers=_auth(env.tokens["crm-sync"])
        )

    assert response.status_code == 200
    assert response.json()["path"] == "/echo/7"
    assert denied.status_code == 403
    assert denied.json()["error"]["details"]["permission"] == "hub:contacts:delete"
