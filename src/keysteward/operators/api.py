"""``/api/v1/me``: who the caller is and which operator role they hold."""

from typing import Annotated

from fastapi import APIRouter, Depends

from keysteward.db import Store
from keysteward.dependencies import authenticated_principal, get_store
from keysteward.operators.models import OperatorLogin
from keysteward.pagination import ApiModel
from keysteward.tokens.principals import Principal, PrincipalType

router = APIRouter(tags=["operators"])


class MeOut(ApiModel):
    principal: str
    type: str
    operator_role: str | None


@router.get("/me", response_model=MeOut)
def whoami(
    principal: Annotated[Principal, Depends(authenticated_principal)],
    store: Annotated[Store, Depends(get_store)],
) -> MeOut:
    """Return the authenticated caller; needs no permission beyond logging in."""
    role = None
    if principal.type is PrincipalType.PERSON:
        with store.session() as session:
            login = session.get(OperatorLogin, principal.id)
            role = login.role if login else None
    return MeOut(principal=principal.label, type=principal.type, operator_role=role)
