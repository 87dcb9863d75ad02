"""AWS IAM: the credential report, list-access-keys and get-access-key-last-used.

The credential report names keys by slot (access_key_1, access_key_2) and
never by AccessKeyId, while the CLI listings name them by AccessKeyId. A key
from one is matched to the other by IAM user name and creation time, which
the report writes as the key's last_rotated time.
"""

import re
from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import (
    Where,
    parse_bool,
    parse_datetime,
    text,
)
from keysteward.inventory.records import (
    CredentialPatch,
    CredentialRecord,
    ParsedBatch,
    PersonRef,
)

ROOT_USER = "<root_account>"
SERVICE_ACCOUNT_PREFIX = "svc-"
ACCOUNT_IN_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):")
ACCESS_KEY_ID = re.compile(r"\b((?:AKIA|ASIA)[A-Z0-9]{16})\b")
REPORT_COLUMNS = frozenset(
    {"user", "arn", "user_creation_time", "access_key_1_active", "cert_1_active"}
)
KEY_STATUS = {
    "Active": CredentialStatus.ACTIVE,
    "Inactive": CredentialStatus.INACTIVE,
    "Expired": CredentialStatus.EXPIRED,
}


def holder_of(user: str, record: CredentialRecord) -> None:
    """Set the holder: svc-* users are service accounts, other users people."""
    if user == ROOT_USER:
        record.attributes["identity_kind"] = "system"
    elif user.startswith(SERVICE_ACCOUNT_PREFIX):
        record.holder_service_account = user
        record.attributes["identity_kind"] = "service_account"
    else:
        record.holder_person = PersonRef(provider="aws", account_id=user, name=user)
        record.attributes["identity_kind"] = "person"


