"""The HR roster: who works here, who left and when, and who manages whom.

Columns are matched by common names ("Work Email", "Termination Date",
"Reports To", ...). Columns naming a login on another system (GitHub login,
Slack user id, ...) link the person to that account, so credentials in
exports that name people only by login resolve to them.
"""

from datetime import date

from keysteward.clock import utcnow
from keysteward.identities.models import PersonStatus
from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import (
    Row,
    Where,
    detect_dayfirst,
    map_columns,
    normalize_header,
    parse_datetime,
    text,
)
from keysteward.inventory.records import ParsedBatch, PersonRecord

COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email", "work email", "email address", "e-mail", "mail", "work e-mail"),
    "name": ("name", "full name", "employee name", "display name", "employee"),
    "first_name": ("first name", "given name", "firstname"),
    "last_name": ("last name", "surname", "family name", "lastname"),
    "status": ("status", "employment status", "employee status", "state"),
    "departed_on": (
        "departure date",
        "departed on",
        "termination date",
        "terminated on",
        "end date",
        "last day",
        "leave date",
        "exit date",
        "left on",
    ),
    "manager": ("manager", "manager email", "reports to", "line manager", "supervisor"),
    "account:github": ("github", "github login", "github username", "github user"),
    "account:slack": ("slack", "slack id", "slack user id", "slack user"),
    "account:okta": ("okta id", "okta user id", "okta user"),
    "account:aws": ("aws user", "aws iam user", "aws username", "iam user"),
    "account:openai": ("openai user id", "openai id", "openai user"),
    "account:anthropic": ("anthropic user id", "anthropic id", "anthropic user"),
    "account:google_workspace": (
        "google id",
        "google profile id",
        "google workspace id",
        "workspace id",
    ),
}
DEPARTED_WORDS = frozenset(
    {
        "departed",
        "terminated",
        "left",
        "inactive",
        "former",
        "offboarded",
        "deactivated",
        "leaver",
    }
)
ACTIVE_WORDS = frozenset(
    {"active", "employed", "current", "on leave", "leave", "probation", "contractor"}
)
CREDENTIAL_HEADERS = frozenset(
    {"system", "credential id", "credential type", "secret hint"}
)


class RosterImporter(Importer):
    format = "people.roster"
    source = "people"
    order = 10

    def matches(self, loaded: LoadedFile) -> bool:
        if loaded.table is None:
            return False
        mapped, _ = map_columns(loaded.table.headers, COLUMNS)
        headers = loaded.normalized_headers
        return (
            "email" in mapped
            and bool({"status", "departed_on", "manager"} & set(mapped))
            and not headers & CREDENTIAL_HEADERS
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        assert loaded.table is not None
        batch = self.new_batch(loaded)
        mapped, unknown = map_columns(loaded.table.headers, COLUMNS)
        departed_header = mapped.get("departed_on")
        dayfirst = departed_header is not None and detect_dayfirst(
            row.get(departed_header) for row in loaded.table.rows
        )
        seen: set[str] = set()
        for row in loaded.table.rows:
            where = Where(loaded.name, f"line {row.line}")
            person = self._person(row, mapped, unknown, where, dayfirst)
            if person.email in seen:
                raise where.error(
                    "email", "each email once in the roster", person.email
                )
            seen.add(person.email)
            batch.people.append(person)
        return batch

    def _person(
        self,
        row: Row,
        mapped: dict[str, str],
        unknown: list[str],
        where: Where,
        dayfirst: bool,
    ) -> PersonRecord:
        def cell(field: str) -> str | None:
            header = mapped.get(field)
            return None if header is None else text(row.get(header))

        email = cell("email")
        if email is None or "@" not in email:
            raise where.error(
                mapped["email"], "an email address such as ann@example.com", email
            )
        name = cell("name") or " ".join(
            part for part in (cell("first_name"), cell("last_name")) if part
        )
        departed_at = None
        if "departed_on" in mapped:
            departed_at = parse_datetime(
                row.get(mapped["departed_on"]), where, mapped["departed_on"], dayfirst
            )
        departed_on = departed_at.date() if departed_at else None
        status = self._status(cell("status"), departed_on, where, mapped.get("status"))
        accounts = [
            (field.split(":", 1)[1], value)
            for field in mapped
            if field.startswith("account:") and (value := cell(field))
        ]
        attributes = {
            header: text(row.get(header))
            for header in unknown
            if normalize_header(header) and text(row.get(header)) is not None
        }
        return PersonRecord(
            email=email.lower(),
            name=name or email.split("@")[0],
            status=status,
            departed_on=departed_on,
            manager=cell("manager"),
            accounts=accounts,
            attributes=attributes,
            line=row.line,
        )

    def _status(
        self,
        raw: str | None,
        departed_on: date | None,
        where: Where,
        header: str | None,
    ) -> str:
        if raw is None:
            # Without a status column, a departure date in the past means gone.
            if departed_on is not None and departed_on <= utcnow().date():
                return PersonStatus.DEPARTED
            return PersonStatus.ACTIVE
        word = raw.strip().lower()
        if word in DEPARTED_WORDS:
            return PersonStatus.DEPARTED
        if word in ACTIVE_WORDS:
            return PersonStatus.ACTIVE
        raise where.error(
            header or "status",
            "active or departed (or terminated, left, inactive)",
            raw,
        )


IMPORTERS = (RosterImporter,)
