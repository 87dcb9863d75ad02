"""Secret reads through the ASGI shortcut and the FastAPI route, on a real server.

The shortcut handles ``GET /api/v1/secrets/{name}`` only for an access token
and an empty query string. A read sent with ``?via=route``, a parameter the
route ignores, therefore goes through the FastAPI route instead. Both paths
must send the same responses and record the same events, and neither may
serve a decision that a committed change made stale.
"""

import base64
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update

from common.event_failures import events_rejected
from common.principals import create_account, keyring_with_random_key
from common.read_servers import api_token_for, exchange_token, serve_app
from keysteward.app import create_app
from keysteward.authz.models import RoleGrant
from keysteward.authz.services import mark_policy_changed
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.events.verify import verify_chain
from keysteward.identities.models import ServiceAccount, ServiceAccountStatus
from keysteward.tokens import services as token_services
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import SecretVersion, VersionStatus
from keysteward.vault.services import put_secret

HUBSPOT_VALUE = "pat-na1-" + "5e4d3c2b" * 4
ACTOR = "service_account:crm-sync"
FORBIDDEN = {
    "error": {
        "code": "forbidden",
        "message": "not permitted to read this secret",
        "details": {},
    }
}
UNAUTHORIZED = {
    "error": {
        "code": "unauthorized",
        "message": "missing or invalid token",
        "details": {},
    }
}
# A query string the route ignores, which makes the shortcut pass a read on.
VIA_ROUTE = {"via": "route"}
# Response headers that differ between any two responses.
UNCOMPARED_HEADERS = {"date", "x-request-id", "content-length"}


@dataclass
class Server:
    url: str
    store: Store
    keyring: KeyRing


@dataclass
class Caller:
    principal: Principal
    api_token: str
    access_token: str


@pytest.fixture
def server(store: Store) -> Iterator[Server]:
    keyring = keyring_with_random_key()
    app = create_app(store.settings, store=store, keyring=keyring)
    with serve_app(app) as url:
        yield Server(url, store, keyring)


def _caller(server: Server, *permissions: str) -> Caller:
    principal = create_account(server.store, "crm-sync", *permissions)
    api_token = api_token_for(server.store, principal)
    return Caller(principal, api_token, exchange_token(server.url, api_token))


def _put(server: Server, name: str, value: bytes, pending: bool = False) -> None:
    with server.store.session() as session:
        put_secret(session, server.keyring, name, value, actor="t", pending=pending)


def _get(
    server: Server,
    name: str,
    bearer: str | None,
    request_id: str | None = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    headers = {}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return httpx.get(
        f"{server.url}/api/v1/secrets/{name}", headers=headers, params=params
    )


def _read(
    server: Server, path: str, name: str, bearer: str, request_id: str
) -> httpx.Response:
    """Send a read along ``path``: "shortcut", or "route" through FastAPI."""
    params = VIA_ROUTE if path == "route" else None
    return _get(server, name, bearer, request_id, params)


def _both(
    server: Server, name: str, bearer: str | None
) -> tuple[httpx.Response, httpx.Response]:
    """Send one read without a query string, then one with ``VIA_ROUTE``.

    The first is the shortcut's case, and the second always reaches the
    route. Returns both responses, in that order.
    """
    return (
        _get(server, name, bearer, "compare-shortcut"),
        _get(server, name, bearer, "compare-route", VIA_ROUTE),
    )


def _comparable_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name not in UNCOMPARED_HEADERS
    }


def _assert_same_headers(shortcut: httpx.Response, route: httpx.Response) -> None:
    assert _comparable_headers(shortcut) == _comparable_headers(route)
    assert shortcut.headers["x-request-id"] == "compare-shortcut"
    assert route.headers["x-request-id"] == "compare-route"


def _read_events(store: Store) -> list[Event]:
    with store.session() as session:
        query = (
            select(Event).where(Event.action == "secret.read").order_by(Event.sequence)
        )
        return list(session.scalars(query))


def _event_summary(events: list[Event]) -> list[tuple[Any, ...]]:
    return [
        (event.outcome, event.actor, event.request_id, event.source_address)
        for event in events
    ]


def _chain_problems(store: Store) -> list[Any]:
    with store.session() as session:
        return verify_chain(session).problems


