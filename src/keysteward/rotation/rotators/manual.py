"""The manual rotator: a person rotates a SaaS key and puts the new value.

keysteward cannot create keys in most SaaS consoles, so a manual rotation
opens a task with a due date, reminds the owner by event, and finishes when
a new version of the secret appears in the vault. Revoking the old key in
the SaaS console stays the owner's job; the rotation only retires the old
version in the vault.

Config: ``{"rotator": "manual", "task_days": 7}``.
"""

from datetime import timedelta

from keysteward.rotation.errors import RotatorConfigError, RotatorError
from keysteward.rotation.rotators.base import RotationTarget

DEFAULT_TASK_DAYS = 7


class ManualRotator:
    name = "manual"
    manual = True

    def task_period(self, target: RotationTarget) -> timedelta:
        """Return how long the owner has to put the new value."""
        days = target.setting("task_days", DEFAULT_TASK_DAYS)
        if not isinstance(days, int) or days < 1:
            raise RotatorConfigError(
                f"invalid task_days {days!r} for secret {target.secret_name!r}; "
                "give a whole number of days, at least 1"
            )
        return timedelta(days=days)

    def grace_period(self, target: RotationTarget) -> timedelta:
        return timedelta(0)

    def generate(self, target: RotationTarget) -> bytes:
        raise RotatorError(
            f"secret {target.secret_name!r} is rotated by hand; put the new value "
            f"with `keysteward secret put {target.secret_name}`"
        )

    def apply(self, target: RotationTarget, value: bytes, replaced: bytes) -> None:
        return None

    def verify(self, target: RotationTarget, value: bytes) -> bool:
        # NOTE: the new value is trusted as the owner put it; keysteward has
        # no generic way to test a SaaS key.
        return True

    def revoke(self, target: RotationTarget, value: bytes) -> None:
        return None
