"""Baseline files: findings a team has accepted, kept without any plaintext.

A baseline contains its own random salt and, per accepted finding, the
HMAC-SHA256 of the secret under that salt with the path it was found in.
The salt is stored in the file so the baseline works with or without a
store. A high-entropy secret cannot be recovered from it, but anyone with
the file can test a guessed password against it.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from keysteward.clock import utcnow
from keysteward.crypto.fingerprint import fingerprint, new_salt
from keysteward.discovery.engine import Finding
from keysteward.errors import InvalidInputError

BASELINE_VERSION = 1


@dataclass
class Baseline:
    """Accepted findings as (fingerprint, path) pairs under the file's salt."""

    salt: bytes = field(default_factory=new_salt)
    entries: list[dict[str, object]] = field(default_factory=list)

    def key_of(self, finding: Finding) -> tuple[str, str]:
        return fingerprint(finding.secret, self.salt), finding.path

    def accepted(self) -> set[tuple[str, str]]:
        return {
            (str(entry["fingerprint"]), str(entry["path"])) for entry in self.entries
        }

    def mark(self, findings: list[Finding]) -> None:
        """Set ``baselined`` on each finding this baseline accepts."""
        accepted = self.accepted()
        for finding in findings:
            finding.baselined = self.key_of(finding) in accepted

    def replace_with(self, findings: list[Finding]) -> None:
        """Make the current findings the accepted set."""
        entries: dict[tuple[str, str], dict[str, object]] = {}
        for finding in findings:
            digest, path = self.key_of(finding)
            entries.setdefault(
                (digest, path),
                {
                    "fingerprint": digest,
                    "rule": finding.rule_id,
                    "path": path,
                    "line": finding.line,
                    "commit": finding.commit,
                },
            )
        self.entries = sorted(
            entries.values(), key=lambda entry: (str(entry["path"]), str(entry["rule"]))
        )


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; raise InvalidInputError naming the file when it is bad."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read baseline {path}: {exc.strerror}; create it with "
            "--update-baseline"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"baseline {path} is not valid JSON ({exc}); regenerate it with "
            "--update-baseline"
        ) from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        raise InvalidInputError(
            f"baseline {path} is not a version {BASELINE_VERSION} keysteward "
            "baseline; regenerate it with --update-baseline"
        )
    try:
        salt = bytes.fromhex(str(data["salt"]))
        entries = [dict(entry) for entry in data["findings"]]
        for entry in entries:
            str(entry["fingerprint"])
            str(entry["path"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInputError(
            f"baseline {path} lacks a valid salt or findings list; regenerate it "
            "with --update-baseline"
        ) from None
    return Baseline(salt=salt, entries=entries)


def write_baseline(path: Path, baseline: Baseline) -> None:
    data = {
        "version": BASELINE_VERSION,
        "tool": "keysteward discover",
        "generated_at": utcnow().isoformat(),
        "salt": baseline.salt.hex(),
        "findings": baseline.entries,
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
