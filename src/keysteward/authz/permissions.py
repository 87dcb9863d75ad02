"""Parsing and matching of ``system:resource:action`` permissions.

A permission names a system, a resource inside it and an action, such as
``hubspot:contacts:read`` or ``drive:reports/2026/q1:write``. Resources are
hierarchical, with ``/`` between segments. In grants and deny rules a segment
may be ``*``, which matches exactly one segment. The last segment may be
``**``, which matches one or more further segments. Requests never contain
wildcards.

Matching is exact: case, separators and Unicode code points must be equal.
Input that could name one resource in two spellings is rejected instead of
being normalized, so a look-alike can never widen a grant or slip past a deny:

- empty segments, ``.`` and ``..``, and ``%`` (percent-encoding);
- whitespace, control characters, ``:`` inside a resource;
- text that Unicode NFC or NFKC normalization would change (a decomposed
  ``é``, a full-width ``ａ``, a ligature).

Non-ASCII segments that pass these checks can still be confusable, because a
Cyrillic ``а`` looks like a Latin ``a``. So a wildcard in a *grant* matches
ASCII segments only, and a non-ASCII resource is granted only by naming it
literally.
Wildcards in deny rules match every valid segment, so a deny is never the
narrower of the two.

Actions: ``read``, ``write``, ``delete`` and ``admin`` are standard, and
``admin`` implies the other three on the same resource, in grants and in deny
rules alike. Other actions (``invoke``, ``send``) are allowed, lowercase, and
are implied by nothing but themselves, so ``admin`` never grants more than it
says.
"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from keysteward.authz.errors import InvalidPermissionError, InvalidPrincipalError

WILDCARD = "*"
DEEP_WILDCARD = "**"
MAX_SYSTEM_LENGTH = 100
MAX_RESOURCE_LENGTH = 500
MAX_ACTION_LENGTH = 20
MAX_PRINCIPAL_NAME_LENGTH = 320

_SYSTEM_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_ACTION_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
# The common all-ASCII request, checked by one regex. It accepts a strict
# subset of what the full parser accepts, and anything else (Unicode, '.'
# segments, over-long parts) takes the full parser, so both agree.
_FAST_SEGMENT = r"[A-Za-z0-9_~@+=,!$&'().-]+"
_FAST_REQUEST = re.compile(
    rf"([a-z0-9][a-z0-9_.-]{{0,99}}):((?:{_FAST_SEGMENT}/)*{_FAST_SEGMENT})"
    r":([a-z][a-z0-9_-]{0,19})"
)
_FAST_PRINCIPAL = re.compile(r"(service_account|person|group):[A-Za-z0-9_.@+-]{1,320}")
# Characters never allowed in a resource segment, besides whitespace and
# control characters: separators, percent-encoding and wildcard fragments.
_FORBIDDEN_SEGMENT_CHARACTERS = frozenset(":/%*\\?#")


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ADMIN = "admin"


# The requested actions that a granted (or denied) action covers.
IMPLIED_ACTIONS: dict[str, frozenset[str]] = {
    Action.ADMIN: frozenset({Action.READ, Action.WRITE, Action.DELETE, Action.ADMIN}),
}


class PrincipalKind(StrEnum):
    SERVICE_ACCOUNT = "service_account"
    PERSON = "person"
    GROUP = "group"


def covered_actions(action: str) -> frozenset[str]:
    """Return every requested action that a rule on ``action`` applies to."""
    return IMPLIED_ACTIONS.get(action, frozenset({action}))


@dataclass(frozen=True, slots=True)
class PermissionPattern:
    """A permission in a grant or deny rule; its resource may hold wildcards."""

    system: str
    segments: tuple[str, ...]
    action: str

    @property
    def resource(self) -> str:
        return "/".join(self.segments)

    @property
    def is_literal(self) -> bool:
        return WILDCARD not in self.segments and DEEP_WILDCARD not in self.segments

    def __str__(self) -> str:
        return f"{self.system}:{self.resource}:{self.action}"

    def matches_resource(self, segments: tuple[str, ...], *, for_deny: bool) -> bool:
        """Return whether this pattern's resource matches requested ``segments``.

        With ``for_deny`` false (a grant), wildcards match ASCII segments only.
        """
        return match_segments(self.segments, segments, for_deny=for_deny)


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A concrete permission being checked: no wildcards."""

    system: str
    segments: tuple[str, ...]
    action: str

    @property
    def resource(self) -> str:
        return "/".join(self.segments)

    def __str__(self) -> str:
        return f"{self.system}:{self.resource}:{self.action}"


def match_segments(
    pattern: tuple[str, ...], requested: tuple[str, ...], *, for_deny: bool
) -> bool:
    """Match a rule's resource segments against a request's, segment by segment."""
    if pattern and pattern[-1] == DEEP_WILDCARD:
        fixed = pattern[:-1]
        if len(requested) <= len(fixed):
            return False
        rest = requested[len(fixed) :]
        if not for_deny and not all(segment.isascii() for segment in rest):
            return False
        return match_segments(fixed, requested[: len(fixed)], for_deny=for_deny)
    if len(pattern) != len(requested):
        return False
    for wanted, actual in zip(pattern, requested, strict=True):
        if wanted == WILDCARD:
            if not for_deny and not actual.isascii():
                return False
        elif wanted != actual:
            return False
    return True


