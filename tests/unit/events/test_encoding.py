"""Event entries encoded before the chain head is locked.

The pieces of a template, joined with a chain position, must give exactly
the canonical text that the ORM path hashes, whatever the values contain.
"""

from datetime import UTC, datetime
from typing import Any

import pytest

from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.chain import (
    canonical_fields,
    canonical_json,
    canonical_template,
    compute_digest,
)
from keysteward.events.encoding import EventTemplate, encode_events
from keysteward.events.services import append_events, record_events
from keysteward.events.verify import verify_chain

MOMENT = datetime(2026, 12, 4, 9, 30, 15, 123456, tzinfo=UTC)
# Values that contain the key patterns the template splits at.
TRICKY_CASES: list[dict[str, Any]] = [
    {"target_type": None, "target_id": None, "request_id": None, "source": None},
    {
        "target_type": "secret",
        "target_id": 'x,"sequence":0',
        "request_id": 'r,"previous_digest":""',
        "source": ',"source_address":""',
    },
    {
        "target_type": ',"occurred_at":""',
        "target_id": "naïve ☃",
        "request_id": "",
        "source": "::1",
    },
]
TRICKY_DETAILS: list[dict[str, Any]] = [
    {},
    {"previous_digest": "", "sequence": 0, "occurred_at": ""},
    {"nested": {"source_address": ',"source_address":""', "list": [1, "two"]}},
]


@pytest.mark.parametrize("case", TRICKY_CASES)
@pytest.mark.parametrize("details", TRICKY_DETAILS)
def test_template_joins_to_canonical_text(
    case: dict[str, Any], details: dict[str, Any]
) -> None:
    shared = {
        "actor": "service_account:crm-sync",
        "action": "secret.read",
        "target_type": case["target_type"],
        "target_id": case["target_id"],
        "outcome": "allowed",
        "details": details,
    }
    template = canonical_template(**shared)
    pieces = template.pieces(MOMENT, case["request_id"], case["source"])
    fields = canonical_fields(
        sequence=41,
        previous_digest="ab" * 32,
        occurred_at=MOMENT,
        request_id=case["request_id"],
        source_address=case["source"],
        **shared,
    )
    joined = (
        pieces.before_previous_digest
        + canonical_json("ab" * 32)
        + pieces.before_sequence
        + "41"
        + pieces.after_sequence
    )
    assert joined == canonical_json(fields)
    assert pieces.digest(41, "ab" * 32) == compute_digest(fields)


def test_template_events_verify(store: Store) -> None:
    template = EventTemplate(
        {
            "actor": "service_account:crm-sync",
            "action": "secret.read",
            "target_type": "secret",
            "target_id": "hubspot",
            "outcome": "allowed",
            "details": {"reason": "granted by role crm", "version": 3},
        },
        store.engine.dialect,
    )
    encoded = [
        template.encode(request_id=f"req-{number}", source_address="10.0.0.7")
        for number in range(3)
    ]
    with store.session() as session:
        record_events(session, [{"actor": "test:writer", "action": "test.first"}])
        append_events(session, encoded)
        append_events(
            session, [{"actor": "test:writer", "action": "test.last", "details": {}}]
        )
    with store.session() as session:
        report = verify_chain(session)
    assert report.problems == []
    assert report.last_sequence == 5


def test_template_rejects_per_event_field(store: Store) -> None:
    with pytest.raises(ValueError, match="request_id"):
        EventTemplate(
            {"actor": "a", "action": "b", "request_id": "r-1"}, store.engine.dialect
        )


def test_template_rejects_secret_details(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="looks like a secret"):
        EventTemplate(
            {
                "actor": "a",
                "action": "b",
                "details": {"note": "AKIA" + "ABCDEFGHIJKLMNOP"},
            },
            store.engine.dialect,
        )


def test_encode_events_names_bad_entry(store: Store) -> None:
    template = EventTemplate({"actor": "a", "action": "b"}, store.engine.dialect)
    ready = template.encode(request_id=None, source_address=None)
    with pytest.raises(InvalidInputError, match="entry 2 is missing action"):
        encode_events(
            [ready, {"actor": "a", "action": "b"}, {"actor": "a"}],
            store.engine.dialect,
        )


def test_encode_events_passes_encoded_through(store: Store) -> None:
    template = EventTemplate({"actor": "a", "action": "b"}, store.engine.dialect)
    ready = template.encode(request_id="r", source_address=None, occurred_at=MOMENT)
    encoded = encode_events(
        [ready, {"actor": "c", "action": "d"}], store.engine.dialect
    )
    assert encoded[0] is ready
    assert encoded[1].values[1:3] == ("c", "d")
