"""Audit runs and the findings they raise about credentials."""
