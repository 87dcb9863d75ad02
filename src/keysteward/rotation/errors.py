"""Rotation errors.

KeystewardError
 +-- RotationRejectedError (InvalidInputError)  the secret may not be rotated
 +-- RotatorConfigError (ConfigError)           a rotator's settings are wrong
 +-- RotatorNotFoundError (NotFoundError)       no rotator by that name
 +-- RotationNotFoundError (NotFoundError)      no rotation with that id
 +-- RotatorError                               the target system failed a step
"""

from keysteward.errors import (
    ConfigError,
    InvalidInputError,
    KeystewardError,
    NotFoundError,
)


class RotationRejectedError(InvalidInputError):
    pass


class RotatorConfigError(ConfigError):
    pass


class RotatorNotFoundError(NotFoundError):
    pass


class RotationNotFoundError(NotFoundError):
    pass


class RotatorError(KeystewardError):
    """A rotator step failed on the target; the message names no secret."""

    exit_code = 7
