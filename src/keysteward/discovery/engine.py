"""The matching engine: rules over every decoded view of a document.

Speed comes from a keyword prefilter. Each view is lower-cased once, and a
rule's regex runs over the whole view, never line by line. It runs only when
one of the rule's keywords occurs in the view, so most files trigger few
rules.
"""

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from keysteward.discovery.decoders import View, decoded_views
from keysteward.discovery.rules import Rule, RuleSet
from keysteward.discovery.sources import Document

ALLOW_MARKER = "keysteward:allow"


def shannon_entropy(text: str) -> float:
    """Return the Shannon entropy of ``text`` in bits per character."""
    if not text:
        return 0.0
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in Counter(text).values())


@dataclass
class Finding:
    """One credential found at one place. ``secret`` stays in memory only."""

    rule: Rule = field(repr=False)
    secret: str = field(repr=False)
    path: str
    line: int
    column: int
    pointer: str | None = None
    commit: str | None = None
    author: str | None = None
    context: str = "text"
    # A value that names the credential without being secret, such as an
    # AWS access key id; it is matched against inventory source ids.
    identifier: str | None = field(default=None, repr=False)
    fingerprint: str = ""
    baselined: bool = False

    @property
    def rule_id(self) -> str:
        return self.rule.id

    @property
    def redacted(self) -> str:
        return redact(self.secret)


def redact(secret: str) -> str:
    """Return a form of ``secret`` safe to print: its type prefix and last four.

    A secret shorter than 16 characters shows no characters at all, because
    four of them would be a large part of it.
    """
    if "://" in secret:
        scheme, _, rest = secret.partition("://")
        host = rest.split("/", 1)[0].split("@")[-1]
        return f"{scheme}://{host}/…{secret[-4:]}"
    if len(secret) < 16:
        return f"…({len(secret)} characters)"
    prefix = ""
    for index, character in enumerate(secret[:16]):
        if character in "_-." and index >= 1:
            prefix = secret[: index + 1]
    if not prefix or len(prefix) > 15:
        prefix = secret[:2]
    return f"{prefix}…{secret[-4:]}"


@dataclass
class _Candidate:
    rule_index: int
    rule: Rule
    secret: str
    start: int
    end: int
    view: View
    identifier: str | None = None
    # Spans of required matches this finding consumed, so that no other rule
    # reports them again as findings of their own.
    claimed: list[tuple[int, int]] = field(default_factory=list)

    def spans(self) -> list[tuple[int, int]]:
        return [(self.start, self.end), *self.claimed]


