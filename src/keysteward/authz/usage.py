"""Usage: how often each principal exercised each permission, per UTC day.

Callers on the request path (the API, the gateway) hand decisions to a
``UsageRecorder``, which counts them in memory and writes one upsert per
(principal, permission, day) when flushed. ``import_usage`` loads usage
observed elsewhere (a proxy log, a provider's audit export), so access
recommendations work before the gateway exists.
"""

import csv
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from keysteward.authz.engine import Decision
from keysteward.authz.errors import InvalidPermissionError, InvalidPrincipalError
from keysteward.authz.models import PermissionUsage
from keysteward.authz.permissions import parse_principal, parse_request
from keysteward.clock import as_utc, utcnow
from keysteward.errors import InvalidInputError

if TYPE_CHECKING:
    from keysteward.db import Store


@dataclass(frozen=True)
class UsageRecord:
    """``count`` decisions for one principal and permission at time ``at``."""

    principal: str
    permission: str
    allowed: bool
    at: datetime
    count: int = 1


_Key = tuple[str, str, date]


def _aggregate(records: Iterable[UsageRecord]) -> dict[_Key, list[Any]]:
    """Sum records per (principal, permission, day): [allowed, denied, last]."""
    totals: dict[_Key, list[Any]] = {}
    for record in records:
        at = as_utc(record.at) or utcnow()
        key = (record.principal, record.permission, at.date())
        entry = totals.setdefault(key, [0, 0, at])
        entry[0 if record.allowed else 1] += record.count
        entry[2] = max(entry[2], at)
    return totals


def record_usage(session: Session, records: Iterable[UsageRecord | Decision]) -> int:
    """Add ``records`` to the daily usage counts; return the rows touched.

    Decisions count as made now. Records are summed in memory first, so a
    batch of any size costs one statement per (principal, permission, day).
    """
    now = utcnow()
    converted = (
        UsageRecord(r.principal, r.permission, r.allowed, now)
        if isinstance(r, Decision)
        else r
        for r in records
    )
    totals = _aggregate(converted)
    for (principal, permission, day), (allowed, denied, last) in totals.items():
        _upsert(session, principal, permission, day, allowed, denied, last)
    return len(totals)


def _upsert(
    session: Session,
    principal: str,
    permission: str,
    day: date,
    allowed: int,
    denied: int,
    last: datetime,
) -> None:
    values = {
        "principal": principal,
        "permission": permission,
        "day": day,
        "allowed_count": allowed,
        "denied_count": denied,
        "last_seen_at": last,
    }
    table = PermissionUsage.__table__
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
        statement = insert.values(**values)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["principal", "permission", "day"],
            set_={
                "allowed_count": table.c.allowed_count + excluded.allowed_count,
                "denied_count": table.c.denied_count + excluded.denied_count,
                "last_seen_at": _later(table.c.last_seen_at, excluded.last_seen_at),
            },
        )
        session.execute(statement)
        return
    # NOTE: other backends take this read-then-write path, which can lose
    # counts when two processes flush the same key at once.
    row = session.scalar(
        select(PermissionUsage).where(
            PermissionUsage.principal == principal,
            PermissionUsage.permission == permission,
            PermissionUsage.day == day,
        )
    )
    if row is None:
        session.add(PermissionUsage(**values))
        return
    row.allowed_count += allowed
    row.denied_count += denied
    row.last_seen_at = max(as_utc(row.last_seen_at) or last, last)


def _later(current: Any, incoming: Any) -> Any:
    return case((incoming > current, incoming), else_=current)


class UsageRecorder:
    """A thread-safe buffer of decisions, written to the store in batches.

    ``add`` only counts in memory; ``flush`` writes everything buffered in one
    transaction. It also flushes by itself once ``max_pending`` distinct keys
    are buffered. Call ``flush`` on shutdown, or counts since the last flush
    are lost.
    """

    def __init__(self, store: "Store", max_pending: int = 1000) -> None:
        self._store = store
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: list[UsageRecord] = []
        self._keys: set[tuple[str, str]] = set()

    def add(self, decision: Decision, at: datetime | None = None) -> None:
        record = UsageRecord(
            decision.principal, decision.permission, decision.allowed, at or utcnow()
        )
        with self._lock:
            self._pending.append(record)
            self._keys.add((record.principal, record.permission))
            full = len(self._keys) >= self._max_pending
        if full:
            self.flush()

    def flush(self) -> int:
        """Write buffered counts; return the number of rows touched."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._keys = set()
        if not pending:
            return 0
        with self._store.session() as session:
            return record_usage(session, pending)


def _parse_time(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError(
            f"{where}: invalid time {value!r}; use ISO 8601 such as "
            "2026-03-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInputError(
            f"{where}: time {value!r} has no time zone; add Z or an offset"
        )
    return parsed


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                yield f"{path}:{number}", row
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"{path}:{number}: invalid JSON ({exc.msg}); write one JSON "
                    "object per line"
                ) from None
            if not isinstance(row, dict):
                raise InvalidInputError(f"{path}:{number}: expected a JSON object")
            yield f"{path}:{number}", row


def parse_usage_file(path: Path) -> list[UsageRecord]:
    """Read observed usage from CSV or JSON Lines.

    Each row has ``principal``, ``permission``, ``at`` (ISO 8601 with a time
    zone) and optionally ``count`` (default 1) and ``decision`` (``allow``,
    the default, or ``deny``). Raises InvalidInputError naming file:line.
    """
    if not path.is_file():
        raise InvalidInputError(f"usage file {path} not found; check the path")
    records = []
    for where, row in _rows(path):
        missing = [k for k in ("principal", "permission", "at") if not row.get(k)]
        if missing:
            raise InvalidInputError(f"{where}: missing {', '.join(missing)}")
        try:
            parse_principal(str(row["principal"]))
            parse_request(str(row["permission"]))
        except (InvalidPrincipalError, InvalidPermissionError) as exc:
            raise InvalidInputError(f"{where}: {exc}") from None
        decision = str(row.get("decision") or "allow")
        if decision not in ("allow", "deny"):
            raise InvalidInputError(
                f"{where}: invalid decision {decision!r}; use allow or deny"
            )
        try:
            count = int(row.get("count") or 1)
        except ValueError:
            count = -1
        if count < 1:
            raise InvalidInputError(
                f"{where}: invalid count {row.get('count')!r}; use a positive integer"
            )
        records.append(
            UsageRecord(
                str(row["principal"]),
                str(row["permission"]),
                decision == "allow",
                _parse_time(row["at"], where),
                count,
            )
        )
    return records


def import_usage(session: Session, path: Path) -> dict[str, int]:
    """Validate every row of ``path``, then add them all to the usage counts."""
    try:
        records = parse_usage_file(path)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"usage file {path} is not valid UTF-8: {exc}"
        ) from None
    rows = record_usage(session, records)
    return {"records": len(records), "rows": rows}
