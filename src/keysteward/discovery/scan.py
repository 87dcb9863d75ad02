"""One discovery scan: walk the inputs, run the engine, count what was read."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from keysteward.crypto.fingerprint import fingerprint
from keysteward.discovery.engine import Finding, Scanner
from keysteward.discovery.rules import RuleSet
from keysteward.discovery.sources import Document, ScanStats
from keysteward.discovery.sources.filesystem import (
    display_path,
    file_documents,
    iter_files,
)
from keysteward.errors import InvalidInputError

if TYPE_CHECKING:
    from keysteward.discovery.parallel import Task

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


def iter_documents(
    paths: list[Path], git: bool, stats: ScanStats, progress: ProgressCallback | None
) -> Iterator[Document]:
    """Yield the documents of every file under ``paths``, then of their histories."""
    for root in paths:
        for file in iter_files(root):
            shown_path = display_path(file, root)
            if root.is_dir():
                shown_path = _joined(root, shown_path)
            yield from file_documents(file, shown_path, stats)
            if progress is not None:
                progress(stats)
    if git:
        from keysteward.discovery.sources.git import history_documents

        for root in paths:
            for document in history_documents(root, stats):
                document.path = _joined(root, document.path)
                yield document
                if progress is not None:
                    progress(stats)


def iter_tasks(paths: list[Path], git: bool, stats: ScanStats) -> Iterator["Task"]:
    """Yield one worker task per file under ``paths``, then per git blob."""
    for root in paths:
        for file in iter_files(root):
            shown_path = display_path(file, root)
            if root.is_dir():
                shown_path = _joined(root, shown_path)
            yield ("file", str(file), shown_path, None, None)
    if git:
        from keysteward.discovery.sources.git import blob_origins, read_blobs

        for root in paths:
            origins = {origin.blob: origin for origin in blob_origins(root)}
            for blob, content in read_blobs(root, list(origins)):
                if content is None:
                    stats.skipped_large += 1
                    continue
                origin = origins[blob]
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

    Findings come in file order with one job. With more jobs their order
    follows completion, so callers that need a stable order sort them.
    """
    check_inputs(paths, git)
    result = ScanResult()
    if jobs > 1:
        from keysteward.discovery.parallel import scan_tasks

        tasks = iter_tasks(paths, git, result.stats)
        result.findings.extend(scan_tasks(tasks, ruleset, jobs, result.stats, progress))
        result.findings.sort(key=lambda f: (f.commit or "", f.path, f.line, f.column))
    else:
        scanner = Scanner(ruleset)
        for document in iter_documents(paths, git, result.stats, progress):
            result.stats.documents += 1
            result.findings.extend(scanner.scan(document))
    for finding in result.findings:
        finding.fingerprint = fingerprint(finding.secret, salt)
    return result
