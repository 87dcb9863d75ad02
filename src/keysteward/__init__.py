"""keysteward: inventory, vault and access control for automation credentials."""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Client", "ClientError", "__version__"]

if TYPE_CHECKING:
    from keysteward.sdk import Client, ClientError


def __getattr__(name: str) -> Any:
    # The SDK is imported on first use, so the CLI does not load httpx.
    if name in ("Client", "ClientError"):
        from keysteward import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'keysteward' has no attribute {name!r}")
