"""The append-only event log: who did what to which record, and the outcome."""
