"""Every API route: unauthenticated, denied, allowed and bad input."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from common.api_client import Api, serve_api
from keysteward.config import Settings
from keysteward.db import Store, open_store
from keysteward.events.models import Event

# (path, permission a read-only operator holds?)
LIST_ROUTES = [
    "/api/v1/people",
    "/api/v1/service-accounts",
    "/api/v1/systems",
    "/api/v1/credentials",
    "/api/v1/secrets",
    "/api/v1/tokens",
    "/api/v1/roles",
    "/api/v1/assignments",
    "/api/v1/findings",
    "/api/v1/audit-runs",
    "/api/v1/discovery/hits",
    "/api/v1/rotations",
    "/api/v1/reviews",
    "/api/v1/events",
]


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    with serve_api(store) as built:
        yield built


@pytest.fixture
def fresh_api(sqlite_store: Store) -> Iterator[Api]:
    """A server of its own, for tests that change the policy."""
    with serve_api(sqlite_store) as built:
        yield built


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One server for the tests that only read, to keep the module fast."""
    shared = open_store(Settings(home=tmp_path_factory.mktemp("api-home")))
    with serve_api(shared) as built:
        yield built
    shared.engine.dispose()


def test_lists_require_authentication(sqlite_api: Api) -> None:
    for path in LIST_ROUTES:
        response = sqlite_api.get(path, who=None)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthorized", path
        assert response.headers["WWW-Authenticate"] == "Bearer", path


def test_lists_deny_person_without_role(sqlite_api: Api) -> None:
    for path in LIST_ROUTES:
        response = sqlite_api.get(path, who="nobody")
        assert response.status_code == 403, path
        assert "keysteward:" in response.json()["error"]["message"], path


def test_lists_deny_service_account_without_grant(sqlite_api: Api) -> None:
    response = sqlite_api.get("/api/v1/credentials", who="bot")
    assert response.status_code == 403


def test_lists_allow_read_only_operator(sqlite_api: Api) -> None:
    for path in LIST_ROUTES:
        response = sqlite_api.get(path, who="reader")
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert set(body) == {"items", "next"}, path


def test_credentials_list_and_filters(api: Api) -> None:
    response = api.get("/api/v1/credentials", params={"system": "hubspot"})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["name"] for item in items] == ["HubSpot private app"]
    assert items[0]["holder"] == "service_account:crm-sync"
    assert items[0]["owner"] == "nobody@example.com"
    assert "fingerprint" not in items[0]
    empty = api.get("/api/v1/credentials", params={"system": "slack"})
    assert empty.json()["items"] == []
    searched = api.get("/api/v1/credentials", params={"q": "private"})
    assert len(searched.json()["items"]) == 1


def test_credential_story_has_findings(api: Api) -> None:
    listed = api.get("/api/v1/credentials").json()["items"]
    response = api.get(f"/api/v1/credentials/{listed[0]['id']}")
    assert response.status_code == 200
    story = response.json()
    assert story["credential"]["system"] == "hubspot"
    assert [f["rule"] for f in story["findings"]] == ["stale-credential"]


