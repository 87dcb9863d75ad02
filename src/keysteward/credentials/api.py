"""``/api/v1/credentials``: the inventory, and one credential's full story."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from keysteward.credentials.models import (
    Credential,
    CredentialKind,
    CredentialStatus,
    Privilege,
)
from keysteward.credentials.story import credential_story, credential_summary
from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.identities.models import Person
from keysteward.operators.roles import Perm
from keysteward.pagination import ApiModel, Page, PageParams, RowId, fetch_page
from keysteward.systems.models import System

router = APIRouter(
    tags=["credentials"], dependencies=[Depends(require(Perm.CREDENTIALS_READ))]
)


class CredentialOut(ApiModel):
    id: int
    name: str
    kind: str
    system: str | None
    privilege: str
    scopes: list[str]
    status: str
    owner: str | None
    holder: str | None
    holder_status: str | None
    secret_hint: str | None
    source: str
    created_at: datetime | None
    last_rotated_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None


class CredentialStoryOut(ApiModel):
    credential: CredentialOut
    findings: list[dict[str, Any]]
    discovery_hits: list[dict[str, Any]]
    secrets: list[str]
    holder_roles: list[str]
    events: list[dict[str, Any]]


SORT = {
    "id": Credential.id,
    "name": Credential.name,
    "created_at": Credential.created_at,
    "last_used_at": Credential.last_used_at,
    "last_rotated_at": Credential.last_rotated_at,
    "expires_at": Credential.expires_at,
}


@router.get("/credentials", response_model=Page[CredentialOut])
def list_credentials(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    system: Annotated[str | None, Query(max_length=100)] = None,
    status: CredentialStatus | None = None,
    kind: CredentialKind | None = None,
    privilege: Privilege | None = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text the name contains.")
    ] = None,
) -> Page[CredentialOut]:
    """List credentials, filtered by system name, status, kind, privilege, owner."""
    query = select(Credential)
    if system is not None:
        query = query.join(System, Credential.system_id == System.id).where(
            System.name == system
        )
    if owner is not None:
        owner_row = aliased(Person)
        query = query.join(owner_row, Credential.owner_id == owner_row.id).where(
            owner_row.email == owner
        )
    if status is not None:
        query = query.where(Credential.status == status)
    if kind is not None:
        query = query.where(Credential.kind == kind)
    if privilege is not None:
        query = query.where(Credential.privilege == privilege)
    if q:
        pattern = f"%{q}%"
        query = query.where(
            or_(Credential.name.ilike(pattern), Credential.source_id.ilike(pattern))
        )

    def convert(row: Credential) -> CredentialOut:
        return CredentialOut(**credential_summary(row))

    with store.session() as session:
        return fetch_page(session, query, params, SORT, "id", convert)


@router.get("/credentials/{credential_id}", response_model=CredentialStoryOut)
def get_credential(
    credential_id: RowId, store: Annotated[Store, Depends(get_store)]
) -> CredentialStoryOut:
    """Return a credential with its findings, discovery hits, secrets and events."""
    with store.session() as session:
        story = credential_story(session, credential_id)
        return CredentialStoryOut(
            credential=CredentialOut(**story.credential),
            findings=story.findings,
            discovery_hits=story.discovery_hits,
            secrets=story.secrets,
            holder_roles=story.holder_roles,
            events=story.events,
        )