class CredentialReportImporter(Importer):
    format = "aws.credential_report"
    source = "aws"

    def matches(self, loaded: LoadedFile) -> bool:
        return loaded.table is not None and set(loaded.table.headers) >= REPORT_COLUMNS

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        assert loaded.table is not None
        batch = self.new_batch(loaded)
        for row in loaded.table.rows:
            where = Where(loaded.name, f"line {row.line}")
            user = text(row.get("user"))
            arn = text(row.get("arn"))
            if user is None:
                raise where.error("user", "an IAM user name or <root_account>")
            match = ACCOUNT_IN_ARN.match(arn or "")
            if arn is None or match is None:
                raise where.error(
                    "arn", "an IAM ARN like arn:aws:iam::123456789012:user/x", arn
                )
            scope = f"account:{match.group(1)}"
            batch.complete_scopes.add(scope)
            common = {
                "aws_account": match.group(1),
                "user_name": user,
                "user_arn": arn,
                "mfa_active": parse_bool(row.get("mfa_active"), where, "mfa_active"),
                "user_created_at": _iso(
                    parse_datetime(
                        row.get("user_creation_time"), where, "user_creation_time"
                    )
                ),
                "source_file": loaded.name,
                "source_line": row.line,
            }
            for record in self._row_credentials(row.values, where, user, arn, common):
                record.export_scope = scope
                holder_of(user, record)
                batch.credentials.append(record)
        return batch

    def _row_credentials(
        self,
        row: dict[str, Any],
        where: Where,
        user: str,
        arn: str,
        common: dict[str, Any],
    ) -> list[CredentialRecord]:
        records = []
        password = self._password(row, where, user, arn, common)
        if password is not None:
            records.append(password)
        for slot in (1, 2):
            key = self._access_key(row, where, user, arn, common, slot)
            if key is not None:
                records.append(key)
            cert = self._certificate(row, where, user, arn, common, slot)
            if cert is not None:
                records.append(cert)
        return records

    def _password(
        self,
        row: dict[str, Any],
        where: Where,
        user: str,
        arn: str,
        common: dict[str, Any],
    ) -> CredentialRecord | None:
        enabled_raw = (row.get("password_enabled") or "").strip()
        is_root = user == ROOT_USER
        # The root user always has a password, and the report writes not_supported.
        if not is_root and not parse_bool(enabled_raw, where, "password_enabled"):
            return None

        last_used_raw = (row.get("password_last_used") or "").strip()
        last_used = parse_datetime(last_used_raw, where, "password_last_used")
        attributes = dict(common)
        attributes["usage_known"] = last_used_raw.lower() != "no_information"
        if last_used_raw.lower() == "no_information":
            attributes["password_last_used"] = "no_information"  # noqa: S105

        next_rotation = parse_datetime(
            row.get("password_next_rotation"), where, "password_next_rotation"
        )
        attributes["password_next_rotation"] = _iso(next_rotation)
        return CredentialRecord(
            source="aws",
            source_id=f"{arn}#password",
            system="aws",
            values={
                "name": f"{user} console password",
                "kind": CredentialKind.PASSWORD,
                "privilege": Privilege.ADMIN if is_root else Privilege.UNKNOWN,
                "created_at": parse_datetime(
                    row.get("user_creation_time"), where, "user_creation_time"
                ),
                "last_rotated_at": parse_datetime(
                    row.get("password_last_changed"), where, "password_last_changed"
                ),
                "last_used_at": last_used,
                "status": CredentialStatus.ACTIVE,
            },
            attributes=attributes,
        )

    def _access_key(
        self,
        row: dict[str, Any],
        where: Where,
        user: str,
        arn: str,
        common: dict[str, Any],
        slot: int,
    ) -> CredentialRecord | None:
        prefix = f"access_key_{slot}"
        active = parse_bool(row.get(f"{prefix}_active"), where, f"{prefix}_active")
        created = parse_datetime(
            row.get(f"{prefix}_last_rotated"), where, f"{prefix}_last_rotated"
        )
        # An inactive key shows N/A in last_rotated, the same as an empty
        # slot, so only keys with a creation time or an active flag exist.
        if not active and created is None:
            return None
        attributes = dict(common)
        attributes.update(
            {
                "key_slot": slot,
                "usage_known": True,
                "last_used_region": text(row.get(f"{prefix}_last_used_region")),
                "last_used_service": text(row.get(f"{prefix}_last_used_service")),
            }
        )
        record = CredentialRecord(
            source="aws",
            source_id=f"{arn}#{prefix}",
            system="aws",
            values={
                "name": f"{user} access key {slot}",
                "kind": CredentialKind.ACCESS_KEY,
                "privilege": Privilege.ADMIN
                if user == ROOT_USER
                else Privilege.UNKNOWN,
                # An access key cannot be rotated in place: a new key is a new
                # credential, so its creation time is all the report gives.
                "created_at": created,
                "last_rotated_at": None,
                "last_used_at": parse_datetime(
                    row.get(f"{prefix}_last_used_date"),
                    where,
                    f"{prefix}_last_used_date",
                ),
                "status": CredentialStatus.ACTIVE
                if active
                else CredentialStatus.INACTIVE,
            },
            attributes=attributes,
        )
        if created is not None:
            record.merge_keys.append({"user_name": user, "created_at": created})
        return record

    def _certificate(
        self,
        row: dict[str, Any],
        where: Where,
        user: str,
        arn: str,
        common: dict[str, Any],
        slot: int,
    ) -> CredentialRecord | None:
        prefix = f"cert_{slot}"
        active = parse_bool(row.get(f"{prefix}_active"), where, f"{prefix}_active")
        rotated = parse_datetime(
            row.get(f"{prefix}_last_rotated"), where, f"{prefix}_last_rotated"
        )
        if not active and rotated is None:
            return None
        attributes = dict(common)
        attributes["cert_slot"] = slot
        return CredentialRecord(
            source="aws",
            source_id=f"{arn}#{prefix}",
            system="aws",
            values={
                "name": f"{user} signing certificate {slot}",
                "kind": CredentialKind.CERTIFICATE,
                "privilege": Privilege.UNKNOWN,
                "created_at": rotated,
                "last_rotated_at": None,
                "status": CredentialStatus.ACTIVE
                if active
                else CredentialStatus.INACTIVE,
            },
            attributes=attributes,
        )


