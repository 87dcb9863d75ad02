"""Git history: every blob ever committed, with the commit that added it.

``git log --raw`` lists, commit by commit from the oldest, the blob each
changed path got. The first commit that introduced a blob is the one
reported, with its author. Each distinct blob is then read once through
``git cat-file --batch``, so a key that a later commit removed is still found.
"""

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from keysteward.discovery.sources import Document, ScanStats, documents_from_bytes
from keysteward.discovery.sources.filesystem import MAX_FILE_BYTES
from keysteward.errors import InvalidInputError

_NULL_BLOB = "0" * 40
_COMMIT_MARK = "\x1ecommit\x1f"


@dataclass(frozen=True)
class BlobOrigin:
    """The first commit that wrote a blob, and the path it was written to."""

    blob: str
    path: str
    commit: str
    author: str


def _git_executable() -> str:
    executable = shutil.which("git")
    if executable is None:
        raise InvalidInputError(
            "git is not installed or not on PATH; install git to scan history "
            "with --git"
        )
    return executable


def _run_git(
    repository: Path, *arguments: str, feed: bool = False
) -> subprocess.Popen[bytes]:
    """Start git; with ``feed`` its stdin is a pipe and stderr is discarded."""
    # The argument list is fixed apart from the repository path, and no shell
    # is involved, so the path cannot inject a command.
    return subprocess.Popen(  # noqa: S603
        [_git_executable(), "-C", str(repository), *arguments],
        stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if feed else subprocess.PIPE,
    )


def is_repository(path: Path) -> bool:
    """Return True when ``path`` is the top folder of a git work tree."""
    result = subprocess.run(  # noqa: S603
        [_git_executable(), "-C", str(path), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return False
    return Path(result.stdout.strip()).resolve() == path.resolve()


def blob_origins(repository: Path) -> list[BlobOrigin]:
    """Return each blob of every ref's history with the commit that added it."""
    process = _run_git(
        repository,
        "log",
        "--all",
        "--reverse",
        "--date-order",
        "-m",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--no-color",
        f"--format={_COMMIT_MARK}%H%x1f%an <%ae>",
    )
    output, errors = process.communicate()
    if process.returncode != 0:
        message = errors.decode("utf-8", errors="replace").strip()
        raise InvalidInputError(
            f"cannot read the git history of {repository}: {message}; "
            "check that it is a git repository"
        )
    origins: dict[str, BlobOrigin] = {}
    commit = author = ""
    for raw_line in output.split(b"\n"):
        line = raw_line.decode("utf-8", errors="replace")
        if line.startswith(_COMMIT_MARK):
            commit, author = line[len(_COMMIT_MARK) :].split("\x1f", 1)
            continue
        if not line.startswith(":"):
            continue
        metadata, _, path = line.partition("\t")
        fields = metadata.split()
        # ":old_mode new_mode old_blob new_blob status"; mode 160000 is a submodule.
        if len(fields) < 5 or fields[1] == "160000" or fields[3] == _NULL_BLOB:
            continue
        blob = fields[3]
        if blob not in origins:
            origins[blob] = BlobOrigin(
                blob=blob, path=path, commit=commit, author=author
            )
    return list(origins.values())


def _feed(process: subprocess.Popen[bytes], blobs: list[str]) -> None:
    assert process.stdin is not None
    try:
        for blob in blobs:
            process.stdin.write(f"{blob}\n".encode())
    finally:
        process.stdin.close()


def read_blobs(
    repository: Path, blobs: list[str]
) -> Iterator[tuple[str, bytes | None]]:
    """Yield ``(blob, content)`` for each blob; content None when it is too large."""
    process = _run_git(repository, "cat-file", "--batch", feed=True)
    writer = threading.Thread(target=_feed, args=(process, blobs), daemon=True)
    writer.start()
    stdout = process.stdout
    assert stdout is not None
    try:
        for _ in blobs:
            header = stdout.readline().decode().split()
            if len(header) < 3 or header[1] == "missing":
                continue
            size = int(header[2])
            if size > MAX_FILE_BYTES:
                # Drain the content without keeping it.
                remaining = size + 1
                while remaining:
                    remaining -= len(stdout.read(min(remaining, 1 << 20)))
                yield header[0], None
                continue
            content = stdout.read(size)
            stdout.read(1)
            yield header[0], content
    finally:
        writer.join()
        stdout.close()
        process.wait()


def history_documents(repository: Path, stats: ScanStats) -> Iterator[Document]:
    """Yield a document for every blob in the history of ``repository``."""
    origins = {origin.blob: origin for origin in blob_origins(repository)}
    for blob, content in read_blobs(repository, list(origins)):
        if content is None:
            stats.skipped_large += 1
            continue
        origin = origins[blob]
        stats.blobs += 1
        stats.bytes += len(content)
        for document in documents_from_bytes(
            content,
            origin.path,
            PurePosixPath(origin.path).name,
            stats,
            commit=origin.commit,
            author=origin.author,
        ):
            document.context = f"git-{document.context}"
            yield document
