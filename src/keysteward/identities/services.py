"""Checks that keep access away from people who left and disabled accounts."""

from keysteward.identities.errors import (
    DepartedPersonError,
    DisabledServiceAccountError,
)
from keysteward.identities.models import Person, ServiceAccount, ServiceAccountStatus


def departed_message(email: str) -> str:
    """Return the error text for an operation that names a departed person."""
    return (
        f"person {email!r} has departed, so they cannot receive access, tokens "
        "or logins; name an active person instead"
    )


def require_active_person(person: Person) -> Person:
    """Return ``person``, or raise DepartedPersonError when they have departed."""
    if person.is_departed:
        raise DepartedPersonError(departed_message(person.email))
    return person


def require_active_service_account(account: ServiceAccount) -> ServiceAccount:
    """Return ``account``, or raise DisabledServiceAccountError when disabled."""
    if account.status != ServiceAccountStatus.ACTIVE:
        raise DisabledServiceAccountError(
            f"service account {account.name!r} is {account.status}; use an "
            "active service account, or mark it active in its source export and "
            "import that again"
        )
    return account
