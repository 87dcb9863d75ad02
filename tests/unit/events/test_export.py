"""Event export formats: JSON Lines, ArcSight CEF and OCSF API Activity."""

import json

from keysteward.db import Store
from keysteward.events.export import (
    format_cef,
    format_jsonl,
    format_ocsf,
    iter_events,
    ocsf_event,
)
from keysteward.events.models import Event
from keysteward.events.services import record_event


def _one_event(store: Store, **overrides: object) -> Event:
    values: dict[str, object] = {
        "actor": "cli:alice",
        "action": "credential.create",
        "target_type": "credential",
        "target_id": 12,
        "source_address": "192.0.2.10",
        "request_id": "req-1",
        "details": {"name": "billing"},
    }
    values.update(overrides)
    with store.session() as session:
        record_event(session, **values)  # type: ignore[arg-type]
    with store.session() as session:
        (recorded,) = list(iter_events(session))
    return recorded


def _cef_extension(line: str) -> str:
    # The extension starts after the seventh unescaped pipe.
    count, index = 0, 0
    while count < 7:
        if line[index] == "\\":
            index += 2
            continue
        if line[index] == "|":
            count += 1
        index += 1
    return line[index:]


def test_jsonl_carries_chain_fields(store: Store) -> None:
    recorded = _one_event(store)
    row = json.loads(format_jsonl(recorded))
    assert row["sequence"] == 1
    assert row["digest"] == recorded.digest
    assert row["previous_digest"] == "0" * 64
    assert row["target_id"] == "12"
    assert row["occurred_at"].endswith("Z")
    assert row["details"] == {"name": "billing"}


def test_cef_header_fields(store: Store) -> None:
    line = format_cef(_one_event(store))
    header = line.split("|")[:7]
    assert header[0] == "CEF:0"
    assert header[1:3] == ["keysteward", "keysteward"]
    assert header[4] == "credential.create"
    assert header[6] == "3"
    extension = _cef_extension(line)
    assert "suser=cli:alice" in extension
    assert "src=192.0.2.10" in extension
    assert "cn1Label=sequence cn1=1" in extension


def test_cef_escapes_header_pipe(store: Store) -> None:
    line = format_cef(_one_event(store, action="odd|action\\x"))
    assert "|odd\\|action\\\\x|" in line


def test_cef_escapes_extension_values(store: Store) -> None:
    line = format_cef(_one_event(store, actor="a=b\\c\nd"))
    extension = _cef_extension(line)
    assert "suser=a\\=b\\\\c\\nd" in extension
    assert "\n" not in line


def test_cef_skips_non_ip_source(store: Store) -> None:
    line = format_cef(_one_event(store, source_address="laptop-7"))
    assert " src=" not in line


def test_cef_failure_raises_severity(store: Store) -> None:
    line = format_cef(_one_event(store, outcome="denied"))
    assert line.split("|")[6] == "7"


def test_ocsf_required_attributes(store: Store) -> None:
    recorded = _one_event(store)
    event = ocsf_event(recorded)
    for name in (
        "activity_id",
        "category_uid",
        "class_uid",
        "type_uid",
        "severity_id",
        "time",
        "metadata",
        "actor",
        "api",
        "src_endpoint",
    ):
        assert name in event, name
    assert event["class_uid"] == 6003
    assert event["category_uid"] == 6
    assert event["activity_id"] == 1
    assert event["type_uid"] == 600301
    assert event["api"]["operation"] == "credential.create"
    assert event["api"]["request"] == {"uid": "req-1"}
    assert event["src_endpoint"] == {"ip": "192.0.2.10"}
    assert event["metadata"]["product"]["name"] == "keysteward"
    assert event["resources"] == [{"type": "credential", "uid": "12"}]
    assert event["status_id"] == 1


def test_ocsf_other_activity_and_failure(store: Store) -> None:
    event = ocsf_event(
        _one_event(store, action="audit.run", outcome="failure", source_address=None)
    )
    assert event["activity_id"] == 99
    assert event["type_uid"] == 600399
    assert event["status_id"] == 2
    assert event["src_endpoint"] == {"name": "unknown"}


def test_ocsf_line_is_json(store: Store) -> None:
    parsed = json.loads(format_ocsf(_one_event(store)))
    assert parsed["class_uid"] == 6003


def test_allowed_read_exported_as_success(store: Store) -> None:
    recorded = _one_event(store, action="secret.read", outcome="allowed")
    line = format_cef(recorded)
    assert line.split("|")[6] == "3"
    extension = _cef_extension(line)
    assert "outcome=success" in extension
    assert "cs6Label=keystewardOutcome cs6=allowed" in extension
    event = ocsf_event(recorded)
    assert event["status_id"] == 1
    assert event["status"] == "Success"
    assert event["severity_id"] == 1