class ListAccessKeysImporter(Importer):
    format = "aws.list_access_keys"
    source = "aws"

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return isinstance(document, dict) and isinstance(
            document.get("AccessKeyMetadata"), list
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        for index, item in enumerate(loaded.document["AccessKeyMetadata"]):
            where = Where(loaded.name, f"AccessKeyMetadata[{index}]")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            key_id = text(item.get("AccessKeyId"))
            user = text(item.get("UserName"))
            if key_id is None or not ACCESS_KEY_ID.fullmatch(key_id):
                raise where.error(
                    "AccessKeyId", "an id like AKIA followed by 16 characters", key_id
                )
            if user is None:
                raise where.error("UserName", "an IAM user name")
            status = KEY_STATUS.get(str(item.get("Status")))
            if status is None:
                raise where.error(
                    "Status", "Active, Inactive or Expired", item.get("Status")
                )
            created = parse_datetime(item.get("CreateDate"), where, "CreateDate")
            scope = f"user:{user}"
            batch.complete_scopes.add(scope)
            record = CredentialRecord(
                source="aws",
                source_id=key_id,
                system="aws",
                values={
                    "kind": CredentialKind.ACCESS_KEY,
                    "created_at": created,
                    "status": status,
                },
                attributes={"access_key_id": key_id, "user_name": user},
                insert_only={"name": f"{user} access key {key_id[-4:]}"},
                export_scope=scope,
            )
            if created is not None:
                record.merge_keys.append({"user_name": user, "created_at": created})
            holder_of(user, record)
            batch.credentials.append(record)
        return batch


class AccessKeyLastUsedImporter(Importer):
    """``get-access-key-last-used`` output, merged into the key it describes.

    The CLI output carries no AccessKeyId. The importer takes it from an
    "AccessKeyId" field added to the file or from an AKIA id in the file
    name, and otherwise picks the user's only key whose stored last use
    equals the reported one.
    """

    format = "aws.access_key_last_used"
    source = "aws"
    order = 80

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return isinstance(document, dict) and isinstance(
            document.get("AccessKeyLastUsed"), dict
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        document = loaded.document
        where = Where(loaded.name, "AccessKeyLastUsed")
        usage = document["AccessKeyLastUsed"]
        user = text(document.get("UserName"))
        if user is None:
            raise Where(loaded.name, "document").error("UserName", "an IAM user name")

        last_used = parse_datetime(usage.get("LastUsedDate"), where, "LastUsedDate")
        key_id = text(document.get("AccessKeyId")) or text(usage.get("AccessKeyId"))
        if key_id is None:
            found = ACCESS_KEY_ID.search(loaded.name)
            key_id = found.group(1) if found else None

        match: list[dict[str, Any]]
        if key_id is not None:
            match = [{"source_id": key_id}, {"access_key_id": key_id}]
        else:
            match = [{"user_name": user, "last_used_at": last_used}]

        batch.patches.append(
            CredentialPatch(
                source="aws",
                match=match,
                values={"last_used_at": last_used},
                attributes={
                    "usage_known": True,
                    "last_used_region": text(usage.get("Region")),
                    "last_used_service": text(usage.get("ServiceName")),
                },
                where=f"{loaded.name}: user {user}",
                ambiguity_hint=(
                    'add "AccessKeyId": "AKIA..." (the --access-key-id value) to '
                    "the file, or put the key id in the file name"
                ),
            )
        )
        return batch


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


IMPORTERS = (
    CredentialReportImporter,
    ListAccessKeysImporter,
    AccessKeyLastUsedImporter,
)
