"""Vault fixtures: a key ring over a random master key, and principals with roles."""

from collections.abc import Callable
from functools import partial

import pytest

from common.principals import create_account, keyring_with_random_key
from keysteward.db import Store
from keysteward.tokens.principals import Principal
from keysteward.vault.keys import KeyRing


@pytest.fixture
def keyring() -> KeyRing:
    return keyring_with_random_key()


@pytest.fixture
def other_keyring() -> KeyRing:
    """A key ring over a different master key than ``keyring``."""
    return keyring_with_random_key()


@pytest.fixture
def make_account(store: Store) -> Callable[..., Principal]:
    """Create a service account holding a role with the given permissions."""
    return partial(create_account, store)
