"""Base exceptions shared by every concept package.

KeystewardError
 +-- InvalidInputError   bad user input; exit code 2
 +-- ConfigError         a setting is wrong or the store is unreachable; exit code 3
 +-- NotFoundError       a named record does not exist; exit code 4
"""


class KeystewardError(Exception):
    """An error whose message is safe to show to the user as it is."""

    exit_code = 2


class InvalidInputError(KeystewardError):
    exit_code = 2


class ConfigError(KeystewardError):
    exit_code = 3


class NotFoundError(KeystewardError):
    exit_code = 4
