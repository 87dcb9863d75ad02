"""Decoders: bytes to text, and decoded views of a text that keep offsets.

A view is a rewritten copy of a document's text: JSON escapes resolved,
percent-encoding undone, or string literals split over lines joined. It
keeps a map from each offset in the copy back to an offset in the original,
so a match in a view is still reported at the original line.
"""

import base64
import binascii
import codecs
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Bytes read to decide whether a file is text: a NUL byte there means binary,
# unless the NULs follow the pattern of UTF-16 text.
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class View:
    """A text to match against, and the map from its offsets to the original's."""

    name: str
    text: str
    # Sorted starts of the view's segments, the original offset of each, and
    # whether the segment was copied unchanged (True) or rewritten (False).
    view_starts: tuple[int, ...] = ()
    original_starts: tuple[int, ...] = ()
    copied: tuple[bool, ...] = ()
    parent: "View | None" = None

    def changed_ranges(self) -> list[tuple[int, int]] | None:
        """Return the rewritten spans of this view, or None for an original text."""
        if self.parent is None:
            return None
        ranges = []
        for index, copied in enumerate(self.copied):
            if copied:
                continue
            start = self.view_starts[index]
            following = index + 1
            end = (
                self.view_starts[following]
                if following < len(self.view_starts)
                else len(self.text)
            )
            ranges.append((start, end))
        return ranges

    def to_original(self, offset: int) -> int:
        """Map an offset in this view to the offset in the original document."""
        if not self.view_starts:
            mapped = offset
        else:
            index = max(bisect_right(self.view_starts, offset) - 1, 0)
            mapped = self.original_starts[index]
            if self.copied[index]:
                mapped += offset - self.view_starts[index]
        return self.parent.to_original(mapped) if self.parent else mapped


def identity_view(text: str) -> View:
    return View(name="text", text=text)


def rewrite(
    view: View,
    pattern: re.Pattern[str],
    replace: Callable[[re.Match[str]], str],
    name: str,
) -> View | None:
    """Return a view of ``view`` with each match of ``pattern`` replaced.

    Returns None when nothing matched, so callers can skip an identical view.
    """
    spans = [
        (match.start(), match.end(), replace(match))
        for match in pattern.finditer(view.text)
    ]
    return rewrite_spans(view, spans, name) if spans else None


def rewrite_spans(view: View, spans: list[tuple[int, int, str]], name: str) -> View:
    """Return a view of ``view`` with each (start, end, replacement) applied.

    ``spans`` must be sorted and must not overlap.
    """
    text = view.text
    pieces: list[str] = []
    view_starts: list[int] = []
    original_starts: list[int] = []
    copied: list[bool] = []
    position = 0
    length = 0
    for start, end, replacement in spans:
        if start > position:
            view_starts.append(length)
            original_starts.append(position)
            copied.append(True)
            pieces.append(text[position:start])
            length += start - position
        view_starts.append(length)
        original_starts.append(start)
        copied.append(False)
        pieces.append(replacement)
        length += len(replacement)
        position = end
    if position < len(text):
        view_starts.append(length)
        original_starts.append(position)
        copied.append(True)
        pieces.append(text[position:])
    return View(
        name=name,
        text="".join(pieces),
        view_starts=tuple(view_starts),
        original_starts=tuple(original_starts),
        copied=tuple(copied),
        parent=view,
    )


# --- JSON string escapes -----------------------------------------------------

_JSON_ESCAPE = re.compile(r'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})')
_JSON_SIMPLE = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def _unescape_json(match: re.Match[str]) -> str:
    body = match.group(0)[1:]
    if body[0] == "u":
        return chr(int(body[1:], 16))
    return _JSON_SIMPLE[body]


def json_unescaped(view: View) -> View | None:
    """Resolve JSON (and most C-like) string escapes: ``\\"``, ``\\n``, ``\\u0041``."""
    if "\\" not in view.text:
        return None
    return rewrite(view, _JSON_ESCAPE, _unescape_json, "json-unescaped")


# --- URL percent-encoding ----------------------------------------------------

# Written to start with the literal "%", which lets sre skip ahead quickly.
_PERCENT_RUN = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")


def _unquote_run(match: re.Match[str]) -> str:
    raw = bytes.fromhex(match.group(0).replace("%", ""))
    return raw.decode("utf-8", errors="replace")


def url_unquoted(view: View) -> View | None:
    """Undo percent-encoding, as in URL queries and form bodies."""
    if "%" not in view.text:
        return None
    return rewrite(view, _PERCENT_RUN, _unquote_run, "url-decoded")


# --- String literals split over lines ----------------------------------------

