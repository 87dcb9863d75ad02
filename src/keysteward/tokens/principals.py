"""Principals: the service accounts and people that authenticate to keysteward."""

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.errors import InvalidInputError, NotFoundError
from keysteward.identities.models import (
    Person,
    PersonStatus,
    ServiceAccount,
    ServiceAccountStatus,
)
from keysteward.identities.services import (
    require_active_person,
    require_active_service_account,
)


class PrincipalType(StrEnum):
    SERVICE_ACCOUNT = "service_account"
    PERSON = "person"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``role_limit`` is None when every role granted to the principal applies,
    or the names of the only roles that may apply (a token's role subset).
    ``api_token_id`` is the API token an access token was exchanged for, so
    revoking that API token cuts the access token off too.
    """

    type: PrincipalType
    id: int
    name: str
    role_limit: frozenset[str] | None = None
    api_token_id: int | None = None

    @property
    def label(self) -> str:
        """The ``type:name`` form used in events and on the command line."""
        return f"{self.type}:{self.name}"


def parse_principal(text: str) -> tuple[PrincipalType, str]:
    """Split ``service_account:NAME`` or ``person:EMAIL`` into type and name."""
    kind, separator, name = text.partition(":")
    if not separator or not name or kind not in tuple(PrincipalType):
        raise InvalidInputError(
            f"invalid principal {text!r}; write service_account:NAME or person:EMAIL"
        )
    return PrincipalType(kind), name


def find_principal(
    session: Session, text: str, *, active_only: bool = False
) -> Principal:
    """Return the principal named ``type:name``, or raise NotFoundError.

    With ``active_only``, a departed person raises DepartedPersonError and a
    disabled service account raises DisabledServiceAccountError.
    """
    kind, name = parse_principal(text)
    if kind is PrincipalType.SERVICE_ACCOUNT:
        account = session.scalar(
            select(ServiceAccount).where(ServiceAccount.name == name)
        )
        if account is None:
            raise NotFoundError(
                f"service account {name!r} not found; create it with "
                f"`keysteward sa create {name} --owner EMAIL --purpose TEXT`"
            )
        if active_only:
            require_active_service_account(account)
        return Principal(kind, account.id, account.name)
    person = session.scalar(select(Person).where(Person.email == name))
    if person is None:
        raise NotFoundError(f"person {name!r} not found; import the HR roster first")
    if active_only:
        require_active_person(person)
    return Principal(kind, person.id, person.email)


def load_principal(
    session: Session,
    kind: str,
    principal_id: int,
    role_limit: frozenset[str] | None = None,
) -> Principal | None:
    """Return the principal by id, or None when it is missing or not active."""
    if kind == PrincipalType.SERVICE_ACCOUNT:
        account = session.get(ServiceAccount, principal_id)
        if account is None or account.status != ServiceAccountStatus.ACTIVE:
            return None
        return Principal(
            PrincipalType.SERVICE_ACCOUNT, account.id, account.name, role_limit
        )
    if kind == PrincipalType.PERSON:
        person = session.get(Person, principal_id)
        if person is None or person.status != PersonStatus.ACTIVE:
            return None
        return Principal(PrincipalType.PERSON, person.id, person.email, role_limit)
    return None


def principal_names(session: Session) -> dict[tuple[str, int], str]:
    """Return the ``type:name`` label of every principal by (type, id)."""
    labels: dict[tuple[str, int], str] = {}
    for account_id, name in session.execute(
        select(ServiceAccount.id, ServiceAccount.name)
    ):
        labels[(PrincipalType.SERVICE_ACCOUNT, account_id)] = f"service_account:{name}"
    for person_id, email in session.execute(select(Person.id, Person.email)):
        labels[(PrincipalType.PERSON, person_id)] = f"person:{email}"
    return labels