def test_unknown_credential_is_404(sqlite_api: Api) -> None:
    response = sqlite_api.get("/api/v1/credentials/99999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "99999" in response.json()["error"]["message"]


def test_pagination_next_offset(sqlite_api: Api) -> None:
    first = sqlite_api.get("/api/v1/people", params={"limit": 2, "sort": "email"})
    body = first.json()
    assert [p["email"] for p in body["items"]] == [
        "admin@example.com",
        "nobody@example.com",
    ]
    assert body["next"] == 2
    second = sqlite_api.get(
        "/api/v1/people", params={"limit": 2, "offset": 2, "sort": "email"}
    ).json()
    assert [p["email"] for p in second["items"]] == [
        "reader@example.com",
        "reviewer@example.com",
    ]
    assert second["next"] is None


def test_sort_descending(sqlite_api: Api) -> None:
    body = sqlite_api.get("/api/v1/people", params={"sort": "-email"}).json()
    assert body["items"][0]["email"] == "reviewer@example.com"


def test_bad_input_rejected(sqlite_api: Api) -> None:
    cases = [
        ("/api/v1/people", {"sort": "password"}),
        ("/api/v1/people", {"limit": 0}),
        ("/api/v1/people", {"limit": 501}),
        ("/api/v1/credentials", {"status": "bogus"}),
        ("/api/v1/people", {"offset": -1}),
    ]
    for path, params in cases:
        response = sqlite_api.get(path, params=params)
        assert response.status_code == 422, (path, params)
        assert response.json()["error"]["code"] == "invalid_request", params


def test_sort_error_names_fields(sqlite_api: Api) -> None:
    response = sqlite_api.get("/api/v1/people", params={"sort": "password"})
    assert "email" in response.json()["error"]["message"]


def test_check_explains_decision(api: Api) -> None:
    response = api.post(
        "/api/v1/checks",
        json={"principal": "service_account:crm-sync", "permission": "hubspot:x:read"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "deny"
    assert "deny by default" in body["reason"]


def test_check_rejects_bad_permission(sqlite_api: Api) -> None:
    response = sqlite_api.post(
        "/api/v1/checks",
        json={"principal": "service_account:crm-sync", "permission": "nope"},
    )
    assert response.status_code == 400
    assert "system:resource:action" in response.json()["error"]["message"]


POLICY = """
roles:
  crm-reader:
    permissions: [hubspot:contacts:read, keysteward:credentials:read]
assignments:
  - principal: service_account:crm-sync
    role: crm-reader
"""


def test_policy_plan_then_apply(api: Api) -> None:
    plan = api.post("/api/v1/policy/plan", json={"policy": POLICY}, who="reader")
    assert plan.status_code == 200, plan.text
    assert plan.json()["counts"]["add"] >= 1
    denied = api.post("/api/v1/policy/apply", json={"policy": POLICY}, who="reader")
    assert denied.status_code == 403
    applied = api.post("/api/v1/policy/apply", json={"policy": POLICY})
    assert applied.status_code == 200, applied.text
    assert applied.json()["applied"] is True
    roles = api.get("/api/v1/roles").json()["items"]
    assert [role["name"] for role in roles] == ["crm-reader"]
    # The service account's new grant lets it list credentials.
    assert api.get("/api/v1/credentials", who="bot").status_code == 200
    checked = api.post(
        "/api/v1/checks",
        json={
            "principal": "service_account:crm-sync",
            "permission": "hubspot:contacts:read",
        },
    ).json()
    assert checked["decision"] == "allow"
    assert checked["grant"]["role"] == "crm-reader"


def test_policy_apply_stale_base_is_409(fresh_api: Api) -> None:
    first = fresh_api.post("/api/v1/policy/apply", json={"policy": POLICY})
    assert first.status_code == 200
    changed = POLICY.replace("contacts:read", "deals:read")
    response = fresh_api.post("/api/v1/policy/apply", json={"policy": changed})
    assert response.status_code == 409
    assert "base" in response.json()["error"]["message"]


def test_policy_rejects_invalid_yaml(sqlite_api: Api) -> None:
    response = sqlite_api.post("/api/v1/policy/plan", json={"policy": "roles: ["})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_findings_ranked(api: Api) -> None:
    body = api.get("/api/v1/findings", who="reviewer").json()
    assert [f["rule"] for f in body["items"]] == ["stale-credential"]
    assert body["items"][0]["rank"] == 1
    filtered = api.get("/api/v1/findings", params={"severity": "low"}).json()
    assert filtered["items"] == []


def test_events_record_decisions(api: Api) -> None:
    api.get("/api/v1/systems", who="nobody")
    response = api.get("/api/v1/systems", headers={"X-Request-ID": "req-12345678"})
    assert response.headers["X-Request-ID"] == "req-12345678"
    with api.store.session() as session:
        rows = session.scalars(
            select(Event).where(Event.action == "api.authorize").order_by(Event.id)
        ).all()
        outcomes = {(row.actor, row.outcome) for row in rows}
        tagged = [row for row in rows if row.request_id == "req-12345678"]
    assert ("person:nobody@example.com", "denied") in outcomes
    assert ("person:admin@example.com", "allowed") in outcomes
    assert len(tagged) == 1
    assert tagged[0].details["permission"] == "keysteward:systems:read"
    assert tagged[0].source_address is not None


def test_events_listing_filters(sqlite_api: Api) -> None:
    sqlite_api.get("/api/v1/systems", who="nobody")
    body = sqlite_api.get(
        "/api/v1/events", params={"action": "api.authorize", "outcome": "denied"}
    ).json()
    assert body["items"]
    assert all(item["outcome"] == "denied" for item in body["items"])


def test_request_id_generated(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/healthz")
    assert len(response.headers["X-Request-ID"]) == 24


def test_unsafe_request_id_replaced(sqlite_api: Api) -> None:
    response = sqlite_api.client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert response.headers["X-Request-ID"] != "a b\tc"


def test_me_reports_role(sqlite_api: Api) -> None:
    body = sqlite_api.get("/api/v1/me", who="reviewer").json()
    assert body == {
        "principal": "person:reviewer@example.com",
        "type": "person",
        "operator_role": "reviewer",
    }


def test_metrics_count_requests(sqlite_api: Api) -> None:
    sqlite_api.get("/api/v1/systems")
    text = sqlite_api.client.get("/metrics").text
    assert "keysteward_http_requests_total" in text
    assert 'route="/api/v1/systems"' in text


def test_responses_carry_security_headers(sqlite_api: Api) -> None:
    response = sqlite_api.get("/api/v1/systems")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_token_list_hides_digests(sqlite_api: Api) -> None:
    items = sqlite_api.get("/api/v1/tokens").json()["items"]
    assert len(items) == 5
    assert all("digest" not in item for item in items)
    for token in sqlite_api.tokens.values():
        assert token not in str(items)


def test_audit_run_via_api(api: Api) -> None:
    denied = api.post("/api/v1/audit-runs", json={}, who="reader")
    assert denied.status_code == 403
    response = api.post("/api/v1/audit-runs", json={})
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["credentials_evaluated"] == 1
    findings = api.get("/api/v1/findings", params={"run_id": run["id"]}).json()
    assert all(
        item["credential"] == "HubSpot private app" for item in findings["items"]
    )


def test_audit_run_unknown_system(fresh_api: Api) -> None:
    response = fresh_api.post("/api/v1/audit-runs", json={"system": "nope"})
    assert response.status_code in (400, 404)
    assert "nope" in response.json()["error"]["message"]
