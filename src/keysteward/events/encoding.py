"""Event entries checked and encoded ahead of appending.

Everything about an event but its place in the chain can be prepared before
the chain head is locked: its checks, its canonical form (see
``events.chain.CanonicalTemplate``) and its column values in the driver's
types. Writers that record many events of one kind, such as secret reads,
keep an ``EventTemplate`` and fill in only the time, request id and source
address per event.
"""

import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Dialect

from keysteward.clock import as_utc, utcnow
from keysteward.events.chain import CanonicalPieces, canonical_template
from keysteward.events.models import Event

# The fields that vary between the events of one template.
PER_EVENT_FIELDS = frozenset({"occurred_at", "request_id", "source_address"})


class EncodedEvent(NamedTuple):
    """A checked event entry without its sequence number and digests.

    ``values`` are occurred_at, actor, action, target_type, target_id,
    outcome, source_address, request_id and details, in the driver's types.
    """

    values: tuple[Any, ...]
    pieces: CanonicalPieces


class EventTemplate:
    """The checked, encoded fields that a kind of event shares.

    Raises InvalidInputError from ``events.services.checked_entry`` for an
    invalid entry, and ValueError when ``shared`` sets a per-event field.
    """

    def __init__(self, shared: Mapping[str, Any], dialect: Dialect) -> None:
        # Imported here because events.services imports this module.
        from keysteward.events.services import checked_entry

        per_event = sorted(PER_EVENT_FIELDS & set(shared))
        if per_event:
            raise ValueError(
                f"event template sets per-event field(s) {', '.join(per_event)}; "
                "pass them to encode() instead"
            )
        self._fill(checked_entry(shared), dialect)

    @classmethod
    def of_checked(
        cls, checked: Mapping[str, Any], dialect: Dialect
    ) -> "EventTemplate":
        """Build a template from an entry that ``checked_entry`` returned."""
        template = cls.__new__(cls)
        template._fill(checked, dialect)
        return template

    def _fill(self, checked: Mapping[str, Any], dialect: Dialect) -> None:
        outcome = checked.get("outcome") or "success"
        self._shared_values = (
            checked["actor"],
            checked["action"],
            checked.get("target_type"),
            checked.get("target_id"),
            outcome,
        )
        self._details = bind_processor("details", dialect)(checked["details"])
        self._to_time = bind_processor("occurred_at", dialect)
        self._template = canonical_template(
            actor=checked["actor"],
            action=checked["action"],
            target_type=checked.get("target_type"),
            target_id=checked.get("target_id"),
            outcome=outcome,
            details=checked["details"],
        )

    def encode(
        self,
        *,
        request_id: str | None,
        source_address: str | None,
        occurred_at: datetime | None = None,
    ) -> EncodedEvent:
        """Return the event with these values; ``occurred_at`` defaults to now."""
        moment = as_utc(occurred_at) or utcnow()
        return EncodedEvent(
            (
                self._to_time(moment),
                *self._shared_values,
                source_address,
                request_id,
                self._details,
            ),
            self._template.pieces(moment, request_id, source_address),
        )


def encode_events(
    entries: Iterable[Mapping[str, Any] | EncodedEvent], dialect: Dialect
) -> list[EncodedEvent]:
    """Check and encode event entries, passing encoded ones through.

    Raises InvalidInputError naming the first invalid entry. An entry
    without ``occurred_at`` takes the current time.
    """
    # Imported here because events.services imports this module.
    from keysteward.events.services import checked_entry

    entry_list = list(entries)
    # Checked before any is encoded, so a bad entry leaves nothing half done.
    checked = [
        entry if isinstance(entry, EncodedEvent) else checked_entry(entry, index)
        for index, entry in enumerate(entry_list)
    ]
    encoded: list[EncodedEvent] = []
    for values in checked:
        if isinstance(values, EncodedEvent):
            encoded.append(values)
            continue
        template = EventTemplate.of_checked(values, dialect)
        encoded.append(
            template.encode(
                request_id=values.get("request_id"),
                source_address=values.get("source_address"),
                occurred_at=values.get("occurred_at"),
            )
        )
    return encoded


def bind_processor(column: str, dialect: Dialect) -> Callable[[Any], Any]:
    """Return the function that turns a Python value of an events column
    into the driver's value.
    """
    by_column = _bind_processors.setdefault(dialect, {})
    processor = by_column.get(column)
    if processor is None:
        column_type = Event.__table__.c[column].type
        found = column_type.dialect_impl(dialect).bind_processor(dialect)
        processor = found if found is not None else _unchanged
        by_column[column] = processor
    return processor


# Kept per dialect object, which lives as long as its engine, because
# looking a processor up costs as much as applying it to a whole row.
_Processors = dict[str, Callable[[Any], Any]]
_bind_processors: "weakref.WeakKeyDictionary[Dialect, _Processors]" = (
    weakref.WeakKeyDictionary()
)


def _unchanged(value: Any) -> Any:
    return value
