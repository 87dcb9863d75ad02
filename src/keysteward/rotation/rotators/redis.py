"""Rotate a Redis ACL user's password.

Config (credential attributes)::

    {"rotator": "redis", "host": "127.0.0.1", "port": 6379,
     "user": "app_cache", "admin_secret": "redis-admin-url",
     "grace_hours": 1}

``admin_secret`` names a vault secret whose value is a ``redis://`` URL for
a user allowed to run ``ACL SETUSER``. A Redis ACL user can hold several
passwords, so the new one is added with ``>password``, the old one stays
valid for the grace period, and ``<password`` then removes it.
"""

import hashlib
import hmac
from datetime import timedelta

import redis

from keysteward.rotation.errors import RotatorConfigError, RotatorError
from keysteward.rotation.rotators.base import RotationTarget, generate_password

DEFAULT_GRACE_HOURS = 1
SOCKET_TIMEOUT_SECONDS = 10


class RedisRotator:
    name = "redis"
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
        return generate_password()

    def apply(self, target: RotationTarget, value: bytes, replaced: bytes) -> None:
        user = self._user(target)
        with self._admin(target) as admin:
            if not self._has_password(admin, user, value):
                self._setuser(admin, user, b">" + value)

    def verify(self, target: RotationTarget, value: bytes) -> bool:
        client = redis.Redis(
            host=target.setting("host"),
            port=int(target.setting("port", 6379)),
            username=self._user(target),
            password=value.decode(),
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        try:
            return bool(client.ping())
        except (redis.AuthenticationError, redis.ResponseError):
            return False
        except redis.RedisError as exc:
            raise RotatorError(
                f"cannot reach Redis at {target.setting('host')}: {exc}"
            ) from None
        finally:
            client.close()

    def revoke(self, target: RotationTarget, value: bytes) -> None:
        user = self._user(target)
        with self._admin(target) as admin:
            if self._has_password(admin, user, value):
                self._setuser(admin, user, b"<" + value)

    def _user(self, target: RotationTarget) -> str:
        user = target.setting("user")
        if not isinstance(user, str) or not user or " " in user:
            raise RotatorConfigError(
                f"invalid user {user!r} for secret {target.secret_name!r}; "
                "give the Redis ACL user name"
            )
        return user

    def _admin(self, target: RotationTarget) -> redis.Redis:
        url = target.vault_value(target.setting("admin_secret")).decode()
        try:
            return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        except ValueError as exc:
            raise RotatorConfigError(
                f"invalid Redis URL in secret {target.setting('admin_secret')!r}: "
                f"{exc}; store a redis:// URL"
            ) from None

    def _has_password(self, admin: redis.Redis, user: str, value: bytes) -> bool:
        """Return True when ``value`` is a password of ``user``.

        ACL GETUSER lists passwords as hex SHA-256 digests.
        """
        try:
            entry = admin.acl_getuser(user)
        except redis.RedisError as exc:
            raise RotatorError(f"ACL GETUSER {user} failed: {exc}") from None
        if entry is None:
            raise RotatorError(
                f"Redis ACL user {user!r} not found; create it or fix 'user'"
            )
        digest = hashlib.sha256(value).hexdigest()
        stored = entry.get("passwords") or []
        if not isinstance(stored, list):
            return False
        return any(hmac.compare_digest(digest, str(item)) for item in stored)

    def _setuser(self, admin: redis.Redis, user: str, rule: bytes) -> None:
        try:
            admin.execute_command("ACL", "SETUSER", user, rule)
        except redis.RedisError:
            # Redis quotes the rule, and so the password, in its error text,
            # so the message leaves the reason out.
            raise RotatorError(
                f"ACL SETUSER {user} failed; check that the admin user may run "
                "ACL SETUSER and that the user exists"
            ) from None
