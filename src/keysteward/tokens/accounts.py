"""Service accounts: the identities automations authenticate as."""

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.events.services import record_event
from keysteward.identities.models import Person, ServiceAccount, ServiceAccountStatus
from keysteward.identities.services import require_active_person

ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,199}$")


def create_service_account(
    session: Session, name: str, *, owner_email: str, purpose: str, actor: str
) -> ServiceAccount:
    """Create service account ``name`` owned by the person with ``owner_email``."""
    if not ACCOUNT_NAME.match(name):
        raise InvalidInputError(
            f"invalid service account name {name!r}; use lower-case letters, digits, "
            "'.', '_' or '-'"
        )
    if not purpose.strip():
        raise InvalidInputError("empty --purpose; say what the automation does")
    owner = session.scalar(select(Person).where(Person.email == owner_email))
    if owner is None:
        raise NotFoundError(
            f"person {owner_email!r} not found; import the HR roster or check the email"
        )
    require_active_person(owner)
    if session.scalar(select(ServiceAccount).where(ServiceAccount.name == name)):
        raise InvalidInputError(f"service account {name!r} already exists")
    account = ServiceAccount(name=name, owner_id=owner.id, purpose=purpose.strip())
    session.add(account)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="service_account.create",
        target_type="service_account",
        target_id=name,
        details={"owner": owner_email},
    )
    return account


def list_service_accounts(session: Session) -> list[dict[str, object]]:
    rows = session.scalars(select(ServiceAccount).order_by(ServiceAccount.name))
    return [
        {
            "name": account.name,
            "owner": account.owner.email if account.owner else None,
            "status": account.status,
            "purpose": account.purpose,
            "created_at": account.created_at,
        }
        for account in rows
    ]


def disable_service_account(session: Session, name: str, *, actor: str) -> None:
    """Disable ``name``: its API tokens are rejected and its reads denied."""
    account = session.scalar(select(ServiceAccount).where(ServiceAccount.name == name))
    if account is None:
        raise NotFoundError(
            f"service account {name!r} not found; `keysteward sa list` shows the names"
        )
    account.status = ServiceAccountStatus.DISABLED
    record_event(
        session,
        actor=actor,
        action="service_account.disable",
        target_type="service_account",
        target_id=name,
    )
