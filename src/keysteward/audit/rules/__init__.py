"""Audit rules, one registered check per rule id.

Importing this package registers every rule in ``RULES``.
"""

from keysteward.audit.rules import (
    access,
    departures,
    exposure,
    lifecycle,
    people,
    systems,
)
from keysteward.audit.rules._base import (
    RULES,
    SEVERITY_ORDER,
    SEVERITY_RANK,
    Hit,
    at_least,
    raised,
)

__all__ = [
    "RULES",
    "SEVERITY_ORDER",
    "SEVERITY_RANK",
    "Hit",
    "access",
    "at_least",
    "departures",
    "exposure",
    "lifecycle",
    "people",
    "raised",
    "systems",
]
