"""FastAPI dependencies shared by the concept routers."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keysteward.db import Store
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.exchange import authenticate_bearer
from keysteward.tokens.principals import Principal
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
    """Return the caller named by the bearer token (access or API token)."""
    if credentials is None:
        raise unauthorized()
    try:
        return authenticate_bearer(
            store, keyring, credentials.credentials, source=client_address(request)
        )
    except ThrottledError as exc:
        raise too_many_attempts(exc) from None
    except AuthenticationError:
        raise unauthorized() from None
