"""Low-level cryptographic building blocks.

Only the vault, token and fingerprint services import from here; everything
else goes through those services.
"""
