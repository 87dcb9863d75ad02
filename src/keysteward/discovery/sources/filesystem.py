"""Files and folders on disk."""

import os
from collections.abc import Iterator
from pathlib import Path

from keysteward.discovery.sources import Document, ScanStats, documents_from_bytes

# Folders never walked: version-control internals (history is read through
# git itself with --git) and caches that only hold copies of other files.
SKIPPED_DIRECTORIES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
    }
)
# NOTE: a file above this size is skipped and counted in ScanStats.skipped_large
# rather than read whole into memory; 256 MiB covers every export format
# discovery reads, but a larger log file is not scanned.
MAX_FILE_BYTES = 256 * 1024 * 1024


def iter_files(root: Path) -> Iterator[Path]:
    """Yield every regular file under ``root`` (or ``root`` itself), in name order."""
    if root.is_file():
        yield root
        return
    for directory, subdirectories, files in os.walk(root, followlinks=False):
        subdirectories[:] = sorted(
            name for name in subdirectories if name not in SKIPPED_DIRECTORIES
        )
        for name in sorted(files):
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield path


def display_path(path: Path, root: Path) -> str:
    """Return ``path`` relative to the scanned root, in POSIX form."""
    if root.is_file():
        return path.as_posix()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def file_documents(
    path: Path,
    shown_path: str,
    stats: ScanStats,
    blob_ids: list[str] | None = None,
) -> Iterator[Document]:
    """Yield the documents of one file, counting it in ``stats``.

    When ``blob_ids`` is given, the file's git blob id is appended to it.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            stats.skipped_large += 1
            return
        if path.suffix.lower() == ".mbox":
            from keysteward.discovery.sources.mail import mbox_file_documents

            stats.files += 1
            stats.bytes += size
            yield from mbox_file_documents(path, shown_path, stats)
            return
        data = path.read_bytes()
    except OSError as exc:
        stats.errors.append(f"{shown_path}: {exc.strerror or exc}")
        return
    stats.files += 1
    stats.bytes += len(data)
    if blob_ids is not None:
        from keysteward.discovery.tasks import git_blob_id

        blob_ids.append(git_blob_id(data))
    yield from documents_from_bytes(data, shown_path, path.name, stats)
