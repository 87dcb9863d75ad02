"""FastAPI dependencies shared by the concept routers."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keysteward.db import Store
from keysteward.observability import route_template
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.exchange import authenticate_bearer
from keysteward.tokens.principals import Principal, PrincipalType
from keysteward.tokens.services import api_token_in_force
from keysteward.transactions import run_transaction
from keysteward.vault.keys import KeyRing

bearer_scheme = HTTPBearer(auto_error=False)


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def unauthorized() -> HTTPException:
    return HTTPException(
        401, "missing or invalid token", headers={"WWW-Authenticate": "Bearer"}
    )


def too_many_attempts(exc: ThrottledError) -> HTTPException:
    return HTTPException(
        429,
        "too many failed attempts; retry later",
        headers={"Retry-After": str(exc.retry_after)},
    )


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    store: Annotated[Store, Depends(get_store)],
    keyring: Annotated[KeyRing, Depends(get_keyring)],
) -> Principal:
    """Return the caller named by the bearer token (access or API token).

    An access token whose API token was revoked or has expired since the
    exchange gets 401, like an invalid one.
    """
    if credentials is None:
        raise unauthorized()
    try:
        principal = authenticate_bearer(
            store, keyring, credentials.credentials, source=client_address(request)
        )
    except ThrottledError as exc:
        raise too_many_attempts(exc) from None
    except AuthenticationError:
        raise unauthorized() from None
    token_id = principal.api_token_id
    if token_id is not None:
        with store.session() as session:
            in_force = api_token_in_force(session, token_id)
        if not in_force:
            raise unauthorized()
    return principal


SESSION_COOKIE = "keysteward_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def session_principal(request: Request, store: Store) -> Principal | None:
    """Return the person behind the dashboard session cookie, or None.

    A request with a session cookie that changes something must carry the
    session's CSRF token in the X-CSRF-Token header. Dashboard forms send it
    as a ``csrf_token`` field instead, which their routes check themselves.
    """
    from keysteward.operators.services import csrf_matches, resume_session

    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if request.method not in SAFE_METHODS and not csrf_matches(
        token, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, "missing or invalid CSRF token")
    person = run_transaction(store, lambda session: resume_session(session, token))
    if person is None:
        return None
    return Principal(PrincipalType.PERSON, person.id, person.email)


def authenticated_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    store: Annotated[Store, Depends(get_store)],
    keyring: Annotated[KeyRing, Depends(get_keyring)],
) -> Principal:
    """Return the caller: a bearer token first, else a dashboard session."""
    if credentials is not None:
        principal = current_principal(request, credentials, store, keyring)
    else:
        found = session_principal(request, store)
        if found is None:
            record_authorization(store, request, None, None, "unauthenticated")
            raise unauthorized()
        principal = found
    request.state.principal = principal
    return principal


def record_authorization(
    store: Store,
    request: Request,
    principal: Principal | None,
    permission: str | None,
    outcome: str,
    reason: str | None = None,
) -> None:
    from keysteward.events.services import record_event

    details: dict[str, object] = {
        "method": request.method,
        "route": route_template(request),
    }
    if permission is not None:
        details["permission"] = permission
    if reason is not None:
        details["reason"] = reason
    run_transaction(
        store,
        lambda session: record_event(
            session,
            actor=principal.label if principal else "anonymous",
            action="api.authorize",
            target_type="permission",
            target_id=permission,
            outcome=outcome,
            source_address=client_address(request),
            request_id=request_id_of(request),
            details=details,
        ),
    )


def require(permission: str) -> Callable[..., Principal]:
    """Build a dependency that lets a request through only with ``permission``.

    The decision comes from the authz engine over the stored policy and the
    operator roles, and every decision is recorded as an event with the
    request id and the source address. Denied callers get 403.
    """

    def dependency(
        request: Request,
        principal: Annotated[Principal, Depends(authenticated_principal)],
        store: Annotated[Store, Depends(get_store)],
    ) -> Principal:
        from keysteward.operators.roles import operator_authorizer

        authorizer = operator_authorizer(store)
        with store.session() as session:
            decision = authorizer.check(session, principal, permission)
        outcome = "allowed" if decision else "denied"
        record_authorization(
            store, request, principal, permission, outcome, decision.reason
        )
        if not decision:
            raise HTTPException(403, f"permission {permission} is required")
        return principal

    return dependency
