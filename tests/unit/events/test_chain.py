"""The hash chain: canonical form, gap-free sequence, links and the head row."""

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from keysteward.clock import as_utc
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.chain import (
    GENESIS_DIGEST,
    canonical_fields,
    compute_digest,
    event_digest,
)
from keysteward.events.models import Event, EventChainHead
from keysteward.events.services import record_event, record_events


def _chain(store: Store) -> list[Event]:
    with store.session() as session:
        return list(session.scalars(select(Event).order_by(Event.sequence)))


def test_canonical_form_known_answer() -> None:
    fields = canonical_fields(
        sequence=7,
        previous_digest="ab" * 32,
        occurred_at=datetime(2026, 1, 31, 9, 5, 1, 42, tzinfo=UTC),
        actor="cli:alice",
        action="credential.create",
        target_type="credential",
        target_id="12",
        outcome="success",
        source_address=None,
        request_id=None,
        details={"source": "aws", "count": 2, "note": "café"},
    )
    expected = (
        '{"action":"credential.create","actor":"cli:alice",'
        '"details":{"count":2,"note":"caf\\u00e9","source":"aws"},'
        '"format":1,"occurred_at":"2026-01-31T09:05:01.000042Z",'
        '"outcome":"success","previous_digest":"' + "ab" * 32 + '",'
        '"request_id":null,"sequence":7,"source_address":null,'
        '"target_id":"12","target_type":"credential"}'
    )
    assert compute_digest(fields) == hashlib.sha256(expected.encode()).hexdigest()


def test_canonical_timestamp_converts_to_utc() -> None:
    base: dict[str, Any] = {
        "sequence": 1,
        "previous_digest": GENESIS_DIGEST,
        "actor": "a",
        "action": "b",
        "target_type": None,
        "target_id": None,
        "outcome": "success",
        "source_address": None,
        "request_id": None,
        "details": {},
    }
    in_utc = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    in_berlin = in_utc.astimezone(timezone(timedelta(hours=1)))
    assert compute_digest(canonical_fields(occurred_at=in_utc, **base)) == (
        compute_digest(canonical_fields(occurred_at=in_berlin, **base))
    )


def test_events_form_gap_free_chain(store: Store) -> None:
    for index in range(3):
        with store.session() as session:
            record_event(session, actor="cli:alice", action="x.create", target_id=index)
    events = _chain(store)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].previous_digest == GENESIS_DIGEST
    assert events[1].previous_digest == events[0].digest
    assert events[2].previous_digest == events[1].digest
    for recorded in events:
        assert event_digest(recorded) == recorded.digest


def test_rollback_leaves_no_gap(store: Store) -> None:
    with store.session() as session:
        record_event(session, actor="a", action="first")
    with pytest.raises(RuntimeError), store.session() as session:
        record_event(session, actor="a", action="rolled.back")
        session.flush()
        raise RuntimeError("abort the transaction")
    with store.session() as session:
        record_event(session, actor="a", action="second")
    events = _chain(store)
    assert [e.action for e in events] == ["first", "second"]
    assert [e.sequence for e in events] == [1, 2]
    assert events[1].previous_digest == events[0].digest


def test_batch_keeps_given_order(store: Store) -> None:
    entries = [{"actor": "importer", "action": f"row.{n}"} for n in range(50)]
    with store.session() as session:
        record_events(session, entries)
    events = _chain(store)
    assert [e.action for e in events] == [f"row.{n}" for n in range(50)]
    assert [e.sequence for e in events] == list(range(1, 51))


def test_several_flushes_in_one_transaction(store: Store) -> None:
    with store.session() as session:
        record_event(session, actor="a", action="one")
        session.flush()
        record_event(session, actor="a", action="two")
        session.flush()
        record_event(session, actor="a", action="three")
    events = _chain(store)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[2].previous_digest == events[1].digest


def test_head_tracks_newest_event(store: Store) -> None:
    with store.session() as session:
        record_events(session, [{"actor": "a", "action": "x"}] * 4)
    with store.session() as session:
        head = session.get_one(EventChainHead, 1)
        newest = session.scalars(select(Event).order_by(Event.sequence.desc())).first()
    assert newest is not None
    assert head.last_sequence == 4
    assert head.last_digest == newest.digest


def test_missing_head_is_rebuilt(store: Store) -> None:
    with store.session() as session:
        record_event(session, actor="a", action="before")
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM event_chain_head"))
    with store.session() as session:
        record_event(session, actor="a", action="after")
    events = _chain(store)
    assert [e.sequence for e in events] == [1, 2]
    assert events[1].previous_digest == events[0].digest


def test_stored_time_matches_digest(store: Store) -> None:
    local = datetime(
        2026, 5, 1, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-4))
    )
    with store.session() as session:
        session.add(Event(actor="a", action="x", occurred_at=local))
    (recorded,) = _chain(store)
    assert event_digest(recorded) == recorded.digest
    assert as_utc(recorded.occurred_at) == local


_json_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=20,
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _json_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_json_text, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(details=st.dictionaries(_json_text, _json_values, max_size=5), actor=_json_text)
def test_digest_survives_round_trip(
    store: Store, details: dict[str, Any], actor: str
) -> None:
    try:
        with store.session() as session:
            record_event(session, actor=actor or "a", action="fuzz", details=details)
    except InvalidInputError:
        assume(False)
    with store.session() as session:
        newest = session.scalars(select(Event).order_by(Event.sequence.desc())).first()
    assert newest is not None
    assert event_digest(newest) == newest.digest
