"""keysteward: inventory, vault and access control for automation credentials."""

__version__ = "0.1.0"

__all__ = ["__version__"]
