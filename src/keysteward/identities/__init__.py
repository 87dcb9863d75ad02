"""People and service accounts: the principals that hold credentials."""
