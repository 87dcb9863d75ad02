"""Export of the event log as JSON Lines, ArcSight CEF or OCSF JSON.

Each formatter turns one event into one line of text, so exports stream and
any SIEM that reads line-delimited input can ingest them.
"""

import ipaddress
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward import __version__
from keysteward.clock import as_utc
from keysteward.events.chain import format_timestamp
from keysteward.events.models import Event

EXPORT_FORMATS = ("jsonl", "cef", "ocsf")
VENDOR = "keysteward"
PRODUCT = "keysteward"
# OCSF schema version whose API Activity class (category 6, Application
# Activity; class 3) this export follows.
OCSF_VERSION = "1.3.0"
OCSF_CATEGORY_UID = 6
OCSF_API_ACTIVITY_CLASS_UID = 6003
_FETCH_BATCH = 2000

# OCSF API Activity activity_id by the verb that ends an action name, such
# as "credential.create". Anything else is 99 (Other).
_OCSF_ACTIVITY_BY_VERB = {
    "create": 1,
    "import": 1,
    "issue": 1,
    "add": 1,
    "read": 2,
    "reveal": 2,
    "get": 2,
    "list": 2,
    "update": 3,
    "rotate": 3,
    "grant": 3,
    "change": 3,
    "delete": 4,
    "revoke": 4,
    "remove": 4,
}
_OCSF_ACTIVITY_NAMES = {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
# (CEF severity 0-10, OCSF severity_id) by outcome; unknown outcomes use
# the "failure" row, so an unexpected value is never reported as routine.
_SEVERITY_BY_OUTCOME = {
    "success": (3, 1),
    # An authorization decision that let the action through.
    "allowed": (3, 1),
    "failure": (6, 3),
    "error": (6, 3),
    "denied": (7, 3),
}


_SUCCESS_OUTCOMES = frozenset({"success", "allowed"})


def iter_events(session: Session, since: datetime | None = None) -> Iterator[Event]:
    """Yield events in chain order, optionally only those at or after ``since``."""
    query = select(Event).order_by(Event.sequence)
    if since is not None:
        query = query.where(Event.occurred_at >= as_utc(since))
    yield from session.scalars(query.execution_options(yield_per=_FETCH_BATCH))


def event_as_dict(recorded: Event) -> dict[str, Any]:
    """Return every stored field of ``recorded``, chain fields included."""
    return {
        "id": recorded.id,
        "sequence": recorded.sequence,
        "occurred_at": format_timestamp(recorded.occurred_at),
        "actor": recorded.actor,
        "action": recorded.action,
        "target_type": recorded.target_type,
        "target_id": recorded.target_id,
        "outcome": recorded.outcome,
        "source_address": recorded.source_address,
        "request_id": recorded.request_id,
        "details": recorded.details,
        "previous_digest": recorded.previous_digest,
        "digest": recorded.digest,
    }


def format_jsonl(recorded: Event) -> str:
    return json.dumps(event_as_dict(recorded), sort_keys=True, ensure_ascii=False)


def _escape_cef_header(value: str) -> str:
    # Header fields escape backslash and pipe; a line break would end the
    # record, so it becomes a space.
    escaped = value.replace("\\", "\\\\").replace("|", "\\|")
    return escaped.replace("\r", " ").replace("\n", " ")


def _escape_cef_value(value: str) -> str:
    # Extension values escape backslash and equals sign, and encode line
    # breaks as the two characters \n or \r.
    escaped = value.replace("\\", "\\\\").replace("=", "\\=")
    return escaped.replace("\r", "\\r").replace("\n", "\\n")


def _epoch_milliseconds(value: datetime) -> int:
    moment = as_utc(value)
    assert moment is not None
    return int(moment.timestamp() * 1000)


def _ip_address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _severity(outcome: str) -> tuple[int, int]:
    return _SEVERITY_BY_OUTCOME.get(outcome, _SEVERITY_BY_OUTCOME["failure"])


def format_cef(recorded: Event) -> str:
    """Return ``recorded`` as one CEF:0 record.

    ``outcome`` is success or failure, as SIEM rules expect, and the
    recorded outcome (allowed, denied, ...) goes in a custom slot. Custom
    fields use the CEF custom-string slots with labels: cs1 target type, cs2
    target id, cs3 request id, cs4 event digest, cs5 details (JSON), cs6
    recorded outcome, cn1 chain sequence.
    """
    severity, _ocsf = _severity(recorded.outcome)
    header = [
        "CEF:0",
        VENDOR,
        PRODUCT,
        __version__,
        recorded.action,
        recorded.action.replace(".", " "),
        str(severity),
    ]
    extension: list[tuple[str, str | None]] = [
        ("rt", str(_epoch_milliseconds(recorded.occurred_at))),
        ("externalId", str(recorded.id)),
        ("act", recorded.action),
        ("suser", recorded.actor),
        ("outcome", "success" if recorded.outcome in _SUCCESS_OUTCOMES else "failure"),
        ("src", _ip_address(recorded.source_address)),
        ("cs1Label", "targetType"),
        ("cs1", recorded.target_type),
        ("cs2Label", "targetId"),
        ("cs2", recorded.target_id),
        ("cs3Label", "requestId"),
        ("cs3", recorded.request_id),
        ("cs4Label", "eventDigest"),
        ("cs4", recorded.digest),
        ("cs5Label", "details"),
        ("cs5", json.dumps(recorded.details, sort_keys=True, ensure_ascii=False)),
        ("cs6Label", "keystewardOutcome"),
        ("cs6", recorded.outcome),
        ("cn1Label", "sequence"),
        ("cn1", str(recorded.sequence)),
    ]
    header_text = "|".join([header[0]] + [_escape_cef_header(v) for v in header[1:]])
    pairs = " ".join(
        f"{key}={_escape_cef_value(value)}" for key, value in extension if value
    )
    return f"{header_text}|{pairs}"


def _ocsf_activity_id(action: str) -> int:
    verb = action.rsplit(".", 1)[-1].lower()
    return _OCSF_ACTIVITY_BY_VERB.get(verb, 99)


def ocsf_event(recorded: Event) -> dict[str, Any]:
    """Return ``recorded`` as an OCSF API Activity (class 6003) object."""
    activity_id = _ocsf_activity_id(recorded.action)
    _cef, severity_id = _severity(recorded.outcome)
    success = recorded.outcome in _SUCCESS_OUTCOMES
    source_ip = _ip_address(recorded.source_address)
    # OCSF requires src_endpoint; events recorded without an address get a
    # placeholder name instead of a guessed host.
    source: dict[str, Any] = {"name": "unknown"}
    if source_ip:
        source = {"ip": source_ip}
    elif recorded.source_address:
        source = {"name": recorded.source_address}
    result: dict[str, Any] = {
        "category_uid": OCSF_CATEGORY_UID,
        "class_uid": OCSF_API_ACTIVITY_CLASS_UID,
        "activity_id": activity_id,
        "activity_name": _OCSF_ACTIVITY_NAMES[activity_id],
        "type_uid": OCSF_API_ACTIVITY_CLASS_UID * 100 + activity_id,
        "severity_id": severity_id,
        "status_id": 1 if success else 2,
        "status": "Success" if success else "Failure",
        "status_detail": recorded.outcome,
        "time": _epoch_milliseconds(recorded.occurred_at),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": str(recorded.id),
            "sequence": recorded.sequence,
            "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": __version__},
        },
        "actor": {"user": {"name": recorded.actor, "uid": recorded.actor}},
        "api": {"operation": recorded.action},
        "src_endpoint": source,
        "unmapped": {
            "details": recorded.details,
            "digest": recorded.digest,
            "previous_digest": recorded.previous_digest,
        },
    }
    if recorded.request_id:
        result["api"]["request"] = {"uid": recorded.request_id}
    if recorded.target_type or recorded.target_id:
        result["resources"] = [
            {"type": recorded.target_type, "uid": recorded.target_id}
        ]
    return result


def format_ocsf(recorded: Event) -> str:
    return json.dumps(ocsf_event(recorded), sort_keys=True, ensure_ascii=False)


FORMATTERS: dict[str, Callable[[Event], str]] = {
    "jsonl": format_jsonl,
    "cef": format_cef,
    "ocsf": format_ocsf,
}
