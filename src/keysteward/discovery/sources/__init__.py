"""Inputs turned into documents: text with a way back to file, line and cell."""

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath

from keysteward.discovery.decoders import decode_bytes, strip_notebook_binaries

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm")
DELIMITED_SUFFIXES = (".csv", ".tsv")
MAIL_SUFFIXES = (".eml", ".mbox")


@dataclass
class CellMap:
    """Start offsets of the spreadsheet cells in a document's text."""

    starts: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def add(self, start: int, name: str, row: int) -> None:
        self.starts.append(start)
        self.names.append(name)
        self.rows.append(row)

    def cell_at(self, offset: int) -> tuple[str, int]:
        index = max(bisect_right(self.starts, offset) - 1, 0)
        return self.names[index], self.rows[index]


@dataclass
class Document:
    """One text to scan and where it came from.

    ``pointer`` locates the text inside its file (a MIME part, a sheet);
    ``context`` names how it was decoded, for reports and the benchmark.
    """

    path: str
    text: str
    size: int
    context: str = "text"
    pointer: str | None = None
    commit: str | None = None
    author: str | None = None
    cells: CellMap | None = None
    _line_starts: list[int] | None = None
    _allow_marker: bool | None = None

    def location(self, offset: int) -> tuple[int, int, str | None]:
        """Return (line, column, pointer) of ``offset``; lines and columns from 1."""
        if self.cells is not None and self.cells.starts:
            name, row = self.cells.cell_at(offset)
            pointer = f"{self.pointer}!{name}" if self.pointer else name
            return row, 1, pointer
        if self._line_starts is None:
            starts = [0]
            index = self.text.find("\n")
            while index != -1:
                starts.append(index + 1)
                index = self.text.find("\n", index + 1)
            self._line_starts = starts
        line_index = bisect_right(self._line_starts, offset) - 1
        column = offset - self._line_starts[line_index] + 1
        return line_index + 1, column, self.pointer

    @property
    def has_allow_marker(self) -> bool:
        """Return True when some line may carry a ``keysteward:allow`` comment."""
        if self._allow_marker is None:
            self._allow_marker = "keysteward:allow" in self.text
        return self._allow_marker

    def line_text(self, offset: int) -> str:
        start = self.text.rfind("\n", 0, offset) + 1
        end = self.text.find("\n", offset)
        return self.text[start : end if end != -1 else len(self.text)]


@dataclass
class ScanStats:
    """Counts for one scan, for progress, the summary and the scan event."""

    files: int = 0
    bytes: int = 0
    documents: int = 0
    blobs: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    errors: list[str] = field(default_factory=list)


def documents_from_bytes(
    data: bytes,
    path: str,
    name: str,
    stats: ScanStats,
    *,
    pointer: str | None = None,
    commit: str | None = None,
    author: str | None = None,
) -> Iterator[Document]:
    """Yield the documents in one file's bytes, chosen by its file name."""
    suffix = PurePath(name).suffix.lower()
    origin = {"pointer": pointer, "commit": commit, "author": author}
    if suffix in SPREADSHEET_SUFFIXES:
        from keysteward.discovery.sources.sheets import workbook_documents

        yield from workbook_documents(data, path, stats, **origin)
        return
    if suffix in MAIL_SUFFIXES:
        from keysteward.discovery.sources.mail import mail_documents

        yield from mail_documents(data, path, suffix, stats)
        return
    decoded = decode_bytes(data)
    if decoded is None:
        stats.skipped_binary += 1
        return
    text, encoding = decoded
    if suffix in DELIMITED_SUFFIXES:
        from keysteward.discovery.sources.sheets import delimited_document

        yield delimited_document(text, path, suffix, len(data), **origin)
        return
    context = "utf-16" if encoding.startswith("utf-16") else "text"
    if suffix == ".ipynb":
        text = strip_notebook_binaries(text)
        context = "notebook"
    yield Document(
        path=path,
        text=text,
        size=len(data),
        context=context,
        pointer=pointer,
        commit=commit,
        author=author,
    )
