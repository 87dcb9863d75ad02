"""Errors of the authorization concept.

KeystewardError
 +-- InvalidInputError
 |    +-- InvalidPermissionError   a permission string that does not parse
 |    +-- InvalidPrincipalError    a principal string that does not parse
 |    +-- PolicyError              a policy file that is invalid; names file:line
 |         +-- RoleCycleError      roles that include each other
 +-- StalePolicyError              the store changed since the file's base
 +-- NotFoundError
      +-- UnknownPrincipalError    a policy names a person or account not in the store
"""

from keysteward.errors import InvalidInputError, KeystewardError, NotFoundError


class InvalidPermissionError(InvalidInputError):
    pass


class InvalidPrincipalError(InvalidInputError):
    pass


class PolicyError(InvalidInputError):
    pass


class RoleCycleError(PolicyError):
    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message)
        self.cycle = cycle


class StalePolicyError(KeystewardError):
    exit_code = 5


class UnknownPrincipalError(NotFoundError):
    pass
