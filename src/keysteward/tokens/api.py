"""``POST /api/v1/token``: trade an API token for an access token.

The request has the OAuth 2.0 client-credentials shape (RFC 6749, section
4.4): a form with ``grant_type=client_credentials`` and the API token as
``client_secret``, or as the password of HTTP Basic authentication.
"""

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request

from keysteward.db import Store
from keysteward.dependencies import (
    client_address,
    get_keyring,
    get_store,
    too_many_attempts,
)
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.exchange import exchange_api_token
from keysteward.tokens.schemas import TokenResponse
from keysteward.vault.keys import KeyRing

router = APIRouter(tags=["tokens"])


def _basic_password(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


@router.post("/token", response_model=TokenResponse)
def issue_token(
    request: Request,
    grant_type: Annotated[str, Form()],
    store: Annotated[Store, Depends(get_store)],
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    client_secret: Annotated[str | None, Form()] = None,
) -> TokenResponse:
    if grant_type != "client_credentials":
        raise HTTPException(
            400,
            f"unsupported grant_type {grant_type!r}; use client_credentials",
        )
    secret = client_secret or _basic_password(request)
    if not secret:
        raise HTTPException(
            401,
            "missing client_secret; send the API token as client_secret",
            headers={"WWW-Authenticate": "Basic"},
        )
    try:
        issued = exchange_api_token(
            store, keyring, secret, source=client_address(request)
        )
    except ThrottledError as exc:
        raise too_many_attempts(exc) from None
    except AuthenticationError:
        raise HTTPException(
            401, "invalid client credentials", headers={"WWW-Authenticate": "Basic"}
        ) from None
    return TokenResponse(access_token=issued.token, expires_in=issued.expires_in)
