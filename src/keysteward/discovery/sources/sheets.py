"""Spreadsheets: every cell of every sheet of an XLSX workbook, and CSV cells."""

import csv
import io
import zipfile
from collections.abc import Iterator

from keysteward.discovery.sources import CellMap, Document, ScanStats

# Cells are joined with this separator, which no rule pattern can match across.
CELL_SEPARATOR = "\n\x1f\n"


def _column_letters(index: int) -> str:
    """Return the spreadsheet column name of a 1-based column index (27 -> AA)."""
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _cells_document(
    cells: Iterator[tuple[str, int, str]],
    path: str,
    size: int,
    context: str,
    pointer: str | None,
    commit: str | None,
    author: str | None,
) -> Document:
    parts: list[str] = []
    cell_map = CellMap()
    offset = 0
    for name, row, value in cells:
        cell_map.add(offset, name, row)
        parts.append(value)
        offset += len(value) + len(CELL_SEPARATOR)
    return Document(
        path=path,
        text=CELL_SEPARATOR.join(parts),
        size=size,
        context=context,
        pointer=pointer,
        commit=commit,
        author=author,
        cells=cell_map,
    )


def workbook_documents(
    data: bytes,
    path: str,
    stats: ScanStats,
    *,
    pointer: str | None = None,
    commit: str | None = None,
    author: str | None = None,
) -> Iterator[Document]:
    """Yield one document per worksheet, each cell pointed to as Sheet!A1."""
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=False
        )
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        stats.errors.append(f"{path}: not a readable XLSX workbook ({exc})")
        return
    try:
        for sheet in workbook.worksheets:
            sheet_pointer = f"{pointer} {sheet.title}" if pointer else sheet.title
            cells = (
                (f"{_column_letters(cell.column)}{cell.row}", cell.row, cell.value)
                for row in sheet.iter_rows()
                for cell in row
                if isinstance(cell.value, str) and len(cell.value) >= 8
            )
            yield _cells_document(
                ((name, row, str(value)) for name, row, value in cells),
                path,
                len(data),
                "xlsx",
                sheet_pointer,
                commit,
                author,
            )
    finally:
        workbook.close()


def delimited_document(
    text: str,
    path: str,
    suffix: str,
    size: int,
    *,
    pointer: str | None = None,
    commit: str | None = None,
    author: str | None = None,
) -> Document:
    """Return a CSV or TSV file as a document of cells, pointed to as A1."""
    delimiter = "\t" if suffix == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    cells: list[tuple[str, int, str]] = []
    lines_read = 0
    try:
        for record_number, row in enumerate(reader, start=1):
            # A quoted cell may span lines, so the record's first line is
            # taken from the reader rather than from the record count.
            first_line = lines_read + 1
            lines_read = reader.line_num
            for column, value in enumerate(row, start=1):
                if len(value) >= 8:
                    name = f"{_column_letters(column)}{record_number}"
                    cells.append((name, first_line, value))
    except csv.Error:
        # A malformed CSV is still scanned, as plain text with line numbers.
        return Document(
            path=path,
            text=text,
            size=size,
            context="csv",
            pointer=pointer,
            commit=commit,
            author=author,
        )
    return _cells_document(iter(cells), path, size, "csv", pointer, commit, author)
