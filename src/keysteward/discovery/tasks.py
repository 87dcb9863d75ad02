"""Units of scanning work: one file on disk or one git blob.

The same task runs in the calling process or in a worker process. A file
task also returns the file's git blob id, so a blob of the history with the
same content is not scanned a second time.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from keysteward.discovery.engine import Finding, Scanner
from keysteward.discovery.sources import ScanStats, documents_from_bytes
from keysteward.discovery.sources.filesystem import file_documents

# ("file", path on disk, path shown, None, None) or
# ("blob", content, path shown, commit, author).
Task = tuple[str, object, str, str | None, str | None]


def git_blob_id(data: bytes) -> str:
    """Return the id git gives a blob with this content (SHA-1 of header and data)."""
    header = f"blob {len(data)}\0".encode()
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


def execute_task(
    scanner: Scanner, task: Task, stats: ScanStats
) -> tuple[str | None, list[Finding], int]:
    """Scan one task; return its blob id (files only), findings and document count."""
    kind, payload, shown_path, commit, author = task
    blob_id: str | None = None
    if kind == "file":
        blob_ids: list[str] = []
        documents = file_documents(Path(str(payload)), shown_path, stats, blob_ids)
    else:
        assert isinstance(payload, bytes)
        stats.blobs += 1
        stats.bytes += len(payload)
        documents = documents_from_bytes(
            payload,
            shown_path,
            PurePosixPath(shown_path).name,
            stats,
            commit=commit,
            author=author,
        )
    findings: list[Finding] = []
    count = 0
    for document in documents:
        count += 1
        if kind == "blob":
            document.context = f"git-{document.context}"
        findings.extend(scanner.scan(document))
    if kind == "file" and blob_ids:
        blob_id = blob_ids[0]
    return blob_id, findings, count


def from_history(finding: Finding, path: str, commit: str, author: str) -> Finding:
    """Return ``finding`` as found in a committed blob with the same content."""
    return Finding(
        rule=finding.rule,
        secret=finding.secret,
        path=path,
        line=finding.line,
        column=finding.column,
        pointer=finding.pointer,
        commit=commit,
        author=author,
        context=f"git-{finding.context}",
        identifier=finding.identifier,
    )


def iter_serial(
    tasks: Iterator[Task], scanner: Scanner, stats: ScanStats
) -> Iterator[tuple[str | None, list[Finding]]]:
    """Run ``tasks`` one after another in this process."""
    for task in tasks:
        blob_id, findings, count = execute_task(scanner, task, stats)
        stats.documents += count
        yield blob_id, findings
