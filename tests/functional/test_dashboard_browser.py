"""The dashboard in headless Chromium: log in, find a credential, finish a review.

Playwright drives the system Chromium (/usr/bin/chromium), and each step saves
a screenshot under test-artifacts/ for a person to look at.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import select

from common.api_client import PASSWORD, Api, serve_api
from keysteward.db import Store
from keysteward.reviews.services import start_campaign
from keysteward.tokens.models import ApiToken
from keysteward.tokens.services import revoke_api_token

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def api(sqlite_store: Store) -> Iterator[Api]:
    with serve_api(sqlite_store) as served:
        with served.store.session() as session:
            # With no live token, the review recommends revoking crm-sync.
            for token_id in session.scalars(select(ApiToken.id)):
                revoke_api_token(session, token_id, actor="test")
            start_campaign(
                session, actor="test", name="2026-Q4", fallback_reviewer=None
            )
        yield served


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found; install it with apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_review_bulk_accept_reaches_inventory(api: Api, page: Page) -> None:
    page.goto(f"{api.url}/inventory")
    expect(page).to_have_url(f"{api.url}/login")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    _shot(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Who and what can access what"
    )
    expect(page.get_by_text("2026-Q4: 0 of 2 decided")).to_be_visible()
    _shot(page, "home")

    page.get_by_role("link", name="Inventory").click()
    page.get_by_label("Search").fill("HubSpot")
    page.get_by_role("button", name="Filter").click()
    row = page.get_by_role("row", name="HubSpot private app")
    expect(row).to_contain_text("service_account:crm-sync")
    expect(row).not_to_contain_text("disabled")
    _shot(page, "inventory")
    row.get_by_role("link", name="HubSpot private app").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("HubSpot private app")
    _shot(page, "credential")

    page.get_by_role("link", name="Access reviews").click()
    page.get_by_role("link", name="2026-Q4").click()
    expect(page.get_by_text("1 of 1 items still need a decision")).to_be_visible()
    _shot(page, "review-before")
    page.get_by_role("button", name="Accept all 1 recommendations").click()
    expect(page.get_by_role("status")).to_have_text("1 decision(s) recorded.")
    expect(page.get_by_text("0 of 1 items still need a decision")).to_be_visible()
    _shot(page, "review-after")

    page.get_by_role("link", name="Inventory").click()
    row = page.get_by_role("row", name="HubSpot private app")
    expect(row).to_contain_text("(disabled)")
    _shot(page, "inventory-after")


OTHER_PAGES = {
    "accounts": ("Service accounts and roles", "Service accounts"),
    "findings": ("Findings", "Findings"),
    "discovery": ("Discovery", "Discovery hits"),
    "rotations": ("Rotations", "Rotations"),
    "offboarding": ("Offboarding", "Offboarding"),
    "events": ("Event log", "Event log"),
}


def test_every_page_reachable_by_keyboard_links(api: Api, page: Page) -> None:
    page.goto(f"{api.url}/login")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    for name, (link, heading) in OTHER_PAGES.items():
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        _shot(page, name)
