"""Secret reads for the API: decided in memory, recorded before release.

``SecretReader.read`` decides a read of a secret's current version against
the process's ``ReadSnapshot`` and hands the read event to an
``EventWriter``. The writer's transaction reads the stored read generation
first. When it differs from the snapshot's, the transaction is rolled
back, the snapshot is loaded again and the batch starts over, deciding
every read again. So a read is released only on a decision that held when its
event's transaction read the generation (on SQLite, until the commit,
because that transaction holds the write lock), and a read whose event
cannot be committed fails.
"""

import asyncio
import logging
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from keysteward.crypto.aead import DecryptionError
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.encoding import EncodedEvent, EventTemplate
from keysteward.events.errors import EventNotRecordedError
from keysteward.events.writer import EventWriter, StaleBatchError
from keysteward.tokens.principals import Principal
from keysteward.transactions import run_transaction
from keysteward.vault.keys import KeyRing
from keysteward.vault.services import READ_ACTION, SecretRead, SecretValue
from keysteward.vault.snapshot import (
    GENERATION_QUERY,
    ReadOutcome,
    ReadSnapshot,
    load_snapshot,
)

log = logging.getLogger(__name__)


@dataclass
class PendingRead:
    """One read waiting for its event, which the writer may decide again."""

    principal: Principal
    name: str
    source: str | None
    request_id: str | None
    snapshot: ReadSnapshot
    outcome: ReadOutcome
    # The decrypted value of an allowed read, kept in the process until the
    # read's event is committed.
    value: bytes | None = field(default=None, repr=False)
    # Set when the value failed to decrypt, which leaves the read unrecorded.
    failed: bool = False
    # The read's event, encoded outside the writer's transaction.
    encoded: EncodedEvent | None = None

    def decrypt(self) -> None:
        """Decrypt the value of an allowed read, or raise the bare DecryptionError."""
        self.value = None
        version = self.outcome.version
        if self.outcome.decision and version is not None:
            self.value = self.snapshot.decrypt(version)

    @property
    def missing(self) -> bool:
        """Whether the read is allowed but the snapshot has no current version."""
        return bool(self.outcome.decision) and self.outcome.version is None

    def template_key(self) -> tuple[Any, ...]:
        """Return what the read's event shares with others: all but time and request."""
        version = self.outcome.version
        return (
            self.principal.label,
            self.name,
            bool(self.outcome.decision),
            self.outcome.decision.reason,
            version.version if version is not None else None,
        )

    def shared_event(self) -> dict[str, Any]:
        """Return the read's event without its time, source address and request id."""
        details: dict[str, Any] = {
            "reason": self.outcome.decision.reason,
            "via": "api",
        }
        if self.outcome.version is not None:
            details["version"] = self.outcome.version.version
        return {
            "actor": self.principal.label,
            "action": READ_ACTION,
            "target_type": "secret",
            "target_id": self.name,
            "outcome": "allowed" if self.outcome.decision else "denied",
            "details": details,
        }


# The number of read event templates kept. The cache starts over when full.
MAX_TEMPLATES = 4096


class SecretReader:
    """Serve reads of current secret versions from a snapshot, each one recorded."""

    def __init__(
        self,
        store: Store,
        keyring: KeyRing,
        idle_tasks: Collection["asyncio.Task[Any]"] | None = None,
    ) -> None:
        """``idle_tasks`` are the server's own tasks (see ``EventWriter``)."""
        self._store = store
        self._keyring = keyring
        self._snapshot: ReadSnapshot | None = None
        self._load_lock = threading.Lock()
        self._dialect = store.engine.dialect
        # The checked, encoded events of the reads seen lately, which differ
        # from a new read's event only in time, source and request id.
        self._templates: dict[tuple[Any, ...], EventTemplate] = {}
        self._writer: EventWriter[PendingRead] = EventWriter(
            store,
            self._prepare,
            refresh=self.refresh,
            # SQLite commits are local writes, short enough for the loop.
            inline=store.engine.dialect.name == "sqlite",
            idle_tasks=idle_tasks,
        )

    async def read(
        self,
        principal: Principal,
        name: str,
        *,
        source: str | None,
        request_id: str | None,
    ) -> SecretRead | None:
        """Decide, record and decrypt one read of the current version of ``name``.

        Returns None when an allowed caller requests a secret without a
        current version in the snapshot. The caller then reads through the
        store, which distinguishes a missing secret from a missing version. Raises
        EventNotRecordedError when the read event could not be committed,
        and DecryptionError, without recording the read, when the value
        does not decrypt.
        """
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = await run_in_threadpool(self._first_snapshot)
        pending = PendingRead(
            principal,
            name,
            source,
            request_id,
            snapshot,
            snapshot.decide(principal, name),
        )
        if pending.missing:
            return None
        # Decrypted before the event, as the path through the store does, so
        # a value that fails to decrypt is never recorded as read.
        pending.decrypt()
        try:
            pending.encoded = self._encode(pending)
        except InvalidInputError as exc:
            # As when the writer's commit rejects the event: the read fails.
            log.error("read event of secret %s rejected: %s", name, exc)
            raise EventNotRecordedError("the read event is invalid") from exc
        await self._writer.submit(pending)
        if pending.failed:
            raise DecryptionError
        if pending.missing:
            return None
        outcome = pending.outcome
        if not outcome.decision or outcome.version is None or pending.value is None:
            return SecretRead(outcome.decision, None)
        return SecretRead(
            outcome.decision,
            SecretValue(name, outcome.version.version, pending.value),
        )

    def refresh(self) -> ReadSnapshot:
        """Load the snapshot from the store and make it the current one."""
        with self._load_lock:
            snapshot = run_transaction(
                self._store,
                lambda session: load_snapshot(session, self._keyring),
                lock_first=False,
            )
            self._snapshot = snapshot
        return snapshot

    def close(self) -> None:
        self._writer.close()

    def _first_snapshot(self) -> ReadSnapshot:
        # Requests that arrive together at start-up share one load.
        with self._load_lock:
            if self._snapshot is not None:
                return self._snapshot
        return self.refresh()

    def _prepare(self, cursor: Any, batch: list[PendingRead]) -> list[EncodedEvent]:
        # Runs in the writer's transaction, which on SQLite holds the write
        # lock from its start, so nothing can change until it commits.
        cursor.execute(GENERATION_QUERY)
        row = cursor.fetchone()
        snapshot = self._snapshot
        if row is None or snapshot is None or int(row[0]) != snapshot.generation:
            raise StaleBatchError
        for pending in batch:
            if pending.snapshot is not snapshot:
                pending.snapshot = snapshot
                pending.outcome = snapshot.decide(pending.principal, pending.name)
                try:
                    pending.decrypt()
                    pending.failed = False
                except DecryptionError:
                    pending.failed = True
                pending.encoded = None
        return [
            pending.encoded or self._encode(pending)
            for pending in batch
            if not pending.missing and not pending.failed
        ]

    def _encode(self, pending: PendingRead) -> EncodedEvent:
        key = pending.template_key()
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= MAX_TEMPLATES:
                self._templates.clear()
            template = EventTemplate(pending.shared_event(), self._dialect)
            self._templates[key] = template
        return template.encode(
            request_id=pending.request_id, source_address=pending.source
        )
