"""Errors raised when a person or service account may not receive access.

KeystewardError
 +-- InvalidInputError
      +-- DepartedPersonError         the person has left the company
      +-- DisabledServiceAccountError the service account is disabled
"""

from keysteward.errors import InvalidInputError


class DepartedPersonError(InvalidInputError):
    pass


class DisabledServiceAccountError(InvalidInputError):
    pass
