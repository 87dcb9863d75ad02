"""Operator login errors.

LoginError is one message-less failure for every wrong email, password or
TOTP code, so a response never reveals which part was wrong.
"""

from keysteward.errors import InvalidInputError


class LoginError(Exception):
    """The login was not accepted."""


class WeakPasswordError(InvalidInputError):
    pass