def test_allowed_read_same(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    shortcut, route = _both(server, "hubspot", caller.access_token)

    assert shortcut.status_code == 200, shortcut.text
    assert route.status_code == 200, route.text
    assert shortcut.json() == {
        "name": "hubspot",
        "version": 1,
        "value": HUBSPOT_VALUE,
        "encoding": "utf-8",
    }
    assert route.json() == shortcut.json()
    _assert_same_headers(shortcut, route)

    events = _read_events(server.store)
    assert _event_summary(events) == [
        ("allowed", ACTOR, "compare-shortcut", "127.0.0.1"),
        ("allowed", ACTOR, "compare-route", "127.0.0.1"),
    ]
    assert events[0].target_id == "hubspot"
    assert events[0].details["version"] == 1
    assert events[0].details["via"] == "api"
    assert events[1].details == events[0].details
    assert _chain_problems(server.store) == []


@pytest.mark.parametrize("name", ["payroll", "no-such-secret"])
def test_denied_read_same(server: Server, name: str) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "payroll", b"very secret")
    shortcut, route = _both(server, name, caller.access_token)

    assert shortcut.status_code == 403, shortcut.text
    assert route.status_code == 403, route.text
    assert shortcut.json() == FORBIDDEN
    assert route.json() == FORBIDDEN
    _assert_same_headers(shortcut, route)

    events = _read_events(server.store)
    assert _event_summary(events) == [
        ("denied", ACTOR, "compare-shortcut", "127.0.0.1"),
        ("denied", ACTOR, "compare-route", "127.0.0.1"),
    ]
    assert "version" not in events[0].details
    assert events[1].details == events[0].details
    assert _chain_problems(server.store) == []


@pytest.mark.parametrize("name", ["pending-only", "no-such-secret"])
def test_missing_is_404_same(server: Server, name: str) -> None:
    caller = _caller(server, "keysteward:secrets/*:read")
    _put(server, "pending-only", b"not yet", pending=True)
    shortcut, route = _both(server, name, caller.access_token)

    assert shortcut.status_code == 404, shortcut.text
    assert route.status_code == 404, route.text
    assert shortcut.json()["error"]["code"] == "not_found"
    assert route.json() == shortcut.json()
    _assert_same_headers(shortcut, route)
    # A permitted read of a missing value is recorded as not found.
    events = _read_events(server.store)
    assert [event.outcome for event in events] == ["not_found", "not_found"]
    assert [event.target_id for event in events] == [name, name]
    assert _chain_problems(server.store) == []


