"""Compare keysteward discovery with Kingfisher and detect-secrets on one corpus.

Generates a labeled corpus (bench/scan_corpus.py), scans it once with each
tool, and reports throughput, recall per credential kind and per context
(encoding), and precision. Peer tools come from a separate venv:

    python3 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install -r bench/requirements-scan.txt
    .venv/bin/python bench/scan_compare.py --write-docs

Kingfisher runs with --no-validate and --no-update-check, so no tool sends
any traffic off the machine.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan_corpus import generate  # noqa: E402

from keysteward import __version__  # noqa: E402
from keysteward.crypto.fingerprint import new_salt  # noqa: E402
from keysteward.discovery.rules import load_rules  # noqa: E402
from keysteward.discovery.scan import run_scan  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Discovery"


@dataclass
class ToolFinding:
    """One finding as a tool reported it, reduced to what matching needs."""

    path: str
    line: int | None
    secret: str | None = None
    sha1: str | None = None


@dataclass
class ToolRun:
    name: str
    version: str
    seconds: float
    findings: list[ToolFinding] = field(default_factory=list)
    note: str = ""


def corpus_bytes(root: Path) -> int:
    return sum(
        path.stat().st_size
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts
    )


def run_keysteward(root: Path, jobs: int) -> ToolRun:
    started = time.perf_counter()
    result = run_scan([root], load_rules(), new_salt(), git=True, jobs=jobs)
    seconds = time.perf_counter() - started
    findings = [
        ToolFinding(path=_relative(f.path, root), line=f.line, secret=f.secret)
        for f in result.findings
    ]
    return ToolRun("keysteward", __version__, seconds, findings, f"--git, {jobs} jobs")


def run_kingfisher(root: Path, binary: str, output: Path) -> ToolRun:
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    command = [
        binary,
        "scan",
        str(root),
        "--no-validate",
        "--no-update-check",
        "--no-dedup",
        "--format",
        "json",
        "-q",
        "-o",
        str(output),
    ]
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    data = json.loads(output.read_text(encoding="utf-8"))
    findings = []
    for item in data.get("findings", []):
        finding = item.get("finding", {})
        path = str(finding.get("path", ""))
        findings.append(
            ToolFinding(
                path=_relative(path, root),
                line=finding.get("line"),
                secret=finding.get("snippet"),
            )
        )
    return ToolRun("kingfisher", version, seconds, findings, "--no-validate, 2 jobs")


def run_detect_secrets(root: Path, binary: str) -> ToolRun:
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    started = time.perf_counter()
    completed = subprocess.run(
        [binary, "scan", "--all-files"],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    seconds = time.perf_counter() - started
    data = json.loads(completed.stdout)
    findings = [
        ToolFinding(
            path=path, line=item.get("line_number"), sha1=item.get("hashed_secret")
        )
        for path, items in data.get("results", {}).items()
        for item in items
    ]
    return ToolRun(
        "detect-secrets", version, seconds, findings, "--all-files, no git history"
    )


def _relative(path: str, root: Path) -> str:
    prefix = str(root).rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _matches(truth: dict, finding: ToolFinding) -> bool:
    if finding.path != truth["file"]:
        return False
    secret = truth["secret"]
    if finding.secret:
        for value in (secret, *truth.get("alternates", [])):
            if value in finding.secret or (
                len(finding.secret) >= 8 and finding.secret in value
            ):
                return True
        return False
    if finding.sha1:
        return finding.sha1 == hashlib.sha1(secret.encode()).hexdigest()  # noqa: S324
    return finding.line is not None and finding.line == truth.get("line")


def score(run: ToolRun, truth: list[dict]) -> dict:
    """Return recall per kind and context, and precision, for one tool run."""
    by_file: dict[str, list[dict]] = defaultdict(list)
    for item in truth:
        by_file[item["file"]].append(item)
    matched_truth: set[int] = set()
    unique: dict[tuple, ToolFinding] = {}
    for finding in run.findings:
        key = (finding.path, finding.secret or finding.sha1 or finding.line)
        unique.setdefault(key, finding)
    false_positives = 0
    false_by_context: dict[str, int] = defaultdict(int)
    for finding in unique.values():
        hits = [
            id(item)
            for item in by_file.get(finding.path, [])
            if _matches(item, finding)
        ]
        if hits:
            matched_truth.update(hits)
        else:
            false_positives += 1
            contexts = {item["context"] for item in by_file.get(finding.path, [])}
            false_by_context[",".join(sorted(contexts)) or "clean file"] += 1
    recall_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    recall_context: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in truth:
        found = id(item) in matched_truth
        for table, key in (
            (recall_kind, item["kind"]),
            (recall_context, item["context"]),
        ):
            table[key][0] += int(found)
            table[key][1] += 1
    true_positives = len(unique) - false_positives
    return {
        "recall": len(matched_truth) / len(truth),
        "precision": true_positives / len(unique) if unique else 1.0,
        "findings": len(unique),
        "false_positives": false_positives,
        "false_by_context": dict(false_by_context),
        "recall_kind": {k: v[0] / v[1] for k, v in sorted(recall_kind.items())},
        "recall_context": {k: v[0] / v[1] for k, v in sorted(recall_context.items())},
    }


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory_kb = int(line.split()[1])
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}"
    )


def render(
    runs: list[ToolRun],
    scores: dict[str, dict],
    megabytes: float,
    truth_count: int,
    command: str,
    load: float,
) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`. Machine: {machine()}. Load average (1 minute) "
        f"when the scans started: {load:.1f}; other work was running, so the "
        "seconds are noisy and the ratios matter more than the figures.",
        f"Corpus: {megabytes:.1f} MB of generated files (code, config, .env, "
        "notebooks, CSV, XLSX, .eml and .mbox with base64 and quoted-printable "
        "parts, UTF-16, "
        f"minified lines) in a git repository whose history also adds and then removes "
        f"keys; {truth_count} planted credentials plus decoys (documentation examples, "
        "placeholders, hashes). Throughput is corpus MB divided by wall time; "
        "Kingfisher and keysteward also read the git history, and keysteward "
        "skips a blob whose content equals a working-tree file it already "
        "scanned. The corpus generator and keysteward's rules were written in "
        "the same session, so keysteward's recall here is an upper bound for "
        "real repositories.",
        "",
        "| tool | version | options | seconds | MB/s | recall | precision | findings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        result = scores[run.name]
        lines.append(
            f"| {run.name} | {run.version} | {run.note} | {run.seconds:.1f} | "
            f"{megabytes / run.seconds:.1f} | {result['recall']:.3f} | "
            f"{result['precision']:.3f} | {result['findings']} |"
        )
    for title, key in (("kind", "recall_kind"), ("context", "recall_context")):
        lines += ["", f"Recall per {title}:", ""]
        lines.append("| " + title + " | " + " | ".join(r.name for r in runs) + " |")
        lines.append("|---" * (len(runs) + 1) + "|")
        for name in scores[runs[0].name][key]:
            cells = [f"{scores[r.name][key].get(name, 0.0):.2f}" for r in runs]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "False positives by the contexts of the file they were in:", ""]
    for run in runs:
        lines.append(f"- {run.name}: {scores[run.name]['false_by_context'] or 'none'}")
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        following = rest.find("\n## ")
        tail = rest[following + 1 :] if following != -1 else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "keysteward-scan-bench",
    )
    parser.add_argument("--size-mb", type=int, default=50, help="corpus size in MB")
    parser.add_argument("--seed", type=int, default=1204)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--peer-venv", type=Path, default=Path("/work/bench-venv"))
    parser.add_argument("--write-docs", action="store_true")
    arguments = parser.parse_args()

    root = arguments.out / "corpus"
    if arguments.out.exists():
        shutil.rmtree(arguments.out)
    generate(root, seed=arguments.seed, target_megabytes=arguments.size_mb)
    truth = json.loads((arguments.out / "corpus-truth.json").read_text())
    megabytes = corpus_bytes(root) / 1_000_000

    load = os.getloadavg()[0]
    runs = [run_keysteward(root, arguments.jobs)]
    kingfisher = arguments.peer_venv / "bin" / "kingfisher"
    detect_secrets = arguments.peer_venv / "bin" / "detect-secrets"
    if kingfisher.exists():
        runs.append(run_kingfisher(root, str(kingfisher), arguments.out / "kf.json"))
    if detect_secrets.exists():
        runs.append(run_detect_secrets(root, str(detect_secrets)))
    scores = {run.name: score(run, truth) for run in runs}
    command = ".venv/bin/python bench/scan_compare.py --write-docs"
    section = render(runs, scores, megabytes, len(truth), command, load)
    print(section)
    if arguments.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
