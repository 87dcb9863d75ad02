"""The real app served by uvicorn on 127.0.0.1, with people and tokens to call it as."""

import base64
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn

from keysteward.app import create_app
from keysteward.credentials.models import Credential
from keysteward.crypto.keyring import MASTER_KEY_SETTING, EnvironmentKeyProvider
from keysteward.db import Store
from keysteward.findings.models import AuditRun, Finding
from keysteward.identities.models import Person, ServiceAccount
from keysteward.operators.services import set_password, set_role
from keysteward.systems.models import System
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import issue_api_token
from keysteward.vault.keys import KeyRing

PASSWORD = "correct horse battery staple"  # noqa: S105


@dataclass
class Api:
    client: httpx.Client
    url: str
    store: Store
    keyring: KeyRing
    tokens: dict[str, str] = field(repr=False)

    def _headers(self, who: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return headers

    def get(
        self,
        path: str,
        who: str | None = "admin",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self.client.get(path, headers=self._headers(who, headers), **kwargs)

    def post(
        self,
        path: str,
        who: str | None = "admin",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self.client.post(path, headers=self._headers(who, headers), **kwargs)


def test_keyring() -> KeyRing:
    encoded = base64.b64encode(os.urandom(32)).decode()
    return KeyRing(EnvironmentKeyProvider({MASTER_KEY_SETTING: encoded}))


def seed(store: Store) -> None:
    """Add three operators, a plain person, a service account and one credential."""
    now = datetime.now(UTC)
    with store.session() as session:
        people = {
            role: Person(name=role.title(), email=f"{role}@example.com")
            for role in ("admin", "reviewer", "reader", "nobody")
        }
        session.add_all(people.values())
        system = System(name="hubspot", category="crm", owner=None)
        account = ServiceAccount(
            name="crm-sync", owner=people["admin"], purpose="syncs contacts"
        )
        session.add_all([system, account])
        session.flush()
        credential = Credential(
            name="HubSpot private app",
            kind="api_key",
            system_id=system.id,
            owner_id=people["nobody"].id,
            holder_service_account_id=account.id,
            privilege="admin",
            source="hubspot",
            source_id="app-1",
            created_at=now - timedelta(days=400),
            secret_hint="...abcd",
        )
        session.add(credential)
        run = AuditRun(started_at=now, finished_at=now, as_of=now)
        session.add(run)
        session.flush()
        session.add(
            Finding(
                audit_run_id=run.id,
                credential_id=credential.id,
                rule="stale-credential",
                severity="high",
                score=8.0,
                title="Not rotated for 400 days",
                recommendation="Rotate the key",
            )
        )
        for role, email_role in (
            ("admin", "admin"),
            ("reviewer", "reviewer"),
            ("reader", "read-only"),
        ):
            set_role(session, people[role].email, email_role, actor="test")
        set_password(session, "admin@example.com", PASSWORD, actor="test")
        set_password(session, "nobody@example.com", PASSWORD, actor="test")


def person_token(store: Store, email: str) -> str:
    with store.session() as session:
        person = session.query(Person).filter_by(email=email).one()
        principal = Principal(PrincipalType.PERSON, person.id, person.email)
        return issue_api_token(session, principal, actor="test").token


def service_account_token(store: Store, name: str) -> str:
    with store.session() as session:
        account = session.query(ServiceAccount).filter_by(name=name).one()
        principal = Principal(PrincipalType.SERVICE_ACCOUNT, account.id, account.name)
        return issue_api_token(session, principal, actor="test").token


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_api(store: Store, *, cookie_secure: bool = False) -> Iterator[Api]:
    """Seed ``store`` and serve the app from a uvicorn thread on a free local port."""
    seed(store)
    keyring = test_keyring()
    settings = store.settings.model_copy(update={"cookie_secure": cookie_secure})
    app = create_app(settings, store=store, keyring=keyring)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    tokens = {
        "admin": person_token(store, "admin@example.com"),
        "reviewer": person_token(store, "reviewer@example.com"),
        "reader": person_token(store, "reader@example.com"),
        "nobody": person_token(store, "nobody@example.com"),
        "bot": service_account_token(store, "crm-sync"),
    }
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield Api(client, url, store, keyring, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
