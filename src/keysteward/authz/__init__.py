"""Roles, permissions and the grants that give roles to principals."""
