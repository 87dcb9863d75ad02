"""Logging setup: one logger per module, and a filter that redacts secrets.

The filter is a last line of defence, and code must still never pass a
secret to a logger. It replaces values shaped like known credential formats
and long random-looking strings that slip through anyway.
"""

import logging
import math
import re
import sys
from collections import Counter
from typing import Any

REDACTED = "[redacted]"

# Well-known credential prefixes; the rest of the token follows the prefix.
_PREFIXED = re.compile(
    r"""
    (?:ks_[a-z]+_|sk-ant-|sk-proj-|sk-admin-|sk-svcacct-|sk-|rk_live_|sk_live_|sk_test_
      |ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|xox[abposr]-|xapp-|glpat-|pat-na1-|SG\.
      |AKIA|ASIA|AIza|hf_|npm_|ya29\.)
    [A-Za-z0-9_\-.=]{8,}
    """,
    re.VERBOSE,
)
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.\-]*://[^:/\s@]+:)[^@\s/]+@", re.I
)
_BEARER = re.compile(r"(?i)(authorization:\s*(?:bearer|basic|token)\s+)\S+")
_ASSIGNMENT = re.compile(
    r"""(?ix)
    \b(?P<key>password|passwd|secret|token|api[_-]?key|client[_-]?secret)
    (?P<sep>\s*[=:]\s*["']?)
    (?P<value>[^\s"',;]{4,})
    """
)
_CANDIDATE = re.compile(r"[A-Za-z0-9+/_\-=]{32,}")
MIN_ENTROPY_BITS_PER_CHAR = 3.5


def _shannon_entropy(text: str) -> float:
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


# A file path, as in a traceback line, runs through several folders whose
# names are lower-case words, some ending in a short number (python3,
# lib64, pytest-3). A token mixes digits into its letters, so a run with such
# a part is no path.
MIN_PATH_SLASHES = 3
_PATH_PART = re.compile(r"[a-z_\-]*[0-9]{0,4}")


def _looks_like_path(text: str) -> bool:
    if text.count("/") < MIN_PATH_SLASHES:
        return False
    return all(_PATH_PART.fullmatch(part) for part in text.split("/"))


def _looks_random(text: str) -> bool:
    # Request and record ids are UUIDs; they identify, they grant nothing.
    if _UUID.fullmatch(text):
        return False
    if _looks_like_path(text):
        return False
    has_digit = any(c.isdigit() for c in text)
    has_alpha = any(c.isalpha() for c in text)
    return (
        has_digit and has_alpha and _shannon_entropy(text) >= MIN_ENTROPY_BITS_PER_CHAR
    )


def contains_known_secret(text: str) -> bool:
    """Return whether ``text`` contains a value of a known credential shape.

    Unlike ``redact`` this skips the entropy check, so ids such as UUIDs and
    hex digests pass. Use it to reject input, and ``redact`` to clean output.
    """
    return any(
        pattern.search(text)
        for pattern in (_PREFIXED, _URL_PASSWORD, _BEARER, _ASSIGNMENT)
    )


def redact(text: str) -> str:
    """Return ``text`` with anything shaped like a secret replaced."""
    text = _PREFIXED.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _ASSIGNMENT.sub(
        lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", text
    )
    return _CANDIDATE.sub(
        lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text
    )


class RedactingFilter(logging.Filter):
    """Rewrite each record's message with ``redact`` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted, so handlers print this text.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at emit time."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_base_record_factory = logging.getLogRecordFactory()


def _redacting_record_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_record_factory(*args, **kwargs)
    if record.name.startswith("keysteward"):
        RedactingFilter().filter(record)
    return record


def configure_logging(level: str = "WARNING") -> None:
    """Send keysteward's logs to stderr, redacted when each record is created.

    Redacting in the record factory, not only in a handler, covers every
    handler that is attached later too (pytest's capture, a server's access
    log handler).
    """
    logging.setLogRecordFactory(_redacting_record_factory)
    root = logging.getLogger("keysteward")
    root.setLevel(level)
    if any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        return
    handler = _StderrHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
