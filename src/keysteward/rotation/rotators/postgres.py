"""Rotate a PostgreSQL role's password with ``ALTER ROLE ... PASSWORD``.

Config (credential attributes)::

    {"rotator": "postgres", "host": "127.0.0.1", "port": 5432,
     "role": "app_reader", "database": "postgres",
     "admin_secret": "pg-admin-url"}

``admin_secret`` names a vault secret whose value is a libpq connection
string or URL for a role allowed to alter ``role`` and read ``pg_authid``.

A PostgreSQL role has one password, so the old value stops working the
moment the new one is set: the grace period is zero and the new value is
verified before it is promoted in the vault. The password is hashed by libpq
on the client (SCRAM-SHA-256), so the plain value never reaches the server
or its statement log.
"""

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from keysteward.rotation.errors import RotatorConfigError, RotatorError
from keysteward.rotation.rotators.base import RotationTarget, generate_password

CONNECT_TIMEOUT_SECONDS = 10


class PostgresRotator:
    name = "postgres"
    manual = False

    def grace_period(self, target: RotationTarget) -> timedelta:
        return timedelta(0)

    def generate(self, target: RotationTarget) -> bytes:
        return generate_password()

    def apply(self, target: RotationTarget, value: bytes, replaced: bytes) -> None:
        role = self._role(target)
        with self._admin(target) as admin:
            verifier = admin.pgconn.encrypt_password(
                value, role.encode(), b"scram-sha-256"
            )
            statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(verifier.decode())
            )
            self._run(admin, statement, role)

    def verify(self, target: RotationTarget, value: bytes) -> bool:
        """Connect as the role, then check the stored verifier matches ``value``.

        The stored-verifier check matters because a server that trusts the
        client's address accepts any password on connect.
        """
        role = self._role(target)
        try:
            with psycopg.connect(
                **self._target_params(target),
                user=role,
                password=value.decode(),
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
            ) as connection:
                current = connection.execute("SELECT current_user").fetchone()
        except psycopg.OperationalError:
            return False
        if current is None or current[0] != role:
            return False
        return self._stored_verifier_matches(target, role, value)

    def revoke(self, target: RotationTarget, value: bytes) -> None:
        # Setting the new password already replaced this one; only check it.
        role = self._role(target)
        if self._stored_verifier_matches(target, role, value):
            raise RotatorError(
                f"the old password of PostgreSQL role {role!r} is still set; "
                "resume the rotation to set the new one"
            )

    def _stored_verifier_matches(
        self, target: RotationTarget, role: str, value: bytes
    ) -> bool:
        with self._admin(target) as admin:
            row = admin.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
            ).fetchone()
        if row is None:
            raise RotatorError(
                f"PostgreSQL role {role!r} not found on "
                f"{target.setting('host')}; create it or fix 'role'"
            )
        stored = row[0]
        return stored is not None and password_matches_verifier(value, role, stored)

    def _role(self, target: RotationTarget) -> str:
        role = target.setting("role")
        if not isinstance(role, str) or not role:
            raise RotatorConfigError(
                f"invalid role {role!r} for secret {target.secret_name!r}; "
                "give the PostgreSQL role name"
            )
        return role

    def _target_params(self, target: RotationTarget) -> dict[str, Any]:
        return {
            "host": target.setting("host"),
            "port": int(target.setting("port", 5432)),
            "dbname": target.setting("database", "postgres"),
        }

    def _admin(self, target: RotationTarget) -> psycopg.Connection[Any]:
        conninfo = target.vault_value(target.setting("admin_secret")).decode()
        try:
            return psycopg.connect(
                conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.OperationalError as exc:
            raise RotatorError(
                "cannot connect to PostgreSQL with the admin connection in secret "
                f"{target.setting('admin_secret')!r}: {_first_line(exc)}"
            ) from None

    def _run(self, admin: psycopg.Connection[Any], statement: Any, role: str) -> None:
        try:
            admin.execute(statement)
        except psycopg.Error as exc:
            raise RotatorError(
                f"ALTER ROLE {role} failed: {_first_line(exc)}; check that the admin "
                "role may alter it"
            ) from None


def password_matches_verifier(value: bytes, role: str, stored: str) -> bool:
    """Return True when ``value`` is the password behind ``stored``.

    ``stored`` is a ``pg_authid.rolpassword``: a SCRAM-SHA-256 verifier
    (``SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey``, RFC 5802
    section 3) or the legacy ``md5`` form, md5(password || role name).
    NOTE: the password is not SASLprep-normalized, which only matters for
    non-ASCII passwords; generated ones are ASCII.
    """
    if stored.startswith("SCRAM-SHA-256$"):
        try:
            _, parameters, keys = stored.split("$")
            iterations, salt = parameters.split(":")
            stored_key, server_key = keys.split(":")
            salted = hashlib.pbkdf2_hmac(
                "sha256", value, base64.b64decode(salt), int(iterations)
            )
        except ValueError:
            return False
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        expected_stored = base64.b64encode(hashlib.sha256(client_key).digest())
        expected_server = base64.b64encode(hmac.digest(salted, b"Server Key", "sha256"))
        return hmac.compare_digest(
            expected_stored, stored_key.encode()
        ) and hmac.compare_digest(expected_server, server_key.encode())
    if stored.startswith("md5"):
        digest = hashlib.md5(value + role.encode(), usedforsecurity=False)
        return hmac.compare_digest(f"md5{digest.hexdigest()}", stored)
    return False


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
