"""The append-only event log: who did what to which record, and the outcome."""

# Importing the chain registers the listeners that number and hash every new
# event, whichever module created it.
from keysteward.events import chain as _chain  # noqa: F401
