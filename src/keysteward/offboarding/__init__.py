"""Offboarding: everything a departing person leaves behind, handled at once."""
