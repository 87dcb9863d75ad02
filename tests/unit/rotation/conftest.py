"""Rotation fixtures: a key ring, and the in-memory rotator registered as a plugin."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from common import rotation_plugins
from common.rotation_setup import keyring_for, random_master_key
from keysteward.vault.keys import KeyRing


@pytest.fixture
def keyring() -> KeyRing:
    return keyring_for(random_master_key())


@pytest.fixture
def in_memory_rotator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Register the in-memory rotator through a real entry point; yield its name."""
    dist_info = tmp_path / "plugins" / "acme_rotators-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-rotators\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[keysteward.rotators]\nin_memory = common.rotation_plugins:InMemoryRotator\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    rotation_plugins.VALID.clear()
    rotation_plugins.FAIL_VERIFY.clear()
    yield "in_memory"
    rotation_plugins.VALID.clear()
    rotation_plugins.FAIL_VERIFY.clear()
