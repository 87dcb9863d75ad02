"""The shared Prometheus directory of server processes: checks, cleanup, scrape."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from keysteward.errors import ConfigError
from keysteward.metrics_directory import (
    check_named_directory,
    remove_stale_directories,
    shared_metrics_directory,
)
from keysteward.observability import MULTIPROCESS_DIR_SETTING, _scraped_registry

# Writes one counter in multiprocess mode, as a worker process would.
COUNTING_PROCESS = (
    "from prometheus_client import Counter\n"
    "Counter('keysteward_test_reads', 'Reads.').inc(3)\n"
)


def _count_in_process(directory: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", COUNTING_PROCESS],
        env={**os.environ, MULTIPROCESS_DIR_SETTING: str(directory)},
        check=True,
    )


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_check_without_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_SETTING, raising=False)
    assert check_named_directory() is None


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_check_rejects_non_directory(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = {"missing": tmp_path / "absent", "file": tmp_path / "values", "empty": ""}
    (tmp_path / "values").write_text("not a directory")
    monkeypatch.setenv(MULTIPROCESS_DIR_SETTING, str(named[kind]))
    with pytest.raises(ConfigError, match="is not a directory"):
        check_named_directory()


def test_check_warns_of_old_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _count_in_process(tmp_path)
    monkeypatch.setenv(MULTIPROCESS_DIR_SETTING, str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="keysteward"):
        assert check_named_directory() == tmp_path
    assert "already contains 1 value files" in caplog.text


def test_private_directory_removed_after_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_SETTING, raising=False)
    with shared_metrics_directory(tmp_path):
        directory = Path(os.environ[MULTIPROCESS_DIR_SETTING])
        assert directory.parent == tmp_path
        assert directory.name.startswith(f"metrics-{os.getpid()}-")
    assert MULTIPROCESS_DIR_SETTING not in os.environ
    assert not directory.exists()


def test_named_directory_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = tmp_path / "values"
    named.mkdir()
    monkeypatch.setenv(MULTIPROCESS_DIR_SETTING, str(named))
    with shared_metrics_directory(tmp_path):
        assert os.environ[MULTIPROCESS_DIR_SETTING] == str(named)
    assert named.is_dir()
    assert list(tmp_path.glob("metrics-*")) == []


def test_stale_directories_removed(tmp_path: Path) -> None:
    stale = tmp_path / f"metrics-{_dead_pid()}-abc"
    running = tmp_path / f"metrics-{os.getpid()}-def"
    unrelated = tmp_path / "metrics-notes"
    for directory in (stale, running, unrelated):
        directory.mkdir()

    remove_stale_directories(tmp_path)

    assert not stale.exists()
    assert running.is_dir()
    assert unrelated.is_dir()


def test_scrape_sums_and_skips_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _count_in_process(tmp_path)
    _count_in_process(tmp_path)
    (tmp_path / "counter_1.db").write_bytes(b"\x00\x01not a value file" * 8)
    monkeypatch.setenv(MULTIPROCESS_DIR_SETTING, str(tmp_path))

    with caplog.at_level(logging.ERROR, logger="keysteward"):
        scraped = _scraped_registry(CollectorRegistry())
        text = generate_latest(scraped).decode()

    assert "keysteward_test_reads_total 6.0" in text
    assert "skipping unreadable metrics file" in caplog.text
    assert "counter_1.db" in caplog.text