# A seam is a closing quote, an optional "+" or "\\" continuation, a line
# break and the next line's opening quote of the same kind, as in implicitly
# concatenated strings (Python, C) or "a" + "b" (JavaScript, Java). Seams are
# found from the line break, which sre searches for quickly as a literal.
_LINE_OPENS_WITH_QUOTE = re.compile(r"""\n[ \t]*\+?[ \t]*(["'])""")
_SEAM_TAIL = re.compile(r"""(["'])[ \t]*[+\\]?[ \t]*\r?$""")


def literals_joined(view: View) -> View | None:
    """Join string literals that continue on the next line into one literal."""
    text = view.text
    seams: list[tuple[int, int]] = []
    for opening in _LINE_OPENS_WITH_QUOTE.finditer(text):
        newline = opening.start()
        line_start = text.rfind("\n", 0, newline) + 1
        tail = _SEAM_TAIL.search(text, max(line_start, newline - 8), newline)
        if tail is not None and tail.group(1) == opening.group(1):
            seams.append((tail.start(), opening.end()))
    if not seams:
        return None
    return rewrite_spans(
        view, [(start, end, "") for start, end in seams], "literals-joined"
    )


# --- Base64 where the format defines the value as base64 ----------------------

# Kubernetes Secret manifests keep values under "data:" base64-encoded, and
# HTTP Basic credentials are base64 of "user:password".
_K8S_SECRET = re.compile(r"^kind:\s*Secret\s*$", re.MULTILINE)
_K8S_DATA_VALUE = re.compile(
    r"(?m)^([ \t]+[A-Za-z0-9_.-]+:[ \t]*)([A-Za-z0-9+/]{8,}={0,2})[ \t]*$"
)
_BASIC_AUTH = re.compile(r"(?i)(\bbasic[ \t]+)([A-Za-z0-9+/]{8,}={0,2})")


def _decode_base64_text(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() or "\n" in text else None


def _replace_base64_value(match: re.Match[str]) -> str:
    decoded = _decode_base64_text(match.group(2))
    if decoded is None:
        return match.group(0)
    return match.group(1) + decoded


def base64_decoded(view: View) -> View | None:
    """Decode base64 values in Kubernetes Secret data and HTTP Basic headers."""
    text = view.text
    if _K8S_SECRET.search(text):
        return rewrite(view, _K8S_DATA_VALUE, _replace_base64_value, "base64-decoded")
    if "asic" in text or "ASIC" in text:
        return rewrite(view, _BASIC_AUTH, _replace_base64_value, "base64-decoded")
    return None


def decoded_views(text: str) -> Iterator[View]:
    """Yield the original text, then each decoded view that differs from it.

    Joined literals are also tried on the JSON-unescaped view, because a
    notebook cell keeps each source line as its own JSON string.
    """
    original = identity_view(text)
    yield original
    unescaped = json_unescaped(original)
    if unescaped is not None:
        yield unescaped
    for step in (url_unquoted, literals_joined, base64_decoded):
        view = step(original)
        if view is not None:
            yield view
    if unescaped is not None:
        joined = literals_joined(unescaped)
        if joined is not None:
            yield joined


# --- Bytes to text -------------------------------------------------------------


def looks_like_utf16(head: bytes) -> str | None:
    """Return "utf-16-le"/"utf-16-be" when ``head`` is BOM-less UTF-16 text."""
    sample = head[:512]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls > half * 0.9 and even_nuls == 0:
        return "utf-16-le"
    if even_nuls > half * 0.9 and odd_nuls == 0:
        return "utf-16-be"
    return None


def decode_bytes(data: bytes) -> tuple[str, str] | None:
    """Return ``(text, encoding)`` for text data, or None for binary data.

    Detects UTF-8 and UTF-16 by byte-order mark, BOM-less UTF-16 by the
    pattern of its NUL bytes, and treats any other NUL in the first
    SNIFF_BYTES bytes as binary. Bytes that are not valid UTF-8 are replaced
    rather than failing, so a stray Latin-1 character does not hide a file.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace"), encoding
    head = data[:SNIFF_BYTES]
    if b"\x00" in head:
        encoding16 = looks_like_utf16(head)
        if encoding16 is None:
            return None
        return data.decode(encoding16, errors="replace"), encoding16
    return data.decode("utf-8", errors="replace"), "utf-8"


# --- Notebooks -------------------------------------------------------------------

_NOTEBOOK_BINARY_OUTPUT = re.compile(
    r'^([ \t]*"(?:image/[a-z0-9.+-]+|application/pdf)"[ \t]*:[ \t]*)"[^"\n]*"',
    re.MULTILINE,
)


def strip_notebook_binaries(text: str) -> str:
    """Blank base64 image outputs in a Jupyter notebook, keeping every line.

    Images are data, not configuration; leaving them out saves time and
    stops random base64 from looking like a key.
    """
    return _NOTEBOOK_BINARY_OUTPUT.sub(r'\1""', text)
