"""Finding rotators: built-ins and the keysteward.rotators entry points."""

import pytest

from keysteward.rotation.errors import RotatorNotFoundError
from keysteward.rotation.rotators.base import Rotator, available_rotators, load_rotator


def test_builtin_rotators_load() -> None:
    for name in ("api_token", "manual", "postgres", "redis"):
        rotator = load_rotator(name)

        assert isinstance(rotator, Rotator)
        assert rotator.name == name


def test_entry_point_rotator_loads(in_memory_rotator: str) -> None:
    rotator = load_rotator(in_memory_rotator)

    assert type(rotator).__module__ == "common.rotation_plugins"
    assert in_memory_rotator in available_rotators()


def test_unknown_rotator_names_choices() -> None:
    with pytest.raises(RotatorNotFoundError, match="available: api_token"):
        load_rotator("ldap")
