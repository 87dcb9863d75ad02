"""One module per export format family; see ``base`` for the interface."""
