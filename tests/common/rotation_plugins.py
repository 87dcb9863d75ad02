"""A rotator that lives outside keysteward, loaded through an entry point.

It keeps the "target" in a dict, so tests can watch every call and make
verify fail on demand.
"""

from datetime import timedelta

from keysteward.rotation.rotators.base import RotationTarget, generate_password

# The values currently valid on the fake target, by secret name.
VALID: dict[str, set[bytes]] = {}
# Secret names whose verify step reports failure.
FAIL_VERIFY: set[str] = set()


class InMemoryRotator:
    name = "in_memory"
    manual = False

    def grace_period(self, target: RotationTarget) -> timedelta:
        return timedelta(hours=float(target.config.get("grace_hours", 0)))

    def generate(self, target: RotationTarget) -> bytes:
        return generate_password()

    def apply(self, target: RotationTarget, value: bytes, replaced: bytes) -> None:
        VALID.setdefault(target.secret_name, set()).add(value)

    def verify(self, target: RotationTarget, value: bytes) -> bool:
        if target.secret_name in FAIL_VERIFY and value not in _originals(target):
            return False
        return value in VALID.get(target.secret_name, set())

    def revoke(self, target: RotationTarget, value: bytes) -> None:
        VALID.get(target.secret_name, set()).discard(value)


def _originals(target: RotationTarget) -> set[bytes]:
    return {str(target.config.get("original", "")).encode()}