class Scanner:
    """Runs a RuleSet over documents and returns findings."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules_by_id = ruleset.by_id()
        self._reported = [
            (index, rule)
            for index, rule in enumerate(ruleset.rules)
            if not rule.skip_report
        ]

    def scan(self, document: Document) -> list[Finding]:
        """Return the findings in ``document``, one per place and secret."""
        candidates: list[_Candidate] = []
        for view in decoded_views(document.text):
            candidates.extend(self._match_view(view, document))
        return self._resolve(candidates, document)

    def scan_all(self, documents: Iterable[Document]) -> Iterator[Finding]:
        for document in documents:
            yield from self.scan(document)

    def _active_rules(self, view: View, path: str) -> list[tuple[int, Rule]]:
        lowered = view.text.lower()
        active = []
        for index, rule in self._reported:
            if rule.keywords and not any(word in lowered for word in rule.keywords):
                continue
            if rule.path is not None and not rule.path.search(path):
                continue
            active.append((index, rule))
        return active

    def _match_view(self, view: View, document: Document) -> list[_Candidate]:
        found: list[_Candidate] = []
        required_cache: dict[str, list[tuple[str, int, int]]] = {}
        for index, rule in self._active_rules(view, document.path):
            for match in rule.regex.finditer(view.text):
                secret = match.group(rule.secret_group)
                start, end = match.span(rule.secret_group)
                if not self._passes_filters(
                    rule, secret, match.group(0), view, start, document
                ):
                    continue
                original_start = view.to_original(start)
                original_end = view.to_original(max(end - 1, start)) + 1
                candidate = _Candidate(
                    index, rule, secret, original_start, original_end, view
                )
                if rule.required and not self._satisfy_requirements(
                    candidate, document, required_cache
                ):
                    continue
                found.append(candidate)
        return found

    def _passes_filters(
        self,
        rule: Rule,
        secret: str,
        matched: str,
        view: View,
        start: int,
        document: Document,
    ) -> bool:
        if not secret:
            return False
        if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
            return False
        line = _line_around(view.text, start)
        for allowlist in (*rule.allowlists, *self.ruleset.allowlists):
            if allowlist.allows(secret, matched, line, document.path):
                return False
        original_line = document.line_text(view.to_original(start))
        return ALLOW_MARKER not in original_line

    def _required_matches(
        self,
        rule_id: str,
        candidate: _Candidate,
        document: Document,
        cache: dict[str, list[tuple[str, int, int]]],
    ) -> list[tuple[str, int, int]]:
        if rule_id not in cache:
            rule = self.rules_by_id[rule_id]
            view = candidate.view
            matches = []
            for match in rule.regex.finditer(view.text):
                secret = match.group(rule.secret_group)
                start, end = match.span(rule.secret_group)
                if self._passes_filters(
                    rule, secret, match.group(0), view, start, document
                ):
                    original_end = view.to_original(max(end - 1, start)) + 1
                    matches.append((secret, view.to_original(start), original_end))
            cache[rule_id] = matches
        return cache[rule_id]

    def _satisfy_requirements(
        self,
        candidate: _Candidate,
        document: Document,
        cache: dict[str, list[tuple[str, int, int]]],
    ) -> bool:
        line, column, _ = document.location(candidate.start)
        for requirement in candidate.rule.required:
            nearest: tuple[int, str, int, int] | None = None
            for secret, offset, end in self._required_matches(
                requirement.rule_id, candidate, document, cache
            ):
                if secret == candidate.secret:
                    continue
                other_line, other_column, _ = document.location(offset)
                distance = abs(other_line - line)
                if requirement.within_lines is not None and (
                    distance > requirement.within_lines
                ):
                    continue
                if requirement.within_columns is not None and (
                    abs(other_column - column) > requirement.within_columns
                ):
                    continue
                if nearest is None or distance < nearest[0]:
                    nearest = (distance, secret, offset, end)
            if nearest is None:
                return False
            candidate.claimed.append((nearest[2], nearest[3]))
            if candidate.rule.secret_from == requirement.rule_id:
                candidate.identifier = candidate.secret
                candidate.secret = nearest[1]
        return True

    def _resolve(
        self, candidates: list[_Candidate], document: Document
    ) -> list[Finding]:
        """Keep one finding per overlapping span: earliest rule, then longest."""
        candidates.sort(key=lambda c: (c.rule_index, -(c.end - c.start), c.start))
        accepted: list[_Candidate] = []
        for candidate in candidates:
            if any(
                start < other_end and other_start < end
                for start, end in candidate.spans()
                for other in accepted
                for other_start, other_end in other.spans()
            ):
                continue
            accepted.append(candidate)
        accepted.sort(key=lambda c: c.start)
        findings = []
        for candidate in accepted:
            line, column, pointer = document.location(candidate.start)
            context = document.context
            if candidate.view.name != "text":
                context = f"{context}+{candidate.view.name}"
            findings.append(
                Finding(
                    rule=candidate.rule,
                    secret=candidate.secret,
                    path=document.path,
                    line=line,
                    column=column,
                    pointer=pointer,
                    commit=document.commit,
                    author=document.author,
                    context=context,
                    identifier=candidate.identifier,
                )
            )
        return findings


def _line_around(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end != -1 else len(text)]
