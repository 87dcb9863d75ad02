"""Applying parsed exports to the store: upsert, merge, patch and retire.

One call to ``run_import`` is one transaction: every file is read and
checked first, then all are applied, and any error rolls back everything.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from keysteward.clock import as_utc, utcnow
from keysteward.credentials.models import Credential, CredentialStatus
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.events.services import record_event
from keysteward.inventory.errors import FormatNotDetectedError
from keysteward.inventory.importers.base import (
    DOCUMENT_SUFFIXES,
    TABLE_SUFFIXES,
    Importer,
    detect_importer,
    load_file,
)
from keysteward.inventory.linking import Directory
from keysteward.inventory.records import (
    CREDENTIAL_FIELDS,
    CredentialPatch,
    CredentialRecord,
    ParsedBatch,
)
from keysteward.logging import redact

log = logging.getLogger(__name__)

IMPORT_ACTION = "inventory.import"
# Called with (step description, steps done, total steps).
ProgressCallback = Callable[[str, int, int], None]
EXPORT_SCOPES = "export_scopes"
COLUMNS = frozenset(Credential.__table__.columns.keys())
TRACKED_COLUMNS = tuple(
    sorted(
        CREDENTIAL_FIELDS
        | {
            "system_id",
            "created_by_id",
            "owner_id",
            "holder_person_id",
            "holder_service_account_id",
        }
    )
)
# Provenance attributes of a row. A renamed or reordered file alone is not a
# change, so these are rewritten only along with a real change.
PROVENANCE = frozenset({"source_file", "source_line"})


@dataclass
class ImportReport:
    """Summary of the credentials an import added, changed and retired (or
    would, in a dry run)."""

    dry_run: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    retired: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    people_added: list[str] = field(default_factory=list)
    people_changed: list[dict[str, Any]] = field(default_factory=list)
    service_accounts_added: list[str] = field(default_factory=list)
    service_accounts_changed: list[dict[str, Any]] = field(default_factory=list)
    systems_added: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "retired": len(self.retired),
            "unchanged": self.unchanged,
            "people_added": len(self.people_added),
            "people_changed": len(self.people_changed),
            "service_accounts_added": len(self.service_accounts_added),
            "service_accounts_changed": len(self.service_accounts_changed),
            "systems_added": len(self.systems_added),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "files": self.files,
            "counts": self.counts(),
            "added": self.added,
            "changed": self.changed,
            "retired": self.retired,
            "people_added": self.people_added,
            "people_changed": self.people_changed,
            "service_accounts_added": self.service_accounts_added,
            "service_accounts_changed": self.service_accounts_changed,
            "systems_added": self.systems_added,
            "warnings": self.warnings,
        }


def _key_value(credential: Credential, key: str) -> Any:
    value = (
        getattr(credential, key) if key in COLUMNS else credential.attributes.get(key)
    )
    return _normalized(value)


def _normalized(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _same(left: Any, right: Any) -> bool:
    return _normalized(left) == _normalized(right)


def _without_provenance(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if k not in PROVENANCE}


def _state(credential: Credential) -> dict[str, Any]:
    """Return the fields whose change an import reports, provenance left out."""
    state = {name: getattr(credential, name) for name in TRACKED_COLUMNS}
    state["attributes"] = _without_provenance(dict(credential.attributes or {}))
    return state


def _describe(credential: Credential) -> dict[str, Any]:
    return {
        "source": credential.source,
        "source_id": credential.source_id,
        "name": credential.name,
    }


class InventoryWriter:
    """Applies parsed batches inside one session and fills an ImportReport."""

    def __init__(self, session: Session, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.directory = Directory(session, report)
        self.by_source: dict[str, dict[str, Credential]] = {}
        self.indexes: dict[
            str, dict[tuple[str, ...], dict[tuple, list[Credential]]]
        ] = {}
        self.added: set[int] = set()
        # The state of each updated credential before this import touched it.
        self.snapshots: dict[int, tuple[Credential, dict[str, Any]]] = {}
        self.retired: set[int] = set()
        self.pending: list[Credential] = []
        self.seen: set[int] = set()

    # Lookups

    def credentials_of(self, source: str) -> dict[str, Credential]:
        if source not in self.by_source:
            rows = self.session.scalars(
                select(Credential).where(Credential.source == source)
            )
            self.by_source[source] = {row.source_id: row for row in rows}
        return self.by_source[source]

    def lookup(self, source: str, criteria: dict[str, Any]) -> list[Credential]:
        """Return the credentials of ``source`` whose fields equal ``criteria``."""
        if set(criteria) == {"source_id"}:
            found = self.credentials_of(source).get(str(criteria["source_id"]))
            return [found] if found is not None else []
        keys = tuple(sorted(criteria))

        index = self.indexes.setdefault(source, {}).get(keys)
        if index is None:
            index = {}
            for credential in self.credentials_of(source).values():
                wanted = tuple(_key_value(credential, key) for key in keys)
                index.setdefault(wanted, []).append(credential)
            self.indexes[source][keys] = index
        wanted = tuple(_normalized(criteria[key]) for key in keys)
        return list(index.get(wanted, []))

    def _remember(self, credential: Credential) -> None:
        self.credentials_of(credential.source)[credential.source_id] = credential
        for keys, index in self.indexes.get(credential.source, {}).items():
            wanted = tuple(_key_value(credential, key) for key in keys)
            index.setdefault(wanted, []).append(credential)

    def _forget_indexes(self, source: str, fields: set[str]) -> None:
        indexes = self.indexes.get(source, {})
        for keys in list(indexes):
            touched_columns = set(keys) & fields
            touched_attributes = "attributes" in fields and any(
                k not in COLUMNS for k in keys
            )
            if touched_columns or touched_attributes:
                del indexes[keys]

    # Applying

    def apply(self, batch: ParsedBatch) -> None:
        origin = batch.source
        if batch.people:
            self.directory.apply_roster(batch.people, origin, exact=batch.native)
        for email_ref, account_ref in batch.person_links:
            person = self.directory.find_person(email_ref)
            if person is not None and account_ref.provider:
                key = (account_ref.provider, str(account_ref.account_id))
                if key not in self.directory.accounts:
                    self.directory.link(person, *key)
        for system_record in batch.systems:
            self.directory.apply_system(system_record, origin)
        for account_record in batch.service_accounts:
            self.directory.apply_service_account(account_record, origin)
        self._resolve_references(batch)
        self.session.flush()
        touched: set[int] = set()
        for record in batch.credentials:
            self.upsert(record, batch, touched)
        for patch in batch.patches:
            self.apply_patch(patch)
        self._retire(batch, touched)

    def _resolve_references(self, batch: ParsedBatch) -> None:
        """Create the people, service accounts and systems a batch names, so a
        single flush gives them ids before the credentials are written."""
        for record in batch.credentials:
            for ref in (record.created_by, record.owner, record.holder_person):
                self.directory.person(ref, batch.source)
            self.directory.service_account(record.holder_service_account, batch.source)
            self.directory.system(record.system)

    def _columns(self, record: CredentialRecord, exact: bool) -> dict[str, Any]:
        directory = self.directory
        columns: dict[str, Any] = {}
        system = directory.system(record.system)
        if system is not None or exact:
            columns["system_id"] = system.id if system else None
        # A credential held by a person and naming no owner is owned by its
        # holder, who is then accountable for it.
        owner = record.owner or record.holder_person
        for column, ref in (
            ("created_by_id", record.created_by),
            ("owner_id", record.owner if exact else owner),
            ("holder_person_id", record.holder_person),
        ):
            person = directory.person(ref, record.source)
            if person is not None or exact:
                columns[column] = person.id if person else None
        account = directory.service_account(
            record.holder_service_account, record.source
        )
        if account is not None:
            columns["holder_service_account_id"] = account.id
            columns["holder_person_id"] = None
        elif (
            "holder_person_id" in columns
            and columns["holder_person_id"] is not None
            or exact
        ):
            columns["holder_service_account_id"] = None
        return columns

    def _find(self, record: CredentialRecord, touched: set[int]) -> Credential | None:
        found = self.credentials_of(record.source).get(record.source_id)
        if found is not None:
            return found
        for criteria in record.merge_keys:
            candidates = [
                c for c in self.lookup(record.source, criteria) if id(c) not in touched
            ]
            if len(candidates) == 1:
                return candidates[0]
        return None

    def upsert(
        self, record: CredentialRecord, batch: ParsedBatch, touched: set[int]
    ) -> None:
        existing = self._find(record, touched)
        values = {**record.values, **self._columns(record, batch.native)}
        if existing is None:
            attributes = dict(record.attributes)
            if record.export_scope:
                attributes[EXPORT_SCOPES] = [record.export_scope]
            fields = {**record.insert_only, **values}
            fields.setdefault("name", record.source_id)
            credential = Credential(
                source=record.source,
                source_id=record.source_id,
                attributes=attributes,
                **fields,
            )
            # New rows stay out of the session and are inserted in one
            # statement by finish(), because the ORM's per-object flush
            # dominated large imports.
            self.pending.append(credential)
            self._remember(credential)
            self.added.add(id(credential))
            self.report.added.append(_describe(credential))
            touched.add(id(credential))
            self.seen.add(id(credential))
            return
        self._snapshot(existing)
        changed = self._update(existing, values, record, batch.native)
        if (
            "status" not in record.values
            and existing.status == CredentialStatus.RETIRED
        ):
            existing.status = CredentialStatus.ACTIVE
            changed.add("status")
        self._note_change(existing, changed)
        touched.add(id(existing))
        self.seen.add(id(existing))

    def _update(
        self,
        credential: Credential,
        values: dict[str, Any],
        record: CredentialRecord,
        exact: bool,
    ) -> set[str]:
        changed = set()
        for name, value in values.items():
            if not _same(getattr(credential, name), value):
                setattr(credential, name, value)
                changed.add(name)
        current = credential.attributes or {}
        if exact:
            attributes = dict(record.attributes)
        else:
            # NOTE: merging keeps keys that a fresh export no longer sends
            # (a cleared disabled_reason stays), because another export of
            # the same credential may have set them.
            attributes = {**current, **record.attributes}
            scopes = list(current.get(EXPORT_SCOPES) or [])
            if record.export_scope and record.export_scope not in scopes:
                scopes.append(record.export_scope)
            if scopes:
                attributes[EXPORT_SCOPES] = scopes
        if _without_provenance(attributes) != _without_provenance(current):
            credential.attributes = attributes
            changed.add("attributes")
        return changed

    def _note_change(self, credential: Credential, fields: Iterable[str]) -> None:
        fields = set(fields)
        if fields:
            self._forget_indexes(credential.source, fields)

    def _snapshot(self, credential: Credential) -> None:
        if id(credential) in self.added or id(credential) in self.snapshots:
            return
        self.snapshots[id(credential)] = (credential, _state(credential))

    def apply_patch(self, patch: CredentialPatch) -> None:
        for criteria in patch.match:
            found = self.lookup(patch.source, criteria)
            if found and patch.match_all:
                for credential in found:
                    self._patch(credential, patch)
                return
            if len(found) > 1:
                names = ", ".join(sorted(c.source_id for c in found))
                raise InvalidInputError(
                    f"{patch.where}: matches {len(found)} credentials ({names}); "
                    f"{patch.ambiguity_hint or 'make the record name one credential'}"
                )
            if found:
                self._patch(found[0], patch)
                return
        message = (
            f"{patch.where}: no {patch.source} credential matches; "
            "import the listing that contains it first"
        )
        if patch.required:
            raise InvalidInputError(message)
        if patch.warn_if_unmatched:
            self.report.warnings.append(message)

    def _patch(self, credential: Credential, patch: CredentialPatch) -> None:
        self._snapshot(credential)
        changed = set()
        for name, value in patch.values.items():
            current = getattr(credential, name)
            if name in patch.keep_newest:
                if value is None:
                    continue
                if current is not None and as_utc(current) >= as_utc(value):  # type: ignore[operator]
                    continue
            if not _same(current, value):
                setattr(credential, name, value)
                changed.add(name)
        current_attributes = credential.attributes or {}
        attributes = {**current_attributes, **patch.attributes}
        if attributes != current_attributes:
            credential.attributes = attributes
            changed.add("attributes")
        self._note_change(credential, changed)

    def _retire(self, batch: ParsedBatch, touched: set[int]) -> None:
        """Retire what a complete listing no longer lists.

        A credential listed under several export scopes (an AWS key in the
        credential report and in list-access-keys) is retired only when no
        listing that named it still does.
        """
        if batch.lists_whole_source:
            batch.complete_scopes |= self._only_scope(batch)
        if not batch.complete_scopes:
            return
        now = utcnow().isoformat()
        for credential in list(self.credentials_of(batch.source).values()):
            if id(credential) in touched:
                continue
            scopes = list((credential.attributes or {}).get(EXPORT_SCOPES) or [])
            dropped = [scope for scope in scopes if scope in batch.complete_scopes]
            if not dropped:
                continue
            self._snapshot(credential)
            remaining = [
                scope for scope in scopes if scope not in batch.complete_scopes
            ]
            attributes = {**credential.attributes, EXPORT_SCOPES: remaining}
            changed = {"attributes"}
            if not remaining and credential.status != CredentialStatus.RETIRED:
                attributes["retired_at"] = now
                attributes["status_before_retired"] = credential.status
                credential.status = CredentialStatus.RETIRED
                self.report.retired.append(_describe(credential))
                self.retired.add(id(credential))
                changed.add("status")
            credential.attributes = attributes
            self._note_change(credential, changed)

    def _only_scope(self, batch: ParsedBatch) -> set[str]:
        """Return the one export scope of the batch's source, if any.

        Raises InvalidInputError when stored credentials of the source come
        from several scopes, because an empty listing cannot say which one
        it is.
        """
        scopes = {
            scope
            for credential in self.credentials_of(batch.source).values()
            for scope in (credential.attributes or {}).get(EXPORT_SCOPES) or []
        }
        if len(scopes) > 1:
            raise InvalidInputError(
                f"{batch.file}: an empty {batch.source} export names no scope, and "
                f"stored {batch.source} credentials come from {len(scopes)} "
                f"({', '.join(sorted(scopes))}); an empty export can retire the "
                "credentials of a source with one scope only"
            )
        return scopes

    def _insert_pending(self) -> None:
        """Insert the new credentials with one executemany INSERT."""
        if not self.pending:
            return
        table = Credential.__table__
        columns = [column for column in table.columns if column.key != "id"]
        rows = []
        for credential in self.pending:
            row = {}
            for column in columns:
                value = getattr(credential, column.key)
                if value is None:
                    value = _column_default(column)
                row[column.key] = value
            rows.append(row)
        # render_nulls keeps every row the same shape, so the driver gets one
        # batched statement instead of one per pattern of empty columns.
        self.session.execute(
            insert(Credential).execution_options(render_nulls=True), rows
        )

    def finish(self) -> None:
        """Flush, then report each credential whose state differs from before.

        Comparing with the state before the import, not counting each
        assignment, keeps two files that set a field back and forth (a
        listing, then an activity report) from showing as a change.
        """
        self.session.flush()
        self._insert_pending()
        changed_ids = set()
        for key, (credential, before) in self.snapshots.items():
            after = _state(credential)
            fields = sorted(
                name for name in after if not _same(before[name], after[name])
            )
            if not fields:
                continue
            changed_ids.add(key)
            if key not in self.retired:
                self.report.changed.append({**_describe(credential), "fields": fields})
        self.report.unchanged = len(
            [i for i in self.seen if i not in self.added and i not in changed_ids]
        )


def _column_default(column: Any) -> Any:
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)
    return default.arg


def collect_files(paths: Iterable[Path]) -> list[tuple[Path, bool]]:
    """Expand folders into the export files they contain.

    Returns (path, from_folder) pairs. A file found inside a folder is
    skipped later if its content matches no format; a file named on the
    command line must match one.
    """
    files: list[tuple[Path, bool]] = []
    suffixes = TABLE_SUFFIXES | DOCUMENT_SUFFIXES
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in suffixes:
                    files.append((child, True))
        elif path.exists():
            files.append((path, False))
        else:
            raise InvalidInputError(f"{path}: file not found; check the path")
    if not files:
        raise InvalidInputError(
            "no export files found; name .csv, .xlsx, .json or .yaml files or a folder"
        )
    return files


def parse_files(
    paths: Iterable[Path],
    source: str | None,
    report: ImportReport,
    progress: ProgressCallback | None = None,
) -> list[tuple[Importer, ParsedBatch]]:
    """Read and check every file before the store is touched.

    Returns the batches in the order they are applied, and lists the files
    in ``report`` in that order.
    """
    parsed: list[tuple[Importer, ParsedBatch, dict[str, Any]]] = []
    files = collect_files(paths)
    for number, (path, from_folder) in enumerate(files):
        if progress is not None:
            progress(f"reading {path.name}", number, 2 * len(files))
        loaded = load_file(path)
        try:
            importer = detect_importer(loaded, source)
        except FormatNotDetectedError as exc:
            if not from_folder:
                raise
            report.warnings.append(f"skipped {path}: {exc}")
            continue
        batch = importer.parse(loaded)
        report.warnings.extend(batch.warnings)
        summary = {
            "file": str(path),
            "format": importer.format,
            "source": importer.source,
            "detected": source is None,
            "credentials": len(batch.credentials),
            "people": len(batch.people),
            "updates": len(batch.patches),
        }
        parsed.append((importer, batch, summary))
    parsed.sort(key=lambda entry: (entry[0].order, entry[1].file))
    report.files = [summary for _, _, summary in parsed]
    return [(importer, batch) for importer, batch, _ in parsed]


def run_import(
    store: Store,
    paths: Iterable[Path],
    *,
    source: str | None = None,
    dry_run: bool = False,
    actor: str = "cli",
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import export files in one transaction, or only report with ``dry_run``.

    ``progress`` is called with a step description, the steps done and the
    total, once per file read and once per file applied.
    """
    report = ImportReport(dry_run=dry_run)
    parsed = parse_files(list(paths), source, report, progress)
    total = 2 * len(parsed)
    session = store.session_factory()
    transaction = session.begin()
    try:
        writer = InventoryWriter(session, report)
        for number, (_, batch) in enumerate(parsed):
            if progress is not None:
                progress(f"applying {batch.file}", len(parsed) + number, total)
            writer.apply(batch)
        writer.finish()
        if progress is not None:
            progress("done", total, total)
        if dry_run:
            transaction.rollback()
        else:
            record_event(
                session,
                actor=actor,
                action=IMPORT_ACTION,
                target_type="inventory",
                details={
                    "files": [
                        # A file name can carry a key id shaped like a
                        # secret; the event log rejects those, so mask it.
                        {"file": redact(Path(f["file"]).name), "format": f["format"]}
                        for f in report.files
                    ],
                    **report.counts(),
                },
            )
            transaction.commit()
    except BaseException:
        transaction.rollback()
        raise
    finally:
        session.close()
    log.info("inventory import finished", extra={"dry_run": dry_run, **report.counts()})
    return report
