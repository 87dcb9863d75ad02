"""``GET /api/v1/secrets/{name}``: read a secret with a bearer token."""

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from keysteward.db import Store
from keysteward.dependencies import (
    bearer_scheme,
    client_address,
    get_store,
    request_id_of,
    require,
    too_many_attempts,
    unauthorized,
)
from keysteward.events.errors import EventNotRecordedError
from keysteward.events.services import record_event
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, page_of_list
from keysteward.tokens.errors import AuthenticationError, ThrottledError
from keysteward.tokens.exchange import authenticate_bearer
from keysteward.tokens.prefix import API_TOKEN_PREFIX
from keysteward.tokens.principals import Principal
from keysteward.transactions import run_transaction
from keysteward.vault.errors import InvalidSecretError, SecretNotFoundError
from keysteward.vault.keys import KeyRing
from keysteward.vault.schemas import SecretResponse
from keysteward.vault.services import (
    READ_ACTION,
    SecretRead,
    list_secrets,
    read_secret,
    validate_secret_name,
)
from keysteward.vault.shortcut import secret_reader_of, verified_tokens_of

router = APIRouter(tags=["secrets"])


class SecretMetadataOut(ApiModel):
    name: str
    current_version: int | None
    updated_at: datetime | None
    credential_id: int | None
    system_id: int | None
    owner_id: int | None
    rotation_days: int | None
    description: str | None


@router.get(
    "/secrets",
    response_model=Page[SecretMetadataOut],
    dependencies=[Depends(require(Perm.SECRETS_READ))],
)
def list_secret_metadata(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[SecretMetadataOut]:
    """List secrets by name with their current version; never their values."""
    if params.sort not in (None, "name", "-name"):
        raise HTTPException(422, f"invalid sort field {params.sort!r}; sort by name")
    with store.session() as session:
        rows = [
            SecretMetadataOut.model_validate(row)
            for row in list_secrets(session)
            if not q or q in str(row["name"])
        ]
    if params.sort == "-name":
        rows.reverse()
    return page_of_list(rows, params)


@router.get("/secrets/{name}", response_model=SecretResponse)
async def get_secret_value(
    name: str,
    request: Request,
    credentials: Annotated[
        HTTPAuthorizationCredentials | None, Security(bearer_scheme)
    ],
    version: int | None = None,
) -> SecretResponse:
    """Return the current (or given) version of a secret the caller may read.

    A caller without permission gets 403 whether or not the secret exists,
    so only a permitted caller can learn that a name is unused (404).
    """
    # This route is async and takes no sync dependencies: each of those
    # would cost a worker-thread hop on the hottest route of the API.
    if credentials is None:
        raise unauthorized()
    try:
        validate_secret_name(name)
    except InvalidSecretError:
        raise HTTPException(403, "not permitted to read this secret") from None
    state = request.app.state
    source = client_address(request)
    request_id = request_id_of(request)
    read: SecretRead | None = None
    token = credentials.credentials
    if version is None and not token.startswith(API_TOKEN_PREFIX):
        principal = _verified_access_token(state, token)
        if principal is not None:
            try:
                read = await secret_reader_of(state).read(
                    principal, name, source=source, request_id=request_id
                )
            except EventNotRecordedError:
                raise _not_recorded() from None
    if read is None:
        # API tokens, explicit versions, failed access tokens and secrets
        # missing from the snapshot take the path through the store.
        read = await run_in_threadpool(
            _read_through_store, state, token, name, version, source, request_id
        )
    if read.secret is None:
        raise HTTPException(403, "not permitted to read this secret")
    value = read.secret.value
    try:
        text, encoding = value.decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(value).decode(), "base64"
    return SecretResponse(
        name=name, version=read.secret.version, value=text, encoding=encoding
    )


def _verified_access_token(state: Any, token: str) -> Principal | None:
    try:
        return verified_tokens_of(state).verify(state.keyring, token)
    except AuthenticationError:
        return None


def _read_through_store(
    state: Any,
    token: str,
    name: str,
    version: int | None,
    source: str | None,
    request_id: str | None,
) -> SecretRead:
    """Authenticate, decide, record and decrypt in the store, in one transaction."""
    store: Store = state.store
    keyring: KeyRing = state.keyring
    try:
        principal = authenticate_bearer(store, keyring, token, source=source)
    except ThrottledError as exc:
        raise too_many_attempts(exc) from None
    except AuthenticationError:
        raise unauthorized() from None
    try:
        return run_transaction(
            store,
            lambda session: read_secret(
                session,
                keyring,
                principal,
                name,
                version=version,
                source=source,
                via="api",
                request_id=request_id,
            ),
        )
    except SecretNotFoundError as exc:
        # Only a permitted caller gets here, so the attempt is recorded.
        _record_not_found(store, principal, name, source, request_id, str(exc))
        raise


def _record_not_found(
    store: Store,
    principal: Principal,
    name: str,
    source: str | None,
    request_id: str | None,
    reason: str,
) -> None:
    run_transaction(
        store,
        lambda session: record_event(
            session,
            actor=principal.label,
            action=READ_ACTION,
            target_type="secret",
            target_id=name,
            outcome="not_found",
            source_address=source,
            request_id=request_id,
            details={"reason": reason, "via": "api"},
        ),
    )


def _not_recorded() -> HTTPException:
    return HTTPException(
        503, "the read could not be recorded in the event log; retry later"
    )
