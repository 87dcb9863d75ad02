"""The gateway: a reverse proxy that injects vault credentials after an authz check."""
