"""Anthropic organization API keys (Admin API). The listing has no last use."""

from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile, first_item
from keysteward.inventory.parsing import Where, hint_from, parse_datetime, text
from keysteward.inventory.records import CredentialRecord, ParsedBatch, PersonRef

STATUSES = {
    "active": CredentialStatus.ACTIVE,
    "inactive": CredentialStatus.INACTIVE,
    "archived": CredentialStatus.REVOKED,
    "expired": CredentialStatus.EXPIRED,
}


class ApiKeysImporter(Importer):
    format = "anthropic.api_keys"
    source = "anthropic"

    def matches(self, loaded: LoadedFile) -> bool:
        item = first_item(loaded.document, "data")
        return (
            item is not None
            and item.get("type") == "api_key"
            and "partial_key_hint" in item
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        batch.complete_scopes.add("organization")
        for index, item in enumerate(loaded.document["data"]):
            where = Where(loaded.name, f"data[{index}]")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            batch.credentials.append(self._key(item, where, loaded.name, index))
        return batch

    def _key(
        self, item: dict[str, Any], where: Where, file: str, index: int
    ) -> CredentialRecord:
        key_id = text(item.get("id"))
        if key_id is None:
            raise where.error("id", "the key id, such as apikey_01...")
        status = STATUSES.get(str(item.get("status")))
        if status is None:
            raise where.error(
                "status", "active, inactive, archived or expired", item.get("status")
            )
        workspace = text(item.get("workspace_id")) or "default"
        creator = item.get("created_by")
        person = None
        if (
            isinstance(creator, dict)
            and creator.get("type") == "user"
            and creator.get("id")
        ):
            person = PersonRef(provider="anthropic", account_id=str(creator["id"]))
        return CredentialRecord(
            source="anthropic",
            source_id=key_id,
            system="anthropic",
            values={
                "name": text(item.get("name")) or key_id,
                "kind": CredentialKind.API_KEY,
                "scopes": [f"workspace:{workspace}"],
                "privilege": Privilege.WRITE,
                "created_at": parse_datetime(
                    item.get("created_at"), where, "created_at"
                ),
                "last_rotated_at": None,
                "expires_at": parse_datetime(
                    item.get("expires_at"), where, "expires_at"
                ),
                "status": status,
                "secret_hint": hint_from(text(item.get("partial_key_hint"))),
            },
            attributes={
                "workspace_id": workspace,
                # Created_by is null for legacy, federated and system keys.
                "creator_type": creator.get("type")
                if isinstance(creator, dict)
                else None,
                "usage_known": False,
                "source_file": file,
                "source_line": index + 1,
            },
            created_by=person,
            owner=person,
            export_scope="organization",
        )


IMPORTERS = (ApiKeysImporter,)
