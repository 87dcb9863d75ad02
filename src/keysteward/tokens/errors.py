"""Token errors.

``AuthenticationError`` is bare: an unknown, mistyped, expired, revoked or
forged token all raise it without a message, so a response never shows a
caller which check failed. Operator mistakes raise ``InvalidTokenRequest``
with a message that names the value and the fix.
"""

from keysteward.errors import InvalidInputError, NotFoundError


class AuthenticationError(Exception):
    """A presented token was not accepted."""


class InvalidTokenRequest(InvalidInputError):
    pass


class TokenNotFoundError(NotFoundError):
    pass


class ThrottledError(Exception):
    """Too many failed attempts from one source; retry after ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after
