"""The matching engine: rules over every decoded view of a document.

Speed comes from a keyword prefilter. Each view is lower-cased once and
searched for every rule keyword in one Aho-Corasick pass. A rule's regex runs
only when one of its keywords occurs, and then over windows around those
occurrences (or the whole view), never line by line.
"""

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import ahocorasick_rs

from keysteward.discovery.decoders import View, decoded_views
from keysteward.discovery.rules import Rule, RuleSet
from keysteward.discovery.sources import Document

ALLOW_MARKER = "keysteward:allow"
# Rules whose regex can match more characters than this are run over the
# whole view rather than in windows around their keywords.
MAX_WINDOWED_WIDTH = 10_000


def shannon_entropy(text: str) -> float:
    """Return the Shannon entropy of ``text`` in bits per character."""
    if not text:
        return 0.0
    total = len(text)
    # str.count per distinct character is faster than Counter for the short
    # strings secrets are.
    probabilities = [text.count(character) / total for character in set(text)]
    return -sum(p * math.log2(p) for p in probabilities)


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
        self._keywords = sorted(
            {word for rule in ruleset.rules for word in rule.keywords}
        )
        self._automaton = ahocorasick_rs.AhoCorasick(
            self._keywords or [ALLOW_MARKER],
            matchkind=ahocorasick_rs.MatchKind.Standard,
        )
        self._widths = {
            rule.id: width
            for rule in ruleset.rules
            if (width := _windowed_width(rule)) is not None
        }

    def scan(self, document: Document) -> list[Finding]:
        """Return the findings in ``document``, one per place and secret."""
        candidates: list[_Candidate] = []
        for view in decoded_views(document.text):
            candidates.extend(self._match_view(view, document))
        return self._resolve(candidates, document)

    def scan_all(self, documents: Iterable[Document]) -> Iterator[Finding]:
        for document in documents:
            yield from self.scan(document)

    def _keyword_positions(self, lowered: str) -> dict[str, list[int]]:
        """Return the start offsets of every keyword in ``lowered``, in one pass."""
        positions: dict[str, list[int]] = defaultdict(list)
        matches = self._automaton.find_matches_as_indexes(lowered, overlapping=True)
        for index, start, _end in matches:
            positions[self._keywords[index]].append(start)
        return positions

    def _search_ranges(
        self, rule: Rule, length: int, positions: dict[str, list[int]], exact: bool
    ) -> list[tuple[int, int]]:
        """Return the parts of the text to run ``rule`` over; empty to skip it.

        A rule with a bounded width only needs the text within that width of
        each keyword occurrence, because each of its matches contains one.
        ``exact`` is False when keyword offsets do not line up with the text.
        """
        if not rule.keywords:
            return [(0, length)]
        starts = [p for word in rule.keywords for p in positions.get(word, ())]
        if not starts:
            return []
        width = self._widths.get(rule.id)
        if width is None or not exact or len(starts) > length // (2 * width) + 1:
            return [(0, length)]
        longest = max(len(word) for word in rule.keywords)
        windows = [
            (max(0, start - width), min(length, start + longest + width))
            for start in starts
        ]
        return _merge(windows)

    def _match_view(self, view: View, document: Document) -> list[_Candidate]:
        found: list[_Candidate] = []
        required_cache: dict[str, list[tuple[str, int, int]]] = {}
        text = view.text
        lowered = text.lower()
        # str.lower() changes the length of a few non-ASCII characters, and
        # then keyword offsets cannot be used as offsets into ``text``.
        exact = len(lowered) == len(text)
        positions = self._keyword_positions(lowered)
        changed = view.changed_ranges()
        for index, rule in self._reported:
            if rule.path is not None and not rule.path.search(document.path):
                continue
            ranges = self._search_ranges(rule, len(text), positions, exact)
            if changed is not None and ranges:
                # A match in a decoded view that touches no rewritten span was
                # already found in the view it was derived from.
                ranges = _intersect(ranges, self._around(rule, changed, len(text)))
            for match in self._matches(rule, text, ranges, positions, exact):
                candidate = self._candidate(index, rule, match, view, document)
                if candidate is not None and (
                    not rule.required
                    or self._satisfy_requirements(candidate, document, required_cache)
                ):
                    found.append(candidate)
        return found

    def _matches(
        self,
        rule: Rule,
        text: str,
        ranges: list[tuple[int, int]],
        positions: dict[str, list[int]],
        exact: bool,
    ) -> Iterator[re.Match[str]]:
        if not ranges:
            return
        if rule.match_at_keyword and exact:
            starts = sorted(
                {p for word in rule.keywords for p in positions.get(word, ())}
            )
            if ranges == [(0, len(text))]:
                match_at = rule.regex.match
                for start in starts:
                    match = match_at(text, start)
                    if match is not None:
                        yield match
                return
            range_index = 0
            for start in starts:
                while range_index < len(ranges) and ranges[range_index][1] <= start:
                    range_index += 1
                if range_index == len(ranges):
                    return
                if start < ranges[range_index][0]:
                    continue
                match = rule.regex.match(text, start, ranges[range_index][1])
                if match is not None:
                    yield match
            return
        for start, end in ranges:
            yield from rule.regex.finditer(text, start, end)

    def _around(
        self, rule: Rule, spans: list[tuple[int, int]], length: int
    ) -> list[tuple[int, int]]:
        width = self._widths.get(rule.id)
        if width is None:
            return [(0, length)]
        return _merge(
            [(max(0, start - width), min(length, end + width)) for start, end in spans]
        )

    def _candidate(
        self,
        index: int,
        rule: Rule,
        match: re.Match[str],
        view: View,
        document: Document,
    ) -> _Candidate | None:
        secret = match.group(rule.secret_group)
        start, end = match.span(rule.secret_group)
        if not self._passes_filters(
            rule, secret, match.group(0), view, start, document
        ):
            return None
        original_start = view.to_original(start)
        original_end = view.to_original(max(end - 1, start)) + 1
        return _Candidate(index, rule, secret, original_start, original_end, view)

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
        allowlists = (*rule.allowlists, *self.ruleset.allowlists)
        needs_line = any(item.regex_target == "line" for item in allowlists)
        line = _line_around(view.text, start) if needs_line else ""
        # The rule's own allowlists come first: they are cheap and reject most
        # generic candidates before the entropy is computed.
        for allowlist in rule.allowlists:
            if allowlist.allows(secret, matched, line, document.path):
                return False
        if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
            return False
        for allowlist in self.ruleset.allowlists:
            if allowlist.allows(secret, matched, line, document.path):
                return False
        if not document.has_allow_marker:
            return True
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


def _windowed_width(rule: Rule) -> int | None:
    """Return the maximum match length of a shipped rule, or None to scan whole views.

    Only shipped rules are windowed: they are written so that every match
    contains a keyword, which gitleaks does not require of other rule files.
    """
    if not rule.origin.startswith("keysteward/"):
        return None
    # NOTE: re._parser is CPython's internal regex parser (sre_parse before
    # Python 3.11); getwidth() returns the (min, max) match length.
    width = re._parser.parse(rule.regex.pattern, rule.regex.flags).getwidth()[1]  # type: ignore[attr-defined]
    return width if width <= MAX_WINDOWED_WIDTH else None


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    windows.sort()
    merged: list[tuple[int, int]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _intersect(
    left: list[tuple[int, int]], right: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Return the overlap of two sorted lists of disjoint ranges."""
    result: list[tuple[int, int]] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            result.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return result


def _line_around(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end != -1 else len(text)]
