"""``/api/v1/people`` and ``/api/v1/service-accounts``: who is in the inventory."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import or_, select

from keysteward.db import Store
from keysteward.dependencies import get_store, require
from keysteward.errors import NotFoundError
from keysteward.identities.models import (
    Person,
    PersonStatus,
    ServiceAccount,
    ServiceAccountStatus,
)
from keysteward.operators.roles import Perm
from keysteward.pagination import (
    ApiModel,
    Page,
    PageParams,
    RowId,
    RowIdFilter,
    fetch_page,
)

router = APIRouter(tags=["identities"])


class PersonOut(ApiModel):
    id: int
    name: str
    email: str
    status: str
    departed_on: Any = None
    manager_id: int | None
    created_at: datetime


class ServiceAccountOut(ApiModel):
    id: int
    name: str
    purpose: str | None
    owner_id: int | None
    owner_email: str | None
    status: str
    created_at: datetime


def _account_out(account: ServiceAccount) -> ServiceAccountOut:
    return ServiceAccountOut(
        id=account.id,
        name=account.name,
        purpose=account.purpose,
        owner_id=account.owner_id,
        owner_email=account.owner.email if account.owner else None,
        status=account.status,
        created_at=account.created_at,
    )


PEOPLE_SORT = {
    "id": Person.id,
    "name": Person.name,
    "email": Person.email,
    "created_at": Person.created_at,
}
ACCOUNT_SORT = {
    "id": ServiceAccount.id,
    "name": ServiceAccount.name,
    "created_at": ServiceAccount.created_at,
}
Search = Annotated[
    str | None,
    Query(max_length=200, description="Text that the name or email contains."),
]


@router.get(
    "/people",
    response_model=Page[PersonOut],
    dependencies=[Depends(require(Perm.PEOPLE_READ))],
)
def list_people(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    status: PersonStatus | None = None,
    q: Search = None,
) -> Page[PersonOut]:
    """List people from the HR roster."""
    query = select(Person)
    if status is not None:
        query = query.where(Person.status == status)
    if q:
        pattern = f"%{q}%"
        query = query.where(
            or_(Person.name.ilike(pattern), Person.email.ilike(pattern))
        )
    with store.session() as session:
        return fetch_page(
            session, query, params, PEOPLE_SORT, "id", PersonOut.model_validate
        )


@router.get(
    "/people/{person_id}",
    response_model=PersonOut,
    dependencies=[Depends(require(Perm.PEOPLE_READ))],
)
def get_person(
    person_id: RowId, store: Annotated[Store, Depends(get_store)]
) -> PersonOut:
    with store.session() as session:
        person = session.get(Person, person_id)
        if person is None:
            raise NotFoundError(f"person {person_id} not found")
        return PersonOut.model_validate(person)


@router.get(
    "/service-accounts",
    response_model=Page[ServiceAccountOut],
    dependencies=[Depends(require(Perm.SERVICE_ACCOUNTS_READ))],
)
def list_service_accounts(
    store: Annotated[Store, Depends(get_store)],
    params: Annotated[PageParams, Depends()],
    status: ServiceAccountStatus | None = None,
    owner_id: RowIdFilter = None,
    q: Search = None,
) -> Page[ServiceAccountOut]:
    """List the service accounts that automations run as."""
    query = select(ServiceAccount)
    if status is not None:
        query = query.where(ServiceAccount.status == status)
    if owner_id is not None:
        query = query.where(ServiceAccount.owner_id == owner_id)
    if q:
        query = query.where(ServiceAccount.name.ilike(f"%{q}%"))
    with store.session() as session:
        return fetch_page(session, query, params, ACCOUNT_SORT, "id", _account_out)


@router.get(
    "/service-accounts/{account_id}",
    response_model=ServiceAccountOut,
    dependencies=[Depends(require(Perm.SERVICE_ACCOUNTS_READ))],
)
def get_service_account(
    account_id: RowId, store: Annotated[Store, Depends(get_store)]
) -> ServiceAccountOut:
    with store.session() as session:
        account = session.get(ServiceAccount, account_id)
        if account is None:
            raise NotFoundError(f"service account {account_id} not found")
        return _account_out(account)
