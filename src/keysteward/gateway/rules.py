"""Rules: which permission a request through the gateway needs.

A rule maps HTTP methods and a path pattern to ``system:resource:action``.
Path patterns are written in segments after the system's prefix:

- a literal segment matches itself;
- ``*`` matches any one segment;
- ``{name}`` matches any one segment and can be used in the resource, as in
  ``path: /repos/{owner}/{repo}`` with ``resource: repos/{owner}/{repo}``;
- ``**`` as the last segment matches zero or more segments.

The action defaults from the method: GET and HEAD read, POST, PUT and PATCH
write, DELETE delete. Any other method needs an explicit ``action``. The
first rule that matches decides, and a request that matches none is denied.
"""

import re
from dataclasses import dataclass

from keysteward.authz.errors import InvalidPermissionError
from keysteward.authz.permissions import parse_request

DEFAULT_ACTIONS = {
    "GET": "read",
    "HEAD": "read",
    "POST": "write",
    "PUT": "write",
    "PATCH": "write",
    "DELETE": "delete",
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD = re.compile(r"[A-Z]{3,10}")
_UNSAFE_VALUE = re.compile(r"[:*%?#\\\s]")


class RuleError(ValueError):
    """A rule in the gateway config is invalid."""


class UnsafePathError(ValueError):
    """A request path that could mean different things to the rules and the upstream."""


@dataclass(frozen=True)
class Rule:
    """One compiled rule of a system."""

    system: str
    pattern: str
    resource: str
    methods: frozenset[str] | None
    action: str | None
    regex: re.Pattern[str]

    def permission_for(self, method: str, match: re.Match[str]) -> str | None:
        """Return the permission ``method`` needs, or None when none can apply.

        None means no action is defined for the method, or a captured segment
        contains a character that could change the permission's structure.
        """
        action = self.action or DEFAULT_ACTIONS.get(method)
        if action is None:
            return None
        if any(_UNSAFE_VALUE.search(value) for value in match.groupdict().values()):
            return None
        resource = _PLACEHOLDER.sub(lambda m: match.group(m.group(1)), self.resource)
        return f"{self.system}:{resource}:{action}"


@dataclass(frozen=True)
class RuleMatch:
    rule: Rule
    permission: str | None


def _segment_regex(segment: str, names: list[str]) -> str:
    if segment == "*":
        return "[^/]+"
    placeholder = _PLACEHOLDER.fullmatch(segment)
    if placeholder is not None:
        name = placeholder.group(1)
        if name in names:
            raise RuleError(f"placeholder {{{name}}} appears twice in the path")
        names.append(name)
        return f"(?P<{name}>[^/]+)"
    if "{" in segment or "}" in segment or "*" in segment:
        raise RuleError(
            f"invalid path segment {segment!r}; use a literal, *, ** or {{name}}"
        )
    return re.escape(segment)


def _path_regex(pattern: str) -> tuple[re.Pattern[str], list[str]]:
    if not pattern.startswith("/"):
        raise RuleError(f"path {pattern!r} must start with /")
    segments = pattern.strip("/").split("/") if pattern.strip("/") else []
    names: list[str] = []
    parts = []
    for position, segment in enumerate(segments):
        if segment == "**":
            if position != len(segments) - 1:
                raise RuleError(f"path {pattern!r}: ** is allowed only at the end")
            parts.append("(?:/[^/]+)*")
            continue
        if not segment:
            raise RuleError(f"path {pattern!r} has an empty segment")
        parts.append("/" + _segment_regex(segment, names))
    return re.compile("".join(parts) + "/?"), names


def compile_rule(
    system: str,
    path: str,
    resource: str,
    methods: list[str] | None,
    action: str | None,
) -> Rule:
    """Compile one rule; raise RuleError naming the part that is invalid."""
    regex, names = _path_regex(path)
    used = _PLACEHOLDER.findall(resource)
    unknown = sorted(set(used) - set(names))
    if unknown:
        raise RuleError(
            f"resource {resource!r} uses {', '.join(unknown)}, which the path "
            f"{path!r} does not capture"
        )
    upper = None
    if methods is not None:
        upper = frozenset(method.upper() for method in methods)
        bad = sorted(method for method in upper if not _METHOD.fullmatch(method))
        if bad:
            raise RuleError(f"invalid method(s) {', '.join(bad)}; use GET, POST, ...")
    # Check the permission shape now with a stand-in for each placeholder, so
    # a typo fails at load time rather than denying every request.
    sample = _PLACEHOLDER.sub("x", resource)
    try:
        parse_request(f"{system}:{sample}:{action or 'read'}")
    except InvalidPermissionError as exc:
        raise RuleError(str(exc)) from None
    return Rule(system, path, resource, upper, action, regex)


def match_rule(rules: tuple[Rule, ...], method: str, path: str) -> RuleMatch | None:
    """Return the first rule matching ``method`` and ``path``, or None."""
    for rule in rules:
        if rule.methods is not None and method not in rule.methods:
            continue
        found = rule.regex.fullmatch(path)
        if found is None:
            continue
        return RuleMatch(rule, rule.permission_for(method, found))
    return None


_UNSAFE_ENCODINGS = re.compile(r"%(?:2[fF]|5[cC]|00|2[eE])")


def check_path(decoded: str, raw: str) -> None:
    """Raise UnsafePathError for a path the rules and the upstream could read apart.

    Dot segments, empty segments, backslashes and encoded slashes, dots or
    NUL bytes are rejected, because an upstream that normalizes them would
    serve a different resource than the rule matched.
    """
    if "\\" in decoded or _UNSAFE_ENCODINGS.search(raw):
        raise UnsafePathError("encoded separators are not allowed")
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in decoded):
        raise UnsafePathError("control characters are not allowed")
    segments = decoded.split("/")[1:]
    if segments and segments[-1] == "":
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", ".."):
            raise UnsafePathError("empty, . and .. segments are not allowed")
