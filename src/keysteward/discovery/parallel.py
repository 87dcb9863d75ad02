"""Scanning with several worker processes, one file or git blob per task.

Regex matching in CPython holds the GIL, so threads would not help. Each
worker builds its own Scanner once. The parent reads git blobs from one
``git cat-file`` stream and hands out tasks. Workers send findings back as
plain tuples, and the parent looks each Rule up again by id, which is
cheaper than sending compiled rules back.
"""

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from keysteward.discovery.engine import Finding, Scanner
from keysteward.discovery.rules import Rule, RuleSet
from keysteward.discovery.sources import ScanStats, documents_from_bytes
from keysteward.discovery.sources.filesystem import file_documents

# A task: ("file", path on disk, path shown) or ("blob", content, path, commit, author).
Task = tuple[str, object, str, str | None, str | None]
# A finding as plain values: rule id, secret, path, line, column, pointer,
# commit, author, context, identifier.
PlainFinding = tuple[
    str, str, str, int, int, str | None, str | None, str | None, str, str | None
]
# Tasks submitted ahead of the results collected, per worker, so git blobs
# do not all sit in memory at once.
IN_FLIGHT_PER_WORKER = 8

_scanner: Scanner | None = None


def _start_worker(ruleset: RuleSet) -> None:
    global _scanner
    _scanner = Scanner(ruleset)


def _scan_task(task: Task) -> tuple[list[PlainFinding], ScanStats, int]:
    assert _scanner is not None
    stats = ScanStats()
    kind, payload, shown_path, commit, author = task
    if kind == "file":
        documents = file_documents(Path(str(payload)), shown_path, stats)
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
    plain: list[PlainFinding] = []
    count = 0
    for document in documents:
        count += 1
        if kind == "blob":
            document.context = f"git-{document.context}"
        for finding in _scanner.scan(document):
            plain.append(
                (
                    finding.rule_id,
                    finding.secret,
                    finding.path,
                    finding.line,
                    finding.column,
                    finding.pointer,
                    finding.commit,
                    finding.author,
                    finding.context,
                    finding.identifier,
                )
            )
    return plain, stats, count


def _merge_stats(total: ScanStats, part: ScanStats) -> None:
    total.files += part.files
    total.bytes += part.bytes
    total.blobs += part.blobs
    total.skipped_binary += part.skipped_binary
    total.skipped_large += part.skipped_large
    total.errors.extend(part.errors)


def scan_tasks(
    tasks: Iterator[Task],
    ruleset: RuleSet,
    jobs: int,
    stats: ScanStats,
    progress: Callable[[ScanStats], None] | None = None,
) -> Iterator[Finding]:
    """Scan ``tasks`` in ``jobs`` processes; yield findings as tasks complete."""
    rules = ruleset.by_id()
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_start_worker,
        initargs=(ruleset,),
    ) as pool:
        pending: set[
            concurrent.futures.Future[tuple[list[PlainFinding], ScanStats, int]]
        ]
        pending = set()
        for task in tasks:
            pending.add(pool.submit(_scan_task, task))
            if len(pending) >= jobs * IN_FLIGHT_PER_WORKER:
                done, pending = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED
                )
                yield from _collect(done, rules, stats, progress)
        done, _ = concurrent.futures.wait(pending)
        yield from _collect(done, rules, stats, progress)


def _collect(
    done: set[concurrent.futures.Future[tuple[list[PlainFinding], ScanStats, int]]],
    rules: dict[str, Rule],
    stats: ScanStats,
    progress: Callable[[ScanStats], None] | None,
) -> Iterator[Finding]:
    for future in done:
        plain, part, documents = future.result()
        _merge_stats(stats, part)
        stats.documents += documents
        if progress is not None:
            progress(stats)
        for (
            rule_id,
            secret,
            path,
            line,
            column,
            pointer,
            commit,
            author,
            context,
            ident,
        ) in plain:
            yield Finding(
                rule=rules[rule_id],
                secret=secret,
                path=path,
                line=line,
                column=column,
                pointer=pointer,
                commit=commit,
                author=author,
                context=context,
                identifier=ident,
            )
