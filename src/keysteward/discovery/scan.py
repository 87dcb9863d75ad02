"""One discovery scan: walk the inputs, run the engine, count what was read."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keysteward.crypto.fingerprint import fingerprint
from keysteward.discovery.engine import Finding, Scanner
from keysteward.discovery.rules import RuleSet
from keysteward.discovery.sources import ScanStats
from keysteward.discovery.sources.filesystem import (
    display_path,
    iter_files,
)
from keysteward.discovery.tasks import Task, from_history, iter_serial
from keysteward.errors import InvalidInputError

if TYPE_CHECKING:
    from keysteward.discovery.sources.git import BlobOrigin

# Called after each file or blob with the running counts, for progress bars.
ProgressCallback = Callable[[ScanStats], None]


@dataclass
class ScanResult:
    """The findings of one scan and the counts of what it read."""

    findings: list[Finding] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)

    @property
    def new_findings(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.baselined]


def check_inputs(paths: list[Path], git: bool) -> None:
    """Raise InvalidInputError for a path that does not exist or is not a repository."""
    from keysteward.discovery.sources.git import is_repository

    if not paths:
        raise InvalidInputError(
            "no PATH given; name at least one file or folder to scan"
        )
    for path in paths:
        if not path.exists():
            raise InvalidInputError(
                f"path {str(path)!r} does not exist; check the spelling or the "
                "current folder"
            )
        if git and not (path.is_dir() and is_repository(path)):
            raise InvalidInputError(
                f"--git needs each PATH to be the top folder of a git repository, "
                f"and {str(path)!r} is not; drop --git or name the repository root"
            )


def _joined(root: Path, relative: str) -> str:
    return Path(os.path.normpath(root / relative)).as_posix()


def file_tasks(paths: list[Path]) -> Iterator[Task]:
    """Yield one task per file under ``paths``."""
    for root in paths:
        for file in iter_files(root):
            shown_path = display_path(file, root)
            if root.is_dir():
                shown_path = _joined(root, shown_path)
            yield ("file", str(file), shown_path, None, None)


def blob_tasks(
    root: Path, origins: list["BlobOrigin"], stats: ScanStats
) -> Iterator[Task]:
    """Yield one task per blob in ``origins``, read from the repository at ``root``."""
    from keysteward.discovery.sources.git import read_blobs

    by_blob = {origin.blob: origin for origin in origins}
    for blob, content in read_blobs(root, list(by_blob)):
        if content is None:
            stats.skipped_large += 1
            continue
        origin = by_blob[blob]
        shown_path = _joined(root, origin.path)
        yield ("blob", content, shown_path, origin.commit, origin.author)


def run_scan(
    paths: list[Path],
    ruleset: RuleSet,
    salt: bytes,
    *,
    git: bool = False,
    progress: ProgressCallback | None = None,
    jobs: int = 1,
) -> ScanResult:
    """Scan ``paths`` with ``jobs`` processes and fingerprint findings with ``salt``.

    With ``git``, every blob of each repository's history is scanned too,
    except blobs whose content equals a scanned working-tree file: their
    findings are copied from that file with the commit that added the blob.
    """
    check_inputs(paths, git)
    result = ScanResult()
    stats = result.stats
    scanner = Scanner(ruleset) if jobs <= 1 else None

    def run(tasks: Iterator[Task]) -> Iterator[tuple[str | None, list[Finding]]]:
        if scanner is not None:
            for outcome in iter_serial(tasks, scanner, stats):
                if progress is not None:
                    progress(stats)
                yield outcome
            return
        from keysteward.discovery.parallel import scan_tasks

        yield from scan_tasks(tasks, ruleset, jobs, stats, progress)

    scanned: dict[str, list[Finding]] = {}
    for blob_id, findings in run(file_tasks(paths)):
        result.findings.extend(findings)
        if blob_id is not None:
            scanned[blob_id] = findings
    if git:
        from keysteward.discovery.sources.git import blob_origins

        for root in paths:
            unscanned = []
            for origin in blob_origins(root):
                if origin.blob not in scanned:
                    unscanned.append(origin)
                    continue
                stats.blobs += 1
                shown_path = _joined(root, origin.path)
                result.findings.extend(
                    from_history(finding, shown_path, origin.commit, origin.author)
                    for finding in scanned[origin.blob]
                )
            for _blob_id, findings in run(blob_tasks(root, unscanned, stats)):
                result.findings.extend(findings)
    result.findings.sort(key=lambda f: (f.commit or "", f.path, f.line, f.column))
    for finding in result.findings:
        finding.fingerprint = fingerprint(finding.secret, salt)
    return result
