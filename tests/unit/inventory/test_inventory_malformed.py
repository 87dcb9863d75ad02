"""Importers on damaged exports: every failure is an ImportFileError or a
FormatNotDetectedError that names the file, never another exception."""

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from keysteward.inventory.errors import FormatNotDetectedError, ImportFileError
from keysteward.inventory.importers.base import LoadedFile, detect_importer, load_file

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
DOCUMENTS = sorted(
    [*EXAMPLES.glob("*.json"), *EXAMPLES.glob("*.yaml")], key=lambda p: p.name
)
# One value of each JSON type other than the field's own.
REPLACEMENTS: tuple[Any, ...] = ("alice", 7, None, [], {})


def field_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Yield the path of every record and every field, nested ones included."""
    if isinstance(node, dict):
        children: Any = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return
    for key, child in children:
        yield (*prefix, key)
        yield from field_paths(child, (*prefix, key))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(document)
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = copy.deepcopy(value)
    return mutated


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_mutated_examples_fail_cleanly(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    unexpected: list[str] = []
    rejected = 0
    for field_path in field_paths(document):
        for value in REPLACEMENTS:
            loaded = LoadedFile(path, document=replaced(document, field_path, value))
            try:
                detect_importer(loaded).parse(loaded)
            except ImportFileError as exc:
                rejected += 1
                assert exc.file == path.name
            except FormatNotDetectedError as exc:
                rejected += 1
                assert path.name in str(exc)
            except Exception as exc:  # noqa: BLE001 - collected for the report
                unexpected.append(f"{field_path} = {value!r}: {exc!r}")
    assert unexpected == []
    if path.name != "planted.json":
        assert rejected > 0


def test_wrong_nested_type_names_field() -> None:
    path = EXAMPLES / "openai_admin_api_keys.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["data"][0]["owner"] = "alice"
    loaded = LoadedFile(path, document=document)
    with pytest.raises(ImportFileError) as caught:
        detect_importer(loaded).parse(loaded)
    assert caught.value.where == "data[0]"
    assert caught.value.field == "owner"
    assert caught.value.expected == "an object"


def test_csv_header_over_field_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        load_file(path)
    assert caught.value.file == "huge.csv"
    assert caught.value.where == "line 1"
    assert "field limit" in str(caught.value)


def test_csv_cell_over_field_limit(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("name,system\n" + "x" * 200_000 + ",aws\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        load_file(path)
    assert caught.value.where == "line 2"
    assert "field limit" in str(caught.value)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deeply_nested_document(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        load_file(path)
    assert caught.value.file == path.name
    assert "recursion limit" in caught.value.expected
