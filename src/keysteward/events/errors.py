from keysteward.errors import KeystewardError


class AppendOnlyError(KeystewardError):
    """An attempt to update or delete a recorded event."""


class TamperedLogError(KeystewardError):
    """The event log failed verification, so it must not be signed."""

    exit_code = 1


class EventNotRecordedError(KeystewardError):
    """An event could not be committed, so the action it audits must fail."""

    exit_code = 1
