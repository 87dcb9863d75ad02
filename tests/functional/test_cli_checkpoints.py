"""Stores opened by the CLI sign event checkpoints as events accumulate."""

from pathlib import Path

from sqlalchemy import func, select

from keysteward.cli._context import CliState
from keysteward.events.automatic import DEFAULT_CHECKPOINT_INTERVAL
from keysteward.events.models import EventCheckpoint
from keysteward.events.services import record_events


def test_cli_store_signs_checkpoints(tmp_path: Path) -> None:
    state = CliState(overrides={"home": tmp_path / "home"})
    store = state.store
    entries = [
        {"actor": "cli:test", "action": "test.append", "target_id": str(number)}
        for number in range(DEFAULT_CHECKPOINT_INTERVAL)
    ]
    try:
        with store.session() as session:
            record_events(session, entries)
        with store.session() as session:
            signed = session.scalar(select(func.count()).select_from(EventCheckpoint))
    finally:
        state.close()
    assert signed == 1
    assert (tmp_path / "home" / "checkpoint.key").exists()
