"""``GET /api/v1/secrets/{name}``: read a secret with a bearer token."""

import base64
import threading
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from keysteward.db import Store
from keysteward.dependencies import (
    client_address,
    current_principal,
    get_keyring,
    get_store,
    require,
)
from keysteward.events.errors import EventNotRecordedError
from keysteward.events.group_commit import GroupCommitter
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, page_of_list
from keysteward.tokens.principals import Principal
from keysteward.transactions import run_transaction
from keysteward.vault.errors import InvalidSecretError
from keysteward.vault.keys import KeyRing
from keysteward.vault.schemas import SecretResponse
from keysteward.vault.services import (
    list_secrets,
    prepare_secret_read,
    validate_secret_name,
)

router = APIRouter(tags=["secrets"])
_committer_lock = threading.Lock()


def get_group_committer(request: Request) -> GroupCommitter:
    """Return the app's committer for read events, creating it on first use."""
    state = request.app.state
    committer: GroupCommitter | None = getattr(state, "group_committer", None)
    if committer is None:
        with _committer_lock:
            committer = getattr(state, "group_committer", None)
            if committer is None:
                committer = GroupCommitter(state.store)
                state.group_committer = committer
    return committer


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
def get_secret_value(
    name: str,
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    store: Annotated[Store, Depends(get_store)],
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    committer: Annotated[GroupCommitter, Depends(get_group_committer)],
    version: int | None = None,
) -> SecretResponse:
    """Return the current (or given) version of a secret the caller may read.

    A caller without permission gets 403 whether or not the secret exists,
    so only a permitted caller can learn that a name is unused (404).
    """
    try:
        validate_secret_name(name)
    except InvalidSecretError:
        raise HTTPException(403, "not permitted to read this secret") from None
    source = client_address(request)
    # The read itself only reads, so it skips SQLite's write lock. Its event
    # is committed by the group committer, and the value is released only
    # after that commit succeeded.
    # NOTE: authorization and the event are separate transactions, so a grant
    # revoked between them still lets this one read through, and its event
    # records that read as allowed.
    prepared = run_transaction(
        store,
        lambda session: prepare_secret_read(
            session, keyring, principal, name, version=version, source=source, via="api"
        ),
        lock_first=False,
    )
    try:
        committer.append(prepared.event)
    except EventNotRecordedError:
        raise HTTPException(
            503, "the read could not be recorded in the event log; retry later"
        ) from None
    read = prepared.read
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
