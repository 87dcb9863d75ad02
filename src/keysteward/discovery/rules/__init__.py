"""Detection rules as data, loaded from TOML files in gitleaks' layout.

A rule file contains ``[[rules]]`` tables with the keys gitleaks documents
(``id``, ``description``, ``regex``, ``secretGroup``, ``keywords``,
``entropy``, ``path``, ``allowlist``/``allowlists``, ``required``,
``skipReport``) and an optional global ``[allowlist]``/``[[allowlists]]``.
keysteward reads three extra rule keys that gitleaks ignores: ``system``
(inventory system name), ``kind`` (CredentialKind) and ``category``
(SystemCategory), plus ``secretFrom``, the id of a required rule whose match
is the secret while the rule's own match only identifies it, and
``matchAtKeyword``, which says every match starts at a keyword occurrence.
"""

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from keysteward.errors import InvalidInputError

DEFAULT_RULES_FILE = "default.toml"

# Go RE2 spellings that Python's re module writes differently.
_POSIX_CLASSES = {
    "[:alnum:]": "A-Za-z0-9",
    "[:alpha:]": "A-Za-z",
    "[:digit:]": "0-9",
    "[:lower:]": "a-z",
    "[:upper:]": "A-Z",
    "[:space:]": r"\s",
    "[:xdigit:]": "0-9A-Fa-f",
    "[:word:]": r"\w",
    "[:punct:]": r"!-/:-@\[-`{-~",
}


@dataclass(frozen=True)
class Allowlist:
    """Conditions under which a match is not reported (a placeholder, a test file)."""

    regexes: tuple[re.Pattern[str], ...] = ()
    stopwords: tuple[str, ...] = ()
    paths: tuple[re.Pattern[str], ...] = ()
    # "secret" (default), "match" or "line": what ``regexes`` are applied to.
    regex_target: str = "secret"
    # "OR": any one condition allows the match; "AND": all given ones must.
    condition: str = "OR"

    def allows(self, secret: str, match: str, line: str, path: str) -> bool:
        """Return True when this allowlist silences the match."""
        target = {"secret": secret, "match": match, "line": line}[self.regex_target]
        lowered = secret.lower()
        checks: list[bool] = []
        if self.regexes:
            checks.append(any(regex.search(target) for regex in self.regexes))
        if self.stopwords:
            checks.append(any(word in lowered for word in self.stopwords))
        if self.paths:
            checks.append(any(regex.search(path) for regex in self.paths))
        if not checks:
            return False
        return all(checks) if self.condition == "AND" else any(checks)


@dataclass(frozen=True)
class Requirement:
    """Another rule that must match near this rule's match (a composite rule)."""

    rule_id: str
    within_lines: int | None = None
    within_columns: int | None = None


@dataclass(frozen=True)
class Rule:
    """One credential format: the pattern, its prefilter keywords and its filters."""

    id: str
    description: str
    regex: re.Pattern[str]
    secret_group: int = 0
    keywords: tuple[str, ...] = ()
    entropy: float | None = None
    path: re.Pattern[str] | None = None
    allowlists: tuple[Allowlist, ...] = ()
    required: tuple[Requirement, ...] = ()
    skip_report: bool = False
    secret_from: str | None = None
    # Every match starts where a keyword occurs (keysteward extension).
    match_at_keyword: bool = False
    system: str | None = None
    kind: str = "other"
    category: str = "other"
    tags: tuple[str, ...] = ()
    # The file the rule came from, for error messages.
    origin: str = ""


@dataclass
class RuleSet:
    """The rules of one scan, in priority order, with the global allowlists."""

    rules: list[Rule] = field(default_factory=list)
    allowlists: list[Allowlist] = field(default_factory=list)

    def by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    def extend(self, other: "RuleSet") -> None:
        """Add ``other``'s rules; a rule with an existing id replaces the old one."""
        positions = {rule.id: index for index, rule in enumerate(self.rules)}
        for rule in other.rules:
            if rule.id in positions:
                self.rules[positions[rule.id]] = rule
            else:
                positions[rule.id] = len(self.rules)
                self.rules.append(rule)
        self.allowlists.extend(other.allowlists)


def translate_go_regex(pattern: str) -> tuple[str, int]:
    """Rewrite RE2 syntax that Python's re rejects; return the pattern and flags.

    Python accepts inline global flags such as ``(?i)`` only at the very
    start, while RE2 accepts them anywhere. A flag group found later applies
    to the whole pattern here, so such a rule may match a little more than
    under gitleaks.
    """
    flags = 0
    for posix, python in _POSIX_CLASSES.items():
        pattern = pattern.replace(posix, python)
    pattern = pattern.replace(r"\z", r"\Z")
    for letter, flag in (("i", re.IGNORECASE), ("s", re.DOTALL), ("m", re.MULTILINE)):
        inline = f"(?{letter})"
        if inline in pattern:
            pattern = pattern.replace(inline, "")
            flags |= flag
    return pattern, flags


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    translated, flags = translate_go_regex(pattern)
    try:
        return re.compile(translated, flags)
    except re.error as exc:
        raise InvalidInputError(
            f"invalid regex in {where}: {exc}; fix the pattern so Python's re "
            "module accepts it"
        ) from None