def _check_text(value: str, what: str, full: str) -> None:
    if any(character.isspace() for character in value):
        raise InvalidPermissionError(
            f"invalid {what} in {full!r}: it contains whitespace; "
            "remove it (names are never trimmed)"
        )
    if any(unicodedata.category(character).startswith("C") for character in value):
        raise InvalidPermissionError(
            f"invalid {what} in {full!r}: it contains a control or format "
            "character; remove it"
        )
    if unicodedata.normalize("NFC", value) != value:
        raise InvalidPermissionError(
            f"invalid {what} in {full!r}: it is not in Unicode NFC form; "
            "write it with composed characters"
        )
    if unicodedata.normalize("NFKC", value) != value:
        raise InvalidPermissionError(
            f"invalid {what} in {full!r}: it contains compatibility characters "
            "(full-width letters, ligatures); write the plain characters"
        )


def _parse_segment(segment: str, full: str, *, wildcards: bool) -> str:
    if segment == "":
        raise InvalidPermissionError(
            f"invalid resource in {full!r}: it has an empty segment; "
            "remove the doubled, leading or trailing '/'"
        )
    if segment in (WILDCARD, DEEP_WILDCARD):
        if not wildcards:
            raise InvalidPermissionError(
                f"invalid resource in {full!r}: wildcards are allowed in grants "
                "and deny rules, not in a checked permission"
            )
        return segment
    if segment in (".", ".."):
        raise InvalidPermissionError(
            f"invalid resource in {full!r}: '.' and '..' segments are not "
            "allowed; name the resource by its plain path"
        )
    bad = sorted(set(segment) & _FORBIDDEN_SEGMENT_CHARACTERS)
    if bad:
        raise InvalidPermissionError(
            f"invalid resource in {full!r}: segment {segment!r} contains "
            f"{', '.join(repr(c) for c in bad)}; use '*' or '**' only as a whole "
            "segment and do not percent-encode names"
        )
    _check_text(segment, "resource", full)
    return segment


def _split(text: str) -> tuple[str, str, str]:
    if not isinstance(text, str):
        raise InvalidPermissionError(
            f"invalid permission {text!r}: expected a string system:resource:action"
        )
    parts = text.split(":")
    if len(parts) != 3:
        raise InvalidPermissionError(
            f"invalid permission {text!r}: expected system:resource:action with "
            f"exactly two ':' (found {len(parts) - 1}); use '/' between resource "
            "segments"
        )
    return parts[0], parts[1], parts[2]


def _parse_parts(text: str, *, wildcards: bool) -> tuple[str, tuple[str, ...], str]:
    system, resource, action = _split(text)
    if len(system) > MAX_SYSTEM_LENGTH or not _SYSTEM_PATTERN.fullmatch(system):
        raise InvalidPermissionError(
            f"invalid system {system!r} in {text!r}: use lowercase ASCII letters, "
            f"digits, '.', '_' or '-' (at most {MAX_SYSTEM_LENGTH} characters)"
        )
    if len(action) > MAX_ACTION_LENGTH or not _ACTION_PATTERN.fullmatch(action):
        raise InvalidPermissionError(
            f"invalid action {action!r} in {text!r}: use a lowercase word such as "
            "read, write, delete or admin"
        )
    if len(resource) > MAX_RESOURCE_LENGTH:
        raise InvalidPermissionError(
            f"invalid resource in {text!r}: longer than {MAX_RESOURCE_LENGTH} "
            "characters"
        )
    segments = tuple(
        _parse_segment(segment, text, wildcards=wildcards)
        for segment in resource.split("/")
    )
    if DEEP_WILDCARD in segments[:-1]:
        raise InvalidPermissionError(
            f"invalid resource in {text!r}: '**' is allowed only as the last segment"
        )
    return system, segments, action


def parse_pattern(text: str) -> PermissionPattern:
    """Parse a grant or deny permission; raise InvalidPermissionError if invalid."""
    system, segments, action = _parse_parts(text, wildcards=True)
    return PermissionPattern(system, segments, action)


def parse_request(text: str) -> AccessRequest:
    """Parse a permission being checked; raise InvalidPermissionError if invalid."""
    matched = _FAST_REQUEST.fullmatch(text) if isinstance(text, str) else None
    if matched is not None and len(matched[2]) <= MAX_RESOURCE_LENGTH:
        segments = tuple(matched[2].split("/"))
        if "." not in segments and ".." not in segments:
            return AccessRequest(matched[1], segments, matched[3])
    system, segments, action = _parse_parts(text, wildcards=False)
    return AccessRequest(system, segments, action)


def parse_principal(text: str) -> tuple[str, str]:
    """Split ``kind:name`` into its kind and name, rejecting unclear names.

    Names are case-sensitive and never trimmed or normalized, for the same
    reason as resources: one principal must have exactly one spelling.
    """
    if isinstance(text, str) and _FAST_PRINCIPAL.fullmatch(text):
        kind, _, name = text.partition(":")
        return kind, name
    return _parse_principal_full(text)


def _parse_principal_full(text: str) -> tuple[str, str]:
    if not isinstance(text, str):
        raise InvalidPrincipalError(f"invalid principal {text!r}: expected kind:name")
    kind, separator, name = text.partition(":")
    kinds = ", ".join(kind.value for kind in PrincipalKind)
    if not separator or kind not in PrincipalKind.__members__.values():
        raise InvalidPrincipalError(
            f"invalid principal {text!r}: expected kind:name with kind one of "
            f"{kinds}, e.g. service_account:svc-crm-sync"
        )
    if not name or len(name) > MAX_PRINCIPAL_NAME_LENGTH:
        raise InvalidPrincipalError(
            f"invalid principal {text!r}: the name must have 1 to "
            f"{MAX_PRINCIPAL_NAME_LENGTH} characters"
        )
    try:
        _check_text(name, "principal name", text)
    except InvalidPermissionError as exc:
        raise InvalidPrincipalError(str(exc)) from None
    return kind, name
