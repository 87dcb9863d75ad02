"""The dashboard over HTTP: login, sessions, CSRF, permissions and every page."""

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from common.api_client import PASSWORD, Api, serve_api
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.operators.models import WebSession

PAGES = [
    "/",
    "/inventory",
    "/accounts",
    "/findings",
    "/discovery",
    "/rotations",
    "/reviews",
    "/offboarding",
    "/events",
]
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def api(sqlite_store: Store) -> Iterator[Api]:
    with serve_api(sqlite_store) as served:
        yield served
        for client in _opened:
            client.close()
        _opened.clear()


_opened: list[httpx.Client] = []


def _client(api: Api) -> httpx.Client:
    client = httpx.Client(base_url=api.url, timeout=30)
    _opened.append(client)
    return client


def _login(api: Api, email: str, password: str = PASSWORD) -> httpx.Client:
    browser = _client(api)
    form = browser.get("/login")
    token = _CSRF_FIELD.search(form.text)
    assert token is not None
    browser.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token[1]},
    )
    return browser


def test_pages_redirect_to_login(api: Api) -> None:
    for path in PAGES:
        response = api.client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login", path


def test_login_sets_strict_cookie(api: Api) -> None:
    browser = _client(api)
    form = browser.get("/login")
    token = _CSRF_FIELD.search(form.text)
    assert token is not None
    response = browser.post(
        "/login",
        data={
            "email": "admin@example.com",
            "password": PASSWORD,
            "csrf_token": token[1],
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "keysteward_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie


def test_session_stored_as_digest(api: Api) -> None:
    browser = _login(api, "admin@example.com")
    cookie = browser.cookies["keysteward_session"]
    with api.store.session() as session:
        digests = list(session.scalars(select(WebSession.digest)))
    assert len(digests) == 1
    assert cookie not in digests


def test_wrong_password_rejected(api: Api) -> None:
    browser = _login(api, "admin@example.com", password="not the password")
    assert "keysteward_session" not in browser.cookies
    with api.store.session() as session:
        failures = session.scalars(
            select(Event).where(
                Event.action == "operator.login", Event.outcome == "failure"
            )
        ).all()
    assert len(failures) == 1


def test_login_without_csrf_rejected(api: Api) -> None:
    browser = _client(api)
    response = browser.post(
        "/login",
        data={
            "email": "admin@example.com",
            "password": PASSWORD,
            "csrf_token": "forged",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login?error=expired"
    assert "keysteward_session" not in browser.cookies


def test_admin_sees_every_page(api: Api) -> None:
    browser = _login(api, "admin@example.com")
    for path in PAGES:
        response = browser.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert "<script" not in response.text, path
        assert "default-src 'self'" in response.headers["content-security-policy"]


def test_home_shows_counts_and_charts(api: Api) -> None:
    browser = _login(api, "admin@example.com")
    page = browser.get("/").text
    assert "active credentials" in page
    assert "<svg" in page
    assert "Not rotated for 400 days" in page


def test_credential_page_tells_story(api: Api) -> None:
    browser = _login(api, "admin@example.com")
    inventory = browser.get("/inventory", params={"q": "HubSpot"}).text
    link = re.search(r'href="/inventory/(\d+)"', inventory)
    assert link is not None
    page = browser.get(f"/inventory/{link[1]}").text
    assert "service_account:crm-sync" in page
    assert "nobody@example.com" in page
    assert "Not rotated for 400 days" in page


def test_person_without_role_denied(api: Api) -> None:
    browser = _login(api, "nobody@example.com")
    assert "keysteward_session" in browser.cookies
    response = browser.get("/inventory")
    assert response.status_code == 403


def test_logout_needs_csrf(api: Api) -> None:
    browser = _login(api, "admin@example.com")
    forged = browser.post("/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert browser.get("/").status_code == 200
    page = browser.get("/").text
    token = _CSRF_FIELD.search(page)
    assert token is not None
    browser.post("/logout", data={"csrf_token": token[1]})
    assert browser.get("/").status_code == 303


def test_api_with_cookie_needs_csrf_header(api: Api) -> None:
    browser = _login(api, "admin@example.com")
    assert browser.get("/api/v1/systems").status_code == 200
    response = browser.post(
        "/api/v1/checks",
        json={"principal": "service_account:crm-sync", "permission": "a:b:read"},
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_secure_cookie_by_default(sqlite_store: Store) -> None:
    with serve_api(sqlite_store, cookie_secure=True) as served:
        with httpx.Client(base_url=served.url) as client:
            form = client.get("/login")
        assert "Secure" in form.headers["set-cookie"]


def test_static_stylesheet_served(api: Api) -> None:
    response = api.client.get("/static/style.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["content-type"]


def test_denied_page_is_html(api: Api) -> None:
    browser = _login(api, "nobody@example.com")
    response = browser.get("/findings", headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "keysteward:findings:read" in response.text


def test_missing_credential_page_is_404(api: Api) -> None:
    browser = _login(api, "admin@example.com")
    response = browser.get("/inventory/99999", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "credential 99999 not found" in response.text


def test_home_charts_usage_against_grants(api: Api) -> None:
    policy = (
        "roles:\n  crm-reader:\n    permissions: [hubspot:contacts:read]\n"
        "assignments:\n  - principal: service_account:crm-sync\n    role: crm-reader\n"
    )
    applied = api.post("/api/v1/policy/apply", json={"policy": policy})
    assert applied.status_code == 200, applied.text
    browser = _login(api, "admin@example.com")
    page = browser.get("/").text
    assert "Grants used in the last 90 days" in page
    assert "service_account:crm-sync" in page
    assert ">0/1</text>" in page