def _parse_allowlist(table: dict[str, Any], where: str) -> Allowlist:
    regex_target = str(table.get("regexTarget", "secret"))
    if regex_target not in ("secret", "match", "line"):
        raise InvalidInputError(
            f"invalid regexTarget {regex_target!r} in {where}; "
            "use secret, match or line"
        )
    condition = str(table.get("condition", "OR")).upper()
    if condition not in ("OR", "AND"):
        raise InvalidInputError(
            f"invalid allowlist condition {condition!r} in {where}; use OR or AND"
        )
    return Allowlist(
        regexes=tuple(_compile(p, where) for p in table.get("regexes", [])),
        stopwords=tuple(str(word).lower() for word in table.get("stopwords", [])),
        paths=tuple(_compile(p, where) for p in table.get("paths", [])),
        regex_target=regex_target,
        condition=condition,
    )


def _allowlists_of(table: dict[str, Any], where: str) -> tuple[Allowlist, ...]:
    # gitleaks 8.x accepts one [allowlist] table or, since 8.21, [[allowlists]].
    tables: list[dict[str, Any]] = list(table.get("allowlists", []))
    if isinstance(table.get("allowlist"), dict):
        tables.append(table["allowlist"])
    return tuple(_parse_allowlist(item, where) for item in tables)


def _parse_rule(table: dict[str, Any], origin: str) -> Rule:
    rule_id = table.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise InvalidInputError(
            f"a rule in {origin} has no id; give every [[rules]] table an id"
        )
    where = f"rule {rule_id!r} of {origin}"
    if "regex" not in table:
        raise InvalidInputError(
            f"{where} has no regex; path-only rules are not supported by discovery"
        )
    regex = _compile(str(table["regex"]), where)
    secret_group = int(table.get("secretGroup", 0))
    if secret_group > regex.groups:
        raise InvalidInputError(
            f"{where} sets secretGroup = {secret_group} but its regex has only "
            f"{regex.groups} groups"
        )
    if secret_group == 0 and regex.groups >= 1:
        # gitleaks takes the first group when secretGroup is not set.
        secret_group = 1
    required = tuple(
        Requirement(
            rule_id=str(item["id"]),
            within_lines=item.get("withinLines"),
            within_columns=item.get("withinColumns"),
        )
        for item in table.get("required", [])
    )
    path = table.get("path")
    return Rule(
        id=rule_id,
        description=str(table.get("description", rule_id)),
        regex=regex,
        secret_group=secret_group,
        keywords=tuple(str(word).lower() for word in table.get("keywords", [])),
        entropy=float(table["entropy"]) if "entropy" in table else None,
        path=_compile(str(path), where) if path else None,
        allowlists=_allowlists_of(table, where),
        required=required,
        skip_report=bool(table.get("skipReport", False)),
        secret_from=table.get("secretFrom"),
        match_at_keyword=bool(table.get("matchAtKeyword", False)),
        system=table.get("system"),
        kind=str(table.get("kind", "other")),
        category=str(table.get("category", "other")),
        tags=tuple(str(tag) for tag in table.get("tags", [])),
        origin=origin,
    )


def parse_rules(text: str, origin: str) -> RuleSet:
    """Parse one rule file's text; raise InvalidInputError naming the bad part."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"invalid TOML in rule file {origin}: {exc}") from None
    tables = data.get("rules", [])
    if not isinstance(tables, list):
        raise InvalidInputError(
            f"rule file {origin} must hold [[rules]] tables (an array of tables)"
        )
    return RuleSet(
        rules=[_parse_rule(table, origin) for table in tables],
        allowlists=list(_allowlists_of(data, f"global allowlist of {origin}")),
    )


def check_requirements(ruleset: RuleSet) -> None:
    """Raise InvalidInputError when a rule requires a rule the set lacks."""
    known = ruleset.by_id()
    for rule in ruleset.rules:
        for requirement in rule.required:
            if requirement.rule_id not in known:
                raise InvalidInputError(
                    f"rule {rule.id!r} of {rule.origin} requires unknown rule "
                    f"{requirement.rule_id!r}; define that rule too"
                )
        if rule.secret_from and rule.secret_from not in {
            item.rule_id for item in rule.required
        }:
            raise InvalidInputError(
                f"rule {rule.id!r} of {rule.origin} sets secretFrom = "
                f"{rule.secret_from!r}, which is not one of its required rules"
            )


def load_rule_file(path: Path) -> RuleSet:
    """Load a team's rule file from disk."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read rule file {path}: {exc.strerror}; check the --rules path"
        ) from None
    return parse_rules(text, str(path))


def default_rules() -> RuleSet:
    """Load the rule file shipped with keysteward."""
    text = (resources.files(__name__) / DEFAULT_RULES_FILE).read_text("utf-8")
    ruleset = parse_rules(text, f"keysteward/{DEFAULT_RULES_FILE}")
    check_requirements(ruleset)
    return ruleset


def load_rules(extra_files: list[Path] | None = None) -> RuleSet:
    """Return the shipped rules extended by each file in ``extra_files``."""
    ruleset = default_rules()
    for path in extra_files or []:
        ruleset.extend(load_rule_file(path))
    check_requirements(ruleset)
    return ruleset
