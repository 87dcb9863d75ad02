"""Rotators: the code that changes a secret on its target system."""