def test_explicit_version_same(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", b"first")
    plain = _get(server, "hubspot", caller.access_token)
    explicit = _get(server, "hubspot", caller.access_token, params={"version": 1})
    _put(server, "hubspot", b"second")
    older = _get(server, "hubspot", caller.access_token, params={"version": 1})

    assert plain.status_code == 200, plain.text
    assert explicit.status_code == 200, explicit.text
    assert older.status_code == 200, older.text
    assert plain.json() == {
        "name": "hubspot",
        "version": 1,
        "value": "first",
        "encoding": "utf-8",
    }
    assert explicit.json() == plain.json()
    assert older.json() == plain.json()
    events = _read_events(server.store)
    assert [event.details["version"] for event in events] == [1, 1, 1]


def test_api_token_same(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    shortcut, route = _both(server, "hubspot", caller.access_token)
    api_token = _get(server, "hubspot", caller.api_token)

    assert api_token.status_code == 200, api_token.text
    assert api_token.json() == shortcut.json()
    assert api_token.json() == route.json()
    assert _comparable_headers(api_token) == _comparable_headers(shortcut)

    events = _read_events(server.store)
    assert [event.outcome for event in events] == ["allowed"] * 3
    # The store path (API token) and the snapshot path record the same details.
    assert events[2].details == events[0].details
    assert events[2].details == events[1].details


@pytest.mark.parametrize(
    "bearer", [None, "ks_api_typo", "not.a.jwt", "tampered"], ids=str
)
def test_wrong_token_same(server: Server, bearer: str | None) -> None:
    if bearer == "tampered":
        caller = _caller(server, "keysteward:secrets/hubspot:read")
        signed, _, signature = caller.access_token.rpartition(".")
        # The first character of the signature carries six bits of it.
        changed = "B" if signature[0] == "A" else "A"
        bearer = f"{signed}.{changed}{signature[1:]}"
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    shortcut, route = _both(server, "hubspot", bearer)

    assert shortcut.status_code == 401, shortcut.text
    assert route.status_code == 401, route.text
    assert shortcut.json() == UNAUTHORIZED
    assert route.json() == UNAUTHORIZED
    assert shortcut.headers["www-authenticate"] == "Bearer"
    _assert_same_headers(shortcut, route)
    assert _read_events(server.store) == []


def test_binary_value_same(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/binary:read")
    _put(server, "binary", bytes([0, 255, 1]))
    shortcut, route = _both(server, "binary", caller.access_token)

    assert shortcut.status_code == 200, shortcut.text
    assert route.status_code == 200, route.text
    assert shortcut.json()["encoding"] == "base64"
    assert base64.b64decode(shortcut.json()["value"]) == bytes([0, 255, 1])
    assert route.json() == shortcut.json()
    _assert_same_headers(shortcut, route)


def test_unrecorded_read_same(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    with events_rejected(server.store):
        shortcut, route = _both(server, "hubspot", caller.access_token)

    assert shortcut.status_code == 503, shortcut.text
    assert route.status_code == 503, route.text
    assert HUBSPOT_VALUE not in shortcut.text
    assert HUBSPOT_VALUE not in route.text
    assert route.json() == shortcut.json()
    _assert_same_headers(shortcut, route)
    assert _read_events(server.store) == []
    recovered = _get(server, "hubspot", caller.access_token)
    assert recovered.status_code == 200, recovered.text


def _corrupt_values(store: Store) -> None:
    """Overwrite every stored ciphertext, so decrypting it fails."""
    with store.session() as session:
        session.execute(update(SecretVersion).values(ciphertext=b"\x00" * 48))


def _wait_for_idle(server: Server) -> None:
    """Return once the server finished logging the requests it has handled.

    The server logs a failed request's traceback after it sent the 500
    response. Python 3.11 parses source lines with the ast module to format
    a traceback, and two threads doing that at once can raise SystemError
    ("AST constructor recursion depth mismatch"), which crashed pytest while
    it reported a failure here. uvicorn serves all requests on one event
    loop thread, so its response to a later request comes after that log.
    """
    httpx.get(f"{server.url}/healthz")


def test_undecryptable_read_same(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    _corrupt_values(server.store)
    shortcut, route = _both(server, "hubspot", caller.access_token)
    store_path = _get(server, "hubspot", caller.api_token)
    _wait_for_idle(server)

    assert store_path.status_code == 500, store_path.text
    assert store_path.json()["error"]["code"] == "internal_error"
    assert route.status_code == 500, route.text
    assert route.headers["content-type"] == "application/json"
    assert route.json() == store_path.json()
    assert shortcut.status_code == 500, shortcut.text
    assert shortcut.headers["content-type"] == "application/json"
    assert shortcut.json() == store_path.json()


def test_undecryptable_read_not_allowed(server: Server) -> None:
    """A read that returned no value is not recorded as an allowed read.

    The store path (API token) decrypts before it records the event, so a
    value that fails to decrypt leaves no event there.
    """
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    _corrupt_values(server.store)
    store_path = _get(server, "hubspot", caller.api_token)
    shortcut, route = _both(server, "hubspot", caller.access_token)
    _wait_for_idle(server)

    assert store_path.status_code == 500, store_path.text
    assert shortcut.status_code == 500, shortcut.text
    assert route.status_code == 500, route.text
    outcomes = [event.outcome for event in _read_events(server.store)]
    assert "allowed" not in outcomes


def test_generated_request_id_recorded(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/*:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    shortcut = _get(server, "hubspot", caller.access_token)
    route = _get(server, "hubspot", caller.access_token, params=VIA_ROUTE)
    # A secret added after the snapshot was loaded: the shortcut passes the
    # read on, and the route reads it through the store.
    _put(server, "payroll", b"p4ss")
    passed_on = _get(server, "payroll", caller.access_token)

    assert shortcut.status_code == 200, shortcut.text
    assert route.status_code == 200, route.text
    assert passed_on.status_code == 200, passed_on.text
    sent = [
        response.headers["x-request-id"] for response in (shortcut, route, passed_on)
    ]
    assert len(set(sent)) == 3
    events = _read_events(server.store)
    assert [event.request_id for event in events] == sent


def test_metrics_count_both_paths(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    _both(server, "hubspot", caller.access_token)
    _both(server, "payroll", caller.access_token)

    metrics = httpx.get(f"{server.url}/metrics").text
    counted = {
        status: f'keysteward_http_requests_total{{method="GET",'
        f'route="/api/v1/secrets/{{name}}",status="{status}"}} 2.0'
        for status in (200, 403)
    }
    assert counted[200] in metrics
    assert counted[403] in metrics


def test_access_log_both_paths(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keysteward.http")
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    _both(server, "hubspot", caller.access_token)

    for request_id in ("compare-shortcut", "compare-route"):
        line = f"GET /api/v1/secrets/{{name}} -> 200 (request id {request_id})"
        assert line in caplog.messages


# The route serves access-token reads from the snapshot too, so both paths
# must see a change committed by another session (as another server would).
PATHS = ["shortcut", "route"]


def _revoke_grants(store: Store, principal: Principal) -> None:
    with store.session() as session:
        session.execute(
            delete(RoleGrant).where(
                RoleGrant.principal_type == PrincipalType.SERVICE_ACCOUNT,
                RoleGrant.principal_id == principal.id,
            )
        )
        mark_policy_changed(session)


@pytest.mark.parametrize("path", PATHS)
def test_revoked_grant_denied(server: Server, path: str) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    before = _read(server, path, "hubspot", caller.access_token, "revoke-01")
    assert before.status_code == 200, before.text

    _revoke_grants(server.store, caller.principal)
    after = _read(server, path, "hubspot", caller.access_token, "revoke-02")

    assert after.status_code == 403, after.text
    assert after.json() == FORBIDDEN
    events = _read_events(server.store)
    assert _event_summary(events) == [
        ("allowed", ACTOR, "revoke-01", "127.0.0.1"),
        ("denied", ACTOR, "revoke-02", "127.0.0.1"),
    ]
    assert _chain_problems(server.store) == []


@pytest.mark.parametrize("path", PATHS)
def test_disabled_account_denied(server: Server, path: str) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    before = _read(server, path, "hubspot", caller.access_token, "disable-01")
    assert before.status_code == 200, before.text

    with server.store.session() as session:
        account = session.get_one(ServiceAccount, caller.principal.id)
        account.status = ServiceAccountStatus.DISABLED
    after = _read(server, path, "hubspot", caller.access_token, "disable-02")

    assert after.status_code == 403, after.text
    assert after.json() == FORBIDDEN
    events = _read_events(server.store)
    assert _event_summary(events) == [
        ("allowed", ACTOR, "disable-01", "127.0.0.1"),
        ("denied", ACTOR, "disable-02", "127.0.0.1"),
    ]
    assert events[1].details["reason"] == "principal is disabled or departed"
    assert _chain_problems(server.store) == []


@pytest.mark.parametrize("path", PATHS)
def test_revoked_api_token_denied(server: Server, path: str) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    before = _read(server, path, "hubspot", caller.access_token, "token-01")
    assert before.status_code == 200, before.text

    with server.store.session() as session:
        for record in token_services.list_api_tokens(session):
            token_services.revoke_api_token(session, record.id, actor="t")
    after = _read(server, path, "hubspot", caller.access_token, "token-02")
    other_route = httpx.get(
        f"{server.url}/api/v1/me",
        headers={"Authorization": f"Bearer {caller.access_token}"},
    )

    assert after.status_code == 403, after.text
    assert after.json() == FORBIDDEN
    assert other_route.status_code == 401, other_route.text
    assert other_route.json() == UNAUTHORIZED
    events = _read_events(server.store)
    assert _event_summary(events) == [
        ("allowed", ACTOR, "token-01", "127.0.0.1"),
        ("denied", ACTOR, "token-02", "127.0.0.1"),
    ]
    assert events[1].details["reason"] == (
        "the API token behind the access token is revoked or expired"
    )
    assert _chain_problems(server.store) == []


@pytest.mark.parametrize("path", PATHS)
def test_new_version_served(server: Server, path: str) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", b"first")
    before = _read(server, path, "hubspot", caller.access_token, "rotate-01")
    assert before.json()["value"] == "first"

    _put(server, "hubspot", b"second")
    after = _read(server, path, "hubspot", caller.access_token, "rotate-02")

    assert after.status_code == 200, after.text
    assert after.json()["value"] == "second"
    assert after.json()["version"] == 2
    events = _read_events(server.store)
    assert _event_summary(events) == [
        ("allowed", ACTOR, "rotate-01", "127.0.0.1"),
        ("allowed", ACTOR, "rotate-02", "127.0.0.1"),
    ]
    assert [event.details["version"] for event in events] == [1, 2]
    assert _chain_problems(server.store) == []


@pytest.mark.parametrize("path", PATHS)
def test_retired_current_404(server: Server, path: str) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    before = _read(server, path, "hubspot", caller.access_token, "retire-01")
    assert before.status_code == 200, before.text

    # retire_version rejects the current version, so change its status as
    # a hand-made fix in the database would.
    with server.store.session() as session:
        session.execute(
            update(SecretVersion)
            .where(SecretVersion.status == VersionStatus.CURRENT)
            .values(status=VersionStatus.RETIRED, ciphertext=b"")
        )
    after = _read(server, path, "hubspot", caller.access_token, "retire-02")

    assert after.status_code == 404, after.text
    assert HUBSPOT_VALUE not in after.text
    events = _read_events(server.store)
    assert _event_summary(events) == [
        ("allowed", ACTOR, "retire-01", "127.0.0.1"),
        ("not_found", ACTOR, "retire-02", "127.0.0.1"),
    ]
    assert _chain_problems(server.store) == []


@dataclass(frozen=True)
class TimedRead:
    request_id: str
    started: float
    finished: float
    status: int


READER_THREADS = 8
# Responses received before the grant is revoked.
REVOKE_AFTER = 100
# Reads each thread starts after the revocation committed, before it stops.
READS_AFTER_REVOCATION = 10


def test_revocation_midway(server: Server) -> None:
    caller = _caller(server, "keysteward:secrets/hubspot:read")
    _put(server, "hubspot", HUBSPOT_VALUE.encode())
    reads: list[TimedRead] = []
    reads_lock = threading.Lock()
    revocation: dict[str, float] = {}

    def read_many(thread_number: int) -> None:
        headers = {"Authorization": f"Bearer {caller.access_token}"}
        deadline = time.monotonic() + 60
        after_revocation = 0
        number = 0
        with httpx.Client(base_url=server.url, timeout=30) as client:
            # Reads go on until the revocation is in, however long it waits
            # for the write lock, so reads start on both sides of it.
            while after_revocation < READS_AFTER_REVOCATION:
                if time.monotonic() > deadline:
                    return
                number += 1
                if "committed" in revocation:
                    after_revocation += 1
                request_id = f"read-{thread_number}-{number:05d}"
                started = time.monotonic()
                response = client.get(
                    "/api/v1/secrets/hubspot",
                    headers={**headers, "X-Request-ID": request_id},
                )
                finished = time.monotonic()
                with reads_lock:
                    reads.append(
                        TimedRead(request_id, started, finished, response.status_code)
                    )

    def revoke_midway() -> None:
        deadline = time.monotonic() + 60
        while len(reads) < REVOKE_AFTER and time.monotonic() < deadline:
            time.sleep(0.001)
        revocation["started"] = time.monotonic()
        _revoke_grants(server.store, caller.principal)
        revocation["committed"] = time.monotonic()

    threads = [
        threading.Thread(target=read_many, args=(number,))
        for number in range(READER_THREADS)
    ]
    threads.append(threading.Thread(target=revoke_midway))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert "committed" in revocation
    assert len(reads) >= REVOKE_AFTER + READER_THREADS * READS_AFTER_REVOCATION
    assert {read.status for read in reads} <= {200, 403}
    earlier = [read for read in reads if read.finished < revocation["started"]]
    later = [read for read in reads if read.started > revocation["committed"]]
    assert len(earlier) >= REVOKE_AFTER - READER_THREADS
    assert later, "no read started after the revocation committed"
    assert [read for read in earlier if read.status != 200] == []
    assert [read for read in later if read.status == 200] == []

    events = _read_events(server.store)
    recorded = {event.request_id: event.outcome for event in events}
    expected = {
        read.request_id: "allowed" if read.status == 200 else "denied" for read in reads
    }
    assert len(events) == len(reads)
    assert recorded == expected
    assert _chain_problems(server.store) == []


def test_reads_after_restart(store: Store) -> None:
    """The same app object serves reads again after its lifespan restarted."""
    keyring = keyring_with_random_key()
    app = create_app(store.settings, store=store, keyring=keyring)
    principal = create_account(store, "crm-sync", "keysteward:secrets/hubspot:read")
    api_token = api_token_for(store, principal)
    with store.session() as session:
        put_secret(session, keyring, "hubspot", HUBSPOT_VALUE.encode(), actor="t")

    statuses = []
    for _run in range(2):
        with serve_app(app) as url:
            access_token = exchange_token(url, api_token)
            response = httpx.get(
                f"{url}/api/v1/secrets/hubspot",
                headers={"Authorization": f"Bearer {access_token}"},
            )
            statuses.append(response.status_code)

    assert statuses == [200, 200]
