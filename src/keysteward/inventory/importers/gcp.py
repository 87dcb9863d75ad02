"""GCP service account keys and their last authentication time.

``gcloud iam service-accounts keys list --format=json`` omits false and empty
fields (no "disabled" means enabled) and writes 9999-12-31 for keys that
never expire. ``gcloud policy-intelligence query-activity`` gives each key's
last authentication, at hour or day precision.
"""

import re

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import (
    Where,
    as_list,
    as_object,
    no_expiry,
    parse_datetime,
    text,
)
from keysteward.inventory.records import CredentialPatch, CredentialRecord, ParsedBatch

KEY_NAME = re.compile(
    r"projects/(?P<project>[^/]+)/serviceAccounts/(?P<account>[^/]+)/keys/(?P<key>[0-9a-f]+)$"
)
EXPOSED_STATUS = "SERVICE_ACCOUNT_KEY_EXTENDED_STATUS_KEY_EXPOSED"
LAST_AUTHENTICATION = "serviceAccountKeyLastAuthentication"


class ServiceAccountKeysImporter(Importer):
    format = "gcp.service_account_keys"
    source = "gcp"

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return (
            isinstance(document, list)
            and bool(document)
            and isinstance(document[0], dict)
            and "keyType" in document[0]
            and "/keys/" in str(document[0].get("name", ""))
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        for index, item in enumerate(loaded.document):
            where = Where(loaded.name, f"record {index + 1}")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            batch.credentials.append(self._key(item, where, loaded.name, index))
            batch.complete_scopes.add(batch.credentials[-1].export_scope or "")
        return batch

    def _key(self, item: dict, where: Where, file: str, index: int) -> CredentialRecord:
        match = KEY_NAME.search(str(item.get("name", "")))
        if match is None:
            raise where.error(
                "name",
                "projects/PROJECT/serviceAccounts/EMAIL/keys/KEY_ID",
                item.get("name"),
            )

        account = match.group("account")
        key_id = match.group("key")
        system_managed = item.get("keyType") == "SYSTEM_MANAGED"
        disabled = bool(item.get("disabled", False))
        exposed_at = [
            entry.get("value")
            for entry in as_list(item.get("extendedStatus"), where, "extendedStatus")
            if isinstance(entry, dict) and entry.get("key") == EXPOSED_STATUS
        ]
        disable_reason = text(item.get("disableReason"))

        attributes = {
            "project": match.group("project"),
            "service_account": account,
            "key_type": text(item.get("keyType")),
            "key_origin": text(item.get("keyOrigin")),
            "key_algorithm": text(item.get("keyAlgorithm")),
            "system_managed": system_managed,
            "identity_kind": "service_account",
            "source_file": file,
            "source_line": index + 1,
        }

        if disable_reason:
            attributes["disabled_reason"] = disable_reason
        if exposed_at or (disable_reason and "EXPOSED" in disable_reason):
            attributes["exposed"] = True
            if exposed_at:
                attributes["exposed_at"] = exposed_at[0]

        return CredentialRecord(
            source="gcp",
            source_id=key_id,
            system="gcp",
            values={
                "name": f"{account.split('@')[0]} key {key_id[:8]}",
                "kind": CredentialKind.SERVICE_ACCOUNT_KEY,
                "privilege": Privilege.UNKNOWN,
                "created_at": parse_datetime(
                    item.get("validAfterTime"), where, "validAfterTime"
                ),
                "last_rotated_at": None,
                "expires_at": no_expiry(
                    parse_datetime(
                        item.get("validBeforeTime"), where, "validBeforeTime"
                    )
                ),
                "status": CredentialStatus.INACTIVE
                if disabled
                else CredentialStatus.ACTIVE,
                "secret_hint": key_id[-4:],
            },
            attributes=attributes,
            holder_service_account=account,
            export_scope=f"service_account:{account}",
        )


class KeyActivityImporter(Importer):
    format = "gcp.key_last_authentication"
    source = "gcp"
    order = 80

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return (
            isinstance(document, list)
            and bool(document)
            and isinstance(document[0], dict)
            and document[0].get("activityType") == LAST_AUTHENTICATION
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        for index, item in enumerate(loaded.document):
            where = Where(loaded.name, f"record {index + 1}")
            activity = item.get("activity") if isinstance(item, dict) else None
            if not isinstance(activity, dict):
                raise where.error("activity", "an object with lastAuthenticatedTime")
            key = as_object(
                activity.get("serviceAccountKey"),
                where,
                "activity.serviceAccountKey",
            )
            match = KEY_NAME.search(str(key.get("fullResourceName", "")))
            if match is None:
                raise where.error(
                    "activity.serviceAccountKey.fullResourceName",
                    "//iam.googleapis.com/projects/P/serviceAccounts/EMAIL/keys/KEY_ID",
                    key.get("fullResourceName"),
                )
            last_used = parse_datetime(
                activity.get("lastAuthenticatedTime"), where, "lastAuthenticatedTime"
            )
            batch.patches.append(
                CredentialPatch(
                    source="gcp",
                    match=[{"source_id": match.group("key")}],
                    values={"last_used_at": last_used},
                    attributes={"usage_known": True},
                    where=f"{loaded.name}: record {index + 1}",
                )
            )
        return batch


IMPORTERS = (ServiceAccountKeysImporter, KeyActivityImporter)
