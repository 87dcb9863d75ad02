"""Reading values the way exports write them: dates, sentinels, tables, URLs."""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dateutil import parser as date_parser

from keysteward.inventory.errors import ImportFileError

# Values that exports write for "nothing here". AWS uses N/A, no_information
# and not_supported; hand-kept sheets use the rest.
EMPTY_MARKERS = frozenset(
    {"", "n/a", "na", "none", "null", "-", "--", "no_information", "not_supported"}
)
NEVER_MARKERS = frozenset({"never", "never used", "not used"})
# Excel stores dates as days since 1899-12-30 (the 1900 leap-year bug included).
EXCEL_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)
EXCEL_SERIAL = re.compile(r"^\d{4,5}(\.\d+)?$")
# Dates after this are "no expiry" sentinels such as GCP's 9999-12-31.
FAR_FUTURE_YEAR = 9000
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "active", "enabled"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "inactive", "disabled"})


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, str) and value.strip().lower() in EMPTY_MARKERS


def text(value: Any) -> str | None:
    """Return ``value`` as stripped text, or None for an empty marker."""
    if is_empty(value):
        return None
    return str(value).strip()


def as_object(value: Any, where: "Where", field: str) -> dict[str, Any]:
    """Return a nested JSON object, ``{}`` for a missing one.

    Raises ImportFileError naming ``field`` when the value is another type.
    """
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise where.error(field, "an object", value)
    return value


def as_list(value: Any, where: "Where", field: str) -> list[Any]:
    """Return a nested JSON list, ``[]`` for a missing one.

    Raises ImportFileError naming ``field`` when the value is another type.
    """
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise where.error(field, "a list", value)
    return value


def as_text_list(value: Any, where: "Where", field: str) -> list[str]:
    """Return a list of strings or numbers as text, such as a list of scopes."""
    items = as_list(value, where, field)
    for item in items:
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise where.error(field, "a list of strings", value)
    return [str(item) for item in items]


def parse_bool(value: Any, where: "Where", field: str) -> bool | None:
    if is_empty(value):
        return None
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise where.error(field, "true or false", value)


