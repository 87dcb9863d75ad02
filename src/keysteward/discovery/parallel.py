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

from keysteward.discovery.engine import Finding, Scanner
from keysteward.discovery.rules import Rule, RuleSet
from keysteward.discovery.sources import ScanStats
from keysteward.discovery.tasks import Task, execute_task

# A finding as plain values: rule id, secret, path, line, column, pointer,
# commit, author, context, identifier.
PlainFinding = tuple[
    str, str, str, int, int, str | None, str | None, str | None, str, str | None
]
TaskResult = tuple[str | None, list[PlainFinding], ScanStats, int]
# Tasks submitted ahead of the results collected, per worker, so git blobs
# do not all sit in memory at once.
IN_FLIGHT_PER_WORKER = 8

_scanner: Scanner | None = None


def _start_worker(ruleset: RuleSet) -> None:
    global _scanner
    _scanner = Scanner(ruleset)


def _scan_task(task: Task) -> TaskResult:
    assert _scanner is not None
    stats = ScanStats()
    blob_id, findings, count = execute_task(_scanner, task, stats)
    plain: list[PlainFinding] = [
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
        for finding in findings
    ]
    return blob_id, plain, stats, count


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
) -> Iterator[tuple[str | None, list[Finding]]]:
    """Scan ``tasks`` in ``jobs`` processes; yield (blob id, findings) per task."""
    rules = ruleset.by_id()
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_start_worker,
        initargs=(ruleset,),
    ) as pool:
        pending: set[concurrent.futures.Future[TaskResult]] = set()
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
    done: set[concurrent.futures.Future[TaskResult]],
    rules: dict[str, Rule],
    stats: ScanStats,
    progress: Callable[[ScanStats], None] | None,
) -> Iterator[tuple[str | None, list[Finding]]]:
    for future in done:
        blob_id, plain, part, documents = future.result()
        _merge_stats(stats, part)
        stats.documents += documents
        if progress is not None:
            progress(stats)
        yield blob_id, [_rebuild(item, rules) for item in plain]


def _rebuild(item: PlainFinding, rules: dict[str, Rule]) -> Finding:
    rule_id, secret, path, line, column, pointer, commit, author, context, ident = item
    return Finding(
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
