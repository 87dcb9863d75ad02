"""Dashboard sessions: the logged-in person, page permissions and CSRF checks."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from keysteward.db import Store
from keysteward.dependencies import (
    SESSION_COOKIE,
    get_store,
    record_authorization,
)
from keysteward.operators.roles import operator_authorizer
from keysteward.operators.services import csrf_matches, csrf_token, resume_session
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.transactions import run_transaction


class LoginRequired(Exception):
    """Raised by page dependencies, so that the app redirects to /login."""


@dataclass(frozen=True)
class Viewer:
    """The person looking at a page, with the CSRF token for its forms."""

    principal: Principal
    csrf: str

    @property
    def email(self) -> str:
        return self.principal.name


def current_viewer(
    request: Request, store: Annotated[Store, Depends(get_store)]
) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired
    person = run_transaction(store, lambda session: resume_session(session, token))
    if person is None:
        raise LoginRequired
    principal = Principal(PrincipalType.PERSON, person.id, person.email)
    return Viewer(principal, csrf_token(token))


def check_csrf(request: Request, submitted: str | None) -> None:
    """Raise 403 unless ``submitted`` is the CSRF token of the request's session."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or not csrf_matches(token, submitted):
        raise HTTPException(403, "missing or invalid CSRF token; reload the page")


def page_permission(permission: str) -> Callable[..., Viewer]:
    """Build a dependency that returns the viewer if they hold ``permission``."""

    def dependency(
        request: Request,
        viewer: Annotated[Viewer, Depends(current_viewer)],
        store: Annotated[Store, Depends(get_store)],
    ) -> Viewer:
        with store.session() as session:
            decision = operator_authorizer(store).check(
                session, viewer.principal, permission
            )
        outcome = "allowed" if decision else "denied"
        record_authorization(
            store, request, viewer.principal, permission, outcome, decision.reason
        )
        if not decision:
            raise HTTPException(403, f"permission {permission} is required")
        return viewer

    return dependency
