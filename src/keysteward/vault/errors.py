"""Vault errors.

A failure to decrypt is ``keysteward.crypto.aead.DecryptionError``, a bare
exception without a message, whatever its cause.

KeystewardError
 +-- SecretNotFoundError (NotFoundError)    no secret or version by that name
 +-- AccessDeniedError                      the principal may not read it
 +-- InvalidSecretError (InvalidInputError) bad name, value or version change
"""

from keysteward.crypto.aead import DecryptionError
from keysteward.errors import InvalidInputError, KeystewardError, NotFoundError

__all__ = [
    "AccessDeniedError",
    "DecryptionError",
    "InvalidSecretError",
    "SecretNotFoundError",
]


class SecretNotFoundError(NotFoundError):
    pass


class AccessDeniedError(KeystewardError):
    exit_code = 5


class InvalidSecretError(InvalidInputError):
    pass
