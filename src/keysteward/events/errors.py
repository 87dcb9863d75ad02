from keysteward.errors import KeystewardError


class AppendOnlyError(KeystewardError):
    """An attempt to update or delete a recorded event."""
