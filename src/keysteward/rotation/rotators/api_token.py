"""Rotate keysteward's own API tokens.

Config (credential attributes): ``{"rotator": "api_token", "principal":
"service_account:NAME", "grace_hours": 24}``. The new token keeps the old
token's role subset and description. The old one is revoked after the grace
period, so clients have time to read the new value from the vault.
"""

from datetime import timedelta

from sqlalchemy import select

from keysteward.errors import KeystewardError
from keysteward.rotation.errors import RotatorConfigError, RotatorError
from keysteward.rotation.rotators.base import RotationTarget
from keysteward.tokens.errors import AuthenticationError
from keysteward.tokens.models import ApiToken
from keysteward.tokens.principals import find_principal
from keysteward.tokens.services import (
    authenticate_api_token,
    issue_api_token,
    revoke_api_token,
    token_digest,
)

DEFAULT_GRACE_HOURS = 24


class ApiTokenRotator:
    name = "api_token"
    manual = False

    def grace_period(self, target: RotationTarget) -> timedelta:
        hours = target.setting("grace_hours", DEFAULT_GRACE_HOURS)
        if not isinstance(hours, int | float) or hours < 0:
            raise RotatorConfigError(
                f"invalid grace_hours {hours!r} for secret {target.secret_name!r}; "
                "give a number of hours, 0 or more"
            )
        return timedelta(hours=hours)

    def generate(self, target: RotationTarget) -> bytes:
        try:
            principal = find_principal(target.session, target.setting("principal"))
        except KeystewardError as exc:
            raise RotatorConfigError(str(exc)) from None
        old = self._old_record(target)
        issued = issue_api_token(
            target.session,
            principal,
            actor=target.actor,
            roles=list(old.roles) if old is not None else None,
            description=old.description if old is not None else None,
        )
        return issued.token.encode()

    def apply(self, target: RotationTarget, value: bytes, replaced: bytes) -> None:
        # A token is valid from the moment it is issued; nothing to install.
        return None

    def verify(self, target: RotationTarget, value: bytes) -> bool:
        try:
            authenticate_api_token(target.session, value.decode())
        except (AuthenticationError, UnicodeDecodeError):
            return False
        return True

    def revoke(self, target: RotationTarget, value: bytes) -> None:
        record = target.session.scalar(
            select(ApiToken).where(ApiToken.digest == token_digest(value.decode()))
        )
        if record is None:
            raise RotatorError(
                f"the token stored in secret {target.secret_name!r} is not a "
                "keysteward API token; revoke it by hand with `keysteward token "
                "revoke`"
            )
        revoke_api_token(target.session, record.id, actor=target.actor)

    def _old_record(self, target: RotationTarget) -> ApiToken | None:
        try:
            current = target.vault_value(target.secret_name)
        except KeystewardError:
            return None
        return target.session.scalar(
            select(ApiToken).where(ApiToken.digest == token_digest(current.decode()))
        )
