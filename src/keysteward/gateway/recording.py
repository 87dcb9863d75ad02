"""Recording gateway requests as events and as permission usage, in batches.

Writing an event per request in the request's own transaction would cost a
store round trip on every call. So requests are buffered in memory, and a
background thread writes them every ``interval`` seconds, or sooner when
``max_pending`` are waiting. Each write is one ``record_events`` and one
``record_usage`` call in a single transaction.

NOTE: a process that is killed loses the requests buffered since the last
flush, at most ``interval`` seconds of them. A clean shutdown flushes.
"""

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keysteward.authz.usage import UsageRecord, record_usage
from keysteward.clock import utcnow
from keysteward.db import Store
from keysteward.events.services import record_events
from keysteward.logging import REDACTED, redact

log = logging.getLogger(__name__)

EVENT_ACTION = "gateway.request"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class RequestRecord:
    """One request through the gateway. Holds no credential and no query string."""

    principal: str | None
    system: str
    method: str
    rule: str | None
    permission: str | None
    decision: str
    status: int
    upstream_status: int | None
    source_address: str | None
    request_id: str | None
    reason: str | None = None

    def event(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "method": self.method,
            "rule": self.rule,
            "permission": self.permission,
            "decision": self.decision,
            "status": self.status,
            "upstream_status": self.upstream_status,
        }
        if self.reason is not None:
            details["reason"] = self.reason
        return {
            "actor": self.principal or ANONYMOUS,
            "action": EVENT_ACTION,
            "target_type": "system",
            "target_id": self.system,
            "outcome": self.decision,
            "source_address": self.source_address,
            "request_id": self.request_id,
            "details": _scrubbed(details),
        }


def _scrubbed(details: Mapping[str, Any]) -> dict[str, Any]:
    # The event log rejects a whole batch when one value looks like a secret,
    # so such values are replaced here instead.
    return {
        key: REDACTED if isinstance(value, str) and redact(value) != value else value
        for key, value in details.items()
    }


class RequestRecorder:
    """Buffer request records and write them from a background thread."""

    def __init__(
        self, store: Store, *, interval: float = 1.0, max_pending: int = 500
    ) -> None:
        self._store = store
        self._interval = interval
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: list[RequestRecord] = []
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._pending.append(record)
            full = len(self._pending) >= self._max_pending
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._run, name="gateway-recorder", daemon=True
                )
                self._thread.start()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every buffered record now; return how many were written."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        now = utcnow()
        usage = [
            UsageRecord(r.principal, r.permission, r.decision == "allowed", now)
            for r in pending
            if r.principal is not None and r.permission is not None
        ]
        with self._store.session() as session:
            record_events(session, [record.event() for record in pending])
            if usage:
                record_usage(session, usage)
        return len(pending)

    def close(self) -> None:
        """Stop the background thread and write what is left."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - keep the writer alive
                # NOTE: the records of a failed flush are dropped, so one bad
                # batch cannot block every later one.
                log.error("gateway could not record requests: %s", type(exc).__name__)
