"""``POST /api/v1/token``: trade an API token for an access token.

The request has the OAuth 2.0 client-credentials shape (RFC 6749, section
4.4): a form with ``grant_type=client_credentials`` and the API token as
``client_secret``, or as the password of HTTP Basic authentication.
"""

import base64
import binascii
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from sqlalchemy import select

from keysteward.db import Store
from keysteward.dependencies import (
    client_address,
    get_keyring,
    get_store,
    require,
    too_many_attempts,
)
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, RowIdFilter, fetch_page
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.exchange import exchange_api_token
from keysteward.tokens.models import ApiToken
from keysteward.tokens.schemas import TokenResponse
from keysteward.vault.keys import KeyRing

router = APIRouter(tags=["tokens"])


class ApiTokenOut(ApiModel):
    id: int
    hint: str
    principal_type: str
    principal_id: int
    roles: list[str]
    description: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


TOKEN_SORT = {
    "id": ApiToken.id,
    "created_at": ApiToken.created_at,
    "last_used_at": ApiToken.last_used_at,
    "expires_at": ApiToken.expires_at,
}


@router.get(
    "/tokens",
    response_model=Page[ApiTokenOut],
    dependencies=[Depends(require(Perm.TOKENS_READ))],
)
def list_tokens(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    principal_type: Annotated[str | None, Query(max_length=30)] = None,
    principal_id: RowIdFilter = None,
    revoked: bool | None = None,
) -> Page[ApiTokenOut]:
    """List API tokens by their hint and holder; a token itself is never stored."""
    query = select(ApiToken)
    if principal_type is not None:
        query = query.where(ApiToken.principal_type == principal_type)
    if principal_id is not None:
        query = query.where(ApiToken.principal_id == principal_id)
    if revoked is True:
        query = query.where(ApiToken.revoked_at.is_not(None))
    elif revoked is False:
        query = query.where(ApiToken.revoked_at.is_(None))
    with store.session() as session:
        return fetch_page(
            session, query, params, TOKEN_SORT, "id", ApiTokenOut.model_validate
        )


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