def from_unix(value: Any, where: "Where", field: str) -> datetime | None:
    """Parse unix seconds (int or numeric string) as an aware UTC datetime."""
    if is_empty(value):
        return None
    try:
        return datetime.fromtimestamp(int(str(value).strip()), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise where.error(field, "unix time in seconds", value) from None


def parse_datetime(
    value: Any, where: "Where", field: str, dayfirst: bool = False
) -> datetime | None:
    """Parse an export's date or datetime as an aware UTC datetime.

    Accepts ISO 8601 and RFC 3339, plain dates, Excel serial day numbers and
    datetime objects from XLSX cells. A value without a zone is read as UTC.
    Empty markers give None.
    """
    if is_empty(value):
        return None
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_excel_serial(float(value), where, field)
    raw = str(value).strip()
    if EXCEL_SERIAL.match(raw):
        return _from_excel_serial(float(raw), where, field)
    # Most exports write ISO 8601, which the standard library reads far
    # faster than dateutil; dateutil handles the rest.
    try:
        return _aware(datetime.fromisoformat(raw))
    except ValueError:
        pass
    try:
        parsed = date_parser.parse(raw, dayfirst=dayfirst)
    except (ValueError, OverflowError):
        raise where.error(
            field, "a date such as 2026-12-04 or 2026-12-04T10:00:00Z", value
        ) from None
    return _aware(parsed)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _from_excel_serial(days: float, where: "Where", field: str) -> datetime:
    if not 1 <= days < 2958466:
        raise where.error(field, "an Excel serial date between 1 and 2958465", days)
    return EXCEL_EPOCH + timedelta(days=days)


def no_expiry(value: datetime | None) -> datetime | None:
    """Return None for far-future "never expires" sentinels."""
    if value is not None and value.year >= FAR_FUTURE_YEAR:
        return None
    return value


def detect_dayfirst(values: Iterable[Any]) -> bool:
    """Decide whether slash dates in one column are day-first.

    A column is day-first when some value has a first part above 12, and
    month-first otherwise.
    """
    for value in values:
        if not isinstance(value, str):
            continue
        match = re.match(r"^\s*(\d{1,2})[/.](\d{1,2})[/.]\d{2,4}", value)
        if match and int(match.group(1)) > 12:
            return True
    # NOTE: a column whose slash dates all have both parts <= 12 is read
    # month-first (US style); such a sheet is ambiguous without a locale.
    return False


def hint_from(value: str | None, length: int = 4) -> str | None:
    """Return the last characters of a redacted value shown by the source."""
    if not value:
        return None
    tail = value.strip().rstrip(".…")
    if not tail:
        return None
    return tail[-length:]


_SECRET_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{16,}$")
_SECRET_QUERY_KEYS = re.compile(r"(?i)(token|key|sig|secret|password|auth|code)")


def redact_url(url: str, webhook: bool = False) -> tuple[str, bool]:
    """Split a URL into an endpoint safe to store and whether it carried a secret.

    The endpoint keeps the scheme, host, port and path. User info, query and
    fragment are dropped. Path segments that look like tokens (16 or more
    letters, digits, '-' or '_', with at least one digit) become '***'. With
    ``webhook``, every segment after the first becomes '***', because webhook
    services put short secrets in the path (Zapier uses 7 characters).
    """
    parts = urlsplit(url.strip())
    embedded = bool(parts.password)
    if parts.query and _SECRET_QUERY_KEYS.search(parts.query):
        embedded = True
    segments = []
    for position, segment in enumerate(parts.path.split("/")):
        # The path starts with "/", so position 1 is the first segment.
        webhook_secret = webhook and position > 1 and bool(segment)
        looks_random = bool(_SECRET_SEGMENT.match(segment)) and any(
            c.isdigit() for c in segment
        )
        if webhook_secret or looks_random:
            segments.append("***")
            embedded = True
        else:
            segments.append(segment)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    endpoint = urlunsplit((parts.scheme, host, "/".join(segments), "", ""))
    return endpoint, embedded


def normalize_header(header: str) -> str:
    """Return a header as lower-case words joined by single spaces."""
    words = re.sub(r"[^0-9a-z]+", " ", header.replace("\ufeff", "").lower())
    return words.strip()


@dataclass(frozen=True)
class Where:
    """A place in an export file, for error messages."""

    file: str
    position: str

    def error(self, field: str, expected: str, found: Any = None) -> ImportFileError:
        return ImportFileError(self.file, self.position, field, expected, found)


@dataclass
class Row:
    line: int
    values: dict[str, Any]

    def get(self, key: str) -> Any:
        return self.values.get(key)


@dataclass
class Table:
    """A header row and the data rows below it, from CSV or XLSX."""

    headers: list[str]
    rows: list[Row]


def read_csv_table(data: bytes, file: str) -> Table:
    """Read CSV bytes (UTF-8, optional BOM) keeping each record's first line."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            file, f"byte {exc.start}", "encoding", "UTF-8 text"
        ) from None
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        headers = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ImportFileError(file, "line 1", "header", "a header row") from None
    except csv.Error as exc:
        # Raised for a cell over csv.field_size_limit() (128 KiB by default)
        # or a NUL byte.
        raise ImportFileError(
            file, "line 1", "header", "a valid CSV header row", str(exc)
        ) from None
    rows: list[Row] = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            line = start
            start = reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(headers):
                raise ImportFileError(
                    file,
                    f"line {line}",
                    "row",
                    f"at most {len(headers)} cells like the header",
                    len(cells),
                )
            rows.append(Row(line, dict(zip(headers, cells, strict=False))))
    except csv.Error as exc:
        raise ImportFileError(
            file, f"line {reader.line_num}", "row", "valid CSV", str(exc)
        ) from None
    return Table(headers, rows)


def read_xlsx_table(path: Path) -> Table:
    """Read the first worksheet of an XLSX workbook as a table."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise ImportFileError(
            path.name, "workbook", "file", "an XLSX workbook", str(exc)
        ) from None
    try:
        sheet = workbook.worksheets[0]
        iterator = sheet.iter_rows(values_only=True)
        first = next(iterator, None)
        if first is None:
            raise ImportFileError(path.name, "row 1", "header", "a header row")
        headers = ["" if h is None else str(h).strip() for h in first]
        rows: list[Row] = []
        for number, cells in enumerate(iterator, start=2):
            if all(c is None or str(c).strip() == "" for c in cells):
                continue
            values = {h: c for h, c in zip(headers, cells, strict=False) if h}
            rows.append(Row(number, values))
        return Table([h for h in headers if h], rows)
    finally:
        workbook.close()


def map_columns(
    headers: list[str], synonyms: dict[str, tuple[str, ...]]
) -> tuple[dict[str, str], list[str]]:
    """Match table headers to canonical field names through their synonyms.

    Returns the canonical name to header map and the headers that matched
    nothing. The first header that matches a field wins.
    """
    lookup = {
        normalize_header(name): field
        for field, names in synonyms.items()
        for name in names
    }
    mapped: dict[str, str] = {}
    unknown: list[str] = []
    for header in headers:
        field = lookup.get(normalize_header(header))
        if field is None:
            unknown.append(header)
        elif field not in mapped:
            mapped[field] = header
    return mapped, unknown
