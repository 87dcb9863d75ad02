"""The importer interface, the registry of importers and format detection."""

import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from keysteward.inventory.errors import FormatNotDetectedError, ImportFileError
from keysteward.inventory.parsing import (
    Table,
    normalize_header,
    read_csv_table,
    read_xlsx_table,
)
from keysteward.inventory.records import ParsedBatch

SOURCES = (
    "aws",
    "gcp",
    "github",
    "openai",
    "anthropic",
    "slack",
    "okta",
    "google_workspace",
    "stripe",
    "people",
    "sheet",
    "native",
)
TABLE_SUFFIXES = frozenset({".csv", ".xlsx"})
DOCUMENT_SUFFIXES = frozenset({".json", ".yaml", ".yml"})
# The JSON and YAML parsers recurse once per level and hit Python's recursion
# limit (sys.getrecursionlimit(), 1000 by default) on deeper documents.
NESTING_EXPECTED = "JSON or YAML nested less deeply than the recursion limit"


@dataclass
class LoadedFile:
    """A file read once: a table (CSV, XLSX) or a document (JSON, YAML)."""

    path: Path
    table: Table | None = None
    document: Any = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def normalized_headers(self) -> set[str]:
        if self.table is None:
            return set()
        return {normalize_header(h) for h in self.table.headers}


def load_file(path: Path) -> LoadedFile:
    """Read ``path`` by its suffix; raise ImportFileError when it cannot be parsed."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return LoadedFile(path, table=read_xlsx_table(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(
            path.name, "file", "path", "a readable file", exc.strerror
        ) from None
    if suffix == ".csv":
        return LoadedFile(path, table=read_csv_table(data, path.name))
    if suffix == ".json":
        try:
            return LoadedFile(path, document=json.loads(data.decode("utf-8-sig")))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f"line {getattr(exc, 'lineno', '?')}"
            raise ImportFileError(
                path.name, where, "document", "valid JSON", str(exc)
            ) from None
        except RecursionError:
            raise ImportFileError(
                path.name, "document", "document", NESTING_EXPECTED
            ) from None
    if suffix in {".yaml", ".yml"}:
        try:
            return LoadedFile(path, document=yaml.safe_load(data.decode("utf-8-sig")))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "document"
            raise ImportFileError(
                path.name, where, "document", "valid YAML", str(exc)
            ) from None
        except RecursionError:
            raise ImportFileError(
                path.name, "document", "document", NESTING_EXPECTED
            ) from None
    raise ImportFileError(
        path.name, "file", "suffix", ".csv, .xlsx, .json, .yaml or .yml", suffix
    )


class Importer(ABC):
    """Reads one export format into a ParsedBatch.

    Subclasses set ``format`` (a unique id such as "aws.credential_report"),
    ``source`` (the --source name) and ``order`` (files of a lower order are
    applied first: rosters, then listings, then activity reports that only
    update credentials the listings created).
    """

    format: ClassVar[str]
    source: ClassVar[str]
    order: ClassVar[int] = 50
    # Whether an empty JSON list, given with --source, is this format: a
    # listing in which every credential of the source is gone.
    accepts_empty_list: ClassVar[bool] = False

    @abstractmethod
    def matches(self, loaded: LoadedFile) -> bool:
        """Return whether the file's content has this format's shape."""

    @abstractmethod
    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        """Read the file; raise ImportFileError naming the first invalid value."""

    def new_batch(self, loaded: LoadedFile) -> ParsedBatch:
        return ParsedBatch(file=loaded.name, format=self.format, source=self.source)


def first_item(document: Any, *wrapper_keys: str) -> dict[str, Any] | None:
    """Return the first record of a list document or of a wrapped list."""
    items: Any = document
    if isinstance(document, dict):
        items = None
        for key in wrapper_keys:
            if isinstance(document.get(key), list):
                items = document[key]
                break
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return None


# Importer modules, in the order their formats are tried during detection.
IMPORTER_MODULES = (
    "people",
    "native",
    "aws",
    "aws_access_analyzer",
    "gcp",
    "github",
    "openai",
    "anthropic",
    "slack",
    "okta",
    "google_workspace",
    "stripe",
    "sheet",
)


def all_importers() -> list[Importer]:
    """Return one instance of every importer, in detection order."""
    found: list[Importer] = []
    for name in IMPORTER_MODULES:
        module = importlib.import_module(f"keysteward.inventory.importers.{name}")
        found.extend(cls() for cls in module.IMPORTERS)
    return found


def detect_importer(loaded: LoadedFile, source: str | None = None) -> Importer:
    """Return the importer whose format matches the file's content.

    With ``source``, only that source's formats are tried. Raises
    FormatNotDetectedError naming the file and the fix.
    """
    if source is not None and source not in SOURCES:
        raise FormatNotDetectedError(
            f"unknown source {source!r}; expected one of {', '.join(SOURCES)}"
        )
    candidates = [
        importer
        for importer in all_importers()
        if source is None or importer.source == source
    ]
    for importer in candidates:
        if importer.matches(loaded):
            return importer
    if source is not None and loaded.document == []:
        for importer in candidates:
            if importer.accepts_empty_list:
                return importer
    if source is not None:
        formats = ", ".join(importer.format for importer in candidates)
        raise FormatNotDetectedError(
            f"{loaded.name}: content does not match any {source} format "
            f"({formats}); check the file or pick another --source"
        )
    raise FormatNotDetectedError(
        f"{loaded.name}: cannot detect the export format from its content; "
        f"pass --source with one of {', '.join(SOURCES)}"
    )
