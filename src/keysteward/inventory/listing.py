"""Listing credentials for ``keysteward inventory list``."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.credentials.models import Credential, CredentialStatus
from keysteward.errors import InvalidInputError
from keysteward.inventory.export import export_inventory
from keysteward.systems.models import System


def list_inventory(
    session: Session, system: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Return credentials in native form, filtered by system name and status.

    Each row also has the credential's ``id``, which ``rotate`` and
    ``secret put --credential-id`` take.

    Raises InvalidInputError when ``system`` names no known system.
    """
    if system is not None:
        known = set(session.scalars(select(System.name)))
        # Names are compared case-insensitively, so --system AWS finds aws.
        matched = [name for name in known if name.casefold() == system.casefold()]
        if not matched:
            choices = ", ".join(sorted(known)) or "none imported yet"
            raise InvalidInputError(
                f"unknown system {system!r}; known systems: {choices}"
            )
        system = matched[0]
    if status is not None:
        allowed = {str(s) for s in CredentialStatus}
        if status not in allowed:
            raise InvalidInputError(
                f"invalid status {status!r}; expected one of "
                f"{', '.join(sorted(allowed))}"
            )
    ids = {
        (source, source_id): credential_id
        for credential_id, source, source_id in session.execute(
            select(Credential.id, Credential.source, Credential.source_id)
        )
    }
    rows = export_inventory(session)["credentials"]
    return [
        {"id": ids[(row["source"], row["source_id"])], **row}
        for row in rows
        if (system is None or row["system"] == system)
        and (status is None or row["status"] == status)
    ]
